//go:build tools

// Package tools pins cri-tools for the CRI tests: `make crictl` builds
// crictl into bin/crictl, `make critest` the CRI validation suite into
// bin/critest. v1.34 speaks the CRI v1 API that containerd 1.6 serves. It
// is a module of its own so that its dependencies stay out of berth's
// go.mod.
package tools

import (
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
	_ "sigs.k8s.io/cri-tools/pkg/validate"
)
