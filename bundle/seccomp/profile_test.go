package seccomp

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/bundle/spec"
	"github.com/berth-containers/berth/libcontainer/capabilities"
	lcseccomp "github.com/berth-containers/berth/libcontainer/seccomp"
)

// The shipped copy in contrib/ must be the embedded one.
func TestContribCopyIsIdentical(t *testing.T) {
	contrib, err := os.ReadFile("../../contrib/seccomp/default.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(contrib, defaultJSON) {
		t.Fatal("contrib/seccomp/default.json differs from bundle/seccomp/default.json: copy one over the other")
	}
}

// allowed lists the syscalls a resolved section allows unconditionally.
func allowed(s *specs.LinuxSeccomp) []string {
	var names []string
	for _, r := range s.Syscalls {
		if r.Action == specs.ActAllow && len(r.Args) == 0 {
			names = append(names, r.Names...)
		}
	}
	return names
}

func TestDefaultProfile(t *testing.T) {
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != specs.ActErrno || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 1 {
		t.Errorf("default action %s errno %v, want SCMP_ACT_ERRNO with EPERM", p.DefaultAction, p.DefaultErrnoRet)
	}
	want := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	if !slices.Equal(p.Architectures, want) {
		t.Errorf("architectures %v, want %v", p.Architectures, want)
	}

	for _, tc := range []struct {
		name string
		caps []string
	}{
		{"default caps", spec.DefaultCapabilities},
		{"no caps", nil},
		{"every cap", capabilities.Names()},
	} {
		s := p.Resolve(tc.caps)
		if err := lcseccomp.Validate(s); err != nil {
			t.Errorf("%s: the runtime refuses the profile: %v", tc.name, err)
		}
		for _, r := range s.Syscalls {
			if r.Action == specs.ActErrno && r.ErrnoRet == nil {
				t.Errorf("%s: rule %v returns the default errno: it would be dropped", tc.name, r.Names)
			}
		}
	}

	withDefaults := allowed(p.Resolve(spec.DefaultCapabilities))
	for _, name := range []string{"read", "openat", "execve", "arch_prctl", "ptrace", "chroot"} {
		if !slices.Contains(withDefaults, name) {
			t.Errorf("default caps: %s not allowed", name)
		}
	}
	for _, name := range []string{"mount", "unshare", "setns", "reboot", "init_module", "kexec_load", "bpf", "clone", "clone3"} {
		if slices.Contains(withDefaults, name) {
			t.Errorf("default caps: %s allowed unconditionally", name)
		}
	}
	withAdmin := allowed(p.Resolve(append(slices.Clone(spec.DefaultCapabilities), "CAP_SYS_ADMIN")))
	for _, name := range []string{"mount", "unshare", "clone", "clone3"} {
		if !slices.Contains(withAdmin, name) {
			t.Errorf("with CAP_SYS_ADMIN: %s not allowed", name)
		}
	}
	if slices.Contains(allowed(p.Resolve(nil)), "chroot") {
		t.Error("chroot allowed without CAP_SYS_CHROOT")
	}
}

func TestResolveConditions(t *testing.T) {
	p, err := Parse([]byte(`{
		"defaultAction": "SCMP_ACT_ERRNO",
		"syscalls": [
			{"names": ["a"], "action": "SCMP_ACT_ALLOW"},
			{"names": ["b"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
			{"names": ["c"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}}
		]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		caps []string
		want []string
	}{
		{nil, []string{"a", "c"}},
		{[]string{"CAP_SYS_ADMIN"}, []string{"a"}}, // includes needs all, excludes any
		{[]string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}, []string{"a", "b"}},
	} {
		if got := allowed(p.Resolve(tc.caps)); !slices.Equal(got, tc.want) {
			t.Errorf("caps %v: allowed %v, want %v", tc.caps, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"syscalls": []}`, "defaultAction is missing"},
		// A docker profile's architecture map is not implemented: refuse it.
		{`{"defaultAction": "SCMP_ACT_ERRNO", "archMap": []}`, `unknown field "archMap"`},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}}]}`, `unknown field "arches"`},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMN"]}}]}`, `unknown capability "CAP_SYS_ADMN"`},
	} {
		_, err := Parse([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s): error %v, want one containing %q", tc.json, err, tc.want)
		}
	}
}

func TestLoadNamesFile(t *testing.T) {
	_, err := Load("/nonexistent/profile.json")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/profile.json") {
		t.Errorf("Load of a missing file: %v", err)
	}
}
