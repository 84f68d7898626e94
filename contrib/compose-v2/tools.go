//go:build tools

// Package tools pins docker compose v2 (the Go module) for the API tests:
// `make compose-v2` builds it into bin/docker-compose-v2. It is a module of
// its own so that compose's dependencies stay out of berth's go.mod.
package tools

import _ "github.com/docker/compose/v5/cmd"
