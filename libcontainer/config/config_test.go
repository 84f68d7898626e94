package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func validSpec(t *testing.T) *specs.Spec {
	return &specs.Spec{
		Version: "1.0.2-dev",
		Root:    &specs.Root{Path: t.TempDir()},
		Process: &specs.Process{Args: []string{"sh"}, Cwd: "/"},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.MountNamespace}, {Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace},
		}},
	}
}

func TestVersions(t *testing.T) {
	for _, v := range []string{"1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0", "1.3.9"} {
		s := validSpec(t)
		s.Version = v
		if err := Validate(s); err != nil {
			t.Errorf("version %s: %v", v, err)
		}
	}
	for _, v := range []string{"", "invalid", "0.9.0", "1.4.0", "2.0.0", "1.0"} {
		s := validSpec(t)
		s.Version = v
		if err := Validate(s); err == nil || !strings.Contains(err.Error(), "ociVersion") {
			t.Errorf("version %q: err = %v", v, err)
		}
	}
}

// Each bad field gets an error that names it.
func TestBadFields(t *testing.T) {
	cases := map[string]func(*specs.Spec){
		"root.path":    func(s *specs.Spec) { s.Root.Path = "/nonexistent/rootfs" },
		"process.args": func(s *specs.Spec) { s.Process.Args = nil },
		"process.cwd":  func(s *specs.Spec) { s.Process.Cwd = "relative" },
		"process.env":  func(s *specs.Spec) { s.Process.Env = []string{"NOEQUALS"} },
		"RLIMIT_BOGUS": func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}} },
		"soft limit": func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2, Hard: 1}}
		},
		"CAP_BOGUS": func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_BOGUS"}}
		},
		"unknown type": func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		},
		"given twice": func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "uts"})
		},
		"user namespace":          func(s *specs.Spec) { s.Linux.UIDMappings = []specs.LinuxIDMapping{{Size: 1}} },
		"kernel.core_pattern":     func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.core_pattern": "x"} },
		"hooks.poststart[0].path": func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "rel"}}} },
		"mounts[0].destination":   func(s *specs.Spec) { s.Mounts = []specs.Mount{{Type: "tmpfs"}} },
		"rootfsPropagation":       func(s *specs.Spec) { s.Linux.RootfsPropagation = "sideways" },
		"linux.devices[0]":        func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "z"}} },
		"needs a new ipc":         func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.msgmax": "1"} },
		"hostname needs":          func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:1]; s.Hostname = "h" },
	}
	for want, breakIt := range cases {
		s := validSpec(t)
		breakIt(s)
		if err := Validate(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v", want, err)
		}
	}
}

func TestLoad(t *testing.T) {
	bundle := t.TempDir()
	if _, err := Load(bundle); err == nil || !strings.Contains(err.Error(), "config.json not found") {
		t.Errorf("missing config: %v", err)
	}
	os.WriteFile(filepath.Join(bundle, "config.json"), []byte("{bad json"), 0o644)
	if _, err := Load(bundle); err == nil || !strings.Contains(err.Error(), "parse") {
		t.Errorf("bad json: %v", err)
	}
	s := validSpec(t)
	os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755)
	s.Root.Path = "rootfs"
	data, _ := json.Marshal(s)
	os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644)
	got, err := Load(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if got.Root.Path != filepath.Join(bundle, "rootfs") {
		t.Errorf("root.path = %s, want it made absolute against the bundle", got.Root.Path)
	}
}
