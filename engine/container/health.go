package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.podman.io/storage"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/events"
)

// Healthcheck is docker's HEALTHCHECK, from the image and the create
// options; the JSON names are docker's, so an image config's decodes.
type Healthcheck struct {
	// Test is ["CMD", arg...], ["CMD-SHELL", command] or ["NONE"].
	Test          []string      `json:"Test,omitempty"`
	Interval      time.Duration `json:"Interval,omitempty"`
	Timeout       time.Duration `json:"Timeout,omitempty"`
	StartPeriod   time.Duration `json:"StartPeriod,omitempty"`
	StartInterval time.Duration `json:"StartInterval,omitempty"`
	Retries       int           `json:"Retries,omitempty"`
	// OnFailure is podman's --health-on-failure: none, kill, restart, stop.
	OnFailure string `json:"OnFailure,omitempty"`
	// Shell runs a CMD-SHELL test (the image's SHELL, else /bin/sh -c).
	Shell []string `json:"Shell,omitempty"`
}

// Docker's defaults for what a health check leaves zero.
const (
	DefaultHealthInterval      = 30 * time.Second
	DefaultHealthTimeout       = 30 * time.Second
	DefaultHealthStartInterval = 5 * time.Second
	DefaultHealthRetries       = 3
	// healthOutputMax is how much of a probe's output is kept, as docker.
	healthOutputMax = 4096
	// healthLogMax is how many probe results are kept, as docker.
	healthLogMax = 5
)

// Health statuses, as docker names them; HealthUnknown is berth's for a
// running container whose monitor (which runs the probes) is gone.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
	HealthUnknown   = "unknown"
)

// Health is docker's State.Health.
type Health struct {
	Status        string         `json:"Status"`
	FailingStreak int            `json:"FailingStreak"`
	Log           []HealthResult `json:"Log"`
}

// HealthResult is one probe.
type HealthResult struct {
	Start    time.Time `json:"Start"`
	End      time.Time `json:"End"`
	ExitCode int       `json:"ExitCode"`
	Output   string    `json:"Output"`
}

// Enabled tells whether the check runs at all.
func (h *Healthcheck) Enabled() bool {
	return h != nil && len(h.Test) > 0 && h.Test[0] != "NONE"
}

// MergeHealthcheck is docker's: what the user gives replaces the image's,
// field by field; no test of the user's keeps the image's test.
func MergeHealthcheck(img, user *Healthcheck) *Healthcheck {
	if user == nil {
		return img
	}
	if img == nil {
		return user
	}
	m := *user
	if len(m.Test) == 0 {
		m.Test = img.Test
	}
	if m.Interval == 0 {
		m.Interval = img.Interval
	}
	if m.Timeout == 0 {
		m.Timeout = img.Timeout
	}
	if m.StartPeriod == 0 {
		m.StartPeriod = img.StartPeriod
	}
	if m.StartInterval == 0 {
		m.StartInterval = img.StartInterval
	}
	if m.Retries == 0 {
		m.Retries = img.Retries
	}
	if m.Shell == nil {
		m.Shell = img.Shell
	}
	return &m
}

// Validate checks a health check as docker's create does, naming the flag.
func (h *Healthcheck) Validate() error {
	if h == nil {
		return nil
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--health-interval", h.Interval}, {"--health-timeout", h.Timeout},
		{"--health-start-period", h.StartPeriod}, {"--health-start-interval", h.StartInterval},
	} {
		if d.v != 0 && d.v < time.Millisecond {
			return fmt.Errorf("invalid %s %v: must be 0 (the default) or at least 1ms", d.flag, d.v)
		}
	}
	if h.Retries < 0 {
		return fmt.Errorf("invalid --health-retries %d: cannot be negative", h.Retries)
	}
	switch h.OnFailure {
	case "", "none", "kill", "restart", "stop":
	default:
		return fmt.Errorf("invalid --health-on-failure %q: want none, kill, restart or stop", h.OnFailure)
	}
	if len(h.Test) > 0 {
		switch h.Test[0] {
		case "NONE":
		case "CMD", "CMD-SHELL":
			if len(h.Test) < 2 || h.Test[1] == "" {
				return fmt.Errorf("invalid health check test %q: no command", h.Test)
			}
		default:
			return fmt.Errorf("invalid health check test %q: want CMD, CMD-SHELL or NONE first", h.Test)
		}
	}
	return nil
}

