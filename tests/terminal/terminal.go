// Package terminal runs a command the way a person at a terminal runs it,
// for tests of `-it` modes.
package terminal

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// Command is a program run the way a person at a terminal runs it: a
// new pseudo-terminal is its controlling terminal and its stdio. The `-it`
// modes of podman and docker refuse to run without one.
type Command struct {
	cmd    *exec.Cmd
	master console.Console
	mu     sync.Mutex
	out    bytes.Buffer
	read   chan struct{} // closed when the terminal has no writer left
	exited chan struct{} // closed when the command has exited
}

// Start runs name with args and env on a new pseudo-terminal of 80x24.
func Start(t *testing.T, name string, args []string, env []string) *Command {
	t.Helper()
	master, slavePath, err := console.NewPty()
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	if err := master.Resize(console.WinSize{Height: 24, Width: 80}); err != nil {
		master.Close()
		t.Fatalf("size pty: %v", err)
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatalf("open pty slave %s: %v", slavePath, err)
	}
	defer slave.Close()

	p := &Command{cmd: exec.Command(name, args...), master: master, read: make(chan struct{}), exited: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = slave, slave, slave
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := p.cmd.Start(); err != nil {
		master.Close()
		t.Fatalf("start %s on a pty: %v", name, err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil { // EIO once the last slave is closed
				close(p.read)
				return
			}
		}
	}()
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			t.Errorf("%s on a pty still running at the end: killing it; output: %q", name, p.Output())
			p.cmd.Process.Kill()
			<-p.exited
		}
		master.Close()
	})
	return p
}

// Output is all the terminal has shown so far.
func (p *Command) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Expect waits until the terminal has shown want.
func (p *Command) Expect(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Output(), want) {
		select {
		case <-p.read:
			if !strings.Contains(p.Output(), want) {
				t.Fatalf("terminal closed before showing %q; output: %q", want, p.Output())
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("terminal did not show %q in %s; output: %q", want, timeout, p.Output())
		}
	}
}

// Send types s on the terminal.
func (p *Command) Send(t *testing.T, s string) {
	t.Helper()
	if _, err := p.master.Write([]byte(s)); err != nil {
		t.Fatalf("type %q: %v", s, err)
	}
}

// Wait returns the command's exit code and all it showed.
func (p *Command) Wait(t *testing.T, timeout time.Duration) (int, string) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("command on a pty did not exit in %s; output: %q", timeout, p.Output())
	}
	// The rest of the output is in the terminal's buffer.
	select {
	case <-p.read:
	case <-time.After(time.Second):
	}
	return p.cmd.ProcessState.ExitCode(), p.Output()
}

// Shell waits for the prompt of the shell on the terminal, has it show its
// terminal and 6*7 as typed-42, then exit with code; it returns how the
// command exited and all it showed.
func (p *Command) Shell(t *testing.T, code int) (int, string) {
	t.Helper()
	p.Expect(t, "# ", 10*time.Second)
	p.Send(t, "tty; echo typed-$((6*7))\r")
	p.Expect(t, "typed-42", 10*time.Second)
	p.Send(t, fmt.Sprintf("exit %d\r", code))
	return p.Wait(t, 10*time.Second)
}
