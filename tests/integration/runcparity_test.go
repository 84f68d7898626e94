package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Behaviours runc 1.1 users rely on, each as runc shows it.

// TestExecPausedRefused: exec into a paused container is refused with
// runc's words, which name the way around it.
func TestExecPausedRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.start(newSpec(t, "sleep", "30"))
	e.mustRT("pause", id)
	r := e.rt("exec", id, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "cannot exec in a paused container (use --ignore-paused to override)") {
		t.Errorf("exec into a paused container: %s", r)
	}
	e.mustRT("resume", id)
}

// TestExecSubCgroupByController: `exec --cgroup cpu:sub` moves the process
// into sub of the cpu hierarchy only; bad forms are refused by name.
func TestExecSubCgroupByController(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if hostUnified() {
		t.Skip("per-controller sub-cgroups are a cgroup v1 form")
	}
	id, _ := e.start(newSpec(t, "sleep", "30"))
	var cpuDir string
	for _, dir := range cgroupDirs(t, id) {
		if strings.HasPrefix(dir, "/sys/fs/cgroup/cpu/") {
			cpuDir = dir
		}
	}
	if cpuDir == "" {
		t.Fatal("no cpu cgroup of the container")
	}
	if err := os.Mkdir(filepath.Join(cpuDir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(e.dir, "exec.pid")
	e.mustRT("exec", "-d", "--pid-file", pidFile, "--cgroup", "cpu:sub", id, "sleep", "20")
	pid := strings.TrimSpace(readFile(t, pidFile))
	var cpu, memory string
	for _, line := range strings.Split(readFile(t, "/proc/"+pid+"/cgroup"), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch parts[1] {
		case "cpu":
			cpu = parts[2]
		case "memory":
			memory = parts[2]
		}
	}
	if !strings.HasSuffix(cpu, "/"+id+"/sub") || !strings.HasSuffix(memory, "/"+id) {
		t.Errorf("exec --cgroup cpu:sub: cpu cgroup %q, memory cgroup %q", cpu, memory)
	}
	for arg, want := range map[string]string{"nosuch:sub": "unknown controller nosuch", "a:b:c": "invalid --cgroup"} {
		if r := e.rt("exec", "--cgroup", arg, id, "true"); r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("exec --cgroup %s: %s", arg, r)
		}
	}
	if r := e.rt("exec", "--cgroup", "sub", "--cgroup", "cpu:sub", id, "true"); r.code == 0 || !strings.Contains(r.stderr, "CONTROLLER:PATH") {
		t.Errorf("exec with a plain --cgroup repeated: %s", r)
	}
	// The sub-cgroup must be empty before delete removes the container's.
	e.mustRT("kill", "--all", id, "KILL")
	e.waitStatus(id, "stopped")
}

// TestUnifiedOnV1Refused: linux.resources.unified is runc's "invalid
// configuration" on a v1 host.
func TestUnifiedOnV1Refused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.privateRuntime()
	if hostUnified() {
		t.Skip("unified is valid on cgroup v2")
	}
	s := newSpec(t, "true")
	s.Linux.Resources = &specs.LinuxResources{Unified: map[string]string{"memory.max": "1000000"}}
	id, b, r := e.createMustFail(s)
	contains(t, "create error", r.stderr, "invalid configuration", "unified")
	e.checkNothingLeft(id, b)
}

// TestPreparedCgroup: a cgroupsPath the caller made beforehand that holds
// a process is warned about, a frozen one refused and left as it was.
func TestPreparedCgroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.privateRuntime()
	if hostUnified() {
		t.Skip("the freezer hierarchy is cgroup v1's")
	}
	prepare := func(name string) string {
		dir := filepath.Join("/sys/fs/cgroup/freezer", name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
			// delete removes the cgroup it used, prepared or not.
			if err := unix.Rmdir(dir); err != nil && err != unix.ENOENT {
				t.Errorf("remove prepared cgroup %s: %v", dir, err)
			}
		})
		return dir
	}

	frozen := e.newID()
	dir := prepare(frozen)
	writeFile(t, filepath.Join(dir, "freezer.state"), "FROZEN", 0o644)
	s := newSpec(t, "true")
	s.Linux.CgroupsPath = "/" + frozen
	id, b, r := e.createMustFail(s)
	contains(t, "create in a frozen cgroup", r.stderr, "container's cgroup unexpectedly frozen")
	e.checkNothingLeft(id, b)
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the prepared frozen cgroup is gone: %v", err)
	}

	busy := e.newID()
	dir = prepare(busy)
	outsider, stop := startSleeper(t)
	writeFile(t, filepath.Join(dir, "cgroup.procs"), strconv.Itoa(outsider), 0o644)
	s = newSpec(t, "sleep", "30")
	s.Linux.CgroupsPath = "/" + busy
	id, r = e.create(s)
	contains(t, "create in a cgroup with a process", r.stderr, "container's cgroup is not empty: 1 process(es) found")
	// The outsider is the caller's to end before the container goes.
	stop()
	e.mustRT("delete", "--force", id)
}

