#!/bin/bash
# bench/api.sh: the docker CLI against berth's API service and against a
# private dockerd 20.10 (Debian's docker.io, with the containerd it starts
# itself) in one run. Both run containers with berth-runtime, so that what
# is compared is the engine; both have the same busybox image and
# --network none:
#   - `docker run --rm busybox true`, median of BENCH_API_N interleaved rounds
#   - `docker ps -a` with BENCH_API_PS containers, median of the same rounds
#   - the idle service's memory (PSS) against dockerd's plus its containerd's
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${BENCH_API_N:-30}
nps=${BENCH_API_PS:-100}
berth=$repo/bin/berth
runtime=$repo/bin/berth-runtime

die() {
	echo "bench-api: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
[[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_API_N must be a positive integer"
[[ $nps =~ ^[0-9]+$ ]] || die "BENCH_API_PS must be a number"
[ -x "$berth" ] && [ -x "$runtime" ] || die "bin/berth or bin/berth-runtime not found: run make build"
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || die "dockerd not found (contrib/install-deps.sh installs docker.io)"

work=$(mktemp -d /var/tmp/berth-bench-api.XXXXXX)
: >"$work/berth.conf"
B=("$berth" --root "$work/b/root" --runroot "$work/b/run" --config "$work/berth.conf" --storage-driver overlay)
# What dockerd and its containerd make on the host whatever they are told,
# and the parent cgroups of the containers: removed when the bench made them.
made=()
for p in /run/docker /opt/containerd /run/containerd; do
	[ -e "$p" ] || made+=("$p")
done
for c in /sys/fs/cgroup/*/; do
	[ -e "$c/docker" ] || made+=("$c/docker")
	[ -e "$c/berth" ] || made+=("$c/berth")
done
service_pid="" dockerd_pid=""
cleanup() {
	if [ -n "$service_pid" ]; then
		"${B[@]}" rm -f $("${B[@]}" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
		kill "$service_pid" 2>/dev/null && wait "$service_pid" 2>/dev/null || true
	fi
	if [ -n "$dockerd_pid" ]; then
		D rm -f $(D ps -aq 2>/dev/null) >/dev/null 2>&1 || true
		kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null || true
	fi
	grep -o "$work[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | xargs -r umount -l 2>/dev/null || true
	rm -rf --one-file-system "$work"
	local p
	for p in "${made[@]}"; do
		case $p in
		/sys/*) rmdir "$p" 2>/dev/null || true ;;
		*) rm -rf "$p" 2>/dev/null || true ;;
		esac
	done
}
trap cleanup EXIT

# The docker CLI against berth (B_) and against dockerd (D).
B_() { DOCKER_HOST=unix://$work/berth.sock DOCKER_CONFIG=$work/client docker "$@"; }
D() { DOCKER_HOST=unix://$work/docker.sock DOCKER_CONFIG=$work/client docker "$@"; }

wait_ready() { # wait_ready NAME CLI: until the CLI's daemon answers
	local i
	for i in $(seq 200); do
		"$2" version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "$1 did not answer on its socket"
}

"$repo/contrib/busybox-image.sh" "$berth" -- --root "$work/b/root" --runroot "$work/b/run" --storage-driver overlay >/dev/null
"${B[@]}" system service --time 0 "unix://$work/berth.sock" 2>"$work/berth.log" &
service_pid=$!
echo '{"deprecated-key-path": "'"$work"'/key.json"}' >"$work/daemon.json"
dockerd --data-root "$work/d/data" --exec-root "$work/d/exec" --pidfile "$work/d/docker.pid" \
	--host "unix://$work/docker.sock" --config-file "$work/daemon.json" \
	--bridge none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
	--add-runtime "berth=$runtime" --default-runtime berth >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
wait_ready berth B_
wait_ready dockerd D
# berth names imported images as podman does (localhost/busybox); docker
# resolves busybox to docker.io, so the loaded image is tagged for it.
"${B[@]}" save busybox:latest | D load -q >/dev/null
D tag localhost/busybox:latest busybox:latest

# timed FILE CMD...: append CMD's wall time in ms to FILE.
timed() {
	local out=$1 start end
	shift
	start=$(date +%s%N)
	"$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; die "failed: $*"; }
	end=$(date +%s%N)
	echo $(((end - start) / 1000000)) >>"$work/$out"
}

pss_kb() { awk '/^Pss:/ {s+=$2} END {print s}' "/proc/$1/smaps_rollup"; }
# Idle memory, after one container has run through each.
B_ run --rm --network none busybox true
D run --rm --network none busybox true
sleep 1
mem_berth=$(pss_kb "$service_pid")
containerd_pid=$(pgrep -P "$dockerd_pid" -x containerd) || die "dockerd's containerd not found"
mem_dockerd=$(($(pss_kb "$dockerd_pid") + $(pss_kb "$containerd_pid")))

for round in $(seq "$n"); do
	for cli in B_ D; do
		timed "run.$cli" "$cli" run --rm --network none busybox true
	done
done
for cli in B_ D; do
	for i in $(seq "$nps"); do
		"$cli" create --network none busybox true >/dev/null
	done
done
for round in $(seq "$n"); do
	for cli in B_ D; do
		timed "ps.$cli" "$cli" ps -a
	done
done
[ "$(B_ ps -aq | wc -l)" = "$nps" ] && [ "$(D ps -aq | wc -l)" = "$nps" ] || die "docker ps -a did not list $nps containers on both"

median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "The docker CLI through berth system service and through dockerd 20.10, both with"
echo "berth-runtime and --network none, $n interleaved rounds (median ms); idle PSS (KiB)"
printf '%-8s %8s %14s %10s\n' engine "run --rm" "ps -a ($nps)" "idle PSS"
printf '%-8s %8s %14s %10s\n' berth "$(median "$work/run.B_")" "$(median "$work/ps.B_")" "$mem_berth"
printf '%-8s %8s %14s %10s\n' dockerd "$(median "$work/run.D")" "$(median "$work/ps.D")" "$mem_dockerd"
for op in run ps; do
	echo "$op: berth/dockerd = $(awk -v b="$(median "$work/$op.B_")" -v d="$(median "$work/$op.D")" 'BEGIN {printf "%.2f", b/d}')"
done
echo "idle memory: berth/(dockerd+containerd) = $(awk -v b="$mem_berth" -v d="$mem_dockerd" 'BEGIN {printf "%.2f", b/d}')"
