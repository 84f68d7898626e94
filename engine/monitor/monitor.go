// Package monitor is the process that watches over one running container,
// as conmon does for podman: it creates and starts the container through
// the runtime, owns its stdio (pipes, or the pty the runtime sends), writes
// the log, serves attached clients, reaps the container's init to record
// its exit code, and restarts it by policy. It runs detached from the berth
// command that started it, so no daemon is needed.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/attach"
	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/events"
	"github.com/berth-containers/berth/engine/tracing"
	rtstate "github.com/berth-containers/berth/libcontainer/state"
)

// Monitor runs one container.
type Monitor struct {
	c   *container.Container
	log *container.LogWriter

	mu      sync.Mutex
	clients map[*attach.Conn]struct{}
	stdin   io.WriteCloser // the container's stdin (pipe or pty), when open
	pty     *os.File
	pid     int
	// deleted closes when the runtime has deleted the last run's container.
	deleted chan struct{}
	// ln is the attach socket; accepting closes when its accept loop ends.
	ln        *net.UnixListener
	accepting chan struct{}
	// idleCh has a value when the last client left: time to try the C loop.
	idleCh chan struct{}
	reaper *reaper
	// healthRestart: the health check asked for a run again (podman's
	// --health-on-failure=restart).
	healthRestart atomic.Bool
}

func (m *Monitor) waitDeleted() {
	if m.deleted != nil {
		<-m.deleted
		m.deleted = nil
	}
}

// Run is the monitor's life. sync receives "ok" once the container runs,
// or the reason it could not start; first, if not nil, is an attached
// client from the start.
//
// cleanup runs after the last run, before attached clients hear the exit
// code, so that `berth run --rm` returns with everything removed.
// requested is when the start was asked for, from which the first run's
// start latency is counted (a restart's from when it begins).
func Run(ctx context.Context, c *container.Container, sync, first *os.File, requested time.Time, cleanup func() error) error {
	// Orphans of the runtime (the container's init) become our children,
	// so we can wait for the init and have its exit code. The flag
	// survives the re-executions into and out of the C loop.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return report(sync, fmt.Errorf("monitor: become subreaper: %w", err))
	}
	m, err := newMonitor(c)
	if err != nil {
		return report(sync, err)
	}
	defer m.close()
	path := c.AttachPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return report(sync, err)
	}
	ln, err := attach.Listen(path)
	if err != nil {
		return report(sync, fmt.Errorf("attach socket: %w", err))
	}
	m.accept(ln.(*net.UnixListener))
	if first != nil {
		conn, err := net.FileConn(first)
		first.Close()
		if err == nil {
			m.serve(conn)
		}
	}
	start, _, _ := rtstate.ProcessStart(os.Getpid())
	if err := c.Update(func(st *container.State) error {
		st.MonitorPid, st.MonitorStart = os.Getpid(), start
		return nil
	}); err != nil {
		return report(sync, err)
	}
	code, err := m.runOnce(ctx, sync, requested, false)
	return m.finish(ctx, sync, code, err, cleanup)
}

func newMonitor(c *container.Container) (*Monitor, error) {
	signal.Ignore(unix.SIGHUP, unix.SIGINT, unix.SIGPIPE)
	m := &Monitor{c: c, clients: map[*attach.Conn]struct{}{}, reaper: newReaper(), idleCh: make(chan struct{}, 1)}
	if c.Log.Driver != "none" {
		l, err := container.OpenLog(c.LogPath(), c.Log)
		if err != nil {
			return nil, err
		}
		m.log = l
	}
	return m, nil
}

func (m *Monitor) close() {
	if m.ln != nil {
		m.ln.Close()
	}
	if m.log != nil {
		m.log.Close()
	}
}

// finish runs the container again while its restart policy says so, then
// cleans up and tells attached clients how it ended.
func (m *Monitor) finish(ctx context.Context, sync *os.File, code int, err error, cleanup func() error) error {
	for err == nil && m.restart(code) {
		m.waitDeleted()
		code, err = m.runOnce(ctx, nil, time.Now(), true)
	}
	if err != nil {
		_ = m.c.Update(func(st *container.State) error {
			st.Status, st.Error, st.ExitCode = container.Exited, err.Error(), startCode(err)
			st.Restarting = false
			st.FinishedAt = time.Now().UTC()
			return nil
		})
	}
	cerr := cleanup()
	m.waitDeleted()
	if cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		m.broadcast(attach.Error, []byte(err.Error()))
		return report(sync, err)
	}
	m.broadcastExit(code)
	return nil
}

