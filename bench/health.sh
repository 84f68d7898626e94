#!/bin/bash
# bench/health.sh: what berth's health checks cost. One idle busybox
# container probed every second (--health-cmd true) for BENCH_HEALTH_S
# seconds, --network none, a private store:
#   - CPU per probe: the monitor's own and its children's CPU time (the
#     runtime's exec and the probe, both reaped by the monitor), per probe
#   - a probe's latency (End - Start in State.Health.Log) against
#     `berth exec CONTAINER true`, medians
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${BENCH_HEALTH_S:-20}
berth=$repo/bin/berth

die() {
	echo "bench-health: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
[[ $secs =~ ^[1-9][0-9]*$ ]] || die "BENCH_HEALTH_S must be a positive integer"
[ -x "$berth" ] || die "bin/berth not found: run make build"

work=$(mktemp -d /var/tmp/berth-bench-health.XXXXXX)
: >"$work/berth.conf"
B=("$berth" --root "$work/root" --runroot "$work/run" --config "$work/berth.conf" --storage-driver overlay)
had_cgroups=0
compgen -G '/sys/fs/cgroup/*/berth' >/dev/null && had_cgroups=1
cleanup() {
	"${B[@]}" rm -f $("${B[@]}" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
	grep -o "$work[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | xargs -r umount -l 2>/dev/null || true
	rm -rf --one-file-system "$work"
	[ "$had_cgroups" = 1 ] || rmdir /sys/fs/cgroup/*/berth 2>/dev/null || true
}
trap cleanup EXIT

"$repo/contrib/busybox-image.sh" "$berth" -- --root "$work/root" --runroot "$work/run" --storage-driver overlay >/dev/null
"${B[@]}" run -d --name probed --network none --health-cmd true --health-interval 1s busybox sleep 100000 >/dev/null
dir=$(dirname "$("${B[@]}" inspect --format '{{.LogPath}}' probed)")
monitor=$(sed -n 's/.*"monitor_pid":\([0-9]*\).*/\1/p' "$dir/state.json")
[ -n "$monitor" ] || die "no monitor pid in $dir/state.json"
# utime stime cutime cstime, in clock ticks (fields 14-17 after the name).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13 + $14 + $15}'; }
probes() { "${B[@]}" inspect --format '{{len .State.Health.Log}} {{.State.Health.FailingStreak}}' probed; }

# The health log keeps 5 results: sampled every 2 s, their start times
# count the probes in the window.
starts() {
	"${B[@]}" inspect --format '{{range .State.Health.Log}}{{.Start.UnixNano}} {{.End.UnixNano}}{{println}}{{end}}' probed
}
until [ -n "$(starts)" ]; do sleep 0.2; done
w0=$(date +%s%N)
t0=$(cpu_ticks "$monitor")
for i in $(seq $(((secs + 1) / 2))); do
	sleep 2
	starts >>"$work/log"
done
t1=$(cpu_ticks "$monitor")
w1=$(date +%s%N)
n=$(sort -u "$work/log" | awk -v a="$w0" -v b="$w1" 'NF == 2 && $1 >= a && $2 <= b' | wc -l)
[ "$n" -gt 0 ] || die "no probe ran"
latency=$(sort -u "$work/log" | awk 'NF == 2 {print int(($2 - $1) / 1000000)}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
for i in $(seq 20); do
	s=$(date +%s%N)
	"${B[@]}" exec probed true
	e=$(date +%s%N)
	echo $(((e - s) / 1000000))
done | sort -n >"$work/exec"
[ "$(probes | cut -d' ' -f2)" = 0 ] || die "the probes failed"
hz=$(getconf CLK_TCK)
echo
echo "Health checks: an idle busybox container probed with 'true' every 1 s, $n probes"
echo "CPU per probe (monitor + runtime exec + probe): $(awk -v d=$((t1 - t0)) -v n="$n" -v hz="$hz" 'BEGIN {printf "%.1f ms", d * 1000 / hz / n}')"
echo "probe latency (median of $n): $latency ms; berth exec true (median of 20): $(sed -n 10p "$work/exec") ms"
