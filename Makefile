GO ?= go
VERSION ?= 0.1.0-dev
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
TAGS := urfave_cli_no_docs
# berth-runtime is linked statically (libseccomp.a, libc.a), as runc's
# releases are: each container start runs it twice (the runtime and the
# init's C stage), and the dynamic loader's work was ~3 ms of each exec
# here (docs/performance.md). Pure-Go user and DNS lookups keep glibc's
# NSS, which cannot work statically, out of it.
RUNTIME_TAGS := $(TAGS) netgo osusergo
RUNTIME_LDFLAGS := $(LDFLAGS) -linkmode external -extldflags -static
RUNTIME := $(CURDIR)/bin/berth-runtime
ENGINE := $(CURDIR)/bin/berth

.PHONY: all build deps demo test test-go compose-v2 crictl critest conformance bench weakened clean

all: build

build:
	$(GO) build -trimpath -tags "$(RUNTIME_TAGS)" -ldflags "$(RUNTIME_LDFLAGS)" -o bin/berth-runtime ./runtime
	$(GO) build -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o bin/berth ./engine

deps:
	contrib/install-deps.sh

# The README's main job: install, build, run a busybox container.
demo:
	contrib/demo.sh

# Every test: unit and integration tests (real containers, as root), then the
# OCI runtime-tools validation suite.
test: deps build compose-v2 crictl critest test-go conformance

# The rootless tests run berth as an unprivileged user that test-user.sh makes.
test-go:
	contrib/test-user.sh
	BERTH_RUNTIME=$(RUNTIME) BERTH=$(ENGINE) $(GO) test -count=1 -timeout 15m ./...

# docker compose v2, a client of the API tests, built from its Go module at
# the version contrib/compose-v2/go.mod pins.
compose-v2:
	cd contrib/compose-v2 && $(GO) build -trimpath -o $(CURDIR)/bin/docker-compose-v2 github.com/docker/compose/v5/cmd

# crictl, the CRI client of the Kubernetes test, built from its Go module
# (contrib/cri-tools).
crictl:
	cd contrib/cri-tools && $(GO) build -trimpath -o $(CURDIR)/bin/crictl sigs.k8s.io/cri-tools/cmd/crictl

# critest, the CRI validation suite TestCritest runs; its specs are the
# tests of a package (cmd/critest), so it is built as a test binary.
critest:
	cd contrib/cri-tools && $(GO) test -c -trimpath -o $(CURDIR)/bin/critest sigs.k8s.io/cri-tools/cmd/critest

conformance:
	tests/conformance/run.sh $(RUNTIME)

# The security tests against deliberately weakened runtimes (tests/weakened.sh).
weakened:
	tests/weakened.sh

bench: deps build crictl
	bench/run.sh
	bench/cri.sh
	bench/images.sh
	bench/engine.sh
	bench/build.sh
	bench/api.sh
	bench/health.sh
	bench/metrics.sh

clean:
	rm -rf bin
