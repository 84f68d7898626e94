package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/bundle"
	"github.com/berth-containers/berth/bundle/user"
	"github.com/berth-containers/berth/libcontainer/console"
)

// ExecConfig is a process to run in a running container, as docker exec
// takes it; what it leaves empty comes from the container's own process.
type ExecConfig struct {
	Cmd []string
	// Env is set over the container's environment: KEY=VALUE replaces or
	// adds, a bare KEY removes.
	Env []string
	// User is docker's USER[:GROUP], looked up in the container's rootfs.
	User       string
	WorkingDir string
	Tty        bool
	// Privileged gives the process every capability and no AppArmor or
	// SELinux confinement.
	Privileged bool
	// Detach leaves the process running without waiting for it.
	Detach bool
}

// ExecStdio is what a process that is not on a terminal reads and writes.
// Stdin and Stdout are handed to the process as they are; Stderr gets the
// process's error output once the runtime has started it (what the runtime
// itself writes before goes into the error instead).
type ExecStdio struct {
	Stdin  *os.File  // nil: /dev/null
	Stdout *os.File  // nil: /dev/null
	Stderr io.Writer // nil: discarded
}

// ExecProcess is a process started by Exec.
type ExecProcess struct {
	Pid int
	// Pty is the master of the process's terminal (ExecConfig.Tty).
	Pty *os.File

	stderrDone <-chan struct{}
}

// execErrorCode is dockerd's code for an exec that could not start: 127
// when the command is not found, else 126 (cannot be invoked). Runtimes
// word it differently: runc `exec: "x": executable file not found`, crun
// "executable file `x` not found ...: No such file or directory".
func execErrorCode(cmd, msg string) int {
	msg = strings.ToLower(msg)
	if strings.Contains(msg, strings.ToLower(cmd)) && (strings.Contains(msg, "not found") || strings.Contains(msg, "no such file or directory")) {
		return 127
	}
	return 126
}

// Exec runs a process in a running container with `runtime exec -d`, as
// conmon does for podman: the runtime's own errors stay apart from the
// process's output, and a process exit code of 255 is not mistaken for a
// runtime failure. Unless detached, the calling process becomes a child
// subreaper so that the process, orphaned when the runtime exits, is its
// child to wait for (ExecProcess.Wait). A process that cannot start is a
// *StartError with docker's code (127 not found, else 126).
func Exec(ctx context.Context, s storage.Store, c *Container, cfg ExecConfig, stdio ExecStdio) (*ExecProcess, error) {
	if len(cfg.Cmd) == 0 || cfg.Cmd[0] == "" {
		return nil, errors.New("exec: no command")
	}
	if cfg.Detach && cfg.Tty {
		return nil, errors.New("exec: a detached process cannot have a terminal: nothing would keep it open")
	}
	if err := Refresh(ctx, s, c); err != nil {
		return nil, err
	}
	switch c.Status {
	case Running:
	case Paused:
		return nil, fmt.Errorf("container %s is paused, unpause the container before exec", c.Name)
	default:
		return nil, fmt.Errorf("container %s is not running", c.Name)
	}
	proc, err := c.ExecProcessSpec(cfg)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", c.Name, err)
	}
	// A short private directory: the console socket's path must fit a
	// sockaddr_un.
	dir, err := os.MkdirTemp("", "berth-exec-")
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", c.Name, err)
	}
	defer os.RemoveAll(dir)
	procFile, pidFile := filepath.Join(dir, "process.json"), filepath.Join(dir, "pid")
	if err := writeJSON(procFile, proc); err != nil {
		return nil, fmt.Errorf("exec in %s: %w", c.Name, err)
	}
	args := []string{"exec", "--detach", "--pid-file", pidFile, "--process", procFile}
	var consoleLn *net.UnixListener
	if cfg.Tty {
		sock := filepath.Join(dir, "console.sock")
		consoleLn, err = net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return nil, fmt.Errorf("exec in %s: console socket: %w", c.Name, err)
		}
		defer consoleLn.Close()
		args = append(args, "--console-socket", sock)
	}
	if !cfg.Detach {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("exec: become a subreaper: %w", err)
		}
	}

	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	stdin, stdout := null, null
	if !cfg.Tty && !cfg.Detach {
		if stdio.Stdin != nil {
			stdin = stdio.Stdin
		}
		if stdio.Stdout != nil {
			stdout = stdio.Stdout
		}
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	gate := &gatedWriter{out: stdio.Stderr}
	if gate.out == nil || cfg.Tty || cfg.Detach {
		gate.out = io.Discard
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(gate, errR)
		errR.Close()
		close(done)
	}()
	cmd := c.Runtime().Command(ctx, append(args, c.ID)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, errW
	err = cmd.Start()
	errW.Close()
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		// The process did not start: what was written is the runtime's.
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		msg := Message(gate.held(), err)
		if strings.Contains(msg, "does not exist") || strings.Contains(msg, "not running") {
			return nil, fmt.Errorf("container %s is not running", c.Name)
		}
		return nil, &StartError{Message: fmt.Sprintf("exec %s in %s: %s", cfg.Cmd[0], c.Name, msg), Code: execErrorCode(cfg.Cmd[0], msg)}
	}
	gate.release()
	p := &ExecProcess{stderrDone: done}
	data, err := os.ReadFile(pidFile)
	if err == nil {
		p.Pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	if err != nil || p.Pid <= 0 {
		return nil, fmt.Errorf("exec in %s: the runtime wrote no pid file", c.Name)
	}
	if consoleLn != nil {
		if p.Pty, err = receiveConsole(consoleLn); err != nil {
			_ = unix.Kill(p.Pid, unix.SIGKILL)
			_, _ = p.Wait()
			return nil, fmt.Errorf("exec in %s: %w", c.Name, err)
		}
	}
	return p, nil
}

// receiveConsole takes the pty master the runtime sent to the socket.
func receiveConsole(ln *net.UnixListener) (*os.File, error) {
	_ = ln.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := ln.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("receive the terminal: %w", err)
	}
	f, err := conn.File()
	conn.Close()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return console.Receive(f)
}

