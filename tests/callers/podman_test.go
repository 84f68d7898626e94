package callers

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const podmanTimeout = 30 * time.Second

// TestPodman drives containers through podman 4.3 and conmon with
// `podman --runtime`, once with berth-runtime and once with runc.
func TestPodman(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: podman, conmon and the runtime create mounts, namespaces and cgroups")
	}
	lookPaths(t, "podman", "podman", "conmon")
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Skipf("no static busybox to build the image from (Debian package busybox-static): %v", err)
	}
	berth := berthRuntime(t)

	p := newPodman(t)
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	if err := writeBusyboxImage(archive, busyboxPath, busyboxImage); err != nil {
		t.Fatal(err)
	}
	// podman names the image after the index's annotation, as ctr does.
	if res := p.podman(t, berth, "load", "-i", archive); res.code != 0 || !strings.Contains(res.stdout, busyboxImage) {
		t.Fatalf("podman load: exit %d, stdout %q, want 0 and %s; stderr: %s", res.code, res.stdout, busyboxImage, res.stderr)
	}

	for _, rt := range []struct{ name, binary, root string }{
		// podman runs the runtime without --root: the state is in its default.
		{"berth-runtime", berth, "/run/berth-runtime"},
		{"runc", runcPath, "/run/runc"},
	} {
		t.Run(rt.name, func(t *testing.T) {
			if _, err := os.Stat(rt.binary); err != nil {
				t.Skipf("%s not installed: %v", rt.name, err)
			}
			r := &podmanRuntime{p: p, name: rt.name, binary: rt.binary, stateRoot: rt.root}
			t.Run("run", r.testRun)
			t.Run("exit-code", r.testExitCode)
			t.Run("missing-command", r.testMissingCommand)
			t.Run("exec-stop", r.testExecStop)
			t.Run("pause", r.testPause)
			t.Run("update", r.testUpdate)
			t.Run("run-tty", r.testRunTTY)
		})
	}
}

// podman runs podman with storage, state and temporary files of its own in
// a temporary directory, so it leaves the host's containers alone.
type podman struct {
	dir        string
	containers map[string]*podmanRuntime // the runtime each container was run with, by id
}

func newPodman(t *testing.T) *podman {
	t.Helper()
	p := &podman{dir: t.TempDir(), containers: map[string]*podmanRuntime{}}
	// podman 4.3 puts netavark's state and the image copy's blob cache in
	// fixed places whatever it is told, and runs conmon in a cgroup of its
	// own beside the containers' parent.
	created := absentHostPaths("/run/containers", "/run/containers/networks",
		"/var/lib/containers", "/var/lib/containers/cache", "/var/lib/containers/cache/blob-info-cache-v1.boltdb")
	conmonCgroups, parentCgroups := newCgroups("libpod_parent/conmon"), newCgroups("libpod_parent")
	t.Cleanup(func() {
		p.cleanup(t)
		created.remove(t)
		conmonCgroups(t)
		parentCgroups(t)
	})
	return p
}

// podman runs podman with runtime as its OCI runtime.
func (p *podman) podman(t *testing.T, runtime string, args ...string) cmdResult {
	t.Helper()
	return runCmd(t, podmanTimeout, "podman", p.args(runtime, args...), nil)
}

func (p *podman) args(runtime string, args ...string) []string {
	global := []string{
		"--root", filepath.Join(p.dir, "root"),
		"--runroot", filepath.Join(p.dir, "run"),
		"--tmpdir", filepath.Join(p.dir, "tmp"),
		"--network-config-dir", filepath.Join(p.dir, "networks"),
		"--storage-driver", "overlay",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
		"--runtime", runtime,
	}
	return append(global, args...)
}

