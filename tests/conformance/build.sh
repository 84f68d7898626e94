#!/bin/sh
# build.sh: build the OCI runtime-tools validation suite into a cache dir and
# print that dir. Does nothing when the cache is already complete.
#
# Cache layout ($BERTH_TEST_CACHE/runtime-tools/$RT_VERSION), which is also
# the working directory the programs must run in (they untar
# ./rootfs-amd64.tar.gz and copy ./runtimetest into every bundle):
#   runtimetest            static checker run inside the containers
#   rootfs-amd64.tar.gz    rootfs shipped with runtime-tools
#   validation/NAME        one TAP-printing program per validation/NAME/*.go
#   programs.txt           sorted program names; written last, marks completion
set -eu

RT_MODULE=github.com/opencontainers/runtime-tools
RT_VERSION=v0.9.1-0.20250523060157-0ea5ed0382a2
CACHE_ROOT=${BERTH_TEST_CACHE:-/var/cache/berth-tests}
CACHE="$CACHE_ROOT/runtime-tools/$RT_VERSION"

die() {
	echo "conformance build: $*" >&2
	exit 1
}

if [ -s "$CACHE/programs.txt" ]; then
	echo "$CACHE"
	exit 0
fi

command -v go >/dev/null 2>&1 || die "go not found in PATH"
mkdir -p "$CACHE_ROOT/runtime-tools"

# Serialize concurrent builds (parallel CI jobs); the loser reuses the result.
exec 9>"$CACHE_ROOT/runtime-tools/.lock"
flock 9
if [ -s "$CACHE/programs.txt" ]; then
	echo "$CACHE"
	exit 0
fi

work=$(mktemp -d "$CACHE_ROOT/runtime-tools/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Never let the build switch toolchains or pick up a workspace around the
# caller's cwd; -mod=mod because the module zip drops vendor/ (only
# vendor/modules.txt survives, which would otherwise force vendor mode).
export GOTOOLCHAIN=local GOWORK=off GOFLAGS="-mod=mod -buildvcs=false -trimpath"

echo "conformance build: downloading $RT_MODULE@$RT_VERSION" >&2
src=$(cd "$work" && go mod download -json "$RT_MODULE@$RT_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$src" ] || [ ! -d "$src" ]; then
	die "go mod download $RT_MODULE@$RT_VERSION gave no module dir"
fi

# The module cache is read-only; build from a writable copy.
cp -R "$src" "$work/src"
chmod -R u+w "$work/src"
rm -rf "$work/src/vendor"

out="$work/out"
mkdir -p "$out/validation"
echo "conformance build: compiling runtimetest and validation programs" >&2
(
	cd "$work/src"
	# runtimetest runs inside arbitrary rootfs images: it must be static.
	CGO_ENABLED=0 go build -tags "netgo osusergo" -ldflags "-s -w" -o "$out/runtimetest" ./cmd/runtimetest
	# One go build for all programs shares compilation of the common packages.
	go build -ldflags "-s -w" -o "$out/validation/" ./validation/...
) || die "go build failed"

cp "$work/src/rootfs-amd64.tar.gz" "$out/"
find "$out/validation" -mindepth 1 -maxdepth 1 -type f -printf '%f\n' | sort >"$work/programs.txt"
[ -s "$work/programs.txt" ] || die "no validation programs were built"

rm -rf "$CACHE"
mv "$out" "$CACHE"
mv "$work/programs.txt" "$CACHE/programs.txt"
echo "conformance build: $(wc -l <"$CACHE/programs.txt") programs in $CACHE" >&2
echo "$CACHE"