// TestKillAndPsOfStopped: kill with signal 0 tests a live container;
// kill --all of a stopped one and ps of it succeed with nothing to show.
func TestKillAndPsOfStopped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.start(newSpec(t, "sleep", "30"))
	e.mustRT("kill", id, "0")
	e.mustRT("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	if r := e.rt("kill", id, "0"); r.code == 0 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("kill 0 of a stopped container: %s", r)
	}
	e.mustRT("kill", "--all", id, "KILL")
	if out := lines(e.mustRT("ps", id).stdout); len(out) != 1 || !strings.Contains(out[0], "PID") {
		t.Errorf("ps of a stopped container: %q, want the header only", out)
	}
	if out := strings.TrimSpace(e.mustRT("ps", "--format", "json", id).stdout); out != "null" {
		t.Errorf("ps --format json of a stopped container: %q, want null", out)
	}
}

// TestTerminalOwnerAndSize: a terminal belongs to the process's user (in
// devpts' tty group) and has the process's consoleSize, in run and exec.
func TestTerminalOwnerAndSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := shell(t, "stat -L -c %u:%g /proc/self/fd/0; stty size")
	s.Process.Terminal = true
	s.Process.User = specs.User{UID: 1000, GID: 1000}
	s.Process.ConsoleSize = &specs.Box{Height: 33, Width: 111}
	r := e.run(s)
	if out := strings.ReplaceAll(r.stdout, "\r", ""); r.code != 0 || out != "1000:5\n33 111\n" {
		t.Errorf("terminal of run: %s", r)
	}

	id, _ := e.start(newSpec(t, "sleep", "30"))
	p := *s.Process
	p.ConsoleSize = &specs.Box{Height: 20, Width: 70}
	proc := filepath.Join(e.dir, "process.json")
	writeJSONFile(t, proc, &p)
	r = e.rt("exec", "--process", proc, id)
	if out := strings.ReplaceAll(r.stdout, "\r", ""); r.code != 0 || out != "1000:5\n20 70\n" {
		t.Errorf("terminal of exec: %s", r)
	}
}

// TestExecCwdOnlyRootEnters: as runc, the cwd is entered before the user
// changes, so a directory only root may enter can be a user's cwd.
func TestExecCwdOnlyRootEnters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newSpec(t, "sleep", "30")
	rootfs := copyRootfs(t, s)
	if err := os.Mkdir(filepath.Join(rootfs, "private"), 0o700); err != nil {
		t.Fatal(err)
	}
	id, _ := e.start(s)
	if out := e.mustRT("exec", "--user", "1000:1000", "--cwd", "/private", id, "pwd").stdout; out != "/private\n" {
		t.Errorf("pwd in a cwd only root may enter: %q", out)
	}
}

// TestCgroupV2PreparedAndSub: on cgroup v2 a frozen prepared cgroup is
// refused too, and exec --cgroup takes a plain path only.
func TestCgroupV2PreparedAndSub(t *testing.T) {
	t.Parallel()
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC || hostUnified() {
		t.Skip("no hybrid cgroup2 hierarchy at /sys/fs/cgroup/unified")
	}
	e := newEnv(t)
	e.privateRuntime()
	e.v2 = true
	frozen := "/berth-test-" + idSalt + "-v2frozen"
	dir := filepath.Join("/sys/fs/cgroup/unified", frozen)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Rmdir(dir); err != nil {
			t.Errorf("remove prepared cgroup %s: %v", dir, err)
		}
	})
	writeFile(t, filepath.Join(dir, "cgroup.freeze"), "1", 0o644)
	s := newSpec(t, "true")
	s.Linux.CgroupsPath = frozen
	id, b, r := e.createMustFail(s)
	contains(t, "create in a frozen cgroup", r.stderr, "container's cgroup unexpectedly frozen")
	e.checkNothingLeft(id, b)

	s = newSpec(t, "sleep", "30")
	path := "/berth-test-" + idSalt + "-v2sub"
	s.Linux.CgroupsPath = path
	id, _ = e.start(s)
	if err := os.Mkdir(filepath.Join("/sys/fs/cgroup/unified", path, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := e.rt("exec", "--cgroup", "cpu:sub", id, "true"); r.code == 0 || !strings.Contains(r.stderr, "cgroup v2 has one hierarchy") {
		t.Errorf("exec --cgroup cpu:sub on v2: %s", r)
	}
	pidFile := filepath.Join(e.dir, "exec.pid")
	e.mustRT("exec", "-d", "--pid-file", pidFile, "--cgroup", "sub", id, "sleep", "20")
	pid := strings.TrimSpace(readFile(t, pidFile))
	if cg := readFile(t, "/proc/"+pid+"/cgroup"); !strings.Contains(cg, "0::"+path+"/sub\n") {
		t.Errorf("exec --cgroup sub on v2: /proc/%s/cgroup:\n%s", pid, cg)
	}
	e.mustRT("kill", "--all", id, "KILL")
	e.waitStatus(id, "stopped")
}

// hostUnified reports whether the host has cgroup v2 only.
func hostUnified() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// startSleeper starts a host process and returns its pid and a function
// that kills it and waits for it, called at the test's end if not before.
func startSleeper(t *testing.T) (int, func()) {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(stop)
	return cmd.Process.Pid, stop
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(data), 0o644)
}

