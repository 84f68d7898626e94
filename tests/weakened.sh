#!/bin/bash
# tests/weakened.sh: the security tests must fail on a deliberately weakened
# runtime. Each line of MUTATIONS takes one protection out of the C init
# stage (in a copy of the tree), builds that runtime and runs the test that
# guards the protection, which must then fail; the same tests must pass on
# the runtime as it is. `make weakened` runs it (as root, ~2 minutes); it
# is not part of the test command, being a check of the tests themselves.
#
# A weakened runtime really escapes: the mount-destination test's "/evil"
# then lands on the host's root, and is removed here afterwards.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "weakened: must run as root" >&2; exit 1; }

# file#sed expression#test that must fail
MUTATIONS=(
	'libcontainer/nsexec/cinit_rootfs.c#s/\.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,/.resolve = 0,/#TestMountDestinationStaysInside'
	'libcontainer/nsexec/cinit_rootfs.c#s/if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)/if (0)/#TestFakeDevNull'
	'libcontainer/nsexec/cinit_rootfs.c#s/	if (S_ISLNK(st.st_mode))/	if (0)/#TestMaskedSymlinkRefused'
	'libcontainer/nsexec/cinit.c#s/if (syscall(SYS_close_range, 3 + p->preserve, ~0U, CLOSE_RANGE_CLOEXEC) < 0)/if (0)/#TestOnlyStdioInherited'
	"libcontainer/nsexec/cinit.c#s/|| wd\\[0\\] != '\\/')/|| 0)/#TestCwdStaysInside"
)

work=$(mktemp -d /tmp/berth-weakened.XXXXXX)
evil_before=$([ -e /evil ] && echo yes || echo no)
cleanup() {
	rm -rf "$work"
	if [ "$evil_before" = no ] && [ -d /evil ]; then
		rm -rf --one-file-system /evil
	fi
}
trap cleanup EXIT

# run_test BINARY TEST: runs TEST of tests/integration against BINARY.
run_test() {
	(cd "$repo" && BERTH_RUNTIME=$1 go test -count=1 -run "^$2\$" ./tests/integration/ >"$work/out" 2>&1)
}

build() {
	(cd "$1" && go build -trimpath -tags urfave_cli_no_docs -o "$2" ./runtime)
}

build "$repo" "$work/berth-runtime"
failed=0
for m in "${MUTATIONS[@]}"; do
	IFS='#' read -r file expr test <<<"$m"
	if ! run_test "$work/berth-runtime" "$test"; then
		echo "weakened: $test fails on the runtime as it is:" >&2
		cat "$work/out" >&2
		failed=1
		continue
	fi
	rm -rf "$work/tree"
	mkdir "$work/tree"
	(cd "$repo" && git ls-files -z | xargs -0 cp --parents -t "$work/tree")
	sed -i "$expr" "$work/tree/$file"
	if cmp -s "$repo/$file" "$work/tree/$file"; then
		echo "weakened: the mutation for $test no longer applies to $file" >&2
		failed=1
		continue
	fi
	build "$work/tree" "$work/weak"
	if run_test "$work/weak" "$test"; then
		echo "weakened: $test still passes without its protection ($file: $expr)" >&2
		failed=1
	else
		echo "weakened: $test fails without its protection: good"
	fi
done
exit $failed
