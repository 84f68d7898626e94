package integration

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// events streams an "oom" line when the kernel kills a process of the
// container for its memory limit.
func TestEventsOOM(t *testing.T) {
	t.Parallel()
	requireV1(t)
	e := newEnv(t)
	// Allocate only once events is watching, so the kill is not already
	// counted when it starts.
	s := shell(t, `while [ ! -e /dev/shm/go ]; do sleep 0.05; done; x=$(head -c 100000000 /dev/zero | tr "\0" a); sleep 30`)
	s.Linux.CgroupsPath = "/berth-test-" + idSalt + "-events-oom"
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(32 << 20)), Swap: ptr(int64(32 << 20))}
	id, _ := e.start(s)
	// The container's /dev/shm is opened while its process surely lives
	// (it waits for the trigger): a path through /proc/PID would be gone
	// once the kernel has killed it.
	shm, err := os.OpenRoot("/proc/" + strconv.Itoa(e.state(id).Pid) + "/root/dev/shm")
	if err != nil {
		t.Fatal(err)
	}
	defer shm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := e.command(ctx, "--root", e.root, "events", "--interval", "1s", id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	triggered := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		// The first stats line shows events has its starting count.
		if !triggered && strings.Contains(sc.Text(), `"type":"stats"`) {
			if err := shm.WriteFile("go", nil, 0o644); err != nil {
				t.Fatalf("trigger the allocation: %v", err)
			}
			triggered = true
		}
		if strings.Contains(sc.Text(), `"type":"oom"`) {
			return
		}
	}
	t.Errorf("no oom event before the stream ended")
}

// exec --cap adds a capability to the container's set for that process.
func TestExecCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.start(newSpec(t, "sleep", "30"))
	capEff := func(args ...string) uint64 {
		hex := statusField(e.mustRT(append(append([]string{"exec"}, args...), id, "cat", "/proc/self/status")...).stdout, "CapEff")
		v, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			t.Fatalf("CapEff %q: %v", hex, err)
		}
		return v
	}
	const sysAdmin = 1 << 21
	if plain, with := capEff(), capEff("--cap", "CAP_SYS_ADMIN"); plain&sysAdmin != 0 || with != plain|sysAdmin {
		t.Errorf("CapEff without --cap %x, with --cap CAP_SYS_ADMIN %x", plain, with)
	}
	if r := e.rt("exec", "--cap", "CAP_BOGUS", id, "true"); r.code != 255 || !strings.Contains(r.stderr, "CAP_BOGUS") {
		t.Errorf("exec --cap CAP_BOGUS: %s", r)
	}
}

// Socket activation: LISTEN_FDS descriptors arrive from fd 3 with
// LISTEN_FDS and LISTEN_PID=1 set.
func TestListenFds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f, err := os.CreateTemp(e.dir, "activation-")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("socket-activated")
	f.Close()
	in, err := os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	s := shell(t, `echo "$LISTEN_FDS $LISTEN_PID $(cat <&3)"`)
	r := e.runWith(cmdOpts{extraFiles: []*os.File{in}, env: []string{"LISTEN_FDS=1"}}, s)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "1 1 socket-activated" {
		t.Errorf("run with LISTEN_FDS=1: %s", r)
	}
}

// exec --ignore-paused joins a paused container (the process runs once it
// is resumed); exec --preserve-fds passes descriptors from fd 3.
func TestExecIgnorePausedPreserveFds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.start(newSpec(t, "sleep", "30"))
	e.mustRT("pause", id)
	if r := e.rt("exec", "--detach", "--ignore-paused", id, "sh", "-c", "echo ran > /dev/shm/ignored"); r.code != 0 {
		t.Fatalf("exec --ignore-paused: %s", r)
	}
	e.mustRT("resume", id)
	waitOutput(t, "/proc/"+strconv.Itoa(e.state(id).Pid)+"/root/dev/shm/ignored", "ran")

	f, err := os.CreateTemp(e.dir, "preserved-")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("preserved-content")
	f.Seek(0, 0)
	defer f.Close()
	r := e.rtWith(cmdOpts{extraFiles: []*os.File{f}}, "exec", "--preserve-fds", "1", id, "sh", "-c", "cat <&3")
	if r.code != 0 || r.stdout != "preserved-content" {
		t.Errorf("exec --preserve-fds 1: %s", r)
	}
}

