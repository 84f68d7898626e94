package engine

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rootlessUser is the unprivileged user contrib/test-user.sh makes, with
// subordinate uids and gids.
const rootlessUser = "berthtest"

// newRootlessEngine is an engine whose commands run as rootlessUser, with a
// HOME and XDG_RUNTIME_DIR of its own (so a pause process of its own), and
// the busybox image. Its cleanup ends the pause process, which takes the
// user's mount namespace and every mount in it along.
func newRootlessEngine(t *testing.T) *engine {
	t.Helper()
	e := newEngine(t)
	u, err := user.Lookup(rootlessUser)
	if err != nil {
		t.Fatalf("user %s: %v (contrib/test-user.sh makes it)", rootlessUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	home, xdg := filepath.Join(e.dir, "home"), filepath.Join(e.dir, "xdg")
	for _, d := range []string{home, xdg} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{e.dir, home, xdg, e.Config} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	e.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	e.Env = append(e.Env, "HOME="+home, "XDG_RUNTIME_DIR="+xdg, "USER="+rootlessUser, "LOGNAME="+rootlessUser)
	t.Cleanup(func() {
		if pid := pausePid(e); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	cmd := e.cmd()
	script := exec.Command("../../contrib/busybox-image.sh", berthBin, "--", "--root", e.root, "--runroot", e.runroot, "--config", e.Config)
	script.Env, script.SysProcAttr = cmd.Env, cmd.SysProcAttr
	if out, err := script.CombinedOutput(); err != nil {
		t.Fatalf("busybox-image.sh as %s: %v\n%s", rootlessUser, err, out)
	}
	return e
}

// pausePid is the engine's pause process, or 0.
func pausePid(e *engine) int {
	data, err := os.ReadFile(filepath.Join(e.dir, "xdg", "berth", "pause.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(string(data))
	return pid
}

// hostIDs are the Uid: or Gid: line of /proc/PID/status: real, effective,
// saved, filesystem.
func hostIDs(t *testing.T, pid int, key string) string {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(grepLines(string(status), key+":"))[1:], " ")
}

// firstSubID is the start of the user's range in /etc/subuid.
func firstSubID(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/etc/subuid")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimSpace(grepLines(string(data), rootlessUser+":")), ":")
	if len(f) < 3 {
		t.Fatalf("no range of %s in /etc/subuid", rootlessUser)
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// TestRootlessContainers: an unprivileged user's berth runs containers as
// root of the user's namespace (the user's uid outside, its subordinate ids
// for other users), with exec, stop and rm, no cgroup, and nothing left
// mounted once the container is removed.
func TestRootlessContainers(t *testing.T) {
	e := newRootlessEngine(t)
	u, _ := user.Lookup(rootlessUser)
	sub := firstSubID(t)

	out := e.ok("run", "--rm", "--network", "none", "busybox", "sh", "-c", "id -u; cat /proc/self/uid_map")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "0" || !strings.Contains(out, " "+u.Uid+" ") || !strings.Contains(out, " "+strconv.Itoa(sub)+" ") {
		t.Fatalf("container's id and uid map:\n%s", out)
	}

	pause := pausePid(e)
	if pause <= 0 || hostIDs(t, pause, "Uid") != strings.Repeat(u.Uid+" ", 3)+u.Uid {
		t.Fatalf("pause process %d, uids %q", pause, hostIDs(t, pause, "Uid"))
	}
	self, _ := os.Readlink("/proc/self/ns/user")
	if ns, _ := os.Readlink("/proc/" + strconv.Itoa(pause) + "/ns/user"); ns == self || ns == "" {
		t.Fatalf("pause process's user namespace %q, the host's %q", ns, self)
	}

	id := strings.TrimSpace(e.ok("run", "-d", "--network", "none", "-u", "1000", "busybox", "sleep", "60"))
	pid, _ := strconv.Atoi(strings.TrimSpace(e.ok("inspect", "--format", "{{.State.Pid}}", id)))
	if want := strconv.Itoa(sub + 999); !strings.HasPrefix(hostIDs(t, pid, "Uid"), want+" ") {
		t.Errorf("container user 1000 is host uid %q, want %s", hostIDs(t, pid, "Uid"), want)
	}
	if got := e.ok("exec", id, "sh", "-c", "echo $(id -u) > /tmp/x; cat /tmp/x"); got != "1000\n" {
		t.Errorf("exec: %q", got)
	}
	for _, ctl := range []string{"memory", "pids", "cpuset"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ctl, "berth", id)); err == nil {
			t.Errorf("a rootless container got a %s cgroup", ctl)
		}
	}
	mounts, _ := os.ReadFile("/proc/" + strconv.Itoa(pause) + "/mountinfo")
	if !strings.Contains(grepLines(string(mounts), e.root), "/merged") {
		t.Fatalf("the container's rootfs is not mounted in the user's namespace:\n%s", grepLines(string(mounts), e.root))
	}
	e.ok("stop", "-t", "1", id)
	e.ok("rm", id)
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("container process %d still runs", pid)
	}
	mounts, _ = os.ReadFile("/proc/" + strconv.Itoa(pause) + "/mountinfo")
	if m := grepLines(string(mounts), e.root); strings.Contains(m, "/merged") {
		t.Errorf("container rootfs still mounted:\n%s", m)
	}
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("containers left: %s", out)
	}
}

// TestRootlessNeedsSubordinateIDs: a user without subordinate ids gets an
// error that says how to give them, and no pause process.
func TestRootlessNeedsSubordinateIDs(t *testing.T) {
	e := newEngine(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	if data, _ := os.ReadFile("/etc/subuid"); strings.Contains(string(data), "nobody:") {
		t.Skip("nobody has subordinate ids here")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	xdg := filepath.Join(e.dir, "xdg")
	os.Mkdir(xdg, 0o700)
	for _, p := range []string{e.dir, xdg, e.Config} {
		os.Chown(p, uid, uid)
	}
	e.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}
	e.Env = append(e.Env, "HOME="+e.dir, "XDG_RUNTIME_DIR="+xdg)
	start := time.Now()
	e.fail("user nobody has no subordinate uid or gid range in /etc/subuid or /etc/subgid", "images")
	if time.Since(start) > 10*time.Second {
		t.Errorf("the refusal took %s", time.Since(start))
	}
	if _, err := os.Stat(filepath.Join(xdg, "berth", "pause.pid")); !os.IsNotExist(err) {
		t.Errorf("pause pid file made: %v", err)
	}
}
