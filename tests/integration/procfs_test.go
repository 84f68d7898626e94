package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hostSysctl reads a sysctl of the network namespace of pid from the host.
func hostSysctl(t *testing.T, pid int, key string) string {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	out, err := exec.Command("nsenter", "--net=/proc/"+strconv.Itoa(pid)+"/ns/net", "cat", path).CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter cat %s: %v: %s", path, err, out)
	}
	return strings.TrimSpace(string(out))
}

// freshSysctl reads a sysctl in a new network namespace, which inherits
// some settings from the host's (devconf_inherit_init_net).
func freshSysctl(t *testing.T, key string) string {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	out, err := exec.Command("unshare", "--net", "cat", path).CombinedOutput()
	if err != nil {
		t.Fatalf("unshare --net cat %s: %v: %s", path, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Sysctls go through a private procfs, not the container's /proc: with
// /proc/sys hidden by a later mount, they still reach the kernel, and
// nothing lands in what hides it.
func TestSysctlPrivateProcfs(t *testing.T) {
	// Values a new network namespace does not start with, so that reading
	// them back shows the writes.
	forward := "1"
	if freshSysctl(t, "net.ipv4.ip_forward") == "1" {
		forward = "0"
	}
	if ttl := freshSysctl(t, "net.ipv4.ip_default_ttl"); ttl == "77" {
		t.Fatalf("a new network namespace starts with ip_default_ttl 77")
	}
	sysctls := map[string]string{"net.ipv4.ip_forward": forward, "net.ipv4.ip_default_ttl": "77"}
	script := `ls -A /proc/sys; cat /proc/sys/net/ipv4/ip_forward 2>/dev/null; echo ready; sleep 60`

	check := func(t *testing.T, e *env, s *specs.Spec) string {
		t.Helper()
		s.Linux.Sysctl = sysctls
		id, r := e.start(s)
		out := waitOutput(t, r.outPath, "ready")
		pid := e.state(id).Pid
		for key, want := range sysctls {
			if got := hostSysctl(t, pid, key); got != want {
				t.Errorf("%s in the container's network namespace = %q, want %q", key, got, want)
			}
		}
		return out
	}

	t.Run("tmpfs", func(t *testing.T) {
		e := newEnv(t)
		s := shell(t, script)
		copyRootfs(t, s)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/proc/sys", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec"}})
		out := check(t, e, s)
		if got := lines(out); len(got) != 1 || got[0] != "ready" {
			t.Errorf("the tmpfs over /proc/sys holds something: container printed %q", out)
		}
	})

	// A writable decoy: a write through the container's /proc would change
	// its ip_forward or create its ip_default_ttl.
	t.Run("decoy", func(t *testing.T) {
		e := newEnv(t)
		s := shell(t, script)
		copyRootfs(t, s)
		decoy := filepath.Join(e.dir, "decoy")
		writeFile(t, filepath.Join(decoy, "net/ipv4/ip_forward"), "decoy\n", 0o644)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/proc/sys", Type: "bind", Source: decoy, Options: []string{"rbind", "rw"}})
		var ro []string
		for _, p := range s.Linux.ReadonlyPaths {
			if p != "/proc/sys" {
				ro = append(ro, p)
			}
		}
		s.Linux.ReadonlyPaths = ro
		out := check(t, e, s)
		if !strings.Contains(out, "decoy") {
			t.Errorf("the container does not see the decoy over /proc/sys: %q", out)
		}
		if got := readFile(t, filepath.Join(decoy, "net/ipv4/ip_forward")); got != "decoy\n" {
			t.Errorf("sysctl written into the decoy: ip_forward holds %q", got)
		}
		if _, err := os.Stat(filepath.Join(decoy, "net/ipv4/ip_default_ttl")); err == nil {
			t.Errorf("sysctl written into the decoy: ip_default_ttl created")
		}
	})
}

// A sysctl that no namespace isolates would change the host: refused at
// create, naming it, and nothing is left.
func TestSysctlNotNamespaced(t *testing.T) {
	e := newEnv(t)
	e.privateRuntime()
	before := readFile(t, "/proc/sys/kernel/core_pattern")
	s := newSpec(t, "true")
	s.Linux.Sysctl = map[string]string{"kernel.core_pattern": "/tmp/berth-core-%p"}
	id, b, r := e.createMustFail(s)
	oneLine(t, r)
	contains(t, "error", r.stderr, "kernel.core_pattern")
	e.checkNothingLeft(id, b)
	if after := readFile(t, "/proc/sys/kernel/core_pattern"); after != before {
		t.Errorf("kernel.core_pattern changed from %q to %q", before, after)
	}
}
