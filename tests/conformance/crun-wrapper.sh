#!/bin/sh
# crun-wrapper.sh: run crun with the runc command line on this cgroup v1
# hybrid host.
#
# crun 1.8 treats the host as cgroup v2 capable when the hybrid cgroup2 mount
# at /sys/fs/cgroup/unified has any controller enabled, then fails to set up
# v1 cgroups. Hiding that one file behind an empty one, in a private mount
# namespace of this invocation only, makes crun fall back to plain v1; the
# host's mounts are untouched.
set -eu

CRUN=${CRUN:-crun}
ctrl=/sys/fs/cgroup/unified/cgroup.controllers

# cgroupfs files report size 0, so test the content rather than [ -s ].
if [ ! -r "$ctrl" ] || [ -z "$(cat "$ctrl")" ]; then
	exec "$CRUN" "$@"
fi

# The empty file is unlinked right after the bind mount: the mount keeps the
# inode alive, so nothing is left behind on the host.
# shellcheck disable=SC2016 # the inner script expands its own arguments
exec unshare -m --propagation private -- /bin/sh -c '
	ctrl=$1 crun=$2
	shift 2
	empty=$(mktemp)
	mount --bind "$empty" "$ctrl" || { rm -f "$empty"; exit 125; }
	rm -f "$empty"
	exec "$crun" "$@"
' crun-wrapper "$ctrl" "$CRUN" "$@"
