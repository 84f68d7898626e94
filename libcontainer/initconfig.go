// Package libcontainer runs OCI containers: the runtime side of create, start,
// state, kill and delete, and the init process that sets a container up.
package libcontainer

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// initConfig is what the runtime sends the container's init process once
// the process is in its namespaces.
type initConfig struct {
	ID           string      `json:"id"`
	Bundle       string      `json:"bundle"`
	HostPid      int         `json:"hostPid"` // init's pid in the runtime's pid namespace, for hooks
	Spec         *specs.Spec `json:"spec"`
	NoPivot      bool        `json:"noPivot,omitempty"`
	NoNewKeyring bool        `json:"noNewKeyring,omitempty"`
	UserNS       bool        `json:"userns,omitempty"`
	CgroupNS     bool        `json:"cgroupns,omitempty"`
	// NewCgroupNS: init unshares the cgroup namespace itself, after the
	// runtime moved it into its cgroup, so that the namespace is rooted there.
	NewCgroupNS bool              `json:"newCgroupns,omitempty"`
	CgroupV2    bool              `json:"cgroupV2,omitempty"`
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	PreserveFds int               `json:"preserveFds,omitempty"`
	FifoFd      int               `json:"fifoFd"`
	ConsoleFd   int               `json:"consoleFd"`
	// Exec marks a process joining a running container: no rootfs work.
	Exec bool `json:"exec,omitempty"`
	// WaitGo: after ready, an exec'd process waits for MsgGo, sent once the
	// runtime has put it in the (paused) container's cgroup.
	WaitGo bool `json:"waitGo,omitempty"`
	// RuntimeHooks tells init to stop before pivot_root while the runtime runs
	// the prestart and createRuntime hooks.
	RuntimeHooks bool `json:"runtimeHooks,omitempty"`
}
