package monitor

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/container"
)

// The monitor's steady state is C (engine/monitor/loop): an idle Go
// runtime alone costs more memory than conmon does. The parameters go to
// the loop in loopEnv and come back in resumeEnv, in one format that
// engine/monitor/loop/loop.c parses too.
const (
	loopEnv   = "_BERTH_MONITOR_LOOP"
	resumeEnv = "_BERTH_MONITOR_RESUME"
)

// Handover is what passes between the Go monitor and its C loop: the
// container's init, the descriptors (-1: none) and how to log.
type Handover struct {
	pid                                int
	listen, stdout, stderr, pty, stdin int
	driver                             string
	maxSize                            int64
	maxFiles                           int
	ID, Dir, RunDir                    string
	logPath                            string
}

func (h *Handover) String() string {
	return fmt.Sprintf("%d %d %d %d %d %d %s %d %d %s %s %s %s", h.pid, h.listen, h.stdout, h.stderr, h.pty, h.stdin,
		h.driver, h.maxSize, h.maxFiles, h.ID, h.Dir, h.RunDir, h.logPath)
}

// Resuming returns the handover of a monitor the C loop re-executed, and
// takes it out of the environment so no child inherits it.
func Resuming() (*Handover, bool, error) {
	v, ok := os.LookupEnv(resumeEnv)
	if !ok {
		return nil, false, nil
	}
	os.Unsetenv(resumeEnv)
	// Executed as /proc/self/exe, the process would be called "exe".
	if name, err := unix.BytePtrFromString(filepath.Base(os.Args[0])); err == nil {
		_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0)
		runtime.KeepAlive(name)
	}
	// The log path, last, is not read back: the container's record has it.
	h := &Handover{}
	if _, err := fmt.Sscanf(v, "%d %d %d %d %d %d %s %d %d %s %s %s", &h.pid, &h.listen, &h.stdout, &h.stderr, &h.pty, &h.stdin,
		&h.driver, &h.maxSize, &h.maxFiles, &h.ID, &h.Dir, &h.RunDir); err != nil {
		return nil, true, fmt.Errorf("monitor: bad %s %q: %w", resumeEnv, v, err)
	}
	return h, true, nil
}

// Resume goes on monitoring a run the C loop handed back: it serves the
// client that dialled, or records the exit, and carries on as Run does.
func Resume(ctx context.Context, c *container.Container, h *Handover, cleanup func() error) error {
	m, err := newMonitor(c)
	if err != nil {
		return err
	}
	defer m.close()
	lf, err := inherited(h.listen)
	if err != nil {
		return err
	}
	ln, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		return fmt.Errorf("monitor: attach socket: %w", err)
	}
	ul := ln.(*net.UnixListener)
	// As the listener Run made: its socket goes when the monitor ends.
	ul.SetUnlinkOnClose(true)
	m.accept(ul)
	st := &stdio{}
	for _, p := range []struct {
		fd int
		f  **os.File
	}{{h.stdout, &st.stdoutR}, {h.stderr, &st.stderrR}, {h.pty, &st.pty}, {h.stdin, &st.stdinW}} {
		if p.fd >= 0 {
			if *p.f, err = inherited(p.fd); err != nil {
				st.close()
				return err
			}
		}
	}
	m.mu.Lock()
	m.pid, m.pty, m.stdin = h.pid, st.pty, st.stdinW
	if st.pty != nil {
		m.stdin = st.pty
	}
	m.mu.Unlock()
	// Not back at once: the client that dialled is in the backlog still.
	code, err := m.watch(ctx, h.pid, st, m.copyOutput(st), false)
	return m.finish(ctx, nil, code, err, cleanup)
}

// inherited makes an *os.File of a descriptor passed across the
// re-execution: close-on-exec again, and in the poller.
func inherited(fd int) (*os.File, error) {
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("monitor: inherited fd %d: %w", fd, err)
	}
	return os.NewFile(uintptr(fd), "fd"+strconv.Itoa(fd)), nil
}

// toPoller moves f to a non-blocking descriptor of its own, which
// os.NewFile puts in the poller.
func toPoller(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", f.Name(), err)
	}
	return inherited(fd)
}

// idle hands the run to the C loop whenever no client is attached, until
// the init exits (which the C loop hands back too); at once if now, else
// when the last client leaves. Health checks keep the Go monitor. It
// returns the channel that closes when the output ends.
func (m *Monitor) idle(pid int, st *stdio, copied <-chan struct{}, now bool) <-chan struct{} {
	// The C side reads them with sscanf's %s.
	if strings.ContainsAny(m.c.ID+m.c.Dir+m.c.RunDir+m.c.LogPath(), " \t\n\v\f\r") {
		return copied
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		m.reapUntilInitExits(pid)
	}()
	if now {
		select {
		case m.idleCh <- struct{}{}:
		default:
		}
	}
	for {
		select {
		case <-exited:
			return copied
		case <-m.idleCh:
			copied = m.toLoop(pid, st, copied)
		}
	}
}