// Command is the probe's command line.
func (h *Healthcheck) Command() []string {
	if h.Test[0] == "CMD" {
		return h.Test[1:]
	}
	shell := h.Shell
	if len(shell) == 0 {
		shell = []string{"/bin/sh", "-c"}
	}
	return append(append([]string{}, shell...), strings.Join(h.Test[1:], " "))
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// NextProbe is the wait before the next probe: the start interval while
// the start period lasts (when one is set), else the interval.
func (h *Healthcheck) NextProbe(startedAt time.Time) time.Duration {
	if h.StartInterval != 0 && time.Since(startedAt) < h.StartPeriod {
		return h.StartInterval
	}
	return orDefault(h.Interval, DefaultHealthInterval)
}

// ProbeTimeout is how long a probe may run before it is killed.
func (h *Healthcheck) ProbeTimeout() time.Duration {
	return orDefault(h.Timeout, DefaultHealthTimeout)
}

// record applies a probe's result as docker does: a success makes the
// container healthy; a failure counts in the streak, but not within the
// start period, and the retries-th in a row makes it unhealthy.
func (h *Health) record(cfg *Healthcheck, r HealthResult, startedAt time.Time) {
	h.Log = append(h.Log, r)
	if len(h.Log) > healthLogMax {
		h.Log = h.Log[len(h.Log)-healthLogMax:]
	}
	if r.ExitCode == 0 {
		h.Status, h.FailingStreak = HealthHealthy, 0
		return
	}
	if r.Start.Sub(startedAt) < cfg.StartPeriod {
		return
	}
	h.FailingStreak++
	retries := cfg.Retries
	if retries == 0 {
		retries = DefaultHealthRetries
	}
	if h.FailingStreak >= retries {
		h.Status = HealthUnhealthy
	}
}

// RecordHealth adds a probe's result to the container's health and
// returns the status before and after.
func RecordHealth(c *Container, r HealthResult) (before, after string, err error) {
	err = c.Update(func(st *State) error {
		if st.Health == nil {
			st.Health = &Health{Status: HealthStarting}
		}
		before = st.Health.Status
		st.Health.record(c.Healthcheck, r, st.StartedAt)
		after = st.Health.Status
		return nil
	})
	return before, after, err
}

// Reaper waits for the processes a probe starts. The monitor reaps all
// its children in one place (it is a subreaper), so it gives its own;
// elsewhere DirectReaper waits for each process itself.
type Reaper interface {
	// Wait waits until process pid, started at or after since, has
	// exited and returns its exit code (128+signal for a signal).
	Wait(ctx context.Context, pid int, since time.Time) (int, error)
}

// DirectReaper waits for a process with wait4. A caller that is not the
// probe's parent must be a child subreaper (Probe orphans the process).
type DirectReaper struct{}

// Wait implements Reaper.
func (DirectReaper) Wait(ctx context.Context, pid int, _ time.Time) (int, error) {
	done := make(chan int, 1)
	errc := make(chan error, 1)
	go func() {
		code, err := reap(pid)
		if err != nil {
			errc <- err
			return
		}
		done <- code
	}()
	select {
	case code := <-done:
		return code, nil
	case err := <-errc:
		return 0, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Probe runs the container's health check once, as an exec through the
// runtime (`exec --detach`, as Exec), and kills it at its timeout.
// Failing to start it is a failed probe with the runtime's message.
func Probe(ctx context.Context, c *Container, reaper Reaper) HealthResult {
	r := HealthResult{Start: time.Now()}
	code, out, err := probe(ctx, c, reaper)
	r.End = time.Now()
	r.ExitCode, r.Output = code, out
	if err != nil {
		r.ExitCode, r.Output = -1, err.Error()
	}
	return r
}

func probe(ctx context.Context, c *Container, reaper Reaper) (int, string, error) {
	cmd := c.Healthcheck.Command()
	proc, err := c.ExecProcessSpec(ExecConfig{Cmd: cmd})
	if err != nil {
		return 0, "", err
	}
	dir, err := os.MkdirTemp("", "berth-probe-")
	if err != nil {
		return 0, "", err
	}
	defer os.RemoveAll(dir)
	procFile, pidFile, logFile := filepath.Join(dir, "process.json"), filepath.Join(dir, "pid"), filepath.Join(dir, "log.json")
	if err := writeJSON(procFile, proc); err != nil {
		return 0, "", err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, "", err
	}
	defer outR.Close()
	output := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(outR, healthOutputMax))
		_, _ = io.Copy(io.Discard, outR)
		output <- string(b)
	}()
	// Not CommandContext: the reaper, not os/exec, waits for it.
	rt := c.Runtime()
	run := rt.Command(context.Background(), "--log", logFile, "--log-format", "json",
		"exec", "--detach", "--pid-file", pidFile, "--process", procFile, c.ID)
	run.Stdout, run.Stderr = outW, outW
	since := time.Now()
	err = run.Start()
	outW.Close()
	if err != nil {
		return 0, "", fmt.Errorf("health check: %w", err)
	}
	pid := run.Process.Pid
	_ = run.Process.Release()
	timeout := c.Healthcheck.ProbeTimeout()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The runtime's exec is not killed at the probe's timeout: killed
	// after it started the command but before it wrote the pid file, it
	// would leave the command running unseen. The command is killed
	// instead, at once if the timeout passed while the runtime worked.
	sctx, cancelStart := context.WithTimeout(ctx, timeout+probeStartGrace)
	defer cancelStart()
	rcode, err := waitOrKill(sctx, reaper, pid, since)
	if err != nil {
		return 0, "", timeoutError(err, timeout)
	}
	if rcode != 0 {
		msg := LastRuntimeError(logFile)
		if msg == "" {
			msg = collect(output)
		}
		return execErrorCode(cmd[0], msg), msg, nil
	}
	data, err := os.ReadFile(pidFile)
	var probePid int
	if err == nil {
		_, err = fmt.Sscan(string(data), &probePid)
	}
	if err != nil {
		return 0, "", fmt.Errorf("health check: read pid file: %w", err)
	}
	code, err := waitOrKill(pctx, reaper, probePid, since)
	if err != nil {
		return 0, "", timeoutError(err, timeout)
	}
	return code, collect(output), nil
}

// probeStartGrace is how much longer than a probe's timeout the runtime's
// exec may take to start it before it is killed as hung.
const probeStartGrace = 30 * time.Second

// waitOrKill waits for pid; when ctx ends first it kills pid and waits
// for it to be reaped (a little longer), so that no zombie is left.
func waitOrKill(ctx context.Context, reaper Reaper, pid int, since time.Time) (int, error) {
	code, err := reaper.Wait(ctx, pid, since)
	if err == nil {
		return code, nil
	}
	_ = unix.Kill(pid, unix.SIGKILL)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = reaper.Wait(wctx, pid, since)
	return 0, err
}

func timeoutError(err error, timeout time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("Health check exceeded timeout (%v)", timeout)
	}
	return err
}

