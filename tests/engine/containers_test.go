package engine

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/container"
)

// withBusybox gives the engine the built-in busybox image, made by the
// engine's user (with the copy of the script asUser made, if any).
func withBusybox(t testing.TB, e *engine) {
	t.Helper()
	script := "../../contrib/busybox-image.sh"
	if e.bin != "" {
		script = filepath.Join(e.dir, "repo", "contrib", "busybox-image.sh")
	}
	cmd := e.command(script, e.berth(), "--", "--root", e.root, "--runroot", e.runroot, "--config", e.Config)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("busybox-image.sh: %v\n%s", err, out)
	}
}

// runtimes are the OCI runtimes the container tests run with: berth's
// default (berth-runtime beside berth), runc, and crun through the wrapper
// that hides this hybrid host's cgroup2 controllers from it.
func runtimes(t *testing.T) []string {
	list := []string{""}
	if _, err := exec.LookPath("runc"); err == nil {
		list = append(list, "runc")
	}
	if _, err := exec.LookPath("crun"); err == nil {
		wrapper, err := filepath.Abs("../conformance/crun-wrapper.sh")
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, wrapper)
	}
	return list
}

func runtimeName(r string) string {
	switch {
	case r == "":
		return "berth-runtime"
	case strings.HasSuffix(r, "crun-wrapper.sh"):
		return "crun"
	}
	return r
}

func TestRunExitCodesAndOutput(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	for _, rt := range runtimes(t) {
		t.Run(runtimeName(rt), func(t *testing.T) {
			run := func(args ...string) result {
				if rt != "" {
					args = append([]string{"run", "--runtime", rt}, args...)
				} else {
					args = append([]string{"run"}, args...)
				}
				return e.run(nil, args...)
			}
			if r := run("--rm", "busybox", "echo", "hello"); r.Code != 0 || r.Stdout != "hello\n" {
				t.Errorf("echo: %+v", r)
			}
			if r := run("--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"); r.Code != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" {
				t.Errorf("exit 3: %+v", r)
			}
			if r := run("--rm", "busybox", "nosuchcommand"); r.Code != 127 || !strings.Contains(r.Stderr, "nosuchcommand") {
				t.Errorf("not found: %+v", r)
			}
			if r := run("--rm", "busybox", "/etc/passwd"); r.Code != 126 {
				t.Errorf("not executable: %+v", r)
			}
			// Not as PID 1, which SIGKILL from inside its namespace cannot kill.
			if r := run("--rm", "--init", "busybox", "sh", "-c", "kill -9 $$"); r.Code != 137 {
				t.Errorf("killed: %+v", r)
			}
			// Input reaches the container with -i.
			r := e.run([]byte("from stdin\n"), append(runFlags(rt), "--rm", "-i", "busybox", "cat")...)
			if r.Code != 0 || r.Stdout != "from stdin\n" {
				t.Errorf("-i: %+v", r)
			}
		})
	}
	if out := e.ok("ps", "-a", "-q"); out != "" {
		t.Errorf("--rm left containers: %q", out)
	}
}

func runFlags(rt string) []string {
	if rt == "" {
		return []string{"run"}
	}
	return []string{"run", "--runtime", rt}
}