// exec --cgroup puts the process in a sub-cgroup of the container's, and
// delete removes that too.
func TestExecSubCgroup(t *testing.T) {
	t.Parallel()
	requireV1(t)
	e := newEnv(t)
	path := "/berth-test-" + idSalt + "-sub"
	s := newSpec(t, "sleep", "30")
	s.Linux.CgroupsPath = path
	id, _ := e.start(s)
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*" + path)
	if len(hierarchies) == 0 {
		t.Fatalf("no cgroup %s", path)
	}
	for _, dir := range hierarchies {
		if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		// A v1 cpuset cgroup takes no task before it has cpus and mems.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if data, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
				writeFile(t, filepath.Join(dir, "sub", f), string(data), 0o644)
			}
		}
	}
	r := e.mustRT("exec", "--cgroup", "sub", id, "cat", "/proc/self/cgroup")
	if !strings.Contains(r.stdout, "pids:"+path+"/sub") && !strings.Contains(r.stdout, "pids:/sub") {
		t.Errorf("exec --cgroup sub: /proc/self/cgroup is\n%s", r.stdout)
	}
	if r := e.rt("exec", "--cgroup", "../escape", id, "true"); r.code != 255 || !strings.Contains(r.stderr, "sub-cgroup") {
		t.Errorf("exec --cgroup ../escape: %s", r)
	}
	deleteRemovesCgroups(e, id, hierarchies...)
}

// A cgroup hierarchy mounted elsewhere on the host (another container's
// /sys/fs/cgroup, say) is not a hierarchy of its own: the container's cgroup
// mount still gets each hierarchy once.
func TestCgroupMountWithExtraHostCgroupMount(t *testing.T) {
	requireV1(t)
	e := newEnv(t)
	// Named like the real one, as in another container's /sys/fs/cgroup/cpu.
	extra := filepath.Join(t.TempDir(), "cpu")
	if err := os.Mkdir(extra, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("cgroup", extra, "cgroup", 0, "cpu"); err != nil {
		t.Fatalf("mount a second view of the cpu hierarchy: %v", err)
	}
	defer unix.Unmount(extra, unix.MNT_DETACH)
	s := shell(t, "ls /sys/fs/cgroup")
	out := e.mustRun(s)
	if !strings.Contains(out, "cpu\n") || strings.Count(out, "cpu\n") != 1 {
		t.Errorf("/sys/fs/cgroup in the container: %q", out)
	}
}

// A terminal process gets a pty from the container's devpts, also bound on
// /dev/console; `run` in the foreground serves it without a console socket.
// ps with ps options filters the host's ps output to the container.
func TestTerminalAndPsTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := shell(t, "tty; stat -c %t:%T /dev/console")
	s.Process.Terminal = true
	r := e.run(s)
	out := strings.ReplaceAll(r.stdout, "\r", "")
	if r.code != 0 || !strings.Contains(out, "/dev/pts/0\n") || !strings.Contains(out, "88:0") {
		t.Errorf("terminal run (want /dev/pts/0 and console 136:0 = 88:0 hex): %s", r)
	}

	id, _ := e.start(newSpec(t, "sleep", "31"))
	ps := lines(e.mustRT("ps", id, "-o", "pid,args").stdout)
	if len(ps) != 2 || !strings.Contains(ps[0], "PID") || !strings.Contains(ps[1], "sleep 31") {
		t.Errorf("ps -o pid,args: %q", ps)
	}
}

// A user namespace without a network namespace of its own cannot mount
// sysfs: the host's /sys is bound read-only instead. exec joins the user
// namespace with the others.
func TestUserNamespaceWithoutNetnsAndExec(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newSpec(t, "sleep", "30")
	withUserNamespace(t, s)
	id, _ := e.start(s)
	r := e.mustRT("exec", id, "sh", "-c", "id -u; cat /proc/self/uid_map; ls /sys/kernel >/dev/null && echo sys-ok; touch /sys/x 2>&1; true")
	out := r.stdout
	if !strings.HasPrefix(out, "0\n") || !strings.Contains(out, "100000") || !strings.Contains(out, "sys-ok") || !strings.Contains(out, "Read-only") {
		t.Errorf("exec in a user namespace container without netns: %q", out)
	}
}