// collect is the probe's output once its pipe is closed; a child left in
// the background holding the pipe does not hold the probe up.
func collect(output <-chan string) string {
	select {
	case s := <-output:
		return s
	case <-time.After(time.Second):
		return ""
	}
}

// ErrNoHealthcheck says a container has no health check to run.
var ErrNoHealthcheck = errors.New("no health check")

// RunHealthcheck probes a running container once, now, and records the
// result as the monitor's probes are (podman's `healthcheck run`). The
// caller becomes a child subreaper: the probe is orphaned to it.
func RunHealthcheck(ctx context.Context, s storage.Store, c *Container) (HealthResult, error) {
	if err := Refresh(ctx, s, c); err != nil {
		return HealthResult{}, err
	}
	if !c.Healthcheck.Enabled() {
		return HealthResult{}, fmt.Errorf("container %s has %w defined", c.Name, ErrNoHealthcheck)
	}
	if c.Status != Running {
		return HealthResult{}, fmt.Errorf("container %s is not running", c.Name)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return HealthResult{}, fmt.Errorf("health check: become subreaper: %w", err)
	}
	r := Probe(ctx, c, DirectReaper{})
	before, after, err := RecordHealth(c, r)
	if err != nil {
		return r, err
	}
	if before != after {
		events.Container(s.RunRoot(), "health_status: "+after, c.ID, c.Image, c.Name)
	}
	return r, nil
}
