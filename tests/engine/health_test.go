package engine

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-containers/berth/engine/container"
)

// health reads a container's State.Health through inspect.
func health(t *testing.T, e *engine, name string) container.Health {
	t.Helper()
	var h *container.Health
	out := e.ok("inspect", "--format", "{{json .State.Health}}", name)
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("inspect %s: %v: %q", name, err, out)
	}
	if h == nil {
		return container.Health{Status: "none"}
	}
	return *h
}

func waitHealth(t *testing.T, e *engine, name, status string) container.Health {
	t.Helper()
	var h container.Health
	waitFor(t, func() bool { h = health(t, e, name); return h.Status == status })
	return h
}

var fastProbe = []string{"--network", "none", "--health-interval", "100ms", "--health-retries", "2"}

// TestHealthcheck: the monitor probes with docker's rules, and the status
// is in inspect, ps, its filter, events and `healthcheck run`.
func TestHealthcheck(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	start := time.Now()
	e.ok(append(append([]string{"run", "-d", "--name", "h"}, fastProbe...), "--health-cmd", "cat /tmp/ok", "busybox", "sleep", "1000")...)
	// Failures in the start period do not count.
	e.ok(append(append([]string{"run", "-d", "--name", "early"}, fastProbe...),
		"--health-cmd", "echo no; exit 1", "--health-start-period", "1h", "busybox", "sleep", "1000")...)

	h := waitHealth(t, e, "h", "unhealthy")
	if h.FailingStreak < 2 || len(h.Log) < 2 || h.Log[0].ExitCode != 1 || !strings.Contains(h.Log[0].Output, "No such file") {
		t.Errorf("unhealthy: %+v", h)
	}
	if out := e.ok("ps", "--filter", "name=^h$", "--format", "{{.Status}}"); !strings.HasSuffix(out, "(unhealthy)\n") {
		t.Errorf("ps status: %q", out)
	}
	if r := e.run(nil, "healthcheck", "run", "h"); r.Code != 1 || r.Stdout != "unhealthy\n" {
		t.Errorf("healthcheck run of an unhealthy container: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}
	e.ok("exec", "h", "sh", "-c", "echo fine > /tmp/ok")
	h = waitHealth(t, e, "h", "healthy")
	if last := h.Log[len(h.Log)-1]; h.FailingStreak != 0 || last.ExitCode != 0 || last.Output != "fine\n" || last.End.Before(last.Start) {
		t.Errorf("healthy: %+v", h)
	}
	if len(h.Log) > 5 {
		t.Errorf("%d results kept, docker keeps 5", len(h.Log))
	}
	if out := e.ok("ps", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "h Up") || !strings.HasSuffix(out, "(healthy)\n") {
		t.Errorf("ps --filter health=healthy: %q", out)
	}
	e.ok("healthcheck", "run", "h")
	eventsUntil(t, e, "health_status: healthy", "--since", unixArg(start), "--filter", "container=h")

	waitFor(t, func() bool { h = health(t, e, "early"); return len(h.Log) >= 3 })
	if h.Status != "starting" || h.FailingStreak != 0 || h.Log[0].Output != "no\n" {
		t.Errorf("in the start period: %+v", h)
	}
	if out := e.ok("ps", "--filter", "health=starting", "--format", "{{.Names}} {{.Status}}"); !strings.HasSuffix(out, "(health: starting)\n") || !strings.HasPrefix(out, "early ") {
		t.Errorf("ps --filter health=starting: %q", out)
	}
	if out := e.ok("ps", "-q", "--filter", "health=none"); out != "" {
		t.Errorf("health=none lists %q", out)
	}

	// Stopped: no probe runs, none is left, and nothing of it stays.
	id := strings.TrimSpace(e.ok("inspect", "--format", "{{.Id}}", "h"))
	e.ok("rm", "-f", "h", "early")
	assertNoLeftovers(t, e, id)
}

// TestHealthcheckProbes: a probe that hangs is killed at its timeout; a
// command that cannot run makes the container unhealthy with the
// runtime's message; the image's HEALTHCHECK is used, and
// --no-healthcheck turns it off; a paused container is not probed.
func TestHealthcheckProbes(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	e.ok(append(append([]string{"run", "-d", "--name", "hang"}, fastProbe...),
		"--health-cmd", "sleep 1000", "--health-timeout", "200ms", "busybox", "sleep", "1000")...)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nHEALTHCHECK --interval=100ms --retries=1 CMD [\"/no/such/probe\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.ok("build", "-q", "-t", "probed", dir)
	e.ok("run", "-d", "--name", "missing", "--network", "none", "probed", "sleep", "1000")
	e.ok("run", "-d", "--name", "off", "--network", "none", "--no-healthcheck", "probed", "sleep", "1000")
	e.ok(append(append([]string{"run", "-d", "--name", "paused"}, fastProbe...), "--health-cmd", "true", "busybox", "sleep", "1000")...)

	h := waitHealth(t, e, "hang", "unhealthy")
	if r := h.Log[0]; r.ExitCode != -1 || r.Output != "Health check exceeded timeout (200ms)" || r.End.Sub(r.Start) > 5*time.Second {
		t.Errorf("timed-out probe: %+v", r)
	}
	// Killed at the timeout: at most the probe in flight is left.
	if out := e.ok("top", "hang"); strings.Count(out, "sleep 1000") > 2 {
		t.Errorf("probes pile up:\n%s", out)
	}

	h = waitHealth(t, e, "missing", "unhealthy")
	if r := h.Log[0]; r.ExitCode != 127 || !strings.Contains(r.Output, "/no/such/probe") {
		t.Errorf("probe that cannot run: %+v", r)
	}
	if out := e.ok("inspect", "--format", "{{json .Config.Healthcheck.Test}}", "missing"); out != "[\"CMD\",\"/no/such/probe\"]\n" {
		t.Errorf("the image's health check: %q", out)
	}
	if out := e.ok("ps", "--filter", "name=off", "--format", "{{.Status}}"); strings.Contains(out, "health") {
		t.Errorf("--no-healthcheck: %q", out)
	}
	e.fail("no health check", "healthcheck", "run", "off")

	waitHealth(t, e, "paused", "healthy")
	e.ok("pause", "paused")
	pausedAt := time.Now()
	// Ten intervals: long enough for probes to have run, had they run.
	time.Sleep(time.Second)
	for _, r := range health(t, e, "paused").Log {
		if r.Start.After(pausedAt) {
			t.Errorf("probed while paused: %+v", r)
		}
	}
	e.ok("unpause", "paused")
	waitFor(t, func() bool {
		log := health(t, e, "paused").Log
		return log[len(log)-1].Start.After(pausedAt)
	})
	e.ok("rm", "-f", "hang", "missing", "off", "paused")
	assertNoLeftovers(t, e, "")
}

// TestHealthOnFailure: podman's --health-on-failure acts when the
// container turns unhealthy; a monitor killed with -9 leaves the health
// unknown, not stale; bad flags are refused at create, naming the flag.
func TestHealthOnFailure(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	failing := append(append([]string{}, fastProbe...), "--health-cmd", "false")
	e.ok(append(append([]string{"run", "-d", "--name", "killed"}, failing...), "--health-on-failure", "kill", "busybox", "sleep", "1000")...)
	e.ok(append(append([]string{"run", "-d", "--name", "stopped"}, failing...), "--health-on-failure", "stop",
		"busybox", "sh", "-c", "trap 'exit 3' TERM; while true; do sleep 0.1; done")...)
	e.ok(append(append([]string{"run", "-d", "--name", "restarted"}, failing...), "--health-on-failure", "restart", "busybox", "sleep", "1000")...)
	e.ok(append(append([]string{"run", "-d", "--name", "orphan"}, fastProbe...), "--health-cmd", "true", "busybox", "sleep", "1000")...)

	if out := e.ok("wait", "killed"); out != "137\n" {
		t.Errorf("kill on failure: exit %q", out)
	}
	// Stopped with the stop signal, which its trap answers.
	if out := e.ok("wait", "stopped"); out != "3\n" {
		t.Errorf("stop on failure: exit %q", out)
	}
	// Run again (whatever its --restart), and again, as it fails again.
	waitFor(t, func() bool {
		n, status, _ := strings.Cut(strings.TrimSpace(e.ok("inspect", "--format", "{{.RestartCount}} {{.State.Status}}", "restarted")), " ")
		return n != "0" && status == "running"
	})

	waitHealth(t, e, "orphan", "healthy")
	pid := monitorPidOf(t, e, "orphan")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return monitorPidOf(t, e, "orphan") == 0 })
	if out := e.ok("ps", "--filter", "name=orphan", "--format", "{{.Status}}"); !strings.HasSuffix(out, "(health: unknown)\n") {
		t.Errorf("unmonitored: %q", out)
	}
	e.ok("rm", "-f", "killed", "stopped", "restarted", "orphan")

	for _, c := range []struct{ flag, value string }{
		{"--health-interval", "soon"}, {"--health-timeout", "-1s"}, {"--health-start-period", "1ns"},
		{"--health-retries", "-1"}, {"--health-on-failure", "explode"},
	} {
		e.fail(c.flag, "run", "--name", "bad", c.flag, c.value, "--health-cmd", "true", "busybox", "true")
	}
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("a refused create left %q", out)
	}
	assertNoLeftovers(t, e, "")
}

