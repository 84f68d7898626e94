#!/bin/bash
# run.sh RUNTIME [OUTDIR]: run the OCI runtime-tools validation suite against
# RUNTIME (a path or a command in PATH taking runc's command line).
#
# Writes to OUTDIR (default: a new dir under /tmp):
#   tap/NAME.tap, tap/NAME.err   each program's TAP stdout and stderr
#   summary.tsv                  one row per program
#   summary.md                   the same as a markdown report
# Exits 1 only when a program listed in expected-pass.txt (or $EXPECTED_PASS)
# does not pass, so CI catches regressions without requiring full conformance.
#
# Environment:
#   CONFORMANCE_TIMEOUT   seconds per program (default 60)
#   CONFORMANCE_PROGRAMS  space-separated subset of programs to run
#   CONFORMANCE_MASK_FILES  space-separated files hidden behind an empty file
#                         in each program's mount namespace; for crun on this
#                         hybrid host: /sys/fs/cgroup/unified/cgroup.controllers
#                         (crun-wrapper.sh then passes through, so namespace
#                         tests see crun in the program's own mount namespace)
#   EXPECTED_PASS         expected-pass list (default: next to this script)
#   BERTH_TEST_CACHE      cache root for the built suite (see build.sh)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
	echo "usage: $0 RUNTIME [OUTDIR]" >&2
	exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
[ "$(id -u)" -eq 0 ] || { echo "run.sh: must run as root" >&2; exit 2; }
for tool in jq tar unshare timeout; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (contrib/install-deps.sh)" >&2; exit 2; }
done

# Programs run with the cache as cwd, so RUNTIME must be absolute.
runtime=$(command -v "$1" || true)
[ -n "$runtime" ] && [ -x "$runtime" ] || { echo "run.sh: runtime $1 not found" >&2; exit 2; }
runtime="$(cd "$(dirname "$runtime")" && pwd)/$(basename "$runtime")"

outdir=${2:-$(mktemp -d /tmp/berth-conformance.XXXXXX)}
mkdir -p "$outdir/tap"
outdir=$(cd "$outdir" && pwd)
timeout_s=${CONFORMANCE_TIMEOUT:-60}
expected_file=${EXPECTED_PASS:-$here/expected-pass.txt}

cache=$("$here/build.sh" | tail -n1)

if [ -n "${CONFORMANCE_PROGRAMS:-}" ]; then
	read -r -a programs <<<"$CONFORMANCE_PROGRAMS"
else
	mapfile -t programs <"$cache/programs.txt"
fi

declare -A expected=()
if [ -f "$expected_file" ]; then
	while read -r name _; do
		case $name in '' | '#'*) continue ;; esac
		expected[$name]=1
	done <"$expected_file"
fi

# Bundles are created under TMPDIR (os.MkdirTemp); a private one lets us find
# and remove what a killed program left behind, and only that.
scratch=$(mktemp -d /tmp/berth-conformance-tmp.XXXXXX)
read -r -a mask_files <<<"${CONFORMANCE_MASK_FILES:-}"
empty="$scratch.empty"
: >"$empty"

# cleanup_leftovers: force-delete containers whose bundle is in our scratch
# dir, then remove the bundles. Programs clean up after themselves unless they
# time out or crash.
cleanup_leftovers() {
	local id
	for id in $("$runtime" list --format json 2>/dev/null |
		jq -r --arg p "$scratch/" '.[]? | select(.bundle | startswith($p)) | .id'); do
		"$runtime" delete --force "$id" >/dev/null 2>&1 || true
	done
	# Never let rm descend into a mount (a leaked /proc or bind mount):
	# detach any, deepest first, and stay on one file system regardless.
	awk -v p="$scratch/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	find "$scratch" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} + 2>/dev/null || true
}
trap 'cleanup_leftovers; rm -rf --one-file-system "$scratch" "$empty"' EXIT

