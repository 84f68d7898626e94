package monitor

import (
	"context"
	"time"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/events"
)

// prober runs the container's health check while the container runs: the
// monitor is the only berth process that lives as long as the container,
// so health checks need no daemon and no timers of systemd's.
type prober struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startProbes starts probing a container that has just started (its
// health "starting" since); nil when it has no health check.
func (m *Monitor) startProbes(ctx context.Context) *prober {
	if !m.c.Healthcheck.Enabled() {
		return nil
	}
	// The prober's own copy: its Reload and Update do not touch the state
	// the monitor's goroutine works on.
	c := *m.c
	ctx, cancel := context.WithCancel(ctx)
	p := &prober{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		m.probeLoop(ctx, &c)
	}()
	return p
}

func (m *Monitor) probeLoop(ctx context.Context, c *container.Container) {
	hc := c.Healthcheck
	started := time.Now()
	for {
		t := time.NewTimer(hc.NextProbe(started))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		// A frozen container cannot answer: no probe while paused.
		if err := c.Reload(); err != nil || c.Status == container.Paused {
			continue
		}
		r := container.Probe(ctx, c, m.reaper)
		if ctx.Err() != nil {
			return // the container ended during the probe: not its health
		}
		before, after, err := container.RecordHealth(c, r)
		if err != nil || before == after {
			continue
		}
		events.Container(events.RunRootOf(c.RunDir), "health_status: "+after, c.ID, c.Image, c.Name)
		if after == container.HealthUnhealthy {
			m.onUnhealthy(ctx, c)
		}
	}
}

// onUnhealthy is podman's --health-on-failure. A killed or stopped
// container is not restarted by its policy; restart runs it again
// whatever the policy.
func (m *Monitor) onUnhealthy(ctx context.Context, c *container.Container) {
	action := c.Healthcheck.OnFailure
	switch action {
	case "kill", "stop":
		_ = c.Update(func(st *container.State) error { st.Stopped = true; return nil })
	case "restart":
		m.healthRestart.Store(true)
	default:
		return
	}
	sig := "SIGKILL"
	if action == "stop" && c.StopSignal != "" {
		sig = c.StopSignal
	} else if action == "stop" {
		sig = "SIGTERM"
	}
	_ = m.runtime(ctx, "kill", c.ID, sig)
	if sig == "SIGKILL" {
		return
	}
	select {
	case <-ctx.Done(): // the container has exited
	case <-time.After(time.Duration(c.StopTimeout) * time.Second):
		_ = m.runtime(ctx, "kill", c.ID, "SIGKILL")
	}
}

// runtime runs a runtime command whose exit the reaper collects.
func (m *Monitor) runtime(ctx context.Context, args ...string) error {
	cmd := m.c.Runtime().Command(context.Background(), args...)
	since := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	_, err := m.reaper.Wait(context.WithoutCancel(ctx), pid, since)
	return err
}

// stop ends the probes and returns once no probe is in flight.
func (p *prober) stop() {
	if p != nil {
		p.cancel()
	}
}
