#!/bin/sh
# demo.sh: the README's main job. Installs what is missing, builds berth and
# berth-runtime, makes the built-in busybox image (from Debian's
# busybox-static, no registry needed) and runs a container from it.
# Run as root from the repository.
set -eu
cd "$(dirname "$0")/.."
contrib/install-deps.sh
make build
contrib/busybox-image.sh bin/berth
exec bin/berth run --rm busybox echo hello
