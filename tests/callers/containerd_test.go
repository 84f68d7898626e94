package callers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// ctr's default spec puts containers in cgroup /<namespace>/<id>, so the
	// namespace name is also the parent cgroup the test checks and removes.
	ctrNamespace = "berth-test"
	busyboxImage = "docker.io/berth-test/busybox:latest"
	busyboxPath  = "/bin/busybox" // Debian's busybox-static
	runcPath     = "/usr/sbin/runc"
	ctrTimeout   = 30 * time.Second
)

// TestContainerd drives containers through containerd 1.6's runc shim with
// `ctr run --runc-binary`, once with berth-runtime and once with runc.
func TestContainerd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: containerd and the runtime create mounts, namespaces and cgroups")
	}
	for _, tool := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package containerd): %v", tool, err)
		}
	}
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Skipf("no static busybox to build the image from (Debian package busybox-static): %v", err)
	}
	berth := berthRuntime(t)

	d := startContainerd(t)
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	if err := writeBusyboxImage(archive, busyboxPath, busyboxImage); err != nil {
		t.Fatal(err)
	}
	d.mustCtr(t, "images", "import", "--all-platforms", archive)
	if out := d.mustCtr(t, "images", "ls", "-q"); !strings.Contains(out, busyboxImage) {
		t.Fatalf("image %s not listed after import: %q", busyboxImage, out)
	}

	for _, rt := range []struct{ name, binary string }{{"berth-runtime", berth}, {"runc", runcPath}} {
		t.Run(rt.name, func(t *testing.T) {
			if _, err := os.Stat(rt.binary); err != nil {
				t.Skipf("%s not installed: %v", rt.name, err)
			}
			r := &ctrRuntime{d: d, name: rt.name, binary: rt.binary, root: filepath.Join(d.dir, "runtime-"+rt.name)}
			t.Run("run", r.testRun)
			t.Run("exit-code", r.testExitCode)
			t.Run("kill-delete", r.testKillDelete)
			t.Run("failing-create", r.testFailingCreate)
			t.Run("exec", r.testExec)
			t.Run("pause-resume", r.testPauseResume)
			t.Run("ps", r.testPs)
			t.Run("run-tty", r.testRunTTY)
		})
	}
}

// berthRuntime returns the absolute path of the runtime under test.
func berthRuntime(t *testing.T) string {
	t.Helper()
	path, set := os.LookupEnv("BERTH_RUNTIME")
	if !set {
		path = filepath.Join("..", "..", "bin", "berth-runtime")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		if set {
			t.Fatalf("BERTH_RUNTIME: %v", err)
		}
		t.Skipf("berth-runtime not built (run make build or set BERTH_RUNTIME): %v", err)
	}
	return abs
}

// ctrRuntime runs containers through ctr with one OCI runtime binary.
type ctrRuntime struct {
	d      *containerd
	name   string
	binary string
	root   string // given as --runc-root; the shim adds the namespace
}

// id names the container of a scenario, and has the daemon's cleanup look
// for its leftovers.
func (r *ctrRuntime) id(scenario string) string {
	id := r.name + "-" + scenario
	r.d.ids = append(r.d.ids, id)
	return id
}

// stateDir is the --root the shim passes to the runtime.
func (r *ctrRuntime) stateDir() string { return filepath.Join(r.root, ctrNamespace) }

// run runs `ctr run` with this runtime; args are ctr run's flags, then the
// container id and command.
func (r *ctrRuntime) run(t *testing.T, args ...string) ctrResult {
	t.Helper()
	return r.d.ctr(t, r.runArgs(args...)...)
}

func (r *ctrRuntime) runArgs(args ...string) []string {
	return append([]string{"run", "--runc-binary", r.binary, "--runc-root", r.root, "--fifo-dir", r.d.fifoDir()}, args...)
}

// execArgs is the command line of `ctr task exec`; args are its flags, then
// the container id and command.
func (r *ctrRuntime) execArgs(args ...string) []string {
	return append([]string{"task", "exec", "--fifo-dir", r.d.fifoDir()}, args...)
}