func startCode(err error) int {
	var se *container.StartError
	if errors.As(err, &se) {
		return se.Code
	}
	return 125
}

// report tells the starting berth command how the start went (once).
func report(sync *os.File, err error) error {
	if sync == nil {
		return err
	}
	if err == nil {
		_, _ = sync.WriteString("ok")
	} else {
		_, _ = sync.WriteString(err.Error())
	}
	sync.Close()
	return err
}

// restart applies the restart policy to an exit code, waiting the backoff
// first; a stop, kill or rm meanwhile cancels it. The container is
// Restarting from the decision on, so a stop or rm sees that it is.
func (m *Monitor) restart(code int) bool {
	wait := time.Duration(0)
	if !m.healthRestart.Swap(false) {
		p := m.c.CurrentRestart()
		switch p.Name {
		case "always", "unless-stopped":
		case "on-failure":
			if code == 0 || (p.MaxRetries > 0 && m.c.RestartCount >= p.MaxRetries) {
				return false
			}
		default:
			return false
		}
		wait = backoff(m.c.RestartCount)
	}
	if !m.markRestarting() {
		return false
	}
	if wait > 0 {
		time.Sleep(wait)
		return m.markRestarting()
	}
	return true
}

// markRestarting records that a restart is on its way, unless the
// container was stopped, and reports whether it is.
func (m *Monitor) markRestarting() bool {
	restarting := false
	_ = m.c.Update(func(st *container.State) error {
		st.Restarting = !st.Stopped
		restarting = st.Restarting
		return nil
	})
	return restarting
}

// backoff doubles from 100 ms, as docker's restart manager, up to a minute.
func backoff(restarts int) time.Duration {
	d := 100 * time.Millisecond << min(restarts, 10)
	return min(d, time.Minute)
}

// runOnce creates and starts the container, waits for its init to exit and
// records the exit; it returns the exit code, or an error if it could not
// start. A restart is counted when it runs, with the status: counted at
// the decision, a restart not yet begun would show as "exited" with its
// count (which `wait`ers and tests took for the end).
func (m *Monitor) runOnce(ctx context.Context, sync *os.File, requested time.Time, restarted bool) (int, error) {
	c := m.c
	rt := c.Runtime()
	pidFile := filepath.Join(c.RunDir, container.PidFile)
	logFile := filepath.Join(c.RunDir, "runtime.json")
	_ = os.Remove(pidFile)
	_ = os.Remove(logFile)
	// One runtime process creates and starts the container (run --detach):
	// a second one for start would cost its whole start-up again.
	args := []string{"--log", logFile, "--log-format", "json", "run", "--detach", "--bundle", c.Dir, "--pid-file", pidFile}
	st, err := m.stdio()
	if err != nil {
		return 0, err
	}
	watched := false
	defer func() {
		if !watched {
			st.close()
		}
	}()
	if st.consoleSocket != "" {
		args = append(args, "--console-socket", st.consoleSocket)
	}
	// The runtime emits no spans; its create and start are timed here, and
	// it has the trace context in TRACEPARENT, as OpenTelemetry's
	// environment carriers pass it.
	rctx, rspan := tracing.Start(ctx, "runtime run", tracing.Container(c.ID, c.Name)...)
	var env []string
	if tp := tracing.Traceparent(rctx); tp != "" {
		env = append(os.Environ(), "TRACEPARENT="+tp)
	}
	create := func() error {
		cmd := rt.Command(ctx, append(args, c.ID)...)
		cmd.Env = env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = st.inner[0], st.inner[1], st.inner[2]
		return cmd.Run()
	}
	err = create()
	if err != nil && strings.Contains(container.LastRuntimeError(logFile), "already exists") {
		// A runtime container left by a monitor that died: replace it.
		_ = rt.Delete(ctx, c.ID, true)
		err = create()
	}
	if err != nil {
		err = runtimeFailure(logFile, err)
		tracing.End(rspan, err)
		return 0, err
	}
	tracing.End(rspan, nil)
	st.closeInner()
	if err := st.receivePty(m); err != nil {
		_ = rt.Delete(ctx, c.ID, true)
		return 0, err
	}
	pid, err := readPid(pidFile)
	if err != nil {
		_ = rt.Delete(ctx, c.ID, true)
		return 0, err
	}
	copied := m.copyOutput(st)
	stopped := false
	if err := c.Update(func(st *container.State) error {
		st.Status, st.Pid, st.ExitCode, st.Error = container.Running, pid, 0, ""
		st.StartedAt = time.Now().UTC()
		if restarted {
			st.RestartCount++
			// A stop or rm that came while the run started: it did not
			// see this run, so it is ended here.
			stopped, st.Restarting = st.Stopped, false
		}
		if c.Healthcheck.Enabled() {
			st.Health = &container.Health{Status: container.HealthStarting, Log: []container.HealthResult{}}
		}
		return nil
	}); err != nil {
		_ = rt.Delete(ctx, c.ID, true)
		return 0, err
	}
	m.mu.Lock()
	m.pid = pid
	m.mu.Unlock()
	if stopped {
		_ = rt.Kill(ctx, c.ID, "SIGKILL")
	}
	events.Container(events.RunRootOf(c.RunDir), "start", c.ID, c.Image, c.Name,
		events.StartLatency, strconv.FormatFloat(time.Since(requested).Seconds(), 'f', 6, 64))
	_ = report(sync, nil)
	// A detached container's monitor lives on: its start spans go now.
	tracing.Flush(ctx)
	watched = true
	return m.watch(ctx, pid, st, copied, true)
}