func TestRunOptions(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	out := e.ok("run", "--rm", "-e", "A=1,2", "-w", "/tmp", "-u", "1000:1000", "--hostname", "box",
		"--label", "k=v", "busybox", "sh", "-c", `echo "$A $(pwd) $(id -u):$(id -g) $(hostname)"`)
	if out != "1,2 /tmp 1000:1000 box\n" {
		t.Errorf("options: %q", out)
	}
	if out := e.ok("run", "--rm", "--read-only", "busybox", "sh", "-c", "touch /x 2>&1; echo $?"); !strings.Contains(out, "Read-only file system") {
		t.Errorf("--read-only: %q", out)
	}
	if out := e.ok("run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"); out != "a b\n" {
		t.Errorf("--entrypoint: %q", out)
	}
	if out := e.ok("run", "--rm", "-m", "64m", "--pids-limit", "50", "busybox", "sh", "-c",
		"cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"); out != "67108864\n50\n" {
		t.Errorf("limits: %q", out)
	}
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("bound"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("run", "--rm", "-v", host+":/data:ro", "busybox", "sh", "-c", "cat /data/f; touch /data/g 2>/dev/null || echo ro"); out != "boundro\n" {
		t.Errorf("-v ro: %q", out)
	}
	if out := e.ok("run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"); !strings.HasPrefix(out, "/dev/init -- sh") {
		t.Errorf("--init: %q", out)
	}
	if out := e.ok("run", "--rm", "--cap-drop", "ALL", "busybox", "sh", "-c", "grep CapEff /proc/self/status"); !strings.Contains(out, "0000000000000000") {
		t.Errorf("--cap-drop ALL: %q", out)
	}
	e.fail("invalid --restart", "run", "--restart", "sometimes", "busybox", "true")
	e.fail("network bridge0 not found", "run", "--network", "bridge0", "busybox", "true")
	e.fail("no such image", "run", "--pull", "never", "nothere", "true")
	if out := e.ok("ps", "-a", "-q"); out != "" {
		t.Errorf("failed creates left containers: %q", out)
	}
}

func TestDetachedLifecycle(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	for _, rt := range runtimes(t) {
		t.Run(runtimeName(rt), func(t *testing.T) { detachedLifecycle(t, e, rt) })
	}
}

func detachedLifecycle(t *testing.T, e *engine, rt string) {
	flags := runFlags(rt)[1:]
	id := strings.TrimSpace(e.ok(append(append([]string{"run"}, flags...), "-d", "--name", "ticker", "busybox", "sh", "-c",
		"trap 'echo bye; exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done")...))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	waitFor(t, func() bool { return strings.Contains(e.ok("logs", "ticker"), "tick 3") })
	if out := e.ok("ps", "--format", "{{.Names}} {{.State}}"); strings.TrimSpace(out) != "ticker running" {
		t.Errorf("ps: %q", out)
	}
	if out := e.ok("logs", "--tail", "1", "ticker"); strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "tick ") {
		t.Errorf("logs --tail 1: %q", out)
	}
	if out := e.ok("logs", "-t", "--tail", "1", "ticker"); !strings.Contains(out, "Z tick") {
		t.Errorf("logs -t: %q", out)
	}
	// logs -f follows until the container stops.
	follow := e.cmd("logs", "-f", "--tail", "0", "ticker")
	pipe, _ := follow.StdoutPipe()
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pipe)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "tick ") {
		t.Errorf("logs -f: first line %q", sc.Text())
	}
	start := time.Now()
	e.ok("stop", "ticker")
	if time.Since(start) > 5*time.Second {
		t.Errorf("stop took %v: the TERM trap should end it at once", time.Since(start))
	}
	var rest []string
	for sc.Scan() {
		rest = append(rest, sc.Text())
	}
	if err := follow.Wait(); err != nil {
		t.Errorf("logs -f: %v", err)
	}
	if len(rest) == 0 || rest[len(rest)-1] != "bye" {
		t.Errorf("logs -f after stop: %q", rest)
	}
	if out := e.ok("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.Name}} {{.Config.Image}}", "ticker"); out != "exited 0 /ticker busybox\n" {
		t.Errorf("inspect: %q", out)
	}
	if out := e.ok("wait", "ticker"); out != "0\n" {
		t.Errorf("wait: %q", out)
	}
	// Start again, kill, remove.
	e.ok("start", "ticker")
	e.ok("kill", "-s", "KILL", "ticker")
	if out := e.ok("wait", "ticker"); out != "137\n" {
		t.Errorf("wait after kill: %q", out)
	}
	e.ok("start", "ticker")
	e.fail("stop it first or use --force", "rm", "ticker")
	e.ok("rm", "-f", "ticker")
	e.fail("no such container", "logs", "ticker")
	assertNoLeftovers(t, e, id)
}

