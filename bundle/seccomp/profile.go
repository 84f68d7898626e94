// Package seccomp reads seccomp profiles for bundles: an OCI linux.seccomp
// object whose rules may depend on the container's capabilities, as in
// docker's profiles, and berth's default profile.
//
// default.json here is the default profile, embedded in the binary; the copy
// at contrib/seccomp/default.json is the one to read and hand-edit, and a test
// keeps the two identical.
package seccomp

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

//go:embed default.json
var defaultJSON []byte

// Profile is a seccomp profile before the container's capabilities are known.
type Profile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Syscalls         []Rule                   `json:"syscalls,omitempty"`
}

// Rule is an OCI syscall rule with conditions on capabilities.
type Rule struct {
	specs.LinuxSyscall
	// Comment says why the rule is there; JSON has no comments.
	Comment string `json:"comment,omitempty"`
	// Includes: the rule applies only if the container has all these caps.
	Includes *Condition `json:"includes,omitempty"`
	// Excludes: the rule applies only if it has none of them.
	Excludes *Condition `json:"excludes,omitempty"`
}

// Condition names capabilities, as CAP_SYS_ADMIN.
type Condition struct {
	Caps []string `json:"caps,omitempty"`
}

// Default returns berth's default profile: Docker's default in effect, for
// x86_64, x86 and x32.
func Default() (*Profile, error) {
	p, err := Parse(defaultJSON)
	if err != nil {
		return nil, fmt.Errorf("default seccomp profile: %w", err)
	}
	return p, nil
}

// Load reads a profile file.
func Load(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seccomp profile: %w", err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	return p, nil
}

// Parse reads a profile. Unknown fields are errors, so that a docker profile
// using conditions berth does not implement (architecture maps, arches or
// kernel versions in conditions) is refused rather than half applied.
func Parse(data []byte) (*Profile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if p.DefaultAction == "" {
		return nil, errors.New("defaultAction is missing")
	}
	known := knownCaps()
	for i, r := range p.Syscalls {
		for _, c := range []*Condition{r.Includes, r.Excludes} {
			if c == nil {
				continue
			}
			for _, name := range c.Caps {
				if !known[name] {
					return nil, fmt.Errorf("syscalls[%d] %v: unknown capability %q (want a name like CAP_SYS_ADMIN)", i, r.Names, name)
				}
			}
		}
	}
	return &p, nil
}

// Resolve returns the OCI seccomp section for a container whose bounding set
// is caps: the rules whose conditions hold, without the conditions.
func (p *Profile) Resolve(caps []string) *specs.LinuxSeccomp {
	s := &specs.LinuxSeccomp{
		DefaultAction:    p.DefaultAction,
		DefaultErrnoRet:  p.DefaultErrnoRet,
		Architectures:    p.Architectures,
		Flags:            p.Flags,
		ListenerPath:     p.ListenerPath,
		ListenerMetadata: p.ListenerMetadata,
	}
	for _, r := range p.Syscalls {
		if r.Includes != nil && !allIn(r.Includes.Caps, caps) {
			continue
		}
		if r.Excludes != nil && anyIn(r.Excludes.Caps, caps) {
			continue
		}
		s.Syscalls = append(s.Syscalls, r.LinuxSyscall)
	}
	return s
}

func allIn(want, have []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func anyIn(want, have []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

// knownCaps holds every capability name the capability library knows, not
// only the running kernel's: a profile may name newer ones.
func knownCaps() map[string]bool {
	known := map[string]bool{}
	for _, c := range capability.ListKnown() {
		known["CAP_"+strings.ToUpper(c.String())] = true
	}
	return known
}
