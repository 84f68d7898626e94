#!/bin/bash
# bench/build.sh: time `berth build` against `podman build` in one run, both
# with berth-runtime, --network none and stores of their own, rounds
# interleaved (berth, podman, berth, ...) so noise hits both:
#   cold    a 5-step build (FROM busybox, 3 RUN, COPY) into a store that has
#           only busybox
#   cached  the same build again: every step from the cache
#   edit    after editing only the file of the last COPY
#   ignore  COPY . of a 200 MB context whose .dockerignore excludes all but
#           1 MB of it (the excluded files are never read)
#
# Environment:
#   BENCH_BUILD_N   measured rounds per tool (default 5)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${BENCH_BUILD_N:-5}
berth=$repo/bin/berth
runtime=$repo/bin/berth-runtime

die() {
	echo "bench-build: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
[[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_BUILD_N must be a positive integer"
[ -x "$berth" ] && [ -x "$runtime" ] || die "bin/berth or bin/berth-runtime not found: run make build"
command -v podman >/dev/null || die "podman not found (contrib/install-deps.sh)"

work=$(mktemp -d /var/tmp/berth-bench-build.XXXXXX)
# unmount_under DIR: the stores' drivers keep their homes mounted.
unmount_under() {
	grep -o "$1[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | xargs -r umount -l 2>/dev/null || true
}
cleanup() {
	unmount_under "$work"
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# The contexts.
mkdir -p "$work/ctx" "$work/big/keep" "$work/big/ignored"
cat >"$work/ctx/Dockerfile" <<'EOF'
FROM busybox
RUN echo one > /one
RUN mkdir -p /app && echo two > /app/two
RUN for i in 1 2 3 4 5 6 7 8; do echo $i; done > /three
COPY app.txt /app/app.txt
EOF
echo v0 >"$work/ctx/app.txt"
printf 'FROM busybox\nCOPY . /app/\n' >"$work/big/Dockerfile"
printf 'ignored\n' >"$work/big/.dockerignore"
head -c 1000000 /dev/urandom >"$work/big/keep/data"
for i in $(seq 199); do head -c 1000000 /dev/urandom >"$work/big/ignored/f$i"; done

# tool_in TOOL STORE ARGS...: the tool with a store of its own.
tool_in() {
	local tool=$1 s=$work/$2
	shift 2
	case $tool in
	berth) "$berth" --root "$s/root" --runroot "$s/run" --storage-driver overlay "$@" ;;
	podman) podman --root "$s/root" --runroot "$s/run" --storage-driver overlay --cgroup-manager cgroupfs \
		--events-backend file --runtime "$runtime" --tmpdir "$s/tmp" "$@" ;;
	esac
}

# fresh TOOL STORE: a new store holding only busybox.
fresh() {
	unmount_under "$work/$2"
	rm -rf --one-file-system "${work:?}/$2"
	mkdir -p "$work/$2/tmp"
	if [ "$1" = berth ]; then
		"$repo/contrib/busybox-image.sh" "$berth" -- --root "$work/$2/root" --runroot "$work/$2/run" --storage-driver overlay >/dev/null
	else
		"$berth" --root "$work/seed/root" --runroot "$work/seed/run" --storage-driver overlay save busybox:latest | tool_in podman "$2" load -q >/dev/null
	fi
}
"$repo/contrib/busybox-image.sh" "$berth" -- --root "$work/seed/root" --runroot "$work/seed/run" --storage-driver overlay >/dev/null

# timed OUT TOOL STORE ARGS...: one build, its milliseconds appended to OUT;
# a failed build ends the bench (a comparison needs both to succeed).
timed() {
	local out=$1 tool=$2 store=$3
	shift 3
	local t0 t1
	t0=$(date +%s%N)
	tool_in "$tool" "$store" build -q --network none "$@" >/dev/null 2>"$work/err" || die "$tool build $*: $(tail -3 "$work/err")"
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000)) >>"$work/$out"
}

median() { sort -n "$1" | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

for round in $(seq "$n"); do
	for tool in berth podman; do
		fresh "$tool" "s-$tool"
		echo "v$round" >"$work/ctx/app.txt"
		timed "cold.$tool" "$tool" "s-$tool" -t bench "$work/ctx"
		timed "cached.$tool" "$tool" "s-$tool" -t bench "$work/ctx"
		echo "v$round-edited" >"$work/ctx/app.txt"
		timed "edit.$tool" "$tool" "s-$tool" -t bench "$work/ctx"
		timed "ignore.$tool" "$tool" "s-$tool" -t big "$work/big"
	done
done

echo "berth build against podman build ($(podman --version | awk '{print $3}')), medians of $n rounds, ms:"
printf '%-8s %8s %8s %8s\n' step berth podman ratio
for op in cold cached edit ignore; do
	b=$(median "$work/$op.berth")
	p=$(median "$work/$op.podman")
	printf '%-8s %8s %8s %8s\n' "$op" "$b" "$p" "$(awk -v b="$b" -v p="$p" 'BEGIN {printf "%.2f", b/p}')"
done
