package callers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPodman drives containers through podman 4.3 and conmon with
// `podman --runtime`, once with berth-runtime and once with runc.
func TestPodman(t *testing.T) {
	berth := requireCaller(t, "podman", "podman", "conmon")
	archive := busyboxArchive(t, writeBusyboxImage)

	p := newPodman(t)
	// podman names the image after the index's annotation, as ctr does.
	if res := p.client(berth).run(t, "load", "-i", archive); res.code != 0 || !strings.Contains(res.stdout, busyboxImage) {
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
			r := p.newRuntime(rt.name, rt.binary, rt.root)
			r.testShared(t, r.assertClean)
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

// client is podman with runtime as its OCI runtime.
func (p *podman) client(runtime string) cli {
	return cli{program: "podman", global: []string{
		"--root", filepath.Join(p.dir, "root"),
		"--runroot", filepath.Join(p.dir, "run"),
		"--tmpdir", filepath.Join(p.dir, "tmp"),
		"--network-config-dir", filepath.Join(p.dir, "networks"),
		"--storage-driver", "overlay",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
		"--runtime", runtime,
	}}
}

// cleanup removes, as a failure, what a broken run left: containers, the
// runtimes' state of them, conmon, container processes, cgroups, mounts.
func (p *podman) cleanup(t *testing.T) {
	for _, id := range strings.Fields(p.client(runcPath).run(t, "ps", "--all", "--quiet", "--no-trunc").stdout) {
		t.Errorf("container left: %s: removing it", id)
		runtime := runcPath
		if r, ok := p.containers[id]; ok {
			runtime = r.binary
		}
		if res := p.client(runtime).run(t, "rm", "--force", "--time", "0", id); res.code != 0 {
			t.Errorf("podman rm %s: exit %d; stderr: %s", id, res.code, res.stderr)
		}
	}
	for id, r := range p.containers {
		stateDir := filepath.Join(r.stateRoot, id)
		if _, err := os.Stat(stateDir); err == nil {
			t.Errorf("runtime state left: %s: deleting the container", stateDir)
			r.runtime().run(t, "delete", "--force", id)
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
	cliRuntime
	p         *podman
	binary    string
	stateRoot string // where the runtime keeps its state: podman gives no --root
}

// newRuntime returns the runtime binary, named name, with its state in
// stateRoot, for podman to run containers with.
func (p *podman) newRuntime(name, binary, stateRoot string) *podmanRuntime {
	r := &podmanRuntime{p: p, binary: binary, stateRoot: stateRoot}
	r.cliRuntime = cliRuntime{
		cli:  p.client(binary),
		name: name,
		dir:  p.dir,
		// The ulimits are below this host's hard limits (podman's defaults
		// ask for more, which needs CAP_SYS_RESOURCE); with no network
		// podman sets up no bridge and no firewall rules.
		runFlags: []string{"--pull", "never", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "none"},
		track:    func(id string) { p.containers[id] = r },
	}
	return r
}

// runtime runs the runtime itself on podman's containers.
func (r *podmanRuntime) runtime() cli { return runtimeCLI(r.binary, r.stateRoot) }

// sleeper is a container command that exits 0 on SIGTERM, so that `podman
// stop` shows the signal arrived.
const sleeper = "trap 'exit 0' TERM; while :; do sleep 0.1; done"

func (r *podmanRuntime) testExecStop(t *testing.T) {
	name, id, pid := r.startDetached(t, "exec-stop", "sh", "-c", sleeper)
	// The runtime got podman's spec and state: assertClean looks at the
	// right places.
	if status := runtimeStatus(t, r.runtime(), id); status != "running" {
		t.Errorf("runtime state status %q, want running", status)
	}
	assertInCgroup(t, filepath.Join("/sys/fs/cgroup/pids/libpod_parent", "libpod-"+id), pid)

	r.assertExecEcho(t, name)
	// exec -it: conmon has the runtime send it the terminal's master on
	// --console-socket; what is typed here reaches the shell through it.
	if code, out := r.startOnPty(t, "exec", "-it", name, "sh").Shell(t, 4); code != 4 || !strings.Contains(out, "/dev/pts/") {
		t.Errorf("podman exec -it sh: exit %d, want 4, with a /dev/pts tty; output: %q", code, out)
	}

	r.mustRun(t, "stop", "--time", "10", name)
	if got := r.inspect(t, name, "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 0" {
		t.Errorf("podman status and exit code after stop: %q, want \"exited 0\" (the trap of SIGTERM)", got)
	}
	assertGone(t, pid, "stop")
	r.mustRun(t, "rm", name)
	r.assertClean(t, id)
}

func (r *podmanRuntime) testPause(t *testing.T) {
	name := r.container("pause")
	out := t.TempDir()
	// mv makes each count appear whole.
	counter := "i=0; while :; do i=$((i+1)); echo $i > /out/next; mv /out/next /out/count; sleep 0.02; done"
	r.mustRun(t, r.runArgs("pause", "-d", "-v", out+":/out", busyboxImage, "sh", "-c", counter)...)
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

	r.mustRun(t, "pause", name)
	if status := r.inspect(t, name, "{{.State.Status}}"); status != "paused" {
		t.Errorf("podman status after pause: %q, want paused", status)
	}
	if status := runtimeStatus(t, r.runtime(), id); status != "paused" {
		t.Errorf("runtime state status after pause: %q, want paused", status)
	}
	frozen := count()
	time.Sleep(300 * time.Millisecond)
	if n := count(); n != frozen {
		t.Errorf("counter went from %d to %d while paused", frozen, n)
	}

	r.mustRun(t, "unpause", name)
	if status := r.inspect(t, name, "{{.State.Status}}"); status != "running" {
		t.Errorf("podman status after unpause: %q, want running", status)
	}
	waitFor(t, 5*time.Second, func() error {
		if n := count(); n <= frozen {
			return fmt.Errorf("counter still at %d after unpause", n)
		}
		return nil
	})
	r.mustRun(t, "rm", "--force", "--time", "0", name)
	r.assertClean(t, id)
}

func (r *podmanRuntime) testUpdate(t *testing.T) {
	name := r.container("update")
	r.mustRun(t, r.runArgs("update", "-d", busyboxImage, "sleep", "1000")...)
	id := r.id(t, "update")
	limitFile := filepath.Join("/sys/fs/cgroup/memory/libpod_parent", "libpod-"+id, "memory.limit_in_bytes")
	const limit = 64 << 20
	if data, err := os.ReadFile(limitFile); err != nil {
		t.Errorf("memory cgroup: %v", err)
	} else if strings.TrimSpace(string(data)) == strconv.Itoa(limit) {
		t.Errorf("memory limit %d before the update: the check below proves nothing", limit)
	}
	// podman 4.3 passes the new resources as `update --resources FILE`.
	r.mustRun(t, "update", "--memory", "64m", name)
	if data, err := os.ReadFile(limitFile); err != nil {
		t.Errorf("memory cgroup after update: %v", err)
	} else if got := strings.TrimSpace(string(data)); got != strconv.Itoa(limit) {
		t.Errorf("memory.limit_in_bytes after podman update --memory 64m: %s, want %d", got, limit)
	}
	r.mustRun(t, "rm", "--force", "--time", "0", name)
	r.assertClean(t, id)
}

func (r *podmanRuntime) testRunTTY(t *testing.T) {
	code, out := r.startOnPty(t, r.runArgs("run-tty", "-it", "--rm", busyboxImage, "sh")...).Shell(t, 5)
	id := r.id(t, "run-tty")
	if code != 5 || !strings.Contains(out, "/dev/pts/") {
		t.Errorf("podman run -it sh: exit %d, want 5, with a /dev/pts tty; output: %q", code, out)
	}
	r.assertClean(t, id)
}

// assertClean checks that nothing of container id is left: no container
// in podman, no runtime state, no cgroup, no conmon, no mount.
func (r *podmanRuntime) assertClean(t *testing.T, id string) {
	t.Helper()
	r.assertNoContainers(t)
	if _, err := os.Stat(filepath.Join(r.stateRoot, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runtime state left: %s (stat: %v)", filepath.Join(r.stateRoot, id), err)
	}
	assertNoCgroups(t, filepath.Join("libpod_parent", "libpod-"+id))
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
