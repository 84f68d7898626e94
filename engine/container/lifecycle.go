package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"go.podman.io/storage"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/events"
	"github.com/berth-containers/berth/engine/tracing"
	rtstate "github.com/berth-containers/berth/libcontainer/state"
)

// StartError is a container that could not start, with docker's exit code
// for it: 127 when the command is not found, 126 when it cannot be run.
type StartError struct {
	Message string
	Code    int
}

func (e *StartError) Error() string { return e.Message }

// StartErrorCode maps the runtime's words to docker's exit codes, as dockerd does.
func StartErrorCode(msg string) int {
	msg = strings.ToLower(msg) // crun says "No such file or directory"
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"):
		return 126
	}
	return 125
}

// Monitor is a monitor process started before it is told its container,
// so that its start-up (a Go binary's) overlaps the work before the start.
// It reads "ID DIR RUNDIR" on fd 4 and reports on fd 3; fd 5, when given, is
// its first attached client.
type Monitor struct {
	cmd   *exec.Cmd
	syncR *os.File
	goW   *os.File
}

// SpawnMonitor starts cmd (berth's __monitor command) in its own session.
func SpawnMonitor(cmd *exec.Cmd, attach *os.File) (*Monitor, error) {
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	goR, goW, err := os.Pipe()
	if err != nil {
		syncR.Close()
		syncW.Close()
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{syncW, goR}
	if attach != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, attach)
	}
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	err = cmd.Start()
	syncW.Close()
	goR.Close()
	if err != nil {
		syncR.Close()
		goW.Close()
		return nil, fmt.Errorf("start monitor: %w", err)
	}
	return &Monitor{cmd: cmd, syncR: syncR, goW: goW}, nil
}

// Abort tells an unused monitor to exit.
func (m *Monitor) Abort() {
	m.goW.Close()
	m.syncR.Close()
	m.reap()
}

// reap waits for the monitor in the background, so that a long-lived
// caller (the API service) keeps no zombie of it; a short-lived one exits
// first, and the monitor is init's.
func (m *Monitor) reap() {
	go func() { _ = m.cmd.Wait() }()
}

// Start mounts the container's rootfs, sets up its network, and hands it
// to monitor, which creates and starts it through the runtime (the monitor
// is used up either way). It returns once the container runs, or with a
// *StartError. A running container is left alone.
func Start(ctx context.Context, s storage.Store, c *Container, monitor *Monitor) (err error) {
	requested := time.Now()
	ctx, span := tracing.Start(ctx, "start", tracing.Container(c.ID, c.Name)...)
	defer func() { tracing.End(span, err) }()
	handedOver := false
	defer func() {
		if !handedOver {
			monitor.Abort()
		}
	}()
	if err := Refresh(ctx, s, c); err != nil {
		return err
	}
	if c.Status == Running || c.Status == Paused {
		return nil
	}
	if _, err := s.Mount(c.ID, ""); err != nil {
		return fmt.Errorf("mount container %s: %w", short(c.ID), err)
	}
	nctx, nspan := tracing.Start(ctx, "network setup")
	err = setupNetwork(nctx, c)
	tracing.End(nspan, err)
	if err != nil {
		_, _ = s.Unmount(c.ID, false)
		return err
	}
	// Until the monitor has the container, undoing a failed start is ours.
	defer func() {
		if !handedOver {
			_ = teardownNetwork(ctx, c)
			_, _ = s.Unmount(c.ID, false)
		}
	}()
	if err := c.Update(func(st *State) error {
		st.Stopped, st.Error = false, ""
		return nil
	}); err != nil {
		return err
	}
	// With when the start was asked for (the monitor reports the start's
	// latency in its start event), and the trace the monitor continues.
	tp := tracing.Traceparent(ctx)
	if tp == "" {
		tp = "-"
	}
	if _, err := fmt.Fprintf(monitor.goW, "%s %s %s %d %s\n", c.ID, c.Dir, c.RunDir, requested.UnixNano(), tp); err != nil {
		return fmt.Errorf("start monitor: %w", err)
	}
	// From here the monitor tears down what it was given when it ends,
	// even when the container failed to start.
	handedOver = true
	monitor.goW.Close()
	defer monitor.syncR.Close()
	reply, _ := io.ReadAll(monitor.syncR)
	monitor.reap()
	if msg, ok := bytes.CutPrefix(reply, []byte("ok")); ok && len(bytes.TrimSpace(msg)) == 0 {
		return c.Reload()
	}
	text := strings.TrimSpace(string(reply))
	if text == "" {
		text = "monitor exited before the container started"
	}
	return &StartError{Message: text, Code: StartErrorCode(text)}
}

