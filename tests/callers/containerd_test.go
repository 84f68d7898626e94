package callers

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ctr's default spec puts containers in cgroup /<namespace>/<id>, so the
// namespace name is also the parent cgroup the test checks and removes.
const ctrNamespace = "berth-test"

// TestContainerd drives containers through containerd 1.6's runc shim with
// `ctr run --runc-binary`, once with berth-runtime and once with runc.
func TestContainerd(t *testing.T) {
	berth := requireCaller(t, "containerd", "containerd", "ctr", "containerd-shim-runc-v2")
	archive := busyboxArchive(t, writeBusyboxImage)

	d := startContainerd(t)
	d.ctr.mustRun(t, "images", "import", "--all-platforms", archive)
	if out := d.ctr.mustRun(t, "images", "ls", "-q"); !strings.Contains(out, busyboxImage) {
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

// runtime runs the runtime itself on the containers the shim made.
func (r *ctrRuntime) runtime() cli { return runtimeCLI(r.binary, r.stateDir()) }

// run runs `ctr run` with this runtime; args are ctr run's flags, then the
// container id and command.
func (r *ctrRuntime) run(t *testing.T, args ...string) cmdResult {
	t.Helper()
	return r.d.ctr.run(t, r.runArgs(args...)...)
}

func (r *ctrRuntime) runArgs(args ...string) []string {
	return append([]string{"run", "--runc-binary", r.binary, "--runc-root", r.root, "--fifo-dir", r.d.fifoDir()}, args...)
}

// execArgs is the command line of `ctr task exec`; args are its flags, then
// the container id and command.
func (r *ctrRuntime) execArgs(args ...string) []string {
	return append([]string{"task", "exec", "--fifo-dir", r.d.fifoDir()}, args...)
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
	if !containsLine(r.d.ctr.mustRun(t, "task", "ls", "-q"), id) {
		if containsLine(r.d.ctr.mustRun(t, "container", "ls", "-q"), id) {
			t.Errorf("container %s left: deleting it", id)
			r.d.ctr.run(t, "container", "delete", id)
		}
		return
	}
	t.Errorf("task %s left: removing it", id)
	// cgroup v1 freezes even SIGKILL: thaw a paused task first.
	r.d.ctr.run(t, "task", "resume", id)
	r.d.ctr.run(t, "task", "kill", "-a", "-s", "SIGKILL", id)
	r.d.waitStopped(t, id)
	r.d.ctr.run(t, "task", "delete", "--force", id)
	r.d.ctr.run(t, "container", "delete", id)
}

// remove kills the task of container id and deletes both, as a user does.
func (r *ctrRuntime) remove(t *testing.T, id string) {
	t.Helper()
	r.d.ctr.mustRun(t, "task", "kill", "-s", "SIGKILL", id)
	r.d.waitStopped(t, id)
	r.d.ctr.mustRun(t, "task", "delete", id)
	r.d.ctr.mustRun(t, "container", "delete", id)
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
	assertInCgroup(t, filepath.Join("/sys/fs/cgroup/pids", ctrNamespace, id), pid)

	r.d.ctr.mustRun(t, "task", "kill", "-s", "SIGKILL", id)
	r.d.waitStopped(t, id)
	// ctr 1.6 task delete exits 0 but warns of the task's status, 128+SIGKILL.
	res := r.d.ctr.run(t, "task", "delete", id)
	if want := fmt.Sprintf("exit code %d", 128+int(syscall.SIGKILL)); res.code != 0 || !strings.Contains(res.stderr, want) {
		t.Errorf("ctr task delete: exit %d, stderr %q; want 0 and %q", res.code, res.stderr, want)
	}
	r.d.ctr.mustRun(t, "container", "delete", id)
	r.assertClean(t, id)
	assertGone(t, pid, "delete")
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
	res := r.d.ctr.run(t, r.execArgs("--exec-id", "plain", id, "sh", "-c", "cat /proc/1/cmdline; echo; echo err >&2; exit 5")...)
	if res.code != 5 || res.stdout != "sleep\x001000\x00\n" || !strings.Contains(res.stderr, "err\n") {
		t.Errorf("ctr task exec sh -c '...; exit 5': exit %d, stdout %q, stderr %q; want 5, \"sleep\\x001000\\x00\\n\" and \"err\"", res.code, res.stdout, res.stderr)
	}

	// ctr sizes the process's terminal from its own (24x80) and copies what
	// is typed to it; the echoed input shows neither "24 80" nor "42".
	p := r.d.ctr.startOnPty(t, r.execArgs("--tty", "--exec-id", "tty", id, "sh")...)
	p.Expect(t, "# ", 10*time.Second)
	p.Send(t, "tty; stty size; echo $((6*7)); exit 4\r")
	code, out := p.Wait(t, 10*time.Second)
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

	r.freeze(t, id, true)
	paused, err := os.ReadFile(countFile)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // 15 rounds of the loop if it ran
	if later, err := os.ReadFile(countFile); err != nil || string(later) != string(paused) {
		t.Errorf("count went from %q to %q (%v) while paused", paused, later, err)
	}

	r.freeze(t, id, false)
	// paused is empty if the freeze caught the shell rewriting the file.
	from, _ := strconv.Atoi(strings.TrimSpace(string(paused)))
	counting(max(from, before))
	r.remove(t, id)
}

// freeze runs `ctr task pause` on container id, or `ctr task resume` if not
// frozen, and checks that ctr, the runtime's state and the freezer cgroup
// all show the container paused, or all show it running.
func (r *ctrRuntime) freeze(t *testing.T, id string, frozen bool) {
	t.Helper()
	command, task, state, freezer := "resume", "RUNNING", "running", "THAWED"
	if frozen {
		command, task, state, freezer = "pause", "PAUSED", "paused", "FROZEN"
	}
	r.d.ctr.mustRun(t, "task", command, id)
	if _, status := r.d.task(t, id); status != task {
		t.Errorf("task status after ctr task %s: %q, want %s", command, status, task)
	}
	if status := runtimeStatus(t, r.runtime(), id); status != state {
		t.Errorf("%s state after %s: status %q, want %s", r.name, command, status, state)
	}
	freezerState := filepath.Join("/sys/fs/cgroup/freezer", ctrNamespace, id, "freezer.state")
	if data, err := os.ReadFile(freezerState); err != nil || strings.TrimSpace(string(data)) != freezer {
		t.Errorf("%s after %s: %q, %v; want %s", freezerState, command, data, err, freezer)
	}
}

// testPs checks that `ctr task ps` lists the container's processes, the
// init's child and an exec'd process too, as the runtime and the cgroup do.
func (r *ctrRuntime) testPs(t *testing.T) {
	id := r.id("ps")
	r.startDetached(t, id, "sh", "-c", "sleep 1001 & wait")
	r.d.ctr.mustRun(t, r.execArgs("--detach", "--exec-id", "ps-exec", id, "sleep", "1002")...)

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
	out := r.d.ctr.mustRun(t, "task", "ps", id)
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
	if err := json.Unmarshal([]byte(r.runtime().mustRun(t, "ps", "--format", "json", id)), &fromRuntime); err != nil {
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
	p := r.d.ctr.startOnPty(t, r.runArgs("--rm", "--tty", busyboxImage, id, "sh", "-c", "tty; echo hello; exit 6")...)
	code, out := p.Wait(t, 20*time.Second)
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
	if out := r.d.ctr.mustRun(t, "tasks", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("tasks left: %q", out)
	}
	if out := r.d.ctr.mustRun(t, "containers", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %q", out)
	}
	entries, err := os.ReadDir(r.stateDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read runtime state dir: %v", err)
	}
	for _, e := range entries {
		t.Errorf("runtime state left: %s", filepath.Join(r.stateDir(), e.Name()))
	}
	assertNoCgroups(t, filepath.Join(ctrNamespace, id))
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
	daemon
	ctr cli      // ctr in the test's namespace
	ids []string // the containers run, whose cgroups stop removes
}

// containerdBase is a configuration with its own root, state, socket and
// opt directory, and no snapshotters but overlayfs and native; the plugins
// listed after it are disabled too. A missing plugin in the list is no
// error.
func containerdBase(disabled ...string) string {
	list := ""
	for _, p := range append(disabled, "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
		"io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs") {
		list += fmt.Sprintf("  %q,\n", p)
	}
	return `version = 2
root = %[1]q
state = %[2]q
disabled_plugins = [
` + list + `]

[grpc]
  address = %[3]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
`
}

// containerdConfig has only the plugins ctr run needs: no CRI.
var containerdConfig = containerdBase("io.containerd.grpc.v1.cri")

func startContainerd(t *testing.T) *containerd {
	t.Helper()
	return startContainerdWith(t, ctrNamespace, containerdConfig)
}

// startContainerdWith starts containerd on private directories and socket
// with config (a format taking root, state, socket, opt directory and the
// test's directory), ctr working in namespace.
func startContainerdWith(t *testing.T, namespace, config string) *containerd {
	t.Helper()
	dir := t.TempDir()
	d := &containerd{daemon: daemon{name: "containerd", dir: dir, sock: filepath.Join(dir, "containerd.sock"), log: filepath.Join(dir, "containerd.log")}}
	d.ctr = cli{program: "ctr", global: []string{"-a", d.sock, "-n", namespace}}
	body := fmt.Sprintf(config, filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.sock, filepath.Join(dir, "opt"), dir)
	config = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// Shims put their sockets in /run/containerd/s whatever the config says.
	created := absentHostPaths("/run/containerd", "/run/containerd/s", "/run/containerd/fifo")
	d.start(t, []string{"--config", config}, func(t *testing.T) {
		d.stop(t)
		created.remove(t)
	})
	d.waitReady(t, 10*time.Second, d.ctr)
	return d
}

// stop stops the daemon, then removes what a failed test may have left:
// shims (which outlive containerd by design), container processes, their
// cgroups and mounts. Anything left is reported.
func (d *containerd) stop(t *testing.T) {
	d.terminate(t, 10*time.Second)
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
		cgroups = append(cgroups, cgroupsNamed(filepath.Join(ctrNamespace, id))...)
	}
	removeCgroups(t, cgroups)
	// The runtimes make the namespace's cgroup and leave it; it goes once
	// empty (another user of the name keeps it).
	for _, cg := range cgroupsNamed(ctrNamespace) {
		unix.Rmdir(cg)
	}
	unmountUnder(t, d.dir)
}

// shims returns the pids of the shims serving this daemon, found by the
// -address argument they are started with.
func (d *containerd) shims() []int {
	return processes(func(cmdline []byte) bool {
		argv := strings.Split(string(cmdline), "\x00")
		if !strings.HasPrefix(filepath.Base(argv[0]), "containerd-shim") {
			return false
		}
		for i := 0; i+1 < len(argv); i++ {
			if argv[i] == "-address" && argv[i+1] == d.sock {
				return true
			}
		}
		return false
	})
}

// fifoDir is where ctr makes the FIFOs for a task's stdio, rather than
// under /run/containerd.
func (d *containerd) fifoDir() string { return filepath.Join(d.dir, "fifo") }

// task returns the pid and status `ctr task ls` shows for id.
func (d *containerd) task(t *testing.T, id string) (int, string) {
	t.Helper()
	out := d.ctr.mustRun(t, "task", "ls")
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

// waitStopped waits until the task of id has stopped after a SIGKILL.
func (d *containerd) waitStopped(t *testing.T, id string) {
	t.Helper()
	waitFor(t, 10*time.Second, func() error {
		if _, status := d.task(t, id); status != "STOPPED" {
			return fmt.Errorf("task %s status %q after SIGKILL, want STOPPED", id, status)
		}
		return nil
	})
}