// watch waits for the init of a run that has started (or that the C loop
// handed back) to exit, and records the exit; toLoop: try the C loop at
// once.
func (m *Monitor) watch(ctx context.Context, pid int, st *stdio, copied <-chan struct{}, toLoop bool) (int, error) {
	defer st.close()
	c, rt := m.c, m.c.Runtime()
	probes := m.startProbes(ctx)
	if probes == nil {
		copied = m.idle(pid, st, copied, toLoop)
	}
	code := m.waitInit(pid, probes)
	// Output the init's children still write reaches us until they end too.
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
	}
	oom := oomKilled(c.CgroupPath)
	// The runtime's delete (a process of its own) runs while the exit is
	// recorded and the rootfs cleaned up; the next run or the monitor's end
	// waits for it.
	deleted := make(chan struct{})
	go func() {
		_ = rt.Delete(ctx, c.ID, true)
		close(deleted)
	}()
	m.deleted = deleted
	m.mu.Lock()
	m.pid, m.stdin, m.pty = 0, nil, nil
	m.mu.Unlock()
	events.Container(events.RunRootOf(c.RunDir), "die", c.ID, c.Image, c.Name, "exitCode", strconv.Itoa(code))
	err := c.Update(func(st *container.State) error {
		st.Status, st.Pid, st.ExitCode, st.OOMKilled = container.Exited, 0, code, oom
		st.FinishedAt = time.Now().UTC()
		return nil
	})
	return code, err
}

// runtimeFailure is a StartError with the runtime's last error message.
func runtimeFailure(logFile string, err error) error {
	msg := container.LastRuntimeError(logFile)
	if msg == "" {
		msg = err.Error()
	}
	return &container.StartError{Message: msg, Code: container.StartErrorCode(msg)}
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %s", path)
	}
	return pid, nil
}

// waitInit reaps children until the init exits and returns its exit code
// as docker reports it; other children's exits go to the reaper. Then the
// probes are stopped, and their last processes reaped, before it returns.
func (m *Monitor) waitInit(pid int, probes *prober) int {
	code := 255 // no children: the init was reaped elsewhere; its code is unknown
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			break
		}
		if got == pid {
			code = exitCode(ws)
			break
		}
		m.reaper.reaped(got, exitCode(ws))
	}
	if probes == nil {
		return code
	}
	probes.stop()
	// Polled: a blocking wait could outlast the probes when an unrelated
	// child (an orphan of a --pid host container) lives on.
	for {
		select {
		case <-probes.done:
			return code
		default:
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil); err == nil && got > 0 {
			m.reaper.reaped(got, exitCode(ws))
			continue
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// oomKilled reads the container's cgroup (v2, then v1) for an OOM kill.
func oomKilled(cgroupPath string) bool {
	if cgroupPath == "" {
		return false
	}
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup", cgroupPath, "memory.events"),
		filepath.Join("/sys/fs/cgroup/memory", cgroupPath, "memory.oom_control"),
	} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok && v != "0" {
				return true
			}
		}
	}
	return false
}
