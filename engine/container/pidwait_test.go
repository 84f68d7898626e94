package container

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestPidWaiter: wait returns at its limit while the process runs, and
// when the process exits, however long the limit (the test would time out
// otherwise).
func TestPidWaiter(t *testing.T) {
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := newPidWaiter(cmd.Process.Pid)
	defer w.close()
	if w.fd < 0 {
		t.Fatal("no pidfd for a running child")
	}
	w.wait(10 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("sleep ended before it was killed: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	w.wait(time.Hour)
	// Exited: a zombie now, reaped here.
	if err := cmd.Wait(); err == nil {
		t.Fatal("killed sleep exited 0")
	}
}