// runtime runs the runtime itself on the containers the shim made.
func (r *ctrRuntime) runtime(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.binary, append([]string{"--root", r.stateDir()}, args...)...).Output()
	if err != nil {
		var stderr []byte
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			stderr = exitErr.Stderr
		}
		t.Fatalf("%s %s: %v; stderr: %s", r.name, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// runtimeStatus is the container's status in the runtime's own state.
func (r *ctrRuntime) runtimeStatus(t *testing.T, id string) string {
	t.Helper()
	var state struct{ Status string }
	if err := json.Unmarshal([]byte(r.runtime(t, "state", id)), &state); err != nil {
		t.Fatalf("%s state %s: %v", r.name, id, err)
	}
	return state.Status
}

// startDetached runs command in container id with `ctr run -d` and returns
// the task's pid. If the test ends with the task still there, it is
// reported and removed.
func (r *ctrRuntime) startDetached(t *testing.T, id string, command ...string) int {
	t.Helper()
	if res := r.run(t, append([]string{"-d", busyboxImage, id}, command...)...); res.code != 0 {
		t.Fatalf("ctr run -d %s: exit %d; stderr: %s", strings.Join(command, " "), res.code, res.stderr)
	}
	t.Cleanup(func() { r.removeLeftTask(t, id) })
	pid, status := r.d.task(t, id)
	if status != "RUNNING" {
		t.Errorf("task status after ctr run -d: %q, want RUNNING", status)
	}
	return pid
}

// removeLeftTask removes task and container id if a failed test left them.
func (r *ctrRuntime) removeLeftTask(t *testing.T, id string) {
	if !containsLine(r.d.mustCtr(t, "task", "ls", "-q"), id) {
		if containsLine(r.d.mustCtr(t, "container", "ls", "-q"), id) {
			t.Errorf("container %s left: deleting it", id)
			r.d.ctr(t, "container", "delete", id)
		}
		return
	}
	t.Errorf("task %s left: removing it", id)
	// cgroup v1 freezes even SIGKILL: thaw a paused task first.
	r.d.ctr(t, "task", "resume", id)
	r.d.ctr(t, "task", "kill", "-a", "-s", "SIGKILL", id)
	waitFor(t, 10*time.Second, func() error {
		if _, status := r.d.task(t, id); status != "STOPPED" {
			return fmt.Errorf("left task status %q after SIGKILL, want STOPPED", status)
		}
		return nil
	})
	r.d.ctr(t, "task", "delete", "--force", id)
	r.d.ctr(t, "container", "delete", id)
}

// remove kills the task of container id and deletes both, as a user does.
func (r *ctrRuntime) remove(t *testing.T, id string) {
	t.Helper()
	r.d.mustCtr(t, "task", "kill", "-s", "SIGKILL", id)
	waitFor(t, 10*time.Second, func() error {
		if _, status := r.d.task(t, id); status != "STOPPED" {
			return fmt.Errorf("task status %q after SIGKILL, want STOPPED", status)
		}
		return nil
	})
	r.d.mustCtr(t, "task", "delete", id)
	r.d.mustCtr(t, "container", "delete", id)
	r.assertClean(t, id)
}

func (r *ctrRuntime) testRun(t *testing.T) {
	id := r.id("run")
	res := r.run(t, "--rm", busyboxImage, id, "echo", "hello")
	if res.code != 0 || res.stdout != "hello\n" {
		t.Errorf("ctr run echo hello: exit %d, stdout %q, want 0 and \"hello\\n\"; stderr: %s", res.code, res.stdout, res.stderr)
	}
	r.assertClean(t, id)
}

func (r *ctrRuntime) testExitCode(t *testing.T) {
	id := r.id("exit-code")
	res := r.run(t, "--rm", busyboxImage, id, "sh", "-c", "exit 3")
	if res.code != 3 {
		t.Errorf("ctr run sh -c 'exit 3': exit %d, want 3; stderr: %s", res.code, res.stderr)
	}
	r.assertClean(t, id)
}

func (r *ctrRuntime) testKillDelete(t *testing.T) {
	id := r.id("kill-delete")
	pid := r.startDetached(t, id, "sleep", "1000")
	t.Cleanup(func() { killIfSleeper(t, pid) })
	// The runtime got the shim's --root and the spec's cgroup: the checks
	// of assertClean look at the right places.
	if _, err := os.Stat(filepath.Join(r.stateDir(), id)); err != nil {
		t.Errorf("runtime state of the running container: %v", err)
	}
	if procs, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", ctrNamespace, id, "cgroup.procs")); err != nil {
		t.Errorf("container cgroup: %v", err)
	} else if !containsLine(string(procs), strconv.Itoa(pid)) {
		t.Errorf("container cgroup.procs %q lacks the task's pid %d", procs, pid)
	}

	r.d.mustCtr(t, "task", "kill", "-s", "SIGKILL", id)
	waitFor(t, 10*time.Second, func() error {
		if _, status := r.d.task(t, id); status != "STOPPED" {
			return fmt.Errorf("task status %q after SIGKILL, want STOPPED", status)
		}
		return nil
	})
	// ctr 1.6 task delete exits 0 but warns of the task's status, 128+SIGKILL.
	res := r.d.ctr(t, "task", "delete", id)
	if want := fmt.Sprintf("exit code %d", 128+int(syscall.SIGKILL)); res.code != 0 || !strings.Contains(res.stderr, want) {
		t.Errorf("ctr task delete: exit %d, stderr %q; want 0 and %q", res.code, res.stderr, want)
	}
	r.d.mustCtr(t, "container", "delete", id)
	r.assertClean(t, id)
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("container process %d still exists after delete (kill 0: %v)", pid, err)
	}
}

