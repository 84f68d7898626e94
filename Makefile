GO ?= go
VERSION ?= 0.1.0-dev
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build deps test test-unit test-integration conformance bench clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/berth-runtime ./runtime

deps:
	contrib/install-deps.sh

clean:
	rm -rf bin
