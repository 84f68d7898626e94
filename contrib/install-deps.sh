#!/bin/sh
# install-deps.sh: install what berth needs to build and test on a fresh
# Debian 12 machine. Run as root. Idempotent: apt is only touched when a
# package is missing, so repeated runs (CI) cost a few dpkg queries.
set -eu

# Build: cgo + libseccomp, libbtrfs-dev (containers/storage builds its btrfs
# driver). Tests: busybox-static for rootfs fixtures, runc and crun as
# reference runtimes, containerd/podman/docker.io as callers,
# docker-compose (1.29) and python3-docker as API clients,
# docker-registry (+ apache2-utils for htpasswd) for registry tests, skopeo
# for archive interop, debootstrap for the pull benchmark's image,
# jq/iproute2/util-linux (unshare, nsenter, mount) used by test scripts.
# Rootless berth: uidmap (newuidmap, newgidmap) and slirp4netns.
PACKAGES="
libseccomp-dev
libbtrfs-dev
pkg-config
gcc
libc6-dev
make
git
busybox-static
runc
crun
containerd
podman
docker.io
docker-compose
python3-docker
docker-registry
apache2-utils
skopeo
debootstrap
jq
iproute2
util-linux
tar
tini
coreutils
uidmap
slirp4netns
"

GO_ROOT=${GO_ROOT:-/usr/local/go}

die() {
	echo "install-deps: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"

missing=""
for pkg in $PACKAGES; do
	# dpkg -s succeeds for removed-but-configured packages too; check the status line.
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $pkg"
	fi
done

if [ -n "$missing" ]; then
	echo "install-deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086 # word splitting of the package list is intended
	apt-get install -y -q --no-install-recommends $missing
else
	echo "install-deps: all apt packages present"
fi

# Go is not packaged at the version the module needs; it is expected preinstalled.
if command -v go >/dev/null 2>&1; then
	GO=go
elif [ -x "$GO_ROOT/bin/go" ]; then
	GO="$GO_ROOT/bin/go"
else
	die "Go toolchain not found (looked in PATH and $GO_ROOT/bin); install Go to $GO_ROOT"
fi
"$GO" version >/dev/null 2>&1 || die "'$GO version' failed; the Go install at $GO_ROOT looks broken"

# The module's go directive is the minimum toolchain; an older one would try
# to download a newer toolchain, which a machine without internet cannot do.
gomod="$(dirname "$0")/../go.mod"
if [ -f "$gomod" ]; then
	want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")
	have=$("$GO" env GOVERSION | sed 's/^go//')
	if [ -n "$want" ] && [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" != "$want" ]; then
		die "Go $have is older than go.mod's go $want"
	fi
fi
echo "install-deps: $("$GO" version)"

# critest's default image needs a busybox whose shell runs applets through
# PATH (its MaskedPaths spec masks /bin/ls); busybox-static runs them
# in-process. Debian's dynamic busybox conflicts with busybox-static, so it
# is only unpacked, into the directory TestCritest reads it from.
BUSYBOX_DYNAMIC=/var/cache/berth-test/busybox
if [ ! -x "$BUSYBOX_DYNAMIC/bin/busybox" ]; then
	echo "install-deps: unpacking Debian's dynamic busybox into $BUSYBOX_DYNAMIC"
	deb=$(mktemp -d)
	chown _apt "$deb" # apt downloads as user _apt
	apt-get update -q
	(cd "$deb" && apt-get download -q busybox)
	mkdir -p "$BUSYBOX_DYNAMIC"
	dpkg-deb -x "$deb"/busybox_*.deb "$BUSYBOX_DYNAMIC"
	rm -rf "$deb"
fi
