#!/bin/bash
# bench/cri.sh: a pod sandbox plus one container started through Kubernetes'
# runtime path (`crictl run`: RunPodSandbox, CreateContainer, StartContainer),
# on one containerd with its CRI plugin and the runc v2 shim, with the
# runtime handlers berth (berth-runtime), runc and crun, interleaved rounds.
#
# The pods use the host's network: the CNI plugins' time is the same for
# every runtime and only adds noise. The whole run happens in one private
# mount namespace (bench/namespace.sh), containerd and its shims included.
# containerd has its own root, state and socket in a temp dir; all of it,
# the pods included, is removed on exit.
#
# Environment:
#   BENCH_CRI_N   measured rounds (default 20)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${BENCH_CRI_N:-20}
berth=$repo/bin/berth
runtime=$repo/bin/berth-runtime
crictl=$repo/bin/crictl

die() {
	echo "bench-cri: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
. "$repo/bench/namespace.sh" "$@"
[[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_CRI_N must be a positive integer"
[ -x "$berth" ] && [ -x "$runtime" ] || die "bin/berth or bin/berth-runtime not found: run make build"
[ -x "$crictl" ] || die "bin/crictl not found: run make crictl"
command -v containerd >/dev/null || die "containerd not found (contrib/install-deps.sh)"
declare -A binary=([berth]=$runtime [runc]=$(command -v runc || true) [crun]=$(command -v crun || true))
handlers=()
for h in berth runc crun; do
	if [ -n "${binary[$h]}" ]; then handlers+=("$h"); else echo "bench-cri: skipping $h: not found" >&2; fi
done

work=$(mktemp -d /var/tmp/berth-bench-cri.XXXXXX)
sock=$work/containerd.sock
C=("$crictl" --config "$work/crictl.yaml" --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" --timeout 60s)
# Shims put their sockets in /run/containerd/s whatever the config says.
had_run_containerd=0
[ -e /run/containerd ] && had_run_containerd=1
had_k8s_cgroups=0
compgen -G '/sys/fs/cgroup/*/k8s.io' >/dev/null && had_k8s_cgroups=1
containerd_pid=
cleanup() {
	if [ -n "$containerd_pid" ]; then
		"${C[@]}" rmp -f -a >/dev/null 2>&1 || true
		kill "$containerd_pid" 2>/dev/null && wait "$containerd_pid" 2>/dev/null || true
	fi
	grep -o "$work[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | xargs -r umount -l 2>/dev/null || true
	rm -rf --one-file-system "$work"
	[ "$had_run_containerd" = 1 ] || rm -rf /run/containerd
	# rmdir removes only an empty cgroup.
	[ "$had_k8s_cgroups" = 1 ] || rmdir /sys/fs/cgroup/*/k8s.io 2>/dev/null || true
}
trap cleanup EXIT

# The images: the built-in busybox, and a pause image made from it.
B=("$berth" --root "$work/b/root" --runroot "$work/b/run" --config /dev/null --storage-driver vfs)
"$repo/contrib/busybox-image.sh" "$berth" -- --root "$work/b/root" --runroot "$work/b/run" --storage-driver vfs >/dev/null
mkdir "$work/pause"
printf 'FROM busybox\nCMD ["/bin/sleep", "2147483647"]\n' >"$work/pause/Dockerfile"
"${B[@]}" build -q -t registry.k8s.io/pause:3.6 "$work/pause" >/dev/null
"${B[@]}" save -o "$work/images.tar" busybox:latest registry.k8s.io/pause:3.6

{
	cat <<EOF
version = 2
root = "$work/root"
state = "$work/state"
[grpc]
  address = "$sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
  # No CAP_SYS_RESOURCE here: no runtime could lower oom_score_adj below ours.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = "$work/cni"
EOF
	for h in "${handlers[@]}"; do
		cat <<EOF
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$h]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$h.options]
      BinaryName = "${binary[$h]}"
      Root = "$work/runtime-$h"
EOF
	done
} >"$work/config.toml"
mkdir "$work/cni"
echo "pull-image-on-create: false" >"$work/crictl.yaml"
containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
containerd_pid=$!
for ((i = 0; i < 200; i++)); do
	ctr -a "$sock" version >/dev/null 2>&1 && break
	kill -0 "$containerd_pid" 2>/dev/null || die "containerd exited: $(tail -5 "$work/containerd.log")"
	sleep 0.05
done
ctr -a "$sock" -n k8s.io images import "$work/images.tar" >/dev/null ||
	die "import of the images failed: $(tail -5 "$work/containerd.log")"

cat >"$work/pod.json" <<EOF
{"metadata": {"name": "bench", "namespace": "bench", "uid": "bench"},
 "linux": {"security_context": {"namespace_options": {"network": 2}}}}
EOF
cat >"$work/ctr.json" <<EOF
{"metadata": {"name": "c"}, "image": {"image": "localhost/busybox:latest"},
 "command": ["/bin/sleep", "1000"], "linux": {}}
EOF
(cd "$repo" && go build -o "$work/measure" ./bench/measure) || die "building bench/measure failed"

# one HANDLER FILE: a measured `crictl run` with HANDLER (its wall time in
# ms to FILE if given), then the pod's unmeasured removal.
one() {
	local out code pod
	out=$("$work/measure" "${C[@]}" run --no-pull --runtime "$1" "$work/ctr.json" "$work/pod.json" 2>"$work/err") || true
	code=${out##* }
	[ -n "$out" ] && [ "$code" = 0 ] || die "$1: crictl run failed: $(grep -v "level=warning" "$work/err" | head -c 600)"
	[ -z "${2:-}" ] || echo "${out%% *}" | awk '{printf "%.1f\n", $1 / 1e6}' >>"$2"
	pod=$("${C[@]}" pods -q --name bench)
	[ -n "$pod" ] || die "$1: no pod after crictl run"
	"${C[@]}" rmp -f "$pod" >/dev/null || die "$1: rmp -f $pod failed"
}

echo "bench-cri: ${handlers[*]}: 1 warm-up + $n measured rounds, interleaved" >&2
for h in "${handlers[@]}"; do one "$h"; done
for ((k = 0; k < n; k++)); do
	for h in "${handlers[@]}"; do one "$h" "$work/$h.ms"; done
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
p90() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR*9+9)/10)]}'; }
echo
echo "CRI: runp + create + start of a busybox pod (crictl run, host network), $n rounds:"
base=$(median "$work/berth.ms")
printf '%-10s %10s %10s %8s\n' handler median_ms p90_ms ratio
for h in "${handlers[@]}"; do
	med=$(median "$work/$h.ms")
	printf '%-10s %10s %10s %8s\n' "$h" "$med" "$(p90 "$work/$h.ms")" "$(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"
done
echo "(ratio = median / median of berth)"