// assertNoLeftovers checks that a removed container left no mount, cgroup,
// monitor, runtime state or storage.
func assertNoLeftovers(t *testing.T, e *engine, id string) {
	t.Helper()
	// The store's own private bind of its overlay directory may stay; a
	// container's merged rootfs may not.
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if m := grepLines(string(mounts), e.root); strings.Contains(m, "/merged") {
		t.Errorf("container rootfs still mounted:\n%s", m)
	}
	if id != "" {
		for _, ctl := range []string{"memory", "pids", "cpu,cpuacct", "freezer"} {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ctl, "berth", id)); err == nil {
				t.Errorf("cgroup %s/berth/%s left", ctl, id)
			}
		}
	}
	// Any monitor of this engine's store (their command lines name it).
	if out, _ := exec.Command("pgrep", "-f", "--root "+e.root+" .*__monitor").Output(); len(out) > 0 {
		t.Errorf("monitor still running: %s", out)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.runroot, "runtime")); len(entries) > 0 {
		t.Errorf("runtime state left: %v", entries)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.root, "overlay-containers")); countLayers(entries) > 0 {
		t.Errorf("container directories left: %v", entries)
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met in 10 s")
}

func TestRunRemoveLeavesNothing(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	layersBefore, _ := os.ReadDir(filepath.Join(e.root, "overlay"))
	e.ok("run", "--rm", "--name", "gone", "-m", "32m", "busybox", "true")
	assertNoLeftovers(t, e, "")
	if out := e.ok("ps", "-a", "-q"); out != "" {
		t.Errorf("ps -a: %q", out)
	}
	if after, _ := os.ReadDir(filepath.Join(e.root, "overlay")); countLayers(after) != countLayers(layersBefore) {
		t.Errorf("layers: %d before, %d after", countLayers(layersBefore), countLayers(after))
	}
	// -d --rm: the monitor removes it when it ends.
	e.ok("run", "-d", "--rm", "--name", "gone2", "busybox", "sleep", "0.2")
	waitFor(t, func() bool { return e.ok("ps", "-a", "-q") == "" })
	assertNoLeftovers(t, e, "")
}

func TestRestartPolicy(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	e.ok("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 1")
	// wait returns when the monitor is done: after the last retry.
	if out := e.ok("wait", "flaky"); out != "1\n" {
		t.Errorf("wait: %q", out)
	}
	if out := e.ok("inspect", "--format", "{{.State.Status}} {{.RestartCount}}", "flaky"); out != "exited 2\n" {
		t.Errorf("after retries: %q", out)
	}
	if out := e.ok("logs", "flaky"); out != "run\nrun\nrun\n" {
		t.Errorf("three runs expected: %q", out)
	}
	e.ok("run", "-d", "--name", "always", "--restart", "always", "busybox", "sh", "-c", "exit 0")
	waitFor(t, func() bool {
		n, _ := strconv.Atoi(strings.TrimSpace(e.ok("inspect", "--format", "{{.RestartCount}}", "always")))
		return n >= 2
	})
	// A stopped container is not restarted.
	e.ok("stop", "-t", "1", "always")
	n1 := e.ok("inspect", "--format", "{{.RestartCount}}", "always")
	time.Sleep(500 * time.Millisecond)
	if n2 := e.ok("inspect", "--format", "{{.RestartCount}} {{.State.Status}}", "always"); n2 != strings.TrimSpace(n1)+" exited\n" {
		t.Errorf("restarted after stop: %q then %q", n1, n2)
	}
	e.ok("rm", "-f", "flaky", "always")
}