// TestStopRemoveWhileRestarting: a stop or rm -f that comes while the
// monitor is between runs (here the restarts of --health-on-failure,
// which have no backoff) ends the restarts; the run being started then
// is not left behind.
func TestStopRemoveWhileRestarting(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	restarting := func(name string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			if e.ok("inspect", "--format", "{{.State.Restarting}}", name) == "true\n" {
				return
			}
		}
		t.Fatalf("%s never seen restarting", name)
	}
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("r%d", i)
		e.ok("run", "-d", "--name", name, "--network", "none", "--health-interval", "100ms", "--health-retries", "1",
			"--health-cmd", "false", "--health-on-failure", "restart", "busybox", "sleep", "1000")
		restarting(name)
		if i%2 == 0 {
			e.ok("rm", "-f", name)
			continue
		}
		e.ok("stop", name)
		if out := e.ok("inspect", "--format", "{{.State.Status}} {{.State.Restarting}}", name); out != "exited false\n" {
			t.Errorf("stopped while restarting: %q", out)
		}
		if pid := monitorPidOf(t, e, name); pid != 0 {
			t.Errorf("stopped while restarting: monitor %d still runs", pid)
		}
		e.ok("rm", name)
	}
	assertNoLeftovers(t, e, "")
}

// TestAPIHealth: docker run --health-* through the service, and the
// status in docker ps, its health filter and docker inspect.
func TestAPIHealth(t *testing.T) {
	eachDockerCLI(t, func(t *testing.T, e *engine, s *service) {
		s.dockerOK(t, e, "run", "-d", "--name", "probed", "--network", "none", "--health-cmd", "test -e /tmp/ok",
			"--health-interval", "100ms", "--health-retries", "1", "busybox", "sleep", "1000")
		waitFor(t, func() bool {
			return s.dockerOK(t, e, "inspect", "--format", "{{.State.Health.Status}}", "probed") == "unhealthy\n"
		})
		s.dockerOK(t, e, "exec", "probed", "touch", "/tmp/ok")
		waitFor(t, func() bool {
			return s.dockerOK(t, e, "ps", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}") != ""
		})
		if out := s.dockerOK(t, e, "ps", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "probed Up") || !strings.HasSuffix(out, "(healthy)\n") {
			t.Errorf("docker ps: %q", out)
		}
		if out := s.dockerOK(t, e, "inspect", "--format", "{{json .Config.Healthcheck.Test}} {{.Config.Healthcheck.Retries}}", "probed"); out != "[\"CMD-SHELL\",\"test -e /tmp/ok\"] 1\n" {
			t.Errorf("docker inspect Config.Healthcheck: %q", out)
		}
		s.dockerOK(t, e, "rm", "-f", "probed")
	})
}