// cleanup removes, as a failure, what a broken run left: containers, the
// runtimes' state of them, conmon, container processes, cgroups, mounts.
func (p *podman) cleanup(t *testing.T) {
	for _, id := range strings.Fields(p.podman(t, runcPath, "ps", "--all", "--quiet", "--no-trunc").stdout) {
		t.Errorf("container left: %s: removing it", id)
		runtime := runcPath
		if r, ok := p.containers[id]; ok {
			runtime = r.binary
		}
		if res := p.podman(t, runtime, "rm", "--force", "--time", "0", id); res.code != 0 {
			t.Errorf("podman rm %s: exit %d; stderr: %s", id, res.code, res.stderr)
		}
	}
	for id, r := range p.containers {
		stateDir := filepath.Join(r.stateRoot, id)
		if _, err := os.Stat(stateDir); err == nil {
			t.Errorf("runtime state left: %s: deleting the container", stateDir)
			runCmd(t, podmanTimeout, r.binary, []string{"--root", r.stateRoot, "delete", "--force", id}, nil)
		}
		killCgroups(t, filepath.Join("libpod_parent", "libpod-"+id))
		// The state is in the runtime's default root, not the test's
		// directory: it goes even if the runtime cannot delete it.
		if _, err := os.Stat(stateDir); err == nil {
			t.Errorf("runtime state still left after delete --force: removing %s", stateDir)
			os.RemoveAll(stateDir)
		}
	}
	killProcessesMentioning(t, p.dir)
	unmountUnder(t, p.dir)
}

// podmanRuntime runs containers through podman with one OCI runtime.
type podmanRuntime struct {
	p         *podman
	name      string
	binary    string
	stateRoot string
}

func (r *podmanRuntime) podman(t *testing.T, args ...string) cmdResult {
	t.Helper()
	return r.p.podman(t, r.binary, args...)
}