// TestMonitorKilled kills a container's monitor with SIGKILL: berth then
// says the truth about the container and can still stop and remove it.
func TestMonitorKilled(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	id := strings.TrimSpace(e.ok("run", "-d", "--name", "orphan", "busybox", "sleep", "1000"))
	monitorPid := func() int { return monitorPidOf(t, e, "orphan") }
	pid := monitorPid()
	if pid == 0 {
		t.Fatal("no monitor process")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return monitorPid() == 0 })
	// The container runs on, unmonitored, and says so.
	if out := e.ok("inspect", "--format", "{{.State.Status}}|{{.State.Error}}", "orphan"); !strings.HasPrefix(out, "running|") || !strings.Contains(out, "monitor") {
		t.Errorf("after monitor kill: %q", out)
	}
	e.ok("stop", "-t", "1", "orphan")
	if out := e.ok("inspect", "--format", "{{.State.Status}}", "orphan"); out != "exited\n" {
		t.Errorf("after stop: %q", out)
	}
	e.ok("rm", "orphan")
	assertNoLeftovers(t, e, id)
}

// TestParallelRuns starts 100 containers with concurrent `berth run -d`.
func TestParallelRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("100 containers")
	}
	e := newEngine(t)
	withBusybox(t, e)
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan string, n)
	sem := make(chan struct{}, 16)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c := e.cmd("run", "-d", "--name", fmt.Sprintf("p%d", i), "busybox", "sleep", "1000")
			if out, err := c.CombinedOutput(); err != nil {
				errs <- fmt.Sprintf("p%d: %v: %s", i, err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	if out := e.ok("ps", "-q"); strings.Count(out, "\n") != n {
		t.Errorf("%d running, want %d", strings.Count(out, "\n"), n)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("p%d", i)
	}
	e.ok(append([]string{"rm", "-f"}, names...)...)
	if out := e.ok("ps", "-a", "-q"); out != "" {
		t.Errorf("left after rm -f: %q", out)
	}
	assertNoLeftovers(t, e, "")
}

// TestRunTerminal runs -it through a real pty (script(1)).
func TestRunTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) not found")
	}
	e := newEngine(t)
	withBusybox(t, e)
	c := e.cmd("run", "--rm", "-it", "busybox", "sh")
	cmdline := strings.Join(append([]string{c.Path}, c.Args[1:]...), " ")
	// Input typed into the terminal: the shell reads it from its pty.
	script := exec.Command("script", "-qfec", "stty cols 77 rows 21; "+cmdline, "/dev/null")
	script.Env = c.Env
	script.Stdin = strings.NewReader("tty; stty size; echo $TERM; exit 7\n")
	out, err := script.CombinedOutput()
	text := string(out)
	if !strings.Contains(text, "/dev/pts/") || !strings.Contains(text, "21 77") || !strings.Contains(text, "xterm") {
		t.Errorf("terminal session: %q", text)
	}
	var ee *exec.ExitError
	if err == nil || !asExit(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("exit code through script: %v", err)
	}
}

func asExit(err error, target **exec.ExitError) bool {
	ee, ok := err.(*exec.ExitError)
	*target = ee
	return ok
}

func TestLogDrivers(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	e.ok("run", "--name", "j", "--log-driver", "json-file", "busybox", "sh", "-c", "echo one; echo two >&2")
	if out := e.ok("logs", "j"); out != "one\n" {
		t.Errorf("json-file logs stdout: %q", out)
	}
	path := strings.TrimSpace(e.ok("inspect", "--format", "{{.LogPath}}", "j"))
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), `"log":"two\n","stream":"stderr"`) {
		t.Errorf("json-file format: %s", data)
	}
	// Rotation: 3 files of at most 2 KiB.
	e.ok("run", "--name", "rot", "--log-opt", "max-size=2k", "--log-opt", "max-file=3", "busybox", "sh", "-c",
		"i=0; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); done")
	path = strings.TrimSpace(e.ok("inspect", "--format", "{{.LogPath}}", "rot"))
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		if err != nil || st.Size() > 2048 {
			t.Errorf("rotated file %s: %v", p, err)
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Errorf("more than max-file files kept")
	}
	out := e.ok("logs", "rot")
	if !strings.HasSuffix(out, "line 399\n") || strings.Contains(out, "line 0\n") {
		t.Errorf("rotated logs: ends %q", out[max(0, len(out)-40):])
	}
	e.ok("run", "--name", "quiet", "--log-driver", "none", "busybox", "echo", "x")
	e.fail("keeps no log", "logs", "quiet")
	e.fail("invalid --log-driver", "run", "--log-driver", "syslog", "busybox", "true")
}

