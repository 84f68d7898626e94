package capabilities

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// The tests re-execute the test binary with these variables set; the child
// changes its own capabilities, which the test process must keep.
const (
	envMode = "BERTH_CAPS_TEST_MODE"
	envCaps = "BERTH_CAPS_TEST_CAPS"
	// separates the child's own status from that of the program it executes
	execMarker = "--- after execve ---"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envMode); mode != "" {
		if err := child(mode); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child applies the capabilities in envCaps the way the container init does,
// prints /proc/thread-self/status and, when it changed uid, executes cat to
// show what the container process ends up with.
func child(mode string) error {
	runtime.LockOSThread()
	var c *specs.LinuxCapabilities
	if err := json.Unmarshal([]byte(os.Getenv(envCaps)), &c); err != nil {
		return err
	}
	switch mode {
	case "root":
		if err := Apply(c); err != nil {
			return err
		}
	case "user":
		if err := ApplyBounding(c); err != nil {
			return err
		}
		if err := KeepCaps(); err != nil {
			return err
		}
		if err := syscall.Setgroups(nil); err != nil {
			return err
		}
		if err := syscall.Setresgid(1000, 1000, 1000); err != nil {
			return err
		}
		if err := syscall.Setresuid(1000, 1000, 1000); err != nil {
			return err
		}
		if err := Apply(c); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	status, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return err
	}
	os.Stdout.Write(status)
	if mode != "user" {
		return nil
	}
	fmt.Println(execMarker)
	return syscall.Exec("/bin/cat", []string{"cat", "/proc/self/status"}, nil)
}

func runChild(t *testing.T, mode string, c *specs.LinuxCapabilities) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envMode+"="+mode, envCaps+"="+string(js))
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("child: %v: %s", err, stderr)
	}
	return string(out)
}

// statusField returns the value of a "Name:\tvalue" line of a status file.
func statusField(t *testing.T, status, field string) string {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in status:\n%s", field, status)
	return ""
}

func mask(t *testing.T, names ...string) uint64 {
	t.Helper()
	var m uint64
	for _, n := range names {
		c, ok := byName()[n]
		if !ok {
			t.Fatalf("bad test capability %s", n)
		}
		m |= 1 << uint(c)
	}
	return m
}

func checkCaps(t *testing.T, status string, want map[string]uint64) {
	t.Helper()
	for field, w := range want {
		got, err := strconv.ParseUint(statusField(t, status, field), 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		if got != w {
			t.Errorf("%s = %016x, want %016x", field, got, w)
		}
	}
}

var testCaps = &specs.LinuxCapabilities{
	Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETPCAP"},
	Effective:   []string{"CAP_CHOWN", "CAP_KILL"},
	Permitted:   []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
	Inheritable: []string{"CAP_NET_BIND_SERVICE"},
	Ambient:     []string{"CAP_NET_BIND_SERVICE"},
}

func requested(t *testing.T, c *specs.LinuxCapabilities) map[string]uint64 {
	return map[string]uint64{
		"CapBnd": mask(t, c.Bounding...),
		"CapEff": mask(t, c.Effective...),
		"CapPrm": mask(t, c.Permitted...),
		"CapInh": mask(t, c.Inheritable...),
		"CapAmb": mask(t, c.Ambient...),
	}
}

func TestApplyAsRoot(t *testing.T) {
	out := runChild(t, "root", testCaps)
	checkCaps(t, out, requested(t, testCaps))
}

func TestApplyNilDropsEverything(t *testing.T) {
	out := runChild(t, "root", nil)
	checkCaps(t, out, map[string]uint64{"CapBnd": 0, "CapEff": 0, "CapPrm": 0, "CapInh": 0, "CapAmb": 0})
}

func TestApplyAcrossSetuid(t *testing.T) {
	out := runChild(t, "user", testCaps)
	self, afterExec, ok := strings.Cut(out, execMarker+"\n")
	if !ok {
		t.Fatalf("child output has no exec marker:\n%s", out)
	}
	if uid := statusField(t, self, "Uid"); uid != "1000\t1000\t1000\t1000" {
		t.Fatalf("child Uid = %q, want 1000 everywhere", uid)
	}
	// Before execve the thread holds exactly the requested sets.
	checkCaps(t, self, requested(t, testCaps))
	// A non-root program without file capabilities gets its ambient set as
	// effective and permitted.
	amb := mask(t, testCaps.Ambient...)
	checkCaps(t, afterExec, map[string]uint64{
		"CapBnd": mask(t, testCaps.Bounding...),
		"CapEff": amb,
		"CapPrm": amb,
		"CapInh": mask(t, testCaps.Inheritable...),
		"CapAmb": amb,
	})
}

func TestValidate(t *testing.T) {
	if err := Validate(nil); err != nil {
		t.Errorf("nil: %v", err)
	}
	if err := Validate(testCaps); err != nil {
		t.Errorf("valid set: %v", err)
	}
	// `runc spec` writes ambient capabilities with no inheritable set; Apply skips them.
	if err := Validate(&specs.LinuxCapabilities{Permitted: []string{"CAP_KILL"}, Ambient: []string{"CAP_KILL"}}); err != nil {
		t.Errorf("ambient without inheritable (runc spec's shape): %v", err)
	}
	for _, tc := range []struct {
		name string
		caps specs.LinuxCapabilities
		want []string // substrings of the error
	}{
		{"unknown", specs.LinuxCapabilities{Permitted: []string{"CAP_CHOWN", "CAP_NOT_A_CAP"}}, []string{"CAP_NOT_A_CAP", "permitted"}},
		{"unknown ambient", specs.LinuxCapabilities{Ambient: []string{"CAP_BOGUS"}}, []string{"CAP_BOGUS", "ambient"}},
		{"lower case", specs.LinuxCapabilities{Bounding: []string{"cap_chown"}}, []string{"cap_chown", "bounding"}},
		{"no prefix", specs.LinuxCapabilities{Inheritable: []string{"CHOWN"}}, []string{"CHOWN", "inheritable"}},
		{"effective not permitted", specs.LinuxCapabilities{Effective: []string{"CAP_KILL"}}, []string{"CAP_KILL", "permitted"}},
	} {
		err := Validate(&tc.caps)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}
}

func TestApplyRefusesUnknownName(t *testing.T) {
	// Resolution fails before any change, so this is safe in the test process.
	if err := Apply(&specs.LinuxCapabilities{Effective: []string{"CAP_FOO"}}); err == nil || !strings.Contains(err.Error(), "CAP_FOO") {
		t.Fatalf("Apply with unknown capability: err = %v", err)
	}
}
