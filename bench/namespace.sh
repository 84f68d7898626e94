# bench/namespace.sh: sourced by benches that compare runtimes. It re-runs
# the calling script once in a private mount namespace in which the hybrid
# host's /sys/fs/cgroup/unified/cgroup.controllers is hidden behind an empty
# file: crun 1.8 refuses the host otherwise. Every runtime then runs under
# the same conditions, and none pays a wrapper per call. The host's mounts
# are untouched.
#   usage: . bench/namespace.sh "$@"   (as root, before any other work)

if [ -z "${BERTH_BENCH_NS:-}" ]; then
	BERTH_BENCH_NS=1 exec unshare -m --propagation private -- "$0" "$@"
fi
bench_ctrl=/sys/fs/cgroup/unified/cgroup.controllers
# cgroupfs files report size 0, so test the content rather than [ -s ].
if [ -r "$bench_ctrl" ] && [ -n "$(cat "$bench_ctrl")" ]; then
	bench_empty=$(mktemp)
	mount --bind "$bench_empty" "$bench_ctrl" || {
		echo "bench: hiding $bench_ctrl failed" >&2
		exit 1
	}
	rm -f "$bench_empty"
fi
