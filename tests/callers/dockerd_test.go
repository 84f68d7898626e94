package callers

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const dockerTimeout = 30 * time.Second

// TestDockerd drives containers through dockerd 20.10 and the containerd it
// starts itself, with the runtimes registered by --add-runtime: berth for
// berth-runtime, runcx for runc.
func TestDockerd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: dockerd, containerd and the runtime create mounts, namespaces and cgroups")
	}
	lookPaths(t, "docker.io", "dockerd", "docker", "containerd", "containerd-shim-runc-v2")
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Skipf("no static busybox to build the image from (Debian package busybox-static): %v", err)
	}
	berth := berthRuntime(t)
	runtimes := map[string]string{"berth": berth}
	if _, err := os.Stat(runcPath); err == nil {
		runtimes["runcx"] = runcPath
	}

	d := startDockerd(t, runtimes)
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	if err := writeBusyboxDockerArchive(archive, busyboxPath, busyboxImage); err != nil {
		t.Fatal(err)
	}
	d.mustDocker(t, "load", "--input", archive)

	for _, rt := range []struct{ name, runtime string }{{"berth-runtime", "berth"}, {"runc", "runcx"}} {
		t.Run(rt.name, func(t *testing.T) {
			if _, ok := runtimes[rt.runtime]; !ok {
				t.Skipf("%s not installed", rt.name)
			}
			r := &dockerRuntime{d: d, name: rt.name, runtime: rt.runtime}
			t.Run("run", r.testRun)
			t.Run("exit-code", r.testExitCode)
			t.Run("missing-command", r.testMissingCommand)
			t.Run("exec-pause-rm", r.testExecPauseRemove)
		})
	}
}

// dockerd is a daemon of the test's own: data, state, sockets, its
// containerd and the runtimes' --root are in a temporary directory.
type dockerd struct {
	dir  string
	sock string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the daemon has exited
	ids  []string      // the containers run, whose leftovers stop looks for
}

func startDockerd(t *testing.T, runtimes map[string]string) *dockerd {
	t.Helper()
	dir := t.TempDir()
	d := &dockerd{dir: dir, sock: filepath.Join(dir, "docker.sock"), log: filepath.Join(dir, "dockerd.log"), done: make(chan struct{})}
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
	logFile, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()

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
	d.cmd = exec.Command("dockerd", args...)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	go func() {
		d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dockerd log (%s):\n%s", d.log, tail(d.log, 40))
		}
		d.stop(t)
		created.remove(t)
		parentCgroups(t)
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-d.done:
			t.Fatalf("dockerd exited at start: %v\n%s", d.cmd.ProcessState, tail(d.log, 20))
		default:
		}
		if _, err := os.Stat(d.sock); err == nil {
			if res := d.docker(t, "version"); res.code == 0 {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd socket %s not ready after 20s\n%s", d.sock, tail(d.log, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the daemon, which stops its containers and its containerd,
// then removes, as a failure, what is left: processes (containerd, shims),
// container processes and cgroups, the runtimes' state, mounts.
func (d *dockerd) stop(t *testing.T) {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Errorf("dockerd did not stop on SIGTERM; killing it")
		d.cmd.Process.Kill()
		<-d.done
	}
	killProcessesMentioning(t, d.dir)
	for _, id := range d.ids {
		killCgroups(t, filepath.Join("docker", id))
	}
	state, _ := filepath.Glob(filepath.Join(d.dir, "exec", "runtime-*", "moby", "*"))
	for _, s := range state {
		t.Errorf("runtime state left: %s", s)
	}
	unmountUnder(t, d.dir)
}

// docker runs the docker client against this daemon; its configuration
// goes to the temporary directory rather than ~/.docker.
func (d *dockerd) docker(t *testing.T, args ...string) cmdResult {
	t.Helper()
	return runCmd(t, dockerTimeout, "docker", args, d.env())
}

func (d *dockerd) env() []string {
	return append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(d.dir, "client"))
}