func (r *ctrRuntime) testFailingCreate(t *testing.T) {
	id := r.id("failing-create")
	res := r.run(t, "--rm", busyboxImage, id, "no-such-command")
	if res.code == 0 {
		t.Errorf("ctr run no-such-command succeeded; stdout: %s", res.stdout)
	}
	// The shim passes on the last error line of the runtime's JSON log.
	if !strings.Contains(res.stderr, "executable file not found") {
		t.Errorf("ctr run no-such-command: stderr %q lacks the runtime's \"executable file not found\"", res.stderr)
	}
	t.Logf("ctr run no-such-command: exit %d: %s", res.code, strings.TrimSpace(res.stderr))
	r.assertClean(t, id)
}

// testExec runs processes in a running container with `ctr task exec`:
// plain stdio through FIFOs, then an interactive shell on a terminal.
func (r *ctrRuntime) testExec(t *testing.T) {
	id := r.id("exec")
	pid := r.startDetached(t, id, "sleep", "1000")
	t.Cleanup(func() { killIfSleeper(t, pid) })

	// /proc/1 is the container's init only in the container's pid namespace.
	res := r.d.ctr(t, r.execArgs("--exec-id", "plain", id, "sh", "-c", "cat /proc/1/cmdline; echo; echo err >&2; exit 5")...)
	if res.code != 5 || res.stdout != "sleep\x001000\x00\n" || !strings.Contains(res.stderr, "err\n") {
		t.Errorf("ctr task exec sh -c '...; exit 5': exit %d, stdout %q, stderr %q; want 5, \"sleep\\x001000\\x00\\n\" and \"err\"", res.code, res.stdout, res.stderr)
	}

	// ctr sizes the process's terminal from its own (24x80) and copies what
	// is typed to it; the echoed input shows neither "24 80" nor "42".
	p := startOnPty(t, "ctr", r.d.ctrArgs(r.execArgs("--tty", "--exec-id", "tty", id, "sh")...), os.Environ())
	p.expect(t, "# ", 10*time.Second)
	p.send(t, "tty; stty size; echo $((6*7)); exit 4\r")
	code, out := p.wait(t, 10*time.Second)
	// The only terminal in the container is the exec's: /dev/pts/0.
	for _, want := range []string{"/dev/pts/0", "24 80", "42"} {
		if !containsLine(out, want) {
			t.Errorf("ctr task exec --tty sh: terminal lacks a line %q; output: %q", want, out)
		}
	}
	if code != 4 {
		t.Errorf("ctr task exec --tty sh, then exit 4: ctr exit %d, want 4; output: %q", code, out)
	}
	r.remove(t, id)
}