// MonitorAlive tells whether the container's monitor still runs.
func (c *Container) MonitorAlive() bool { return rtstate.Alive(c.MonitorPid, c.MonitorStart) }

// Refresh makes the state truthful when the monitor died (kill -9): a
// container the runtime still runs stays running, unmonitored; one it does
// not is exited with an unknown code, and what the monitor would have
// cleaned up is cleaned up now.
func Refresh(ctx context.Context, s storage.Store, c *Container) error {
	if err := c.Reload(); err != nil {
		return err
	}
	return reconcile(ctx, s, c)
}

// reconcile is Refresh of a state just read.
func reconcile(ctx context.Context, s storage.Store, c *Container) error {
	if c.MonitorAlive() {
		return nil
	}
	if c.Restarting {
		// Its monitor died before the run it had decided on.
		if err := c.Update(func(st *State) error { st.Restarting = false; return nil }); err != nil {
			return err
		}
	}
	if c.Status != Running && c.Status != Paused {
		return nil
	}
	rs, err := c.Runtime().State(ctx, c.ID)
	if err == nil && (rs.Status == "running" || rs.Status == "paused") {
		return c.Update(func(st *State) error {
			st.Error = "the container's monitor is gone: exit code and output after this are lost"
			if st.Health != nil {
				// Nobody probes it any more: the last status would be stale.
				st.Health.Status = HealthUnknown
			}
			return nil
		})
	}
	if err != nil && !errors.Is(err, ErrNoRuntimeContainer) {
		return err
	}
	_ = c.Runtime().Delete(ctx, c.ID, true)
	_ = teardownNetwork(ctx, c)
	_, _ = s.Unmount(c.ID, true)
	return c.Update(func(st *State) error {
		if st.Status == Running || st.Status == Paused {
			st.Status, st.ExitCode, st.Pid = Exited, 255, 0
			st.Error = "the container's monitor is gone: exit code unknown"
			st.FinishedAt = time.Now().UTC()
		}
		return nil
	})
}

// Kill sends a signal through the runtime. A killed container is not
// restarted by its policy, as with docker.
func Kill(ctx context.Context, s storage.Store, c *Container, signal string) error {
	if err := Refresh(ctx, s, c); err != nil {
		return err
	}
	if c.Status != Running && c.Status != Paused {
		return fmt.Errorf("container %s is not running", c.Name)
	}
	if err := c.Update(func(st *State) error { st.Stopped = true; return nil }); err != nil {
		return err
	}
	// Logged first: the container's "die" may follow the signal at once.
	events.Container(s.RunRoot(), "kill", c.ID, c.Image, c.Name, "signal", signal)
	if err := c.Runtime().Kill(ctx, c.ID, signal); err != nil {
		return fmt.Errorf("kill %s: %w", c.Name, err)
	}
	thawKilled(ctx, c, signal)
	return nil
}

// Stop sends the stop signal, waits timeout, then kills. Stopping a
// container that is not running is not an error.
func Stop(ctx context.Context, s storage.Store, c *Container, timeout time.Duration) (err error) {
	ctx, span := tracing.Start(ctx, "stop", tracing.Container(c.ID, c.Name)...)
	defer func() { tracing.End(span, err) }()
	if err := Refresh(ctx, s, c); err != nil {
		return err
	}
	if c.Status != Running && c.Status != Paused {
		if !c.MonitorAlive() {
			return nil
		}
		// Between runs of a restart policy: no more runs.
		running, err := markStopped(c)
		if err != nil {
			return err
		}
		if !running {
			_, err := WaitExit(ctx, s, c, timeout+10*time.Second)
			return err
		}
		// The restart came first: this run is stopped as any other.
	}
	defer events.Container(s.RunRoot(), "stop", c.ID, c.Image, c.Name)
	sig := c.StopSignal
	if sig == "" {
		sig = "SIGTERM"
	}
	if c.Status == Paused {
		// A frozen process cannot act on its signal.
		sig = "SIGKILL"
	}
	if err := Kill(ctx, s, c, sig); err != nil {
		// It may have exited meanwhile, before its monitor said so.
		if !strings.Contains(err.Error(), "not running") && !errors.Is(err, ErrNoRuntimeContainer) {
			return err
		}
	}
	// At least a moment: 0 would mean no limit to WaitExit.
	if _, err := WaitExit(ctx, s, c, max(timeout, time.Millisecond)); err == nil {
		return nil
	}
	_ = c.Runtime().Kill(ctx, c.ID, "SIGKILL")
	_, err = WaitExit(ctx, s, c, 10*time.Second)
	return err
}