func (d *dockerd) mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	res := d.docker(t, args...)
	if res.code != 0 {
		t.Fatalf("docker %s: exit %d; stderr: %s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

// dockerRuntime runs containers through dockerd with one OCI runtime.
type dockerRuntime struct {
	d       *dockerd
	name    string // the runtime's own name
	runtime string // its name in dockerd
}

// runArgs returns the arguments of `docker run` for a container named
// after the scenario, then args.
func (r *dockerRuntime) runArgs(scenario string, args ...string) []string {
	name := r.name + "-" + scenario
	run := []string{"run", "--name", name, "--cidfile", r.cidFile(name), "--runtime", r.runtime, "--network", "none"}
	return append(run, args...)
}

func (r *dockerRuntime) cidFile(name string) string {
	return filepath.Join(r.d.dir, name+".cid")
}

// id returns the id of the container run for scenario, from its cidfile
// (which outlives `run --rm`), and has the daemon's stop look for it.
func (r *dockerRuntime) id(t *testing.T, scenario string) string {
	t.Helper()
	data, err := os.ReadFile(r.cidFile(r.name + "-" + scenario))
	if err != nil {
		t.Fatalf("container id: %v", err)
	}
	id := strings.TrimSpace(string(data))
	r.d.ids = append(r.d.ids, id)
	return id
}

func (r *dockerRuntime) testRun(t *testing.T) {
	res := r.d.docker(t, r.runArgs("run", "--rm", busyboxImage, "echo", "hi")...)
	id := r.id(t, "run")
	if res.code != 0 || res.stdout != "hi\n" {
		t.Errorf("docker run echo hi: exit %d, stdout %q, want 0 and \"hi\\n\"; stderr: %s", res.code, res.stdout, res.stderr)
	}
	r.assertClean(t, id)
}

func (r *dockerRuntime) testExitCode(t *testing.T) {
	res := r.d.docker(t, r.runArgs("exit-code", "--rm", busyboxImage, "sh", "-c", "exit 3")...)
	id := r.id(t, "exit-code")
	if res.code != 3 {
		t.Errorf("docker run sh -c 'exit 3': exit %d, want 3; stderr: %s", res.code, res.stderr)
	}
	r.assertClean(t, id)
}

func (r *dockerRuntime) testMissingCommand(t *testing.T) {
	res := r.d.docker(t, r.runArgs("missing-command", "--rm", busyboxImage, "no-such-command")...)
	id := r.id(t, "missing-command")
	// The client maps the runtime's "executable file not found", passed on
	// by the shim and the daemon, to 127.
	if res.code != 127 || !strings.Contains(res.stderr, "executable file not found") {
		t.Errorf("docker run no-such-command: exit %d, stderr %q; want 127 and the runtime's \"executable file not found\"", res.code, res.stderr)
	}
	t.Logf("docker run no-such-command: exit %d: %s", res.code, strings.TrimSpace(res.stderr))
	r.assertClean(t, id)
}

func (r *dockerRuntime) testExecPauseRemove(t *testing.T) {
	name := r.name + "-exec-pause-rm"
	r.d.mustDocker(t, r.runArgs("exec-pause-rm", "-d", busyboxImage, "sleep", "1000")...)
	id := r.id(t, "exec-pause-rm")
	if status := r.inspect(t, name, "{{.State.Status}}"); status != "running" {
		t.Errorf("docker status after run -d: %q, want running", status)
	}
	pid, err := strconv.Atoi(r.inspect(t, name, "{{.State.Pid}}"))
	if err != nil {
		t.Fatalf("container pid: %v", err)
	}
	// The runtime got the shim's --root and the spec's cgroup: the checks
	// of assertClean look at the right places.
	state, _ := filepath.Glob(filepath.Join(r.d.dir, "exec", "runtime-*", "moby", id))
	if len(state) != 1 {
		t.Errorf("runtime state of the running container: found %v under %s", state, filepath.Join(r.d.dir, "exec"))
	}
	if procs, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids/docker", id, "cgroup.procs")); err != nil {
		t.Errorf("container cgroup: %v", err)
	} else if !containsLine(string(procs), strconv.Itoa(pid)) {
		t.Errorf("container cgroup.procs %q lacks the container's pid %d", procs, pid)
	}

	if out := r.d.mustDocker(t, "exec", name, "echo", "from-exec"); out != "from-exec\n" {
		t.Errorf("docker exec echo: stdout %q, want \"from-exec\\n\"", out)
	}
	// exec -t: the shim has the runtime send it the terminal's master on
	// --console-socket; a terminal turns \n into \r\n.
	if out := r.d.mustDocker(t, "exec", "-t", name, "tty"); !strings.HasPrefix(out, "/dev/pts/") || !strings.HasSuffix(out, "\r\n") {
		t.Errorf("docker exec -t tty: stdout %q, want a /dev/pts tty ending in \\r\\n", out)
	}
	// exec -it from a terminal: what is typed reaches the shell.
	term := startOnPty(t, "docker", []string{"exec", "-it", name, "sh"}, r.d.env())
	term.expect(t, "# ", 10*time.Second)
	term.send(t, "echo typed-$((6*7))\r")
	term.expect(t, "typed-42", 10*time.Second)
	term.send(t, "exit 4\r")
	if code, out := term.wait(t, 10*time.Second); code != 4 {
		t.Errorf("docker exec -it sh: exit %d, want 4; output: %q", code, out)
	}

	r.d.mustDocker(t, "pause", name)
	if status := r.inspect(t, name, "{{.State.Status}}"); status != "paused" {
		t.Errorf("docker status after pause: %q, want paused", status)
	}
	r.d.mustDocker(t, "unpause", name)
	if status := r.inspect(t, name, "{{.State.Status}}"); status != "running" {
		t.Errorf("docker status after unpause: %q, want running", status)
	}

	r.d.mustDocker(t, "rm", "--force", name)
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("container process %d still exists after rm -f (kill 0: %v)", pid, err)
	}
	r.assertClean(t, id)
}

// inspect returns the container's fields in docker inspect's format.
func (r *dockerRuntime) inspect(t *testing.T, name, format string) string {
	t.Helper()
	return strings.TrimSpace(r.d.mustDocker(t, "inspect", "--format", format, name))
}

// assertClean checks that nothing of container id is left: no container in
// dockerd, no runtime state, no cgroup, no shim.
func (r *dockerRuntime) assertClean(t *testing.T, id string) {
	t.Helper()
	if out := r.d.mustDocker(t, "ps", "--all", "--quiet"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %q", out)
	}
	state, _ := filepath.Glob(filepath.Join(r.d.dir, "exec", "runtime-*", "moby", id))
	for _, s := range state {
		t.Errorf("runtime state left: %s", s)
	}
	for _, cg := range cgroupsNamed(filepath.Join("docker", id)) {
		t.Errorf("cgroup left: %s", cg)
	}
	// The shim exits on its own once containerd deletes the task.
	waitFor(t, 5*time.Second, func() error {
		if pids := processesMentioning(id); len(pids) > 0 {
			return fmt.Errorf("processes left (shim?): %v", pids)
		}
		return nil
	})
}
