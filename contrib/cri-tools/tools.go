//go:build tools

// Package tools pins cri-tools (crictl) for the CRI test: `make crictl`
// builds it into bin/crictl. crictl v1.34 speaks the CRI v1 API that
// containerd 1.6 serves. It is a module of its own so that its
// dependencies stay out of berth's go.mod.
package tools

import _ "sigs.k8s.io/cri-tools/cmd/crictl"