// TestAbandonedCreate: a berth killed during create leaves a storage
// container without berth's record; the next listing removes it, while one
// whose creator still lives is left alone.
func TestAbandonedCreate(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	imgID := strings.TrimSpace(e.ok("images", "-q", "--no-trunc"))
	imgID = strings.TrimPrefix(imgID, "sha256:")
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Process.Kill()
	stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", sleeper.Process.Pid))
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	withStore(t, e, func(s storage.Store) {
		if _, err := s.CreateContainer("", []string{"dead"}, imgID, "", "creating 999999 1", nil); err != nil {
			t.Fatal(err)
		}
		mark := fmt.Sprintf("creating %d %s", sleeper.Process.Pid, fields[19])
		if _, err := s.CreateContainer("", []string{"busy"}, imgID, "", mark, nil); err != nil {
			t.Fatal(err)
		}
	})
	e.ok("ps", "-a")
	withStore(t, e, func(s storage.Store) {
		cs, _ := s.Containers()
		if len(cs) != 1 || cs[0].Names[0] != "busy" {
			t.Errorf("storage containers after ps: %+v", cs)
		}
	})
}

// TestSignalProxy: a signal sent to a foreground `berth run` reaches the
// container, whose exit code berth then exits with.
func TestSignalProxy(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	c := e.cmd("run", "--rm", "--init", "busybox", "sh", "-c", `trap 'echo got TERM; exit 5' TERM; echo ready; while true; do sleep 0.1; done`)
	out, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("first line %q", sc.Text())
	}
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !sc.Scan() || sc.Text() != "got TERM" {
		t.Errorf("after SIGTERM: %q", sc.Text())
	}
	err := c.Wait()
	var ee *exec.ExitError
	if !asExit(err, &ee) || ee.ExitCode() != 5 {
		t.Errorf("berth run exit: %v, want 5", err)
	}
}

// monitorPidOf reads a container's monitor pid from its state file; 0 when
// it has none, is gone, or is a zombie nobody reaps.
func monitorPidOf(t *testing.T, e *engine, name string) int {
	t.Helper()
	dir := filepath.Dir(strings.TrimSpace(e.ok("inspect", "--format", "{{.LogPath}}", name)))
	c, err := container.Open(dir, "")
	if err != nil || !c.MonitorAlive() {
		return 0
	}
	return c.MonitorPid
}

// TestAutoRemoveStopRmWait: stop, rm -f and wait of a --rm container, whose
// monitor removes it as it ends, succeed as docker's do (wait with the exit
// code), and leave nothing.
func TestAutoRemoveStopRmWait(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	e.ok("run", "--rm", "-d", "--network", "none", "--name", "a", "busybox", "sleep", "30")
	if out := e.ok("rm", "-f", "a"); out != "a\n" {
		t.Errorf("rm -f: %q", out)
	}
	e.ok("run", "--rm", "-d", "--network", "none", "--name", "b", "busybox", "sleep", "30")
	if out := e.ok("stop", "-t", "1", "b"); out != "b\n" {
		t.Errorf("stop: %q", out)
	}
	e.ok("run", "--rm", "-d", "--network", "none", "--name", "c", "busybox", "sh", "-c", "sleep 1; exit 3")
	if out := e.ok("wait", "c"); out != "3\n" {
		t.Errorf("wait: %q, want 3", out)
	}
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("containers left: %q", out)
	}
	// The names are free again at once.
	e.ok("run", "--rm", "--network", "none", "--name", "a", "busybox", "true")
	assertNoLeftovers(t, e, "")
}