func (r *podmanRuntime) mustPodman(t *testing.T, args ...string) string {
	t.Helper()
	res := r.podman(t, args...)
	if res.code != 0 {
		t.Fatalf("podman %s: exit %d; stderr: %s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

// runArgs returns the arguments of `podman run` for a container named
// after the scenario, then args. The ulimits are below this host's hard
// limits (podman's defaults ask for more, which needs CAP_SYS_RESOURCE);
// with no network podman sets up no bridge and no firewall rules.
func (r *podmanRuntime) runArgs(scenario string, args ...string) []string {
	name := r.name + "-" + scenario
	run := []string{"run", "--name", name, "--cidfile", r.cidFile(name), "--pull", "never",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "none"}
	return append(run, args...)
}

func (r *podmanRuntime) cidFile(name string) string {
	return filepath.Join(r.p.dir, name+".cid")
}

// id returns the id of the container run for scenario, from its cidfile
// (which outlives `run --rm`), and has cleanup look for it.
func (r *podmanRuntime) id(t *testing.T, scenario string) string {
	t.Helper()
	data, err := os.ReadFile(r.cidFile(r.name + "-" + scenario))
	if err != nil {
		t.Fatalf("container id: %v", err)
	}
	id := strings.TrimSpace(string(data))
	r.p.containers[id] = r
	return id
}

func (r *podmanRuntime) testRun(t *testing.T) {
	res := r.podman(t, r.runArgs("run", "--rm", busyboxImage, "echo", "hi")...)
	id := r.id(t, "run")
	if res.code != 0 || res.stdout != "hi\n" {
		t.Errorf("podman run echo hi: exit %d, stdout %q, want 0 and \"hi\\n\"; stderr: %s", res.code, res.stdout, res.stderr)
	}
	r.assertClean(t, id)
}

func (r *podmanRuntime) testExitCode(t *testing.T) {
	res := r.podman(t, r.runArgs("exit-code", "--rm", busyboxImage, "sh", "-c", "exit 3")...)
	id := r.id(t, "exit-code")
	if res.code != 3 {
		t.Errorf("podman run sh -c 'exit 3': exit %d, want 3; stderr: %s", res.code, res.stderr)
	}
	r.assertClean(t, id)
}

func (r *podmanRuntime) testMissingCommand(t *testing.T) {
	res := r.podman(t, r.runArgs("missing-command", "--rm", busyboxImage, "no-such-command")...)
	id := r.id(t, "missing-command")
	// podman reads the runtime's error and maps "not found" to 127.
	if res.code != 127 || !strings.Contains(res.stderr, "executable file not found") {
		t.Errorf("podman run no-such-command: exit %d, stderr %q; want 127 and the runtime's \"executable file not found\"", res.code, res.stderr)
	}
	t.Logf("podman run no-such-command: exit %d: %s", res.code, strings.TrimSpace(res.stderr))
	r.assertClean(t, id)
}

// sleeper is a container command that exits 0 on SIGTERM, so that `podman
// stop` shows the signal arrived.
const sleeper = "trap 'exit 0' TERM; while :; do sleep 0.1; done"

func (r *podmanRuntime) testExecStop(t *testing.T) {
	name := r.name + "-exec-stop"
	r.mustPodman(t, r.runArgs("exec-stop", "-d", busyboxImage, "sh", "-c", sleeper)...)
	id := r.id(t, "exec-stop")
	if status := r.inspect(t, name, "{{.State.Status}}"); status != "running" {
		t.Errorf("podman status after run -d: %q, want running", status)
	}
	pid, err := strconv.Atoi(r.inspect(t, name, "{{.State.Pid}}"))
	if err != nil {
		t.Fatalf("container pid: %v", err)
	}
	// The runtime got podman's spec and state: assertClean looks at the
	// right places.
	if status := r.runtimeStatus(t, id); status != "running" {
		t.Errorf("runtime state status %q, want running", status)
	}
	if procs, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids/libpod_parent", "libpod-"+id, "cgroup.procs")); err != nil {
		t.Errorf("container cgroup: %v", err)
	} else if !containsLine(string(procs), strconv.Itoa(pid)) {
		t.Errorf("container cgroup.procs %q lacks the container's pid %d", procs, pid)
	}

	if out := r.mustPodman(t, "exec", name, "echo", "from-exec"); out != "from-exec\n" {
		t.Errorf("podman exec echo: stdout %q, want \"from-exec\\n\"", out)
	}

	// exec -it: conmon has the runtime send it the terminal's master on
	// --console-socket; what is typed here reaches the shell through it.
	term := startOnPty(t, "podman", r.p.args(r.binary, "exec", "-it", name, "sh"), nil)
	term.expect(t, "# ", 10*time.Second)
	term.send(t, "tty; echo typed-$((6*7))\r")
	term.expect(t, "typed-42", 10*time.Second)
	term.send(t, "exit 4\r")
	code, out := term.wait(t, 10*time.Second)
	if code != 4 || !strings.Contains(out, "/dev/pts/") {
		t.Errorf("podman exec -it sh: exit %d, want 4, with a /dev/pts tty; output: %q", code, out)
	}

	r.mustPodman(t, "stop", "--time", "10", name)
	if got := r.inspect(t, name, "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 0" {
		t.Errorf("podman status and exit code after stop: %q, want \"exited 0\" (the trap of SIGTERM)", got)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("container process %d still exists after stop (kill 0: %v)", pid, err)
	}
	r.mustPodman(t, "rm", name)
	r.assertClean(t, id)
}

func (r *podmanRuntime) testPause(t *testing.T) {
	name := r.name + "-pause"
	out := t.TempDir()
	// mv makes each count appear whole.
	counter := "i=0; while :; do i=$((i+1)); echo $i > /out/next; mv /out/next /out/count; sleep 0.02; done"
	r.mustPodman(t, r.runArgs("pause", "-d", "-v", out+":/out", busyboxImage, "sh", "-c", counter)...)
	id := r.id(t, "pause")
	count := func() int {
		data, err := os.ReadFile(filepath.Join(out, "count"))
		if err != nil {
			return 0
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return n
	}
	waitFor(t, 10*time.Second, func() error {
		if n := count(); n < 3 {
			return fmt.Errorf("counter at %d, want it counting", n)
		}
		return nil
	})

	r.mustPodman(t, "pause", name)
	if status := r.inspect(t, name, "{{.State.Status}}"); status != "paused" {
		t.Errorf("podman status after pause: %q, want paused", status)
	}
	if status := r.runtimeStatus(t, id); status != "paused" {
		t.Errorf("runtime state status after pause: %q, want paused", status)
	}
	frozen := count()
	time.Sleep(300 * time.Millisecond)
	if n := count(); n != frozen {
		t.Errorf("counter went from %d to %d while paused", frozen, n)
	}

	r.mustPodman(t, "unpause", name)
	if status := r.inspect(t, name, "{{.State.Status}}"); status != "running" {
		t.Errorf("podman status after unpause: %q, want running", status)
	}
	waitFor(t, 5*time.Second, func() error {
		if n := count(); n <= frozen {
			return fmt.Errorf("counter still at %d after unpause", n)
		}
		return nil
	})
	r.mustPodman(t, "rm", "--force", "--time", "0", name)
	r.assertClean(t, id)
}

func (r *podmanRuntime) testUpdate(t *testing.T) {
	name := r.name + "-update"
	r.mustPodman(t, r.runArgs("update", "-d", busyboxImage, "sleep", "1000")...)
	id := r.id(t, "update")
	limitFile := filepath.Join("/sys/fs/cgroup/memory/libpod_parent", "libpod-"+id, "memory.limit_in_bytes")
	const limit = 64 << 20
	if data, err := os.ReadFile(limitFile); err != nil {
		t.Errorf("memory cgroup: %v", err)
	} else if strings.TrimSpace(string(data)) == strconv.Itoa(limit) {
		t.Errorf("memory limit %d before the update: the check below proves nothing", limit)
	}
	// podman 4.3 passes the new resources as `update --resources FILE`.
	r.mustPodman(t, "update", "--memory", "64m", name)
	if data, err := os.ReadFile(limitFile); err != nil {
		t.Errorf("memory cgroup after update: %v", err)
	} else if got := strings.TrimSpace(string(data)); got != strconv.Itoa(limit) {
		t.Errorf("memory.limit_in_bytes after podman update --memory 64m: %s, want %d", got, limit)
	}
	r.mustPodman(t, "rm", "--force", "--time", "0", name)
	r.assertClean(t, id)
}

func (r *podmanRuntime) testRunTTY(t *testing.T) {
	term := startOnPty(t, "podman", r.p.args(r.binary, r.runArgs("run-tty", "-it", "--rm", busyboxImage, "sh")...), nil)
	term.expect(t, "# ", 10*time.Second)
	term.send(t, "tty; echo typed-$((6*7))\r")
	term.expect(t, "typed-42", 10*time.Second)
	term.send(t, "exit 5\r")
	code, out := term.wait(t, 10*time.Second)
	id := r.id(t, "run-tty")
	if code != 5 || !strings.Contains(out, "/dev/pts/") {
		t.Errorf("podman run -it sh: exit %d, want 5, with a /dev/pts tty; output: %q", code, out)
	}
	r.assertClean(t, id)
}

// inspect returns the container's fields in podman inspect's format.
func (r *podmanRuntime) inspect(t *testing.T, name, format string) string {
	t.Helper()
	return strings.TrimSpace(r.mustPodman(t, "inspect", "--format", format, name))
}

// runtimeStatus is the status the runtime itself gives for container id.
func (r *podmanRuntime) runtimeStatus(t *testing.T, id string) string {
	t.Helper()
	res := runCmd(t, podmanTimeout, r.binary, []string{"--root", r.stateRoot, "state", id}, nil)
	if res.code != 0 {
		t.Fatalf("%s state %s: exit %d; stderr: %s", r.name, id, res.code, res.stderr)
	}
	var state struct{ Status string }
	if err := json.Unmarshal([]byte(res.stdout), &state); err != nil {
		t.Fatalf("%s state %s: %v", r.name, id, err)
	}
	return state.Status
}

// assertClean checks that nothing of container id is left: no container
// in podman, no runtime state, no cgroup, no conmon, no mount.
func (r *podmanRuntime) assertClean(t *testing.T, id string) {
	t.Helper()
	if out := r.mustPodman(t, "ps", "--all", "--quiet"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %q", out)
	}
	if _, err := os.Stat(filepath.Join(r.stateRoot, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runtime state left: %s (stat: %v)", filepath.Join(r.stateRoot, id), err)
	}
	for _, cg := range cgroupsNamed(filepath.Join("libpod_parent", "libpod-"+id)) {
		t.Errorf("cgroup left: %s", cg)
	}
	// conmon runs `podman container cleanup` when the container exits,
	// which may still hold the storage (and its mount) when run returns.
	waitFor(t, 5*time.Second, func() error {
		if pids := processesMentioning(r.p.dir); len(pids) > 0 {
			return fmt.Errorf("processes left (conmon, podman cleanup): %v", pids)
		}
		// The overlay driver mounts its own directory while podman uses
		// it; a podman that failed (run no-such-command, with runc too)
		// exits without unmounting it, and the next podman does.
		storage := filepath.Join(r.p.dir, "root", "overlay")
		for _, mnt := range mountsUnder(r.p.dir) {
			if mnt != storage {
				return fmt.Errorf("mount left: %s", mnt)
			}
		}
		return nil
	})
}
