// Package lsm applies the AppArmor profile and SELinux label of a process.
//
// On a host without the module the two differ, as in runc: asking for an
// AppArmor profile is an error (the container would run unconfined), while
// an SELinux label is ignored when SELinux is disabled.
package lsm

import (
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/selinux/go-selinux"
)

// ErrNoAppArmor is returned for a profile on a host without AppArmor.
var ErrNoAppArmor = errors.New("AppArmor is not enabled on this host")

func appArmorEnabled() bool {
	data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(data), "Y")
}

// Check fails early for what ApplyExec could not do.
func Check(p *specs.Process) error {
	if p.ApparmorProfile != "" && !appArmorEnabled() {
		return fmt.Errorf("apparmor profile %q: %w", p.ApparmorProfile, ErrNoAppArmor)
	}
	return nil
}

// ApplyExec arranges for the next execve of the calling thread to enter the
// process's AppArmor profile and SELinux label.
func ApplyExec(p *specs.Process) error {
	if err := Check(p); err != nil {
		return err
	}
	if p.ApparmorProfile != "" {
		if err := os.WriteFile("/proc/thread-self/attr/apparmor/exec", []byte("exec "+p.ApparmorProfile), 0); err != nil {
			return fmt.Errorf("set apparmor profile %q: %w", p.ApparmorProfile, err)
		}
	}
	if p.SelinuxLabel != "" && selinux.GetEnabled() {
		if err := selinux.SetExecLabel(p.SelinuxLabel); err != nil {
			return fmt.Errorf("set selinux label %q: %w", p.SelinuxLabel, err)
		}
	}
	return nil
}