# classify TAPFILE RC: print "result ok notok skip planned".
# A program passes when it exits 0, reports no "not ok", every TAP document it
# printed (some print two) has a plan matching its test lines (a crash
# mid-run leaves it short), and it printed no "error" diagnostic outside a
# test: the lifecycle programs (hooks, pidfile, poststart...) report their
# failures that way under a 1..0 plan. No output at all with exit 0 is a pass:
# the *_fail programs print nothing when the runtime rightly refuses.
classify() {
	local tap=$1 rc=$2
	awk -v rc="$rc" '
		function close_doc() {
			if (indoc && (!hasplan || plan != n)) badplan = 1
			n = 0; hasplan = 0
		}
		/^TAP version/ { close_doc(); indoc = 1; prev = "other"; next }
		/^  ---$/ && !inyaml { inyaml = 1; detached = (prev != "test"); next }
		/^  \.\.\.$/ && inyaml { inyaml = 0; prev = "other"; next }
		inyaml { if (detached && $0 ~ /^    "error":/) orphan = 1; next }
		/^ok [0-9]+/ {
			indoc = 1; n++; prev = "test"
			if ($0 ~ /# *[Ss][Kk][Ii][Pp]/) skip++; else ok++
			next
		}
		/^not ok [0-9]+/ {
			indoc = 1; n++; prev = "test"
			if ($0 ~ /# *[Tt][Oo][Dd][Oo]/) ok++; else bad++
			next
		}
		/^1\.\.[0-9]+/ { indoc = 1; split($0, a, /\.\./); plan = a[2] + 0; hasplan = 1; planned += plan }
		# Other lines continue a multi-line test description ("Refer to: ...")
		# and keep the next YAML block attached to that test.
		/^1\.\.|^#/ { prev = "other" }
		END {
			close_doc()
			if (rc == 124 || rc == 137) res = "timeout"
			else if (rc == 0 && bad == 0 && !badplan && !orphan) res = "pass"
			else res = "fail"
			printf "%s %d %d %d %d\n", res, ok, bad, skip, planned
		}' "$tap"
}

version=$("$runtime" --version 2>/dev/null | head -n1 || true)
summary="$outdir/summary.tsv"
printf 'program\tresult\texit\tok\tnot_ok\tskip\tplanned\tseconds\texpected\n' >"$summary"

echo "conformance: $runtime (${version:-unknown version}), ${#programs[@]} programs, output in $outdir"
start=$(date +%s)
passed=0 failed=0 regressions=()
for p in "${programs[@]}"; do
	[ -x "$cache/validation/$p" ] || { echo "run.sh: no such program: $p" >&2; exit 2; }
	t0=$(date +%s%N)
	set +e
	# timeout signals its whole process group, so helpers such as the
	# `unshare ... sleep` of the ns tests die with the program. The private
	# mount namespace keeps mounts a runtime leaks into the caller's
	# namespace (runc 1.1 does, in linux_rootfs_propagation) off the host.
	(cd "$cache" && RUNTIME="$runtime" TMPDIR="$scratch" \
		timeout -k 5 "$timeout_s" unshare -m --propagation private /bin/sh -c '
			empty=$1 prog=$2
			shift 2
			for f in "$@"; do mount --bind "$empty" "$f" || exit 125; done
			exec "$prog"' mask "$empty" "./validation/$p" "${mask_files[@]}" \
		>"$outdir/tap/$p.tap" 2>"$outdir/tap/$p.err" </dev/null)
	rc=$?
	set -e
	secs=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	cleanup_leftovers
	read -r result ok bad skip planned <<<"$(classify "$outdir/tap/$p.tap" "$rc")"
	exp=no
	[ -n "${expected[$p]:-}" ] && exp=yes
	if [ "$result" = pass ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		[ "$exp" = yes ] && regressions+=("$p")
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$result" "$rc" "$ok" "$bad" "$skip" "$planned" "$secs" "$exp" >>"$summary"
	printf '  %-40s %-8s %5ss  (ok %s, not ok %s, skip %s)\n' "$p" "$result" "$secs" "$ok" "$bad" "$skip"
done
duration=$(($(date +%s) - start))

{
	echo "# runtime-tools validation: $(basename "$runtime")"
	echo
	echo "- runtime: \`$runtime\` (${version:-unknown version})"
	echo "- suite: github.com/opencontainers/runtime-tools $(basename "$cache")"
	echo "- host: $(uname -r), $(nproc) cores; date $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "- result: $passed of ${#programs[@]} programs passed, $failed failed; duration ${duration}s"
	echo "- expected-pass failures: ${#regressions[@]}${regressions:+ (${regressions[*]})}"
	echo
	echo "| program | result | exit | ok | not ok | skip | planned | seconds | expected |"
	echo "|---|---|---|---|---|---|---|---|---|"
	tail -n +2 "$summary" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }'
} >"$outdir/summary.md"

# Programs that pass but are not expected to: candidates for expected-pass.txt.
newly=$(awk -F'\t' 'NR > 1 && $2 == "pass" && $9 == "no" { print $1 }' "$summary" | tr '\n' ' ')
[ -z "$newly" ] || echo "conformance: passing but not in $(basename "$expected_file"): $newly"
echo "conformance: $(basename "$runtime"): $passed of ${#programs[@]} programs passed, $failed failed, in ${duration}s; report $outdir/summary.md"
if [ ${#regressions[@]} -gt 0 ]; then
	echo "conformance: FAIL: expected to pass but did not: ${regressions[*]}" >&2
	exit 1
fi