// errTimeout says WaitExit gave up.
var errTimeout = errors.New("timed out waiting for the container to exit")

// WaitExit waits until the container has exited (its monitor has recorded
// it and finished its clean-up), and returns its exit code. timeout (0: no
// limit) is for the container's init to exit: the monitor's work after
// that is waited for however long it takes, since under load (a hundred
// removals at once on two cores) it takes longer than any fixed limit.
func WaitExit(ctx context.Context, s storage.Store, c *Container, timeout time.Duration) (int, error) {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	var monitor *pidWaiter
	defer func() { monitor.close() }()
	for {
		if err := Refresh(ctx, s, c); err != nil {
			if errors.Is(err, fs.ErrNotExist) && c.AutoRemove {
				return removedExit(ctx, s, c)
			}
			return 0, err
		}
		alive := c.MonitorAlive()
		if (c.Status == Exited || c.Status == Created) && !alive {
			return c.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-deadline:
			if !c.initExited() {
				return 0, errTimeout
			}
			deadline = nil
		default:
		}
		if !alive {
			// Unmonitored (its monitor was killed): the runtime is asked again.
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if monitor == nil || monitor.pid != c.MonitorPid {
			monitor.close()
			monitor = newPidWaiter(c.MonitorPid)
		}
		monitor.wait(100 * time.Millisecond)
	}
}

// initExited tells whether the container's init has exited: the monitor,
// whose child it is, may not have said so yet.
func (c *Container) initExited() bool {
	if c.Status == Exited || c.Status == Created || c.Pid <= 0 {
		return true
	}
	_, st, err := rtstate.ProcessStart(c.Pid)
	return err != nil || st == 'Z' || st == 'X'
}

// pidWaiter waits for a process to exit through its pidfd, not by reading
// its state over and over: many waiters at once would cost the host more
// than what they wait for.
type pidWaiter struct {
	pid, fd int
}

func newPidWaiter(pid int) *pidWaiter {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		fd = -1 // gone already, or an old kernel: wait merely sleeps
	}
	return &pidWaiter{pid: pid, fd: fd}
}

// wait returns when the process has exited, or after at most d.
func (w *pidWaiter) wait(d time.Duration) {
	if w.fd < 0 {
		time.Sleep(min(d, 20*time.Millisecond))
		return
	}
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	_, _ = unix.Poll(fds, int(d.Milliseconds()))
}

func (w *pidWaiter) close() {
	if w != nil && w.fd >= 0 {
		unix.Close(w.fd)
	}
}

// removedExit is for a --rm container whose files went while WaitExit
// watched: its monitor is removing it. It waits for the removal to end
// (the "destroy" event) and returns the exit code of its "die" event.
func removedExit(ctx context.Context, s storage.Store, c *Container) (int, error) {
	errDestroyed := errors.New("destroyed")
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	code := -1
	// One reader that follows the log: what is there is read once, then
	// only what is added.
	err := events.Read(rctx, s.RunRoot(), events.ReadOptions{
		Since:  c.Created,
		Follow: true,
		Poll:   20 * time.Millisecond,
		Match:  func(e *events.Event) bool { return e.Type == "container" && e.Actor.ID == c.ID },
	}, func(e *events.Event) error {
		switch e.Action {
		case "die":
			code, _ = strconv.Atoi(e.Actor.Attributes["exitCode"])
		case "destroy":
			return errDestroyed
		}
		return nil
	})
	switch {
	case errors.Is(err, errDestroyed):
		c.removed = true
		return code, nil
	case err != nil:
		return 0, fmt.Errorf("container %s: %w", c.Name, err)
	case ctx.Err() != nil:
		return 0, fmt.Errorf("container %s: %w", c.Name, ctx.Err())
	}
	return 0, fmt.Errorf("container %s: its files are gone but its monitor did not finish removing it", c.Name)
}