// testPauseResume pauses a container whose shell counts in a file, and
// checks the count stands still until it is resumed.
func (r *ctrRuntime) testPauseResume(t *testing.T) {
	id := r.id("pause-resume")
	pid := r.startDetached(t, id, "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i >/dev/shm/count; sleep 0.02; done")
	// The host reads the container's /dev/shm through its init's root.
	countFile := fmt.Sprintf("/proc/%d/root/dev/shm/count", pid)
	freezerState := filepath.Join("/sys/fs/cgroup/freezer", ctrNamespace, id, "freezer.state")
	// counting waits until the count passes from; it returns the count seen.
	counting := func(from int) int {
		var n int
		waitFor(t, 5*time.Second, func() error {
			data, err := os.ReadFile(countFile)
			if err != nil {
				return err
			}
			// Empty while the shell rewrites the file.
			if n, err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil || n <= from {
				return fmt.Errorf("count %q in %s, want more than %d", data, countFile, from)
			}
			return nil
		})
		return n
	}
	before := counting(0)

	r.d.mustCtr(t, "task", "pause", id)
	if _, status := r.d.task(t, id); status != "PAUSED" {
		t.Errorf("task status after ctr task pause: %q, want PAUSED", status)
	}
	if status := r.runtimeStatus(t, id); status != "paused" {
		t.Errorf("%s state after pause: status %q, want paused", r.name, status)
	}
	if data, err := os.ReadFile(freezerState); err != nil || strings.TrimSpace(string(data)) != "FROZEN" {
		t.Errorf("%s after pause: %q, %v; want FROZEN", freezerState, data, err)
	}
	paused, err := os.ReadFile(countFile)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // 15 rounds of the loop if it ran
	if later, err := os.ReadFile(countFile); err != nil || string(later) != string(paused) {
		t.Errorf("count went from %q to %q (%v) while paused", paused, later, err)
	}

	r.d.mustCtr(t, "task", "resume", id)
	if _, status := r.d.task(t, id); status != "RUNNING" {
		t.Errorf("task status after ctr task resume: %q, want RUNNING", status)
	}
	if status := r.runtimeStatus(t, id); status != "running" {
		t.Errorf("%s state after resume: status %q, want running", r.name, status)
	}
	if data, err := os.ReadFile(freezerState); err != nil || strings.TrimSpace(string(data)) != "THAWED" {
		t.Errorf("%s after resume: %q, %v; want THAWED", freezerState, data, err)
	}
	// paused is empty if the freeze caught the shell rewriting the file.
	from, _ := strconv.Atoi(strings.TrimSpace(string(paused)))
	counting(max(from, before))
	r.remove(t, id)
}

// testPs checks that `ctr task ps` lists the container's processes, the
// init's child and an exec'd process too, as the runtime and the cgroup do.
func (r *ctrRuntime) testPs(t *testing.T) {
	id := r.id("ps")
	r.startDetached(t, id, "sh", "-c", "sleep 1001 & wait")
	r.d.mustCtr(t, r.execArgs("--detach", "--exec-id", "ps-exec", id, "sleep", "1002")...)

	cgroup := filepath.Join("/sys/fs/cgroup/pids", ctrNamespace, id)
	var want []int
	// The init's child may not have started yet.
	waitFor(t, 5*time.Second, func() error {
		if want = cgroupPids(cgroup); len(want) != 3 {
			return fmt.Errorf("%s/cgroup.procs: %v, want 3 processes: sh, sleep 1001, sleep 1002", cgroup, want)
		}
		return nil
	})
	sort.Ints(want)

	// ctr prints "PID INFO", INFO naming the exec of an exec'd process.
	var listed []int
	execPid := 0
	out := r.d.mustCtr(t, "task", "ps", id)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("ctr task ps: bad pid in %q", line)
		}
		listed = append(listed, pid)
		if strings.Contains(line, "ps-exec") {
			execPid = pid
		}
	}
	sort.Ints(listed)
	if fmt.Sprint(listed) != fmt.Sprint(want) {
		t.Errorf("ctr task ps pids %v, cgroup has %v; output:\n%s", listed, want, out)
	}
	var fromRuntime []int
	if err := json.Unmarshal([]byte(r.runtime(t, "ps", "--format", "json", id)), &fromRuntime); err != nil {
		t.Fatalf("%s ps --format json: %v", r.name, err)
	}
	sort.Ints(fromRuntime)
	if fmt.Sprint(fromRuntime) != fmt.Sprint(want) {
		t.Errorf("%s ps --format json: %v, cgroup has %v", r.name, fromRuntime, want)
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", execPid)); err != nil || string(cmdline) != "sleep\x001002\x00" {
		t.Errorf("ctr task ps: exec ps-exec has pid %d, whose command line is %q (%v), want sleep 1002; output:\n%s", execPid, cmdline, err, out)
	}
	r.remove(t, id)
}

