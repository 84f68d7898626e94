package callers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-containers/berth/tests/terminal"
)

const (
	busyboxImage = "docker.io/berth-test/busybox:latest"
	busyboxPath  = "/bin/busybox" // Debian's busybox-static
	runcPath     = "/usr/sbin/runc"
	// cmdTimeout bounds every command of a caller or a runtime.
	cmdTimeout = 30 * time.Second
)

// requireCaller skips the test unless it runs as root with the caller's
// programs (of Debian package pkg) and a static busybox installed, and
// returns the absolute path of the runtime under test.
func requireCaller(t *testing.T, pkg string, programs ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root: %s and the runtime create mounts, namespaces and cgroups", strings.Join(programs, ", "))
	}
	lookPaths(t, pkg, programs...)
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Skipf("no static busybox to build the image from (Debian package busybox-static): %v", err)
	}
	return berthRuntime(t)
}

// lookPaths skips the test unless every program is installed.
func lookPaths(t *testing.T, pkg string, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed (Debian package %s): %v", p, pkg, err)
		}
	}
}

// berthRuntime returns the absolute path of the runtime under test.
func berthRuntime(t *testing.T) string {
	t.Helper()
	path, set := os.LookupEnv("BERTH_RUNTIME")
	if !set {
		path = filepath.Join("..", "..", "bin", "berth-runtime")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		if set {
			t.Fatalf("BERTH_RUNTIME: %v", err)
		}
		t.Skipf("berth-runtime not built (run make build or set BERTH_RUNTIME): %v", err)
	}
	return abs
}

// busyboxArchive has write (writeBusyboxImage or writeBusyboxDockerArchive)
// make the busybox image in a temporary file, and returns its path.
func busyboxArchive(t *testing.T, write func(dst, busybox, name string) error) string {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	if err := write(archive, busyboxPath, busyboxImage); err != nil {
		t.Fatal(err)
	}
	return archive
}

// cmdResult is what a caller's command line printed and how it exited.
type cmdResult struct {
	stdout, stderr string
	code           int
}

// runCmd runs cmd to its end, failing the test if it does not end within
// timeout or cannot be started; a non-zero exit is the caller's to judge.
func runCmd(t *testing.T, timeout time.Duration, name string, args []string, env []string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: no answer in %s; stderr: %s", name, strings.Join(args, " "), timeout, stderr.String())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return cmdResult{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

// cli is a command-line program with the flags and environment that point
// it at the test's own daemon, storage or state.
type cli struct {
	program string
	global  []string // flags before each command's own
	env     []string // nil for the test's own
}

func (c cli) args(args ...string) []string { return slices.Concat(c.global, args) }

// run runs the program with args; a non-zero exit is the caller's to judge.
func (c cli) run(t *testing.T, args ...string) cmdResult {
	t.Helper()
	return runCmd(t, cmdTimeout, c.program, c.args(args...), c.env)
}

// mustRun runs the program with args, failing the test unless it exits 0,
// and returns its stdout.
func (c cli) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	res := c.run(t, args...)
	if res.code != 0 {
		t.Fatalf("%s %s: exit %d; stderr: %s", c.program, strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

// startOnPty starts the program with args on a terminal of its own.
func (c cli) startOnPty(t *testing.T, args ...string) *terminal.Command {
	t.Helper()
	return terminal.Start(t, c.program, c.args(args...), c.env)
}

// runtimeCLI runs the OCI runtime binary on the containers whose state a
// caller had it keep in root.
func runtimeCLI(binary, root string) cli {
	return cli{program: binary, global: []string{"--root", root}}
}

// runtimeStatus is the status the runtime itself gives container id.
func runtimeStatus(t *testing.T, runtime cli, id string) string {
	t.Helper()
	var state struct{ Status string }
	if err := json.Unmarshal([]byte(runtime.mustRun(t, "state", id)), &state); err != nil {
		t.Fatalf("%s state %s: %v", runtime.program, id, err)
	}
	return state.Status
}

// daemon is a caller's daemon of the test's own: its sockets, state and
// log are in a temporary directory.
type daemon struct {
	name string
	dir  string
	sock string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the daemon has exited
}

// start starts the daemon with args, its output going to its log. At the
// end of the test, a failed test shows the log's tail, then cleanup runs.
func (d *daemon) start(t *testing.T, args []string, cleanup func(t *testing.T)) {
	t.Helper()
	logFile, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	d.cmd = exec.Command(d.name, args...)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", d.name, err)
	}
	d.done = make(chan struct{})
	go func() {
		d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log (%s):\n%s", d.name, d.log, tail(d.log, 40))
		}
		cleanup(t)
	})
}

// waitReady waits until the daemon's socket is there and client's version
// command gets an answer on it.
func (d *daemon) waitReady(t *testing.T, timeout time.Duration, client cli) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-d.done:
			t.Fatalf("%s exited at start: %v\n%s", d.name, d.cmd.ProcessState, tail(d.log, 20))
		default:
		}
		if _, err := os.Stat(d.sock); err == nil {
			if res := client.run(t, "version"); res.code == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s socket %s not ready after %s\n%s", d.name, d.sock, timeout, tail(d.log, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// terminate stops the daemon with SIGTERM, or kills it, as a failure, if it
// has not stopped within timeout.
func (d *daemon) terminate(t *testing.T, timeout time.Duration) {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(timeout):
		t.Errorf("%s did not stop on SIGTERM; killing it", d.name)
		d.cmd.Process.Kill()
		<-d.done
	}
}