// Remove deletes a container: its runtime state, mount, layer and files.
// A running one needs force, which kills it first. A --rm container's
// anonymous volumes go with it, as docker's.
func Remove(ctx context.Context, s storage.Store, c *Container, force bool) error {
	return RemoveWithVolumes(ctx, s, c, force, c.AutoRemove)
}

// RemoveWithVolumes is Remove that, with volumes (rm -v), also removes the
// container's anonymous volumes no other container uses; named volumes
// stay.
func RemoveWithVolumes(ctx context.Context, s storage.Store, c *Container, force, volumes bool) (err error) {
	ctx, span := tracing.Start(ctx, "rm", tracing.Container(c.ID, c.Name)...)
	defer func() { tracing.End(span, err) }()
	if err := Refresh(ctx, s, c); err != nil {
		return err
	}
	// A live monitor may be about to run the container again (its restart
	// policy) or be cleaning up after it: either way it is waited for, as
	// removing under it would leave the next run behind; unless it is the
	// monitor that removes (--rm).
	monitored := c.MonitorAlive() && c.MonitorPid != os.Getpid()
	if c.Status == Running || c.Status == Paused || monitored {
		running, err := removable(c, force)
		// A --rm container's monitor may be removing it already: WaitExit
		// sees that through.
		if err != nil && !(c.AutoRemove && errors.Is(err, fs.ErrNotExist)) {
			return err
		}
		if running {
			_ = c.Runtime().Kill(ctx, c.ID, "SIGKILL")
			thawKilled(ctx, c, "SIGKILL")
		}
		if _, err := WaitExit(ctx, s, c, 10*time.Second); err != nil {
			return fmt.Errorf("remove %s: %w", c.Name, err)
		}
		if c.removed {
			return nil // by its monitor (--rm), volumes and all
		}
	}
	// The monitor deletes the runtime's container when it exits, and
	// Refresh when the monitor died: only one that still runs needs it.
	if c.Status != Exited && c.Status != Created {
		if err := c.Runtime().Delete(ctx, c.ID, true); err != nil && !errors.Is(err, ErrNoRuntimeContainer) {
			return fmt.Errorf("remove %s: %w", c.Name, err)
		}
	}
	if err := teardownNetwork(ctx, c); err != nil {
		return fmt.Errorf("remove %s: %w", c.Name, err)
	}
	if _, err := s.Unmount(c.ID, true); err != nil && !errors.Is(err, storage.ErrContainerUnknown) {
		return fmt.Errorf("remove %s: unmount: %w", c.Name, err)
	}
	if err := s.DeleteContainer(c.ID); err != nil && !errors.Is(err, storage.ErrContainerUnknown) {
		return fmt.Errorf("remove %s: %w", c.Name, err)
	}
	_ = os.RemoveAll(c.RunDir)
	events.Container(s.RunRoot(), "destroy", c.ID, c.Image, c.Name)
	if volumes {
		if err := removeVolumes(s, c); err != nil {
			return fmt.Errorf("remove %s: volumes: %w", c.Name, err)
		}
	}
	return nil
}

// markStopped ends a container's restarts and tells whether it runs now.
// Both are read in one locked update, and the monitor checks Stopped in
// the update that records a new run: so either that run is seen here or
// the monitor ends it itself.
func markStopped(c *Container) (running bool, err error) {
	err = c.Update(func(st *State) error {
		st.Stopped = true
		running = st.Status == Running || st.Status == Paused
		return nil
	})
	return running, err
}

// removable is markStopped for rm: without force, a container that runs
// or is about to run again is refused (and left as it was), as docker
// refuses a restarting one.
func removable(c *Container, force bool) (running bool, err error) {
	if force {
		return markStopped(c)
	}
	err = c.Update(func(st *State) error {
		switch {
		case st.Status == Running || st.Status == Paused:
			return fmt.Errorf("cannot remove container %s: it is %s: stop it first or use --force", c.Name, st.Status)
		case st.Restarting:
			return fmt.Errorf("cannot remove container %s: it is restarting: stop it first or use --force", c.Name)
		}
		st.Stopped = true
		return nil
	})
	return false, err
}

// TeardownNetwork is what the monitor calls when the container's last run
// has ended.
func TeardownNetwork(ctx context.Context, c *Container) error { return teardownNetwork(ctx, c) }
