package callers

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerd drives containers through dockerd 20.10 and the containerd it
// starts itself, with the runtimes registered by --add-runtime: berth for
// berth-runtime, runcx for runc.
func TestDockerd(t *testing.T) {
	berth := requireCaller(t, "docker.io", "dockerd", "docker", "containerd", "containerd-shim-runc-v2")
	archive := busyboxArchive(t, writeBusyboxDockerArchive)
	runtimes := map[string]string{"berth": berth}
	if _, err := os.Stat(runcPath); err == nil {
		runtimes["runcx"] = runcPath
	}

	d := startDockerd(t, runtimes)
	d.docker.mustRun(t, "load", "--input", archive)

	for _, rt := range []struct{ name, runtime string }{{"berth-runtime", "berth"}, {"runc", "runcx"}} {
		t.Run(rt.name, func(t *testing.T) {
			if _, ok := runtimes[rt.runtime]; !ok {
				t.Skipf("%s not installed", rt.name)
			}
			r := d.newRuntime(rt.name, rt.runtime)
			r.testShared(t, r.assertClean)
			t.Run("exec-pause-rm", r.testExecPauseRemove)
		})
	}
}

// dockerd is a daemon of the test's own: data, state, sockets, its
// containerd and the runtimes' --root are in a temporary directory.
type dockerd struct {
	daemon
	docker cli      // its configuration in dir rather than ~/.docker
	ids    []string // the containers run, whose leftovers stop looks for
}

func startDockerd(t *testing.T, runtimes map[string]string) *dockerd {
	t.Helper()
	dir := t.TempDir()
	d := &dockerd{daemon: daemon{name: "dockerd", dir: dir, sock: filepath.Join(dir, "docker.sock"), log: filepath.Join(dir, "dockerd.log")}}
	d.docker = cli{program: "docker", env: append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(dir, "client"))}
	// An explicit configuration file keeps /etc/docker/daemon.json out, and
	// moves the trust key dockerd 20.10 otherwise writes to /etc/docker.
	config, err := json.Marshal(map[string]string{"deprecated-key-path": filepath.Join(dir, "key.json")})
	if err != nil {
		t.Fatal(err)
	}
	configFile := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(configFile, config, 0o644); err != nil {
		t.Fatal(err)
	}
	// dockerd, its containerd and their shims make these whatever they are
	// told; the runtimes make the containers' parent cgroup.
	created := absentHostPaths("/run/docker", "/run/docker/plugins",
		"/opt/containerd", "/opt/containerd/bin", "/opt/containerd/lib",
		"/run/containerd", "/run/containerd/s")
	parentCgroups := newCgroups("docker")

	args := []string{
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"--host", "unix://" + d.sock,
		"--config-file", configFile,
		// No network set-up on the host: no bridge, no firewall rules,
		// no sysctls.
		"--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
	}
	for name, path := range runtimes {
		args = append(args, "--add-runtime", name+"="+path)
	}
	d.start(t, args, func(t *testing.T) {
		d.stop(t)
		created.remove(t)
		parentCgroups(t)
	})
	d.waitReady(t, 20*time.Second, d.docker)
	return d
}

// stop stops the daemon, which stops its containers and its containerd,
// then removes, as a failure, what is left: processes (containerd, shims),
// container processes and cgroups, the runtimes' state, mounts.
func (d *dockerd) stop(t *testing.T) {
	d.terminate(t, 20*time.Second)
	killProcessesMentioning(t, d.dir)
	for _, id := range d.ids {
		killCgroups(t, filepath.Join("docker", id))
	}
	for _, s := range d.runtimeState("*") {
		t.Errorf("runtime state left: %s", s)
	}
	unmountUnder(t, d.dir)
}

// runtimeState lists the state the runtimes keep of container id, under
// the --root dockerd's shims give them.
func (d *dockerd) runtimeState(id string) []string {
	state, _ := filepath.Glob(filepath.Join(d.dir, "exec", "runtime-*", "moby", id))
	return state
}

// dockerRuntime runs containers through dockerd with one OCI runtime.
type dockerRuntime struct {
	cliRuntime
	d *dockerd
}

// newRuntime returns the runtime named name, runtime in dockerd, for dockerd
// to run containers with.
func (d *dockerd) newRuntime(name, runtime string) *dockerRuntime {
	return &dockerRuntime{d: d, cliRuntime: cliRuntime{
		cli:      d.docker,
		name:     name,
		dir:      d.dir,
		runFlags: []string{"--runtime", runtime, "--network", "none"},
		track:    func(id string) { d.ids = append(d.ids, id) },
	}}
}

func (r *dockerRuntime) testExecPauseRemove(t *testing.T) {
	name, id, pid := r.startDetached(t, "exec-pause-rm", "sleep", "1000")
	// The runtime got the shim's --root and the spec's cgroup: the checks
	// of assertClean look at the right places.
	if state := r.d.runtimeState(id); len(state) != 1 {
		t.Errorf("runtime state of the running container: found %v under %s", state, filepath.Join(r.d.dir, "exec"))
	}
	assertInCgroup(t, filepath.Join("/sys/fs/cgroup/pids/docker", id), pid)

	r.assertExecEcho(t, name)
	// exec -t: the shim has the runtime send it the terminal's master on
	// --console-socket; a terminal turns \n into \r\n.
	if out := r.mustRun(t, "exec", "-t", name, "tty"); !strings.HasPrefix(out, "/dev/pts/") || !strings.HasSuffix(out, "\r\n") {
		t.Errorf("docker exec -t tty: stdout %q, want a /dev/pts tty ending in \\r\\n", out)
	}
	// exec -it from a terminal: what is typed reaches the shell.
	if code, out := r.startOnPty(t, "exec", "-it", name, "sh").Shell(t, 4); code != 4 {
		t.Errorf("docker exec -it sh: exit %d, want 4; output: %q", code, out)
	}

	r.mustRun(t, "pause", name)
	if status := r.inspect(t, name, "{{.State.Status}}"); status != "paused" {
		t.Errorf("docker status after pause: %q, want paused", status)
	}
	r.mustRun(t, "unpause", name)
	if status := r.inspect(t, name, "{{.State.Status}}"); status != "running" {
		t.Errorf("docker status after unpause: %q, want running", status)
	}

	r.mustRun(t, "rm", "--force", name)
	assertGone(t, pid, "rm -f")
	r.assertClean(t, id)
}

// assertClean checks that nothing of container id is left: no container in
// dockerd, no runtime state, no cgroup, no shim.
func (r *dockerRuntime) assertClean(t *testing.T, id string) {
	t.Helper()
	r.assertNoContainers(t)
	for _, s := range r.d.runtimeState(id) {
		t.Errorf("runtime state left: %s", s)
	}
	assertNoCgroups(t, filepath.Join("docker", id))
	// The shim exits on its own once containerd deletes the task.
	waitFor(t, 5*time.Second, func() error {
		if pids := processesMentioning(id); len(pids) > 0 {
			return fmt.Errorf("processes left (shim?): %v", pids)
		}
		return nil
	})
}
