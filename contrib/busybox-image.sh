#!/bin/sh
# busybox-image.sh: make the image busybox:latest from Debian's static
# busybox and import it into berth's store, so the demo and the tests need
# no registry. Idempotent: an existing busybox:latest is kept.
#
#   contrib/busybox-image.sh [BERTH_BINARY] [-- GLOBAL_BERTH_FLAGS...]
set -eu
cd "$(dirname "$0")/.."
berth=${1:-bin/berth}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
[ -x "$berth" ] || { echo "busybox-image: $berth not found; run make build" >&2; exit 1; }

if "$berth" "$@" image inspect --format '{{.Id}}' busybox:latest >/dev/null 2>&1; then
	exit 0
fi
dir=$(mktemp -d /var/tmp/berth-busybox-XXXXXX)
trap 'rm -rf "$dir"' EXIT
tests/fixtures/mkbundle.sh --rootfs-only "$dir/rootfs" >/dev/null
# Numeric owners, fixed times and order: the same busybox gives the same layer.
tar --numeric-owner --owner=0 --group=0 --mtime='2024-01-01 00:00:00' --sort=name \
	-C "$dir/rootfs" -cf - . |
	"$berth" "$@" import \
		--change 'CMD ["sh"]' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--message "busybox-static from Debian" - busybox:latest
