#!/bin/bash
# bench/debian-image.sh OUT.tar: write a minimal Debian bookworm rootfs tar
# (debootstrap --variant=minbase, ~120 MB) to OUT.tar, for benchmarks that
# need a realistic image rather than busybox.
#
# The tar is built once and cached in $BERTH_BENCH_CACHE (default
# /var/cache/berth-bench); later runs only hard-link (or copy, across
# filesystems) the cached tar, so treat OUT.tar as read-only. Delete the cache
# file to rebuild. The mirror is the one apt already uses on this machine
# (deb.debian.org entries for bookworm in /etc/apt/sources.list{,.d/*}),
# overridable with DEBIAN_MIRROR. Needs root and debootstrap.
set -eu

suite=bookworm
cache=${BERTH_BENCH_CACHE:-/var/cache/berth-bench}
cached=$cache/debian-$suite-minbase.tar

die() {
	echo "debian-image: $*" >&2
	exit 1
}

# mirror prints the first apt source URI serving $suite (not -security or
# -updates): deb822 .sources stanzas first, then one-line sources.list.
mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v s="$suite" '
			/^[ \t]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
			END { if (uri != "" && ok) print uri }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		# "deb [options] URI SUITE COMPONENTS..."
		sed -E 's/\[[^]]*\]//' "$f" | awk -v s="$suite" '$1 == "deb" && $3 == s { print $2 }'
	done
}

build() {
	command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install -y debootstrap)"
	local url=${DEBIAN_MIRROR:-$(mirror | head -n1)}
	[ -n "$url" ] || die "no apt source for $suite in /etc/apt/sources.list{,.d/*}; set DEBIAN_MIRROR"

	work=$(mktemp -d "$cache/build.XXXXXX")
	trap cleanup EXIT
	trap 'exit 1' INT TERM HUP # make signals run the EXIT trap too
	echo "debian-image: debootstrap $suite from $url (once; cached in $cached)" >&2
	# debootstrap's own output goes to a log so a failure shows the useful tail.
	# It runs in its own process group in the background: `wait` lets a signal
	# reach our trap at once, and cleanup can stop it and its dpkg children.
	setsid debootstrap --variant=minbase "$suite" "$work/rootfs" "$url" >"$work/log" 2>&1 &
	boot=$!
	if ! wait "$boot"; then
		boot=
		tail -n 20 "$work/log" >&2
		die "debootstrap failed (last lines of its log above)"
	fi
	boot=
	# Make it look like a registry image: no downloaded .debs or apt lists, no
	# device nodes (the runtime makes /dev), and none of the host's
	# resolv.conf or hostname that debootstrap copied in.
	rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/dev/*
	: >"$work/rootfs/etc/resolv.conf"
	: >"$work/rootfs/etc/hostname"
	tar --numeric-owner --xattrs --sort=name -C "$work/rootfs" -cf "$work/rootfs.tar" .
	mv "$work/rootfs.tar" "$cached" # atomic: a cached tar is always complete
}

# cleanup removes the build dir, unmounting first whatever debootstrap left
# mounted inside (proc, sys) so rm never walks into the host's /proc or /sys.
cleanup() {
	if [ -n "${boot:-}" ] && kill -0 "$boot" 2>/dev/null; then
		kill -TERM -- "-$boot" 2>/dev/null || true
		wait "$boot" || true
	fi
	[ -n "${work:-}" ] && [ -d "$work" ] || return 0
	findmnt -rn -o TARGET | grep -F "$work/" | sort -r | xargs -r -d '\n' umount -l || true
	rm -rf --one-file-system "$work"
}

[ $# -eq 1 ] || die "usage: $0 OUT.tar"
out=$1
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap)"
mkdir -p "$cache"

# One builder at a time; a second caller waits and then finds the cache full.
exec 9>"$cache/.lock"
flock 9
[ -f "$cached" ] || build

[ "$(realpath -m "$out")" != "$(realpath -m "$cached")" ] || die "OUT.tar must not be the cache file"
rm -f "$out"
ln "$cached" "$out" 2>/dev/null || cp "$cached" "$out"
echo "debian-image: $out ($(du -m --apparent-size "$cached" | cut -f1) MB)" >&2