// testRunTTY runs a short command with `ctr run --tty` from a terminal.
func (r *ctrRuntime) testRunTTY(t *testing.T) {
	id := r.id("run-tty")
	p := startOnPty(t, "ctr", r.d.ctrArgs(r.runArgs("--rm", "--tty", busyboxImage, id, "sh", "-c", "tty; echo hello; exit 6")...), os.Environ())
	code, out := p.wait(t, 20*time.Second)
	for _, want := range []string{"/dev/pts/0", "hello"} {
		if !containsLine(out, want) {
			t.Errorf("ctr run --tty: terminal lacks a line %q; output: %q", want, out)
		}
	}
	if code != 6 {
		t.Errorf("ctr run --tty sh -c '...; exit 6': exit %d, want 6; output: %q", code, out)
	}
	r.assertClean(t, id)
}

// assertClean checks that nothing of container id is left: no task or
// container in containerd, no runtime state, no cgroup, no shim.
func (r *ctrRuntime) assertClean(t *testing.T, id string) {
	t.Helper()
	if out := r.d.mustCtr(t, "tasks", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("tasks left: %q", out)
	}
	if out := r.d.mustCtr(t, "containers", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %q", out)
	}
	entries, err := os.ReadDir(r.stateDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read runtime state dir: %v", err)
	}
	for _, e := range entries {
		t.Errorf("runtime state left: %s", filepath.Join(r.stateDir(), e.Name()))
	}
	cgroups, err := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", ctrNamespace, id))
	if err != nil {
		t.Fatal(err)
	}
	for _, cg := range cgroups {
		t.Errorf("cgroup left: %s", cg)
	}
	// The shim exits on its own once containerd deletes the task.
	waitFor(t, 5*time.Second, func() error {
		if shims := r.d.shims(); len(shims) > 0 {
			return fmt.Errorf("shims left: %v", shims)
		}
		return nil
	})
}

// containerd is a daemon of the test's own: its root, state and sockets are
// in a temporary directory, so it leaves the host's containerd alone.
type containerd struct {
	dir  string
	sock string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the daemon has exited
	ids  []string      // the containers run, whose cgroups stop removes
}

// Only the plugins ctr run needs: no CRI, no snapshotters but overlayfs and
// native. A missing plugin in the list is no error.
const containerdConfig = `version = 2
root = %[1]q
state = %[2]q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = %[3]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
`