// TestHealthcheckImageStartInterval: an image's HEALTHCHECK with
// --start-interval (which go-containerregistry's config type drops) is
// read from the stored config: with an interval of an hour, probes come
// every 100 ms of the start interval.
func TestHealthcheckImageStartInterval(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	var in, out bytes.Buffer
	saved := e.run(nil, "save", "busybox:latest")
	if saved.Code != 0 {
		t.Fatalf("save: %s", saved.Stderr)
	}
	in.WriteString(saved.Stdout)
	tr, tw := tar.NewReader(&in), tar.NewWriter(&out)
	files := map[string][]byte{}
	var order []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[h.Name] = data
		order = append(order, h)
	}
	var manifest []map[string]any
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(files[manifest[0]["Config"].(string)], &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["config"].(map[string]any)["Healthcheck"] = map[string]any{
		"Test": []string{"CMD-SHELL", "exit 1"}, "Interval": time.Hour, "StartPeriod": time.Hour,
		"StartInterval": 100 * time.Millisecond,
	}
	raw, _ := json.Marshal(cfg)
	files["cfg.json"], manifest[0]["Config"] = raw, "cfg.json"
	manifest[0]["RepoTags"] = []string{"localhost/hc-start:latest"}
	files["manifest.json"], _ = json.Marshal(manifest)
	for _, h := range append(order, &tar.Header{Name: "cfg.json", Mode: 0o644, Typeflag: tar.TypeReg}) {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(files[h.Name]))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(files[h.Name])
	}
	tw.Close()
	if r := e.run(out.Bytes(), "load"); r.Code != 0 {
		t.Fatalf("load: %s", r.Stderr)
	}
	e.ok("run", "-d", "--name", "si", "--network", "none", "hc-start", "sleep", "1000")
	var h container.Health
	waitFor(t, func() bool { h = health(t, e, "si"); return len(h.Log) >= 2 })
	if h.Status != "starting" || h.FailingStreak != 0 {
		t.Errorf("in the start period: %+v", h)
	}
	if out := e.ok("inspect", "--format", "{{.Config.Healthcheck.StartInterval}}", "si"); out != "100ms\n" {
		t.Errorf("StartInterval: %q", out)
	}
	e.ok("rm", "-f", "si")
}
