#!/bin/bash
# bench/engine.sh: berth against podman in one run, both with berth-runtime,
# the same busybox image, --network none and a private store each:
#   - `run --rm busybox true`, median of BENCH_ENGINE_N interleaved rounds
#   - `create`, `start`, `rm` of a busybox `true` container, separately
#   - memory per idle container: RSS of berth's monitor against conmon's
#     (over BENCH_IDLE containers; 0 skips it)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${BENCH_ENGINE_N:-20}
idle=${BENCH_IDLE:-10}
berth=$repo/bin/berth
runtime=$repo/bin/berth-runtime

die() {
	echo "bench-engine: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
[[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_ENGINE_N must be a positive integer"
[[ $idle =~ ^[0-9]+$ ]] || die "BENCH_IDLE must be a number"
[ -x "$berth" ] && [ -x "$runtime" ] || die "bin/berth or bin/berth-runtime not found: run make build"
have_podman=1
command -v podman >/dev/null || { echo "bench-engine: podman not found, timing berth only" >&2; have_podman=0; }

work=$(mktemp -d /var/tmp/berth-bench-engine.XXXXXX)
: >"$work/berth.conf"
B=("$berth" --root "$work/b/root" --runroot "$work/b/run" --config "$work/berth.conf" --storage-driver overlay)
# Host state berth keeps for real use (the default bridge with its iptables
# chains, the runtime's parent cgroups /berth): the bench removes what it made.
had_bridge=0 had_chains=0 had_cgroups=0
ip link show berth0 >/dev/null 2>&1 && had_bridge=1
iptables -S 2>/dev/null | grep -q -- '-N BERTH-FORWARD' && had_chains=1
compgen -G '/sys/fs/cgroup/*/berth' >/dev/null && had_cgroups=1
restore_host() {
	[ "$had_bridge" = 1 ] || ip link delete berth0 2>/dev/null || true
	if [ "$had_chains" = 0 ]; then
		local table chain
		for table in filter nat; do
			iptables -t "$table" -S 2>/dev/null | grep -- '-j BERTH-' | grep '^-A \(FORWARD\|POSTROUTING\) ' |
				sed 's/^-A //' | while read -r rule; do
					# shellcheck disable=SC2086 # the rule's words are arguments
					iptables -t "$table" -D $rule 2>/dev/null || true
				done
		done
		for chain in BERTH-FORWARD BERTH-ISOLATION-1 BERTH-ISOLATION-2; do
			iptables -F "$chain" 2>/dev/null && iptables -X "$chain" 2>/dev/null || true
		done
		iptables -t nat -F BERTH-POSTROUTING 2>/dev/null && iptables -t nat -X BERTH-POSTROUTING 2>/dev/null || true
	fi
	# rmdir removes only an empty cgroup.
	[ "$had_cgroups" = 1 ] || rmdir /sys/fs/cgroup/*/berth 2>/dev/null || true
}
P=(podman --root "$work/p/root" --runroot "$work/p/run" --storage-driver overlay
	--cgroup-manager cgroupfs --events-backend file --runtime "$runtime" --tmpdir "$work/p/tmp")
cleanup() {
	"${B[@]}" rm -f $("${B[@]}" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
	if [ "$have_podman" = 1 ]; then
		"${P[@]}" rm -f -a >/dev/null 2>&1 || true
		"${P[@]}" system reset -f >/dev/null 2>&1 || true
	fi
	grep -o "$work[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | xargs -r umount -l 2>/dev/null || true
	rm -rf --one-file-system "$work"
	restore_host
}
trap cleanup EXIT

"$repo/contrib/busybox-image.sh" "$berth" -- --root "$work/b/root" --runroot "$work/b/run" --storage-driver overlay >/dev/null
tools=(berth)
if [ "$have_podman" = 1 ]; then
	mkdir -p "$work/p/tmp"
	"${B[@]}" save busybox:latest | "${P[@]}" load -q >/dev/null
	tools+=(podman)
fi

# Podman asks for 1048576 open files and processes, over this host's hard caps
# (and its conmon runs the runtime with at most 32768 processes):
# it gets the hard limits of this host instead.
podman_ulimits="--ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=32768:32768"
declare -A runflags=([berth]="--network none" [podman]="--network none $podman_ulimits")
# The same with each tool's default network (a bridge through CNI for both).
declare -A netflags=([berth]="" [podman]="$podman_ulimits")

# cli TOOL: the command line of a tool.
cli() {
	if [ "$1" = berth ]; then echo "${B[@]}"; else echo "${P[@]}"; fi
}

# timed FILE CMD...: append CMD's wall time in ms to FILE; the command's
# stdout goes to $work/out.
timed() {
	local out=$1 start end
	shift
	start=$(date +%s%N)
	"$@" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; die "failed: $*"; }
	end=$(date +%s%N)
	echo $(((end - start) / 1000000)) >>"$work/$out"
}

for tool in "${tools[@]}"; do # warm up caches
	read -r -a T <<<"$(cli "$tool")"
	read -r -a F <<<"${runflags[$tool]}"
	"${T[@]}" run --rm "${F[@]}" busybox true >/dev/null
done
for round in $(seq "$n"); do
	for tool in "${tools[@]}"; do
		read -r -a T <<<"$(cli "$tool")"
		read -r -a F <<<"${runflags[$tool]}"
		timed "run.$tool" "${T[@]}" run --rm "${F[@]}" busybox true
		read -r -a NF <<<"${netflags[$tool]}"
		timed "runnet.$tool" "${T[@]}" run --rm "${NF[@]}" busybox true
		timed "create.$tool" "${T[@]}" create "${F[@]}" busybox true
		id=$(cat "$work/out")
		timed "start.$tool" "${T[@]}" start "$id"
		"${T[@]}" wait "$id" >/dev/null
		timed "rm.$tool" "${T[@]}" rm "$id"
	done
done

# Memory per idle container: the monitor's (conmon's) resident set, its
# proportional share (binary pages shared by all monitors count once
# overall), and its private dirty memory, what each further container costs.
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
pss_kb() { awk '/^Pss:/ {s+=$2} END {print s}' "/proc/$1/smaps_rollup"; }
priv_kb() { awk '/^Private_Dirty:/ {s+=$2} END {print s}' "/proc/$1/smaps_rollup"; }
declare -A rss pss priv
for tool in "${tools[@]}"; do
	if [ "$idle" = 0 ]; then
		rss[$tool]=- pss[$tool]=- priv[$tool]=-
		continue
	fi
	read -r -a T <<<"$(cli "$tool")"
	read -r -a F <<<"${runflags[$tool]}"
	for i in $(seq "$idle"); do
		"${T[@]}" run -d "${F[@]}" --name "idle$i" busybox sleep 1000 >/dev/null
	done
	sleep 1
	if [ "$tool" = berth ]; then
		pids=$(pgrep -f -- "--root $work/b/root .*__monitor" || true)
	else
		pids=$(pgrep -f -- "conmon .*$work/p/" || true)
	fi
	tr=0 tp=0 td=0 count=0
	for p in $pids; do
		tr=$((tr + $(rss_kb "$p"))) tp=$((tp + $(pss_kb "$p"))) td=$((td + $(priv_kb "$p"))) count=$((count + 1))
	done
	[ "$count" -gt 0 ] || die "no monitor processes found for $tool"
	rss[$tool]=$((tr / count)) pss[$tool]=$((tp / count)) priv[$tool]=$((td / count))
	names=$(for i in $(seq "$idle"); do echo "idle$i"; done)
	# kill first: podman's rm -f would give each sleep 10 s to heed SIGTERM.
	"${T[@]}" kill $names >/dev/null
	"${T[@]}" rm -f $names >/dev/null
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "Engine, busybox true with berth-runtime, --network none, $n rounds (median ms);"
echo "(runnet: run --rm with the default bridge network);"
echo "monitor memory averaged over $idle idle containers (KiB)"
printf '%-7s %7s %7s %7s %7s %7s %12s %12s %12s\n' tool run runnet create start rm "monitor RSS" "monitor PSS" "private"
for tool in "${tools[@]}"; do
	printf '%-7s %7s %7s %7s %7s %7s %12s %12s %12s\n' "$tool" "$(median "$work/run.$tool")" "$(median "$work/runnet.$tool")" "$(median "$work/create.$tool")" \
		"$(median "$work/start.$tool")" "$(median "$work/rm.$tool")" "${rss[$tool]}" "${pss[$tool]}" "${priv[$tool]}"
done
if [ "$have_podman" = 1 ]; then
	for op in run runnet create start rm; do
		echo "$op: berth/podman = $(awk -v b="$(median "$work/$op.berth")" -v p="$(median "$work/$op.podman")" 'BEGIN {printf "%.2f", b/p}')"
	done
fi