// TestDebugAndVersion: --debug writes debug lines to stderr, or with --log
// to the log file only, in the log format asked for; --version has runc's
// lines.
func TestDebugAndVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, b := e.newID(), e.bundle(newSpec(t, "sleep", "30"))
	e.track(id)
	logPath := filepath.Join(e.dir, "log.json")
	r := e.mustRT("--debug", "--log", logPath, "--log-format", "json", "create", "--bundle", b, id)
	if strings.Contains(r.stderr, "debug") {
		t.Errorf("create --debug --log wrote debug lines on stderr: %q", r.stderr)
	}
	debug := 0
	for _, line := range lines(readFile(t, logPath)) {
		var entry struct{ Level, Msg, Time string }
		if err := json.Unmarshal([]byte(line), &entry); err != nil || entry.Time == "" {
			t.Errorf("log line %q is not runc's JSON: %v", line, err)
		}
		if entry.Level == "debug" {
			debug++
		}
	}
	if debug < 3 {
		t.Errorf("create --debug wrote %d debug lines to the log:\n%s", debug, readFile(t, logPath))
	}
	if r := e.mustRT("--debug", "start", id); !strings.Contains(r.stderr, "level=debug") {
		t.Errorf("start --debug: no debug line on stderr: %q", r.stderr)
	}
	out := lines(e.mustRT("--version").stdout)
	if len(out) < 4 || !strings.HasPrefix(out[0], "berth-runtime version ") || !strings.HasPrefix(out[len(out)-3], "spec: ") ||
		!strings.HasPrefix(out[len(out)-2], "go: go") || !strings.HasPrefix(out[len(out)-1], "libseccomp: 2.") {
		t.Errorf("--version: %q", out)
	}
}

// TestMaskedSymlinkRefused: a masked path that is a symlink (/proc/mounts
// points to self/mounts) is refused by name rather than masking its target.
func TestMaskedSymlinkRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.privateRuntime()
	s := newSpec(t, "true")
	s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/proc/mounts")
	id, b, r := e.createMustFail(s)
	contains(t, "create error", r.stderr, "masked path /proc/mounts is a symlink")
	e.checkNothingLeft(id, b)
}

// TestExecFailuresLeaveNothing: an exec refused (no such container, a
// stopped one, a paused one, a bad process) fails with one line naming
// why, and leaves no process of the runtime behind.
func TestExecFailuresLeaveNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.privateRuntime()
	stopped, _ := e.start(newSpec(t, "true"))
	e.waitStatus(stopped, "stopped")
	paused, _ := e.start(newSpec(t, "sleep", "30"))
	e.mustRT("pause", paused)
	defer e.mustRT("resume", paused)
	bad := filepath.Join(e.dir, "process.json")
	writeFile(t, bad, `{"args":[],"cwd":"/"}`, 0o644)
	running, _ := e.start(newSpec(t, "sleep", "30"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "no-such-container", "true"}, `container "no-such-container" does not exist`},
		{[]string{"exec", stopped, "true"}, "container not running"},
		{[]string{"exec", "--tty", paused, "true"}, "cannot exec in a paused container"},
		{[]string{"exec", "--process", bad, running}, "args"},
	} {
		r := e.rt(c.args...)
		if r.code == 0 {
			t.Errorf("%v succeeded", c.args)
			continue
		}
		oneLine(t, r)
		contains(t, fmt.Sprint(c.args), r.stderr, c.want)
		if pids := processesOf(t, e.bin); len(pids) > 0 {
			t.Errorf("%v left processes of the runtime: %v", c.args, pids)
		}
	}
}
