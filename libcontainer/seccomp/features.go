package seccomp

import (
	"fmt"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Features describes the seccomp support for the runtime's features document.
func Features() *features.Seccomp {
	t := true
	var archs, ops []string
	for a := range arches {
		archs = append(archs, string(a))
	}
	for o := range operators {
		ops = append(ops, string(o))
	}
	sort.Strings(archs)
	sort.Strings(ops)
	actions := []string{}
	for _, a := range []specs.LinuxSeccompAction{specs.ActKill, specs.ActKillProcess, specs.ActKillThread,
		specs.ActTrap, specs.ActErrno, specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify} {
		if _, err := action(a, nil); err == nil {
			actions = append(actions, string(a))
		}
	}
	flags := []string{"SECCOMP_FILTER_FLAG_TSYNC", string(specs.LinuxSeccompFlagLog), string(specs.LinuxSeccompFlagSpecAllow), string(specs.LinuxSeccompFlagWaitKillableRecv)}
	var supported []string
	for _, f := range flags {
		if Validate(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlag(f)}}) == nil {
			supported = append(supported, f)
		}
	}
	return &features.Seccomp{Enabled: &t, Actions: actions, Operators: ops, Archs: archs, KnownFlags: flags, SupportedFlags: supported}
}

// LibraryVersion is the version of the libseccomp the runtime runs with.
func LibraryVersion() string {
	major, minor, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", major, minor, micro)
}
