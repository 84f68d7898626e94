#!/bin/sh
# demo.sh: the README's main job. Installs what is missing, builds berth
# and berth-runtime, makes the built-in busybox image in berth's store, and
# runs a container from a busybox bundle made from Debian's busybox-static.
# Run as root from the repository.
set -eu
cd "$(dirname "$0")/.."
contrib/install-deps.sh
make build
contrib/busybox-image.sh bin/berth
bin/berth images busybox
bundle=${BERTH_DEMO_BUNDLE:-/var/tmp/berth-demo}
tests/fixtures/mkbundle.sh "$bundle" >/dev/null
# Run `echo` instead of the interactive shell the default config has.
jq '.process.args = ["echo", "hello from a berth-runtime container"]' "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"
exec bin/berth-runtime run --bundle "$bundle" "berth-demo-$$"
