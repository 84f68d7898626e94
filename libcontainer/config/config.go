// Package config loads an OCI bundle's config.json and checks it before any
// kernel state is made, so that a bad field is reported by name and nothing is
// left behind.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/libcontainer/capabilities"
	"github.com/berth-containers/berth/libcontainer/lsm"
)

// Load reads and validates bundle/config.json. The root path is made absolute
// relative to the bundle, as the runtime-spec says.
func Load(bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config.json not found in bundle %s", bundle)
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if s.Root != nil && s.Root.Path != "" && !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(bundle, s.Root.Path)
	}
	if err := Validate(&s); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", path, err)
	}
	return &s, nil
}

// Compiled on first use: the runtime does no work at package init.
var versionRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^1\.([0-3])\.(\d+)(-[0-9A-Za-z.+-]+)?$`)
})

// NamespaceFlags maps the spec's namespace types to clone flags.
var NamespaceFlags = map[specs.LinuxNamespaceType]int{
	specs.PIDNamespace:     0x20000000, // CLONE_NEWPID
	specs.NetworkNamespace: 0x40000000, // CLONE_NEWNET
	specs.MountNamespace:   0x00020000, // CLONE_NEWNS
	specs.IPCNamespace:     0x08000000, // CLONE_NEWIPC
	specs.UTSNamespace:     0x04000000, // CLONE_NEWUTS
	specs.UserNamespace:    0x10000000, // CLONE_NEWUSER
	specs.CgroupNamespace:  0x02000000, // CLONE_NEWCGROUP
	specs.TimeNamespace:    0x00000080, // CLONE_NEWTIME
}

// Validate checks the fields the runtime relies on before it makes anything.
func Validate(s *specs.Spec) error {
	if !versionRE().MatchString(s.Version) {
		return fmt.Errorf("ociVersion %q is not supported (want 1.0.0 to 1.3.x)", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("root.path is required")
	}
	if fi, err := os.Stat(s.Root.Path); err != nil {
		return fmt.Errorf("root.path %s: %w", s.Root.Path, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("root.path %s is not a directory", s.Root.Path)
	}
	if s.Process != nil {
		if err := ValidateProcess(s.Process); err != nil {
			return err
		}
	}
	for i, m := range s.Mounts {
		if m.Destination == "" {
			return fmt.Errorf("mounts[%d].destination is empty", i)
		}
	}
	if err := validateHooks(s.Hooks); err != nil {
		return err
	}
	if s.Linux == nil {
		return errors.New("linux section is required on Linux")
	}
	return validateLinux(s)
}

// ValidateProcess checks a process description (the container's or exec's).
func ValidateProcess(p *specs.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return errors.New("process.args must not be empty")
	}
	if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("process.cwd %q must be an absolute path", p.Cwd)
	}
	for i, e := range p.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("process.env[%d] %q is not KEY=VALUE", i, e)
		}
	}
	seen := map[string]bool{}
	for _, r := range p.Rlimits {
		if _, ok := Rlimits[r.Type]; !ok {
			return fmt.Errorf("process.rlimits: unknown type %q", r.Type)
		}
		if seen[r.Type] {
			return fmt.Errorf("process.rlimits: %s given twice", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return fmt.Errorf("process.rlimits: %s soft limit %d exceeds hard limit %d", r.Type, r.Soft, r.Hard)
		}
	}
	if err := lsm.Check(p); err != nil {
		return fmt.Errorf("process.apparmorProfile: %w", err)
	}
	if err := capabilities.Validate(p.Capabilities); err != nil {
		return fmt.Errorf("process.capabilities: %w", err)
	}
	if skipped := capabilities.SkippedAmbient(p.Capabilities); len(skipped) > 0 {
		slog.Info("ambient capabilities not also permitted and inheritable are skipped", "capabilities", skipped)
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return fmt.Errorf("process.oomScoreAdj %d out of range -1000..1000", *p.OOMScoreAdj)
	}
	return nil
}

// Rlimits maps rlimit names to their resource numbers.
var Rlimits = map[string]int{
	"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
	"RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
	"RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
	"RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

func validateHooks(h *specs.Hooks) error {
	if h == nil {
		return nil
	}
	lists := map[string][]specs.Hook{
		"prestart": h.Prestart, "createRuntime": h.CreateRuntime, "createContainer": h.CreateContainer,
		"startContainer": h.StartContainer, "poststart": h.Poststart, "poststop": h.Poststop,
	}
	for name, hooks := range lists {
		for i, hk := range hooks {
			if !filepath.IsAbs(hk.Path) {
				return fmt.Errorf("hooks.%s[%d].path %q must be absolute", name, i, hk.Path)
			}
			if hk.Timeout != nil && *hk.Timeout <= 0 {
				return fmt.Errorf("hooks.%s[%d].timeout must be positive", name, i)
			}
		}
	}
	return nil
}

// HasNamespace reports whether the spec asks for a namespace of that type.
func HasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

func validateLinux(s *specs.Spec) error {
	l := s.Linux
	seen := map[specs.LinuxNamespaceType]bool{}
	for i, ns := range l.Namespaces {
		if _, ok := NamespaceFlags[ns.Type]; !ok {
			return fmt.Errorf("linux.namespaces[%d]: unknown type %q", i, ns.Type)
		}
		if seen[ns.Type] {
			return fmt.Errorf("linux.namespaces: %s given twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" {
			if !filepath.IsAbs(ns.Path) {
				return fmt.Errorf("linux.namespaces[%d].path %q must be absolute", i, ns.Path)
			}
			if _, err := os.Stat(ns.Path); err != nil {
				return fmt.Errorf("linux.namespaces[%d] (%s): %w", i, ns.Type, err)
			}
		}
	}
	userns := seen[specs.UserNamespace]
	if (len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0) && !userns {
		return errors.New("linux.uidMappings/gidMappings need a user namespace")
	}
	if s.Hostname != "" && !seen[specs.UTSNamespace] {
		return errors.New("hostname needs a new uts namespace")
	}
	if s.Domainname != "" && !seen[specs.UTSNamespace] {
		return errors.New("domainname needs a new uts namespace")
	}
	for key := range l.Sysctl {
		if err := validateSysctl(key, seen); err != nil {
			return err
		}
	}
	for i, d := range l.Devices {
		if !filepath.IsAbs(d.Path) {
			return fmt.Errorf("linux.devices[%d].path %q must be absolute", i, d.Path)
		}
		switch d.Type {
		case "c", "u", "b", "p":
		default:
			return fmt.Errorf("linux.devices[%d] (%s): unknown type %q", i, d.Path, d.Type)
		}
	}
	switch l.RootfsPropagation {
	case "", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable":
	default:
		return fmt.Errorf("linux.rootfsPropagation %q is not a propagation mode", l.RootfsPropagation)
	}
	if l.IntelRdt != nil {
		return errors.New("linux.intelRdt is not supported on this host")
	}
	return nil
}

// validateSysctl refuses sysctls that would change the host: each must be
// namespaced by a namespace the container has of its own.
func validateSysctl(key string, ns map[specs.LinuxNamespaceType]bool) error {
	ipc := map[string]bool{"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true,
		"kernel.sem": true, "kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true,
		"kernel.shm_rmid_forced": true}
	switch {
	case ipc[key] || strings.HasPrefix(key, "fs.mqueue."):
		if !ns[specs.IPCNamespace] {
			return fmt.Errorf("linux.sysctl %s needs a new ipc namespace", key)
		}
	case strings.HasPrefix(key, "net."):
		if !ns[specs.NetworkNamespace] {
			return fmt.Errorf("linux.sysctl %s needs a new network namespace", key)
		}
	case key == "kernel.hostname" || key == "kernel.domainname":
		if !ns[specs.UTSNamespace] {
			return fmt.Errorf("linux.sysctl %s needs a new uts namespace", key)
		}
	default:
		return fmt.Errorf("linux.sysctl %s is not namespaced and would change the host", key)
	}
	return nil
}

// TimeOffsets renders the time namespace offsets as the kernel reads them
// from /proc/self/timens_offsets.
func TimeOffsets(s *specs.Spec) string {
	if s.Linux == nil || len(s.Linux.TimeOffsets) == 0 {
		return ""
	}
	var b strings.Builder
	for clock, off := range s.Linux.TimeOffsets {
		b.WriteString(clock + " " + strconv.FormatInt(off.Secs, 10) + " " + strconv.FormatUint(uint64(off.Nanosecs), 10) + "\n")
	}
	return b.String()
}
