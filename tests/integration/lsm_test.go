package integration

import (
	"os"
	"strings"
	"testing"
)

// requireNoAppArmor skips on a host where AppArmor is enabled: these tests
// check what happens without it.
func requireNoAppArmor(t *testing.T) {
	t.Helper()
	if data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.HasPrefix(string(data), "Y") {
		t.Skip("AppArmor is enabled on this host")
	}
}

// An AppArmor profile on a host without AppArmor would leave the container
// unconfined: create refuses it, naming AppArmor, and leaves nothing.
func TestAppArmorProfileWithoutAppArmor(t *testing.T) {
	requireNoAppArmor(t)
	e := newEnv(t)
	e.privateRuntime()
	s := newSpec(t, "true")
	s.Process.ApparmorProfile = "berth-test-profile"
	id, b, r := e.createMustFail(s)
	oneLine(t, r)
	contains(t, "error", r.stderr, "AppArmor", "berth-test-profile")
	e.checkNothingLeft(id, b)
}

// An SELinux label is ignored while SELinux is disabled, as runc does.
func TestSELinuxLabelWithoutSELinux(t *testing.T) {
	if _, err := os.Stat("/sys/fs/selinux/enforce"); err == nil {
		t.Skip("SELinux is enabled on this host")
	}
	e := newEnv(t)
	s := newSpec(t, "echo", "labelled")
	s.Process.SelinuxLabel = "system_u:system_r:container_t:s0:c1,c2"
	if out := e.mustRun(s); strings.TrimSpace(out) != "labelled" {
		t.Errorf("container with an SELinux label printed %q, want labelled", out)
	}
}

// exec --apparmor without AppArmor fails with a clear error and runc's
// exit code for a runtime failure, and the container keeps running.
func TestExecAppArmorWithoutAppArmor(t *testing.T) {
	requireNoAppArmor(t)
	e := newEnv(t)
	id, _ := e.start(newSpec(t, "sleep", "60"))

	r := e.rt("exec", "--apparmor", "berth-test-profile", id, "sh", "-c", "echo ran")
	if r.code != 255 {
		t.Errorf("exec --apparmor exit %d, want 255: %s", r.code, r)
	}
	if strings.Contains(r.stdout, "ran") {
		t.Errorf("the process ran unconfined: %s", r)
	}
	oneLine(t, r)
	contains(t, "error", r.stderr, "AppArmor", "berth-test-profile")

	// The failed exec left the container as it was, and a label (ignored
	// without SELinux) does not stop an exec.
	if st := e.state(id); st.Status != "running" {
		t.Errorf("container %s after the failed exec, want running", st.Status)
	}
	r = e.rt("exec", "--process-label", "system_u:system_r:container_t:s0", id, "echo", "ok")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "ok" {
		t.Errorf("exec with an SELinux label: %s", r)
	}
}
