#!/bin/bash
# bench/images.sh: time image transfers of berth against podman in one run:
# `pull` of a ~120 MB Debian image from a local registry into an empty store,
# then `save` to a docker-archive and `load` of it into an empty store.
# Rounds are interleaved (berth, podman, berth, ...) so noise hits both.
#
# Environment:
#   BENCH_IMAGE_N   measured rounds per tool (default 5)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${BENCH_IMAGE_N:-5}
berth=$repo/bin/berth

die() {
	echo "bench-images: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
[[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_IMAGE_N must be a positive integer"
[ -x "$berth" ] || die "$berth not found: run make build"
command -v docker-registry >/dev/null || die "docker-registry not found (contrib/install-deps.sh)"
have_podman=1
command -v podman >/dev/null || { echo "bench-images: podman not found, timing berth only" >&2; have_podman=0; }

# The work dir is on disk, not /tmp, so overlay stores work and RAM is not the limit.
work=$(mktemp -d /var/tmp/berth-bench-images.XXXXXX)
registry_pid=
cleanup() {
	if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null || true; fi
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT

"$repo/bench/debian-image.sh" "$work/debian.tar" >/dev/null
size_mb=$(($(stat -c %s "$work/debian.tar") / 1000000))

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do
	curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
	sleep 0.1
done
ref=127.0.0.1:$port/bench/debian:latest

# berth_in STORE ARGS...: berth with its own store under the work dir.
berth_in() {
	local s=$work/$1
	shift
	"$berth" --root "$s/root" --runroot "$s/run" --storage-driver overlay "$@"
}
podman_in() {
	local s=$work/$1
	shift
	podman --root "$s/root" --runroot "$s/run" --storage-driver overlay "$@"
}
reset_store() {
	rm -rf --one-file-system "${work:?}/$1"
}

berth_in seed import "$work/debian.tar" bench/debian:latest >/dev/null
berth_in seed push -q bench/debian:latest "$ref" >/dev/null
reset_store seed

# timed FILE CMD...: append the wall time of CMD in ms to FILE.
timed() {
	local out=$1 start end
	shift
	start=$(date +%s%N)
	"$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; die "failed: $*"; }
	end=$(date +%s%N)
	echo $(((end - start) / 1000000)) >>"$out"
}

tools=(berth)
[ "$have_podman" = 1 ] && tools+=(podman)
for round in $(seq "$n"); do
	for tool in "${tools[@]}"; do
		reset_store "$tool"
		reset_store "$tool-load"
		rm -f "$work/$tool.tar"
		if [ "$tool" = berth ]; then
			timed "$work/pull.$tool" berth_in berth pull -q "$ref"
			timed "$work/save.$tool" berth_in berth save -o "$work/$tool.tar" "$ref"
			timed "$work/load.$tool" berth_in berth-load load -q -i "$work/$tool.tar"
		else
			timed "$work/pull.$tool" podman_in podman pull -q --tls-verify=false "$ref"
			timed "$work/save.$tool" podman_in podman save -q -o "$work/$tool.tar" "$ref"
			timed "$work/load.$tool" podman_in podman-load load -q -i "$work/$tool.tar"
		fi
	done
	echo "bench-images: round $round of $n done" >&2
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

echo
echo "Image transfers, ${size_mb} MB uncompressed Debian image, local registry, $n rounds (median ms)"
printf '%-6s %10s %10s %10s\n' tool pull save load
for tool in "${tools[@]}"; do
	printf '%-6s %10s %10s %10s\n' "$tool" "$(median "$work/pull.$tool")" "$(median "$work/save.$tool")" "$(median "$work/load.$tool")"
done
if [ "$have_podman" = 1 ]; then
	for op in pull save load; do
		b=$(median "$work/$op.berth")
		p=$(median "$work/$op.podman")
		echo "$op: berth/podman = $(awk -v b="$b" -v p="$p" 'BEGIN {printf "%.2f", b/p}')"
	done
fi
