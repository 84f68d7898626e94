#!/bin/sh
# test.sh: every test, on a fresh Debian 12 machine as root (the README's
# second command; .ci/run calls it). Installs what is missing first.
set -eu
cd "$(dirname "$0")/.."
contrib/install-deps.sh
exec make test