// reapUntilInitExits reaps the monitor's other children (orphans of a
// container sharing the host's pid namespace) until the init has exited,
// and leaves the init unreaped: the C loop, if it takes over meanwhile,
// must still find it, and waitInit then reaps it.
func (m *Monitor) reapUntilInitExits(pid int) {
	for {
		// siginfo_t of a child's exit on 64-bit Linux: si_pid at byte 16.
		var si struct {
			signo, errno, code, _ int32
			pid                   int32
			_                     [108]byte
		}
		_, _, errno := unix.Syscall6(unix.SYS_WAITID, unix.P_ALL, 0, uintptr(unsafe.Pointer(&si)), unix.WEXITED|unix.WNOWAIT, 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0, int(si.pid) == pid:
			return
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(int(si.pid), &ws, 0, nil); err == nil && got > 0 {
			m.reaper.reaped(got, exitCode(ws))
		}
	}
}

// toLoop re-executes the monitor into its C loop, unless a client is
// attached; it returns (with the output copied again) only when it did not.
func (m *Monitor) toLoop(pid int, st *stdio, copied <-chan struct{}) <-chan struct{} {
	if m.attached() {
		return copied
	}
	// No client may arrive unseen: accepting stops first.
	past := time.Unix(1, 0)
	_ = m.ln.SetDeadline(past)
	<-m.accepting
	defer func() {
		_ = m.ln.SetDeadline(time.Time{})
		m.accept(m.ln)
	}()
	if m.attached() {
		return copied
	}
	outputs := st.outputs()
	stoppable := true
	for _, f := range outputs {
		stoppable = stoppable && pollable(f) && f.SetReadDeadline(past) == nil
	}
	if !stoppable {
		// A read that no deadline stops: the output stays Go's.
		for _, f := range outputs {
			_ = f.SetReadDeadline(time.Time{})
		}
		return copied
	}
	<-copied
	for _, f := range outputs {
		_ = f.SetReadDeadline(time.Time{})
	}
	driver := m.c.Log.Driver
	if driver != "json-file" && driver != "none" {
		driver = "k8s-file" // LogWriter's default
	}
	h := &Handover{pid: pid, listen: -1, stdout: -1, stderr: -1, pty: -1, stdin: -1,
		driver: driver, maxSize: m.c.Log.MaxSize, maxFiles: m.c.Log.MaxFiles,
		ID: m.c.ID, Dir: m.c.Dir, RunDir: m.c.RunDir, logPath: m.c.LogPath()}
	h.listen, _ = rawFd(m.ln)
	for _, f := range []struct {
		fd *int
		f  *os.File
	}{{&h.stdout, st.stdoutR}, {&h.stderr, st.stderrR}, {&h.pty, st.pty}, {&h.stdin, st.stdinW}} {
		if f.f != nil {
			*f.fd, _ = rawFd(f.f)
		}
	}
	var passed []int
	for _, fd := range []int{h.listen, h.stdout, h.stderr, h.pty, h.stdin} {
		if fd >= 0 {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err == nil {
				passed = append(passed, fd)
			}
		}
	}
	env := append(withoutEnv(os.Environ(), loopEnv), loopEnv+"="+h.String())
	// Only returns when it failed: the monitor goes on in Go.
	_ = syscall.Exec("/proc/self/exe", os.Args, env)
	for _, fd := range passed {
		unix.CloseOnExec(fd)
	}
	return m.copyOutput(st)
}

// pollable tells whether f's descriptor is still non-blocking: Fd() makes
// it blocking, and a deadline then no longer stops a read.
func pollable(f *os.File) bool {
	fd, ok := rawFd(f)
	if !ok {
		return false
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return err == nil && flags&unix.O_NONBLOCK != 0
}

// rawFd is c's descriptor, read without Fd() (which would make it
// blocking); -1 and false when c is closed.
func rawFd(c syscall.Conn) (int, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, false
	}
	fd := -1
	if rc.Control(func(raw uintptr) { fd = int(raw) }) != nil {
		return -1, false
	}
	return fd, true
}

func (m *Monitor) attached() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.clients) > 0
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, name+"=") {
			out = append(out, e)
		}
	}
	return out
}
