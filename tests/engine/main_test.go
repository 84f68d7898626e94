// Package engine runs the berth binary as root against real storage,
// registries and runtimes. Each test gets its own store, configuration and
// credentials file, so tests do not see each other's images.
//
// The binary comes from $BERTH (default ../../bin/berth); the tests never
// build it.
package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

var (
	berthBin   string
	skipReason string
)

func TestMain(m *testing.M) {
	bin := os.Getenv("BERTH")
	if bin == "" {
		bin = "../../bin/berth"
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	berthBin = abs
	switch {
	case os.Geteuid() != 0:
		skipReason = "engine tests use containers/storage as root"
	case unix.Access(berthBin, unix.X_OK) != nil:
		skipReason = fmt.Sprintf("berth binary %s not found: run `make build` or set BERTH", berthBin)
	}
	host := snapshotHost()
	code := m.Run()
	if skipReason == "" {
		host.restore()
	}
	os.Exit(code)
}

// engine is one isolated berth: its own store, config file and credentials.
type engine struct {
	t       testing.TB
	dir     string
	root    string
	runroot string
	// Config is the berth.conf the commands read; tests may write it.
	Config string
	// DockerConfig is the DOCKER_CONFIG directory (credentials).
	DockerConfig string
	// Env is added to the environment of every command.
	Env []string
	// cred, when set, runs the commands as another user (rootless tests),
	// with bin (a copy of berth that user can reach) in dir.
	cred     *syscall.Credential
	bin, cwd string
}

func newEngine(t testing.TB) *engine {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	// Not t.TempDir: the store must be on a filesystem overlay works on,
	// and /tmp may be a tmpfs on some machines.
	dir, err := os.MkdirTemp("/var/tmp", "berth-engine-test-")
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{t: t, dir: dir, root: filepath.Join(dir, "root"), runroot: filepath.Join(dir, "run"),
		Config: filepath.Join(dir, "berth.conf"), DockerConfig: filepath.Join(dir, "docker")}
	if err := os.WriteFile(e.Config, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A test that failed half-way leaves no container running.
		if out, err := e.cmd("ps", "-aq").Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
			_ = e.cmd(append([]string{"rm", "-f"}, strings.Fields(string(out))...)...).Run()
		}
		unmountUnder(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove test store: %v", err)
		}
	})
	return e
}

// unmountUnder removes any mount left below dir (a failing test must not
// leave the next one a busy store).
func unmountUnder(t testing.TB, dir string) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Errorf("read mountinfo: %v", err)
		return
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(mounts[i].Mountpoint, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mounts[i].Mountpoint, err)
		}
	}
}

// result is what one berth command did.
type result struct {
	Stdout, Stderr string
	Code           int
}

// cmd makes the berth command with the engine's global flags.
func (e *engine) cmd(args ...string) *exec.Cmd {
	return e.command(e.berth(), append([]string{"--root", e.root, "--runroot", e.runroot, "--config", e.Config}, args...)...)
}

// berth is the berth binary the engine's commands run.
func (e *engine) berth() string {
	if e.bin != "" {
		return e.bin
	}
	return berthBin
}

// command runs a program as the engine's commands run: as its user, in its
// directory, with its environment.
func (e *engine) command(path string, args ...string) *exec.Cmd {
	c := exec.Command(path, args...)
	c.Dir = e.cwd
	c.Env = append(os.Environ(), "DOCKER_CONFIG="+e.DockerConfig)
	c.Env = append(c.Env, e.Env...)
	if e.cred != nil {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: e.cred}
	}
	return c
}

// run runs berth with stdin (may be nil) and returns what it did.
func (e *engine) run(stdin []byte, args ...string) result {
	e.t.Helper()
	c := e.cmd(args...)
	if stdin != nil {
		c.Stdin = bytes.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	r := result{Stdout: out.String(), Stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs berth and fails the test unless it exits 0; it returns stdout.
func (e *engine) ok(args ...string) string {
	e.t.Helper()
	r := e.run(nil, args...)
	if r.Code != 0 {
		e.t.Fatalf("berth %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// fail runs berth, expects exit code 125 and an error line ("Error: ...",
// the last line of stderr; progress lines may come before it) containing
// want, and returns the error line.
func (e *engine) fail(want string, args ...string) string {
	e.t.Helper()
	r := e.run(nil, args...)
	if r.Code != 125 {
		e.t.Fatalf("berth %s: exit %d, want 125\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	msg := lines[len(lines)-1]
	if !strings.HasPrefix(msg, "Error: ") || !strings.Contains(msg, want) {
		e.t.Fatalf("berth %s: stderr %q, want a last line \"Error: ...%s...\"", strings.Join(args, " "), r.Stderr, want)
	}
	return msg
}
