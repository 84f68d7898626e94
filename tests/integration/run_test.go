package integration

import (
	"strings"
	"syscall"
	"testing"
)

// TestRunExitCode checks that run exits with the container's exit code and
// passes its stdout through.
func TestRunExitCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run(shell(t, "echo hello from the container; exit 3"))
	if r.code != 3 {
		t.Errorf("exit code %d, want 3: %s", r.code, r)
	}
	if r.stdout != "hello from the container\n" {
		t.Errorf("stdout %q", r.stdout)
	}
}

// TestRunKilledBySignal checks the 128+n exit codes of a container whose
// init dies of a signal.
func TestRunKilledBySignal(t *testing.T) {
	t.Parallel()
	t.Run("SIGKILL from kill", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id := e.newID()
		e.track(id)
		b := e.bundle(shell(t, "echo ready; exec sleep 100"))
		cmd, out := e.background("run", "--bundle", b, id)
		waitOutput(t, out, "ready")
		e.mustRT("kill", id, "KILL")
		if code := exitCode(t, cmd.Wait()); code != 137 {
			t.Errorf("run exit code %d, want 137: %s", code, readFile(t, out))
		}
	})
	t.Run("SIGUSR1 sent to itself", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		// Without a pid namespace of its own, sh is not an init and dies
		// of a signal it does not handle.
		s := shell(t, "kill -USR1 $$; sleep 5")
		withoutNamespace(s, "pid")
		if r := e.run(s); r.code != 128+int(syscall.SIGUSR1) {
			t.Errorf("run exit code %d, want %d: %s", r.code, 128+int(syscall.SIGUSR1), r)
		}
	})
}

// TestRunForwardsSIGTERM sends SIGTERM to the foreground run process and
// expects the container's trap to see it.
func TestRunForwardsSIGTERM(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.newID()
	e.track(id)
	b := e.bundle(shell(t, `trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.1; done`))
	cmd, out := e.background("run", "--bundle", b, id)
	waitOutput(t, out, "ready")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := exitCode(t, cmd.Wait())
	output := readFile(t, out)
	if code != 7 || !strings.Contains(output, "got TERM") {
		t.Errorf("run exited %d with output %q, want 7 after the trap", code, output)
	}
}