func startContainerd(t *testing.T) *containerd {
	t.Helper()
	dir := t.TempDir()
	d := &containerd{dir: dir, sock: filepath.Join(dir, "containerd.sock"), log: filepath.Join(dir, "containerd.log"), done: make(chan struct{})}
	config := filepath.Join(dir, "config.toml")
	body := fmt.Sprintf(containerdConfig, filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.sock, filepath.Join(dir, "opt"))
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()

	// Shims put their sockets in /run/containerd/s whatever the config says.
	var created []string
	for _, p := range []string{"/run/containerd", "/run/containerd/s", "/run/containerd/fifo"} {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			created = append(created, p)
		}
	}

	d.cmd = exec.Command("containerd", "--config", config)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	go func() {
		d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("containerd log (%s):\n%s", d.log, tail(d.log, 40))
		}
		d.stop(t)
		for i := len(created) - 1; i >= 0; i-- {
			if err := os.Remove(created[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("remove %s (created by the test): %v", created[i], err)
			}
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-d.done:
			t.Fatalf("containerd exited at start: %v\n%s", d.cmd.ProcessState, tail(d.log, 20))
		default:
		}
		if _, err := os.Stat(d.sock); err == nil {
			if res := d.ctr(t, "version"); res.code == 0 {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd socket %s not ready after 10s\n%s", d.sock, tail(d.log, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the daemon, then removes what a failed test may have left:
// shims (which outlive containerd by design), container processes, their
// cgroups and mounts. Anything left is reported.
func (d *containerd) stop(t *testing.T) {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Errorf("containerd did not stop on SIGTERM; killing it")
		d.cmd.Process.Kill()
		<-d.done
	}

	for _, pid := range d.shims() {
		t.Errorf("shim left, pid %d: killing it", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// A killed shim leaves its socket, named in the bundle's address file.
	addresses, _ := filepath.Glob(filepath.Join(d.dir, "state", "io.containerd.runtime.v2.task", "*", "*", "address"))
	for _, a := range addresses {
		data, err := os.ReadFile(a)
		if err != nil {
			continue
		}
		sock := strings.TrimPrefix(strings.TrimSpace(string(data)), "unix://")
		if err := os.Remove(sock); err == nil {
			t.Errorf("shim socket left: %s: removed it", sock)
		}
	}
	var cgroups []string
	for _, id := range d.ids {
		found, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", ctrNamespace, id))
		cgroups = append(cgroups, found...)
	}
	killed := map[int]bool{}
	for _, cg := range cgroups {
		if fi, err := os.Stat(cg); err != nil || !fi.IsDir() {
			continue
		}
		for _, pid := range cgroupPids(cg) {
			if !killed[pid] {
				killed[pid] = true
				t.Errorf("container process left, pid %d in %s: killing it", pid, cg)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for _, cg := range cgroups {
		removeCgroup(t, cg)
	}
	// The runtimes make the namespace's cgroup and leave it; it goes once
	// empty (another user of the name keeps it).
	parents, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", ctrNamespace))
	for _, cg := range parents {
		unix.Rmdir(cg)
	}

	for _, mnt := range mountsUnder(d.dir) {
		t.Errorf("mount left: %s: unmounting it", mnt)
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	}
}

// removeCgroup removes cg once the processes killed in it are gone.
func removeCgroup(t *testing.T, cg string) {
	var err error
	for range 100 {
		if err = unix.Rmdir(cg); err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("remove cgroup %s: %v", cg, err)
}

func cgroupPids(cg string) []int {
	data, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// shims returns the pids of the shims serving this daemon, found by the
// -address argument they are started with.
func (d *containerd) shims() []int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		argv := strings.Split(string(data), "\x00")
		if !strings.HasPrefix(filepath.Base(argv[0]), "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(argv); i++ {
			if argv[i] == "-address" && argv[i+1] == d.sock {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// fifoDir is where ctr makes the FIFOs for a task's stdio, rather than
// under /run/containerd.
func (d *containerd) fifoDir() string { return filepath.Join(d.dir, "fifo") }

type ctrResult struct {
	stdout, stderr string
	code           int
}

// ctr runs ctr against this daemon in the test namespace.
func (d *containerd) ctr(t *testing.T, args ...string) ctrResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ctr", d.ctrArgs(args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ctr %s: no answer in %s; stderr: %s", strings.Join(args, " "), ctrTimeout, stderr.String())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("ctr %s: %v", strings.Join(args, " "), err)
	}
	return ctrResult{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

// ctrArgs is ctr's command line for this daemon in the test namespace.
func (d *containerd) ctrArgs(args ...string) []string {
	return append([]string{"-a", d.sock, "-n", ctrNamespace}, args...)
}

func (d *containerd) mustCtr(t *testing.T, args ...string) string {
	t.Helper()
	res := d.ctr(t, args...)
	if res.code != 0 {
		t.Fatalf("ctr %s: exit %d; stderr: %s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

// task returns the pid and status `ctr task ls` shows for id.
func (d *containerd) task(t *testing.T, id string) (int, string) {
	t.Helper()
	out := d.mustCtr(t, "task", "ls")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == id {
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("ctr task ls: bad pid in %q", line)
			}
			return pid, f[2]
		}
	}
	t.Fatalf("ctr task ls: no task %s in %q", id, out)
	return 0, ""
}

// waitFor polls check until it returns nil, failing the test with its last
// error after timeout.
func waitFor(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("after %s: %v", timeout, err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killIfSleeper kills the container process pid if delete left it running:
// a runtime that lost it may also have left it outside the cgroup.
func killIfSleeper(t *testing.T, pid int) {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil && string(cmdline) == "sleep\x001000\x00" {
		t.Errorf("container process %d left: killing it", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func containsLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// mountsUnder lists the mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