// Wait reaps the process and returns its exit code as docker reports it:
// 128+signal for a signal. Only this pid is waited for, so that execs
// running side by side (the API service's) each get their own. It then gives the process's error output a moment to
// drain.
func (p *ExecProcess) Wait() (int, error) {
	code, err := reap(p.Pid)
	if p.stderrDone != nil {
		// A background child may hold the pipe open long after.
		select {
		case <-p.stderrDone:
		case <-time.After(time.Second):
		}
	}
	return code, err
}

func reap(pid int) (int, error) {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait for exec process %d: %w", pid, err)
		}
		if got != pid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
}

// Signal sends sig to the process.
func (p *ExecProcess) Signal(sig unix.Signal) error { return unix.Kill(p.Pid, sig) }

// gatedWriter holds what is written until release, then passes it on.
type gatedWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	out  io.Writer
	open bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open {
		// The process's stderr: a failing writer must not stop the copy.
		_, _ = g.out.Write(p)
		return len(p), nil
	}
	return g.buf.Write(p)
}

func (g *gatedWriter) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, _ = g.out.Write(g.buf.Bytes())
	g.buf.Reset()
	g.open = true
}

func (g *gatedWriter) held() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.String()
}

// BundleSpec reads the container's config.json.
func (c *Container) BundleSpec() (*specs.Spec, error) {
	var spec specs.Spec
	if err := readJSON(filepath.Join(c.Dir, "config.json"), &spec); err != nil {
		return nil, fmt.Errorf("container %s: %w", c.Name, err)
	}
	if spec.Process == nil || spec.Root == nil {
		return nil, fmt.Errorf("container %s: config.json has no process or root", c.Name)
	}
	return &spec, nil
}

// Rootfs is the container's root filesystem path, from its config.json.
func (c *Container) Rootfs(spec *specs.Spec) string {
	if filepath.IsAbs(spec.Root.Path) {
		return spec.Root.Path
	}
	return filepath.Join(c.Dir, spec.Root.Path)
}

// ExecProcessSpec is the runtime-spec process for cfg: the container's own
// process (capabilities, rlimits, AppArmor, no_new_privs as it has them)
// with cfg's command, environment, user, directory and terminal.
func (c *Container) ExecProcessSpec(cfg ExecConfig) (*specs.Process, error) {
	spec, err := c.BundleSpec()
	if err != nil {
		return nil, err
	}
	p := *spec.Process
	p.Args = slices.Clone(cfg.Cmd)
	p.Terminal = cfg.Tty
	p.ConsoleSize = nil
	env := slices.Clone(p.Env)
	if cfg.User != "" {
		u, err := user.Lookup(c.Rootfs(spec), cfg.User)
		if err != nil {
			return nil, err
		}
		p.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
		env = setEnv(env, "HOME="+u.Home)
	}
	if cfg.Tty && !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "TERM=") }) {
		env = append(env, "TERM=xterm")
	}
	for _, e := range cfg.Env {
		key, _, _ := strings.Cut(e, "=")
		if key == "" {
			return nil, fmt.Errorf("environment variable %q has no name", e)
		}
		env = setEnv(env, e)
	}
	p.Env = env
	if cfg.WorkingDir != "" {
		if !filepath.IsAbs(cfg.WorkingDir) {
			return nil, fmt.Errorf("the working directory %q is invalid: it must be an absolute path", cfg.WorkingDir)
		}
		p.Cwd = cfg.WorkingDir
	}
	if cfg.Privileged {
		all := bundle.PrivilegedCapabilities()
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
		p.ApparmorProfile, p.SelinuxLabel = "", ""
	}
	return &p, nil
}

// setEnv sets KEY=VALUE in env in place of an earlier KEY, or removes KEY
// for a bare KEY.
func setEnv(env []string, kv string) []string {
	key, _, hasValue := strings.Cut(kv, "=")
	i := slices.IndexFunc(env, func(x string) bool { return strings.HasPrefix(x, key+"=") || x == key })
	switch {
	case !hasValue && i >= 0:
		return slices.Delete(env, i, i+1)
	case !hasValue:
		return env
	case i >= 0:
		env[i] = kv
		return env
	}
	return append(env, kv)
}
