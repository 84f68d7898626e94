#!/bin/bash
# bench/metrics.sh: the time of one scrape of `berth system metrics` with
# BENCH_METRICS_N idle busybox containers running (--network none, a
# private store), median of 10 scrapes, and the size of the exposition.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${BENCH_METRICS_N:-100}
berth=$repo/bin/berth

die() {
	echo "bench-metrics: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
[[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_METRICS_N must be a positive integer"
[ -x "$berth" ] || die "bin/berth not found: run make build"

work=$(mktemp -d /var/tmp/berth-bench-metrics.XXXXXX)
: >"$work/berth.conf"
B=("$berth" --root "$work/root" --runroot "$work/run" --config "$work/berth.conf" --storage-driver overlay)
had_cgroups=0
compgen -G '/sys/fs/cgroup/*/berth' >/dev/null && had_cgroups=1
server=""
cleanup() {
	[ -z "$server" ] || { kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; }
	"${B[@]}" ps -aq 2>/dev/null | xargs -r "${B[@]}" rm -f >/dev/null 2>&1 || true
	grep -o "$work[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | xargs -r umount -l 2>/dev/null || true
	rm -rf --one-file-system "$work"
	[ "$had_cgroups" = 1 ] || rmdir /sys/fs/cgroup/*/berth 2>/dev/null || true
}
trap cleanup EXIT

"$repo/contrib/busybox-image.sh" "$berth" -- --root "$work/root" --runroot "$work/run" --storage-driver overlay >/dev/null
seq "$n" | xargs -P 4 -I{} "${B[@]}" run -d --network none busybox sleep 100000 >/dev/null
[ "$("${B[@]}" ps -q | wc -l)" = "$n" ] || die "not $n containers running"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${B[@]}" system metrics --listen "127.0.0.1:$port" 2>"$work/metrics.log" &
server=$!
until curl -sf -o /dev/null "http://127.0.0.1:$port/metrics"; do sleep 0.1; done
for i in $(seq 10); do
	curl -sf -o "$work/out" -w '%{time_total}\n' "http://127.0.0.1:$port/metrics"
done | sort -n | sed -n 5p >"$work/median"
running=$(awk '$1 == "berth_containers{state=\"running\"}" {print $2}' "$work/out")
[ "$running" = "$n" ] || die "the scrape counted $running running containers, not $n"
echo
echo "berth system metrics with $n running containers: one scrape $(awk '{printf "%.0f ms", $1 * 1000}' "$work/median") (median of 10), $(grep -vc '^#' "$work/out") series, $(wc -c <"$work/out") bytes"
