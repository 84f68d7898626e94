package engine

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.podman.io/storage/pkg/unshare"

	"github.com/berth-containers/berth/tests/testutil"
)

// rootlessUser is the unprivileged user contrib/test-user.sh makes, with
// subordinate uids and gids.
const rootlessUser = "berthtest"

// newRootlessEngine is a userEngine with the busybox image.
func newRootlessEngine(t *testing.T) *engine {
	t.Helper()
	e := userEngine(t)
	withBusybox(t, e)
	return e
}

// userEngine is an engine whose commands run as rootlessUser, with a HOME
// and XDG_RUNTIME_DIR of its own (so a pause process of its own). Its
// cleanup ends the pause process, which takes the user's mount namespace
// and every mount in it along.
func userEngine(t *testing.T) *engine {
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
	asUser(t, e, uid, gid, home)
	e.Env = append(e.Env, "HOME="+home, "XDG_RUNTIME_DIR="+xdg, "USER="+rootlessUser, "LOGNAME="+rootlessUser)
	t.Cleanup(func() {
		if pid := pausePid(e); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return e
}

// asUser runs the engine's commands as uid:gid in dir, with copies of berth,
// berth-runtime and the busybox image script in the engine's directory: the
// user may not reach the work tree (under /root, say).
func asUser(t *testing.T, e *engine, uid, gid int, dir string) {
	t.Helper()
	copies := map[string]string{
		berthBin: filepath.Join(e.dir, "bin", "berth"),
		filepath.Join(filepath.Dir(berthBin), "berth-runtime"): filepath.Join(e.dir, "bin", "berth-runtime"),
		"../../contrib/busybox-image.sh":                       filepath.Join(e.dir, "repo", "contrib", "busybox-image.sh"),
		"../../tests/fixtures/mkbundle.sh":                     filepath.Join(e.dir, "repo", "tests", "fixtures", "mkbundle.sh"),
	}
	for from, to := range copies {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	e.bin, e.cwd = filepath.Join(e.dir, "bin", "berth"), dir
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
	uids, _, err := unshare.GetSubIDMappings(rootlessUser, rootlessUser)
	if err != nil || len(uids) == 0 {
		t.Fatalf("no range of %s in /etc/subuid: %v", rootlessUser, err)
	}
	return int(uids[0].HostID)
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
	if top := e.ok("top", id); !strings.Contains(top, "sleep 60") {
		t.Errorf("top of a rootless container (no cgroup):\n%s", top)
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
	// Relative paths are the caller's: joining the namespaces keeps the
	// working directory.
	save := e.cmd("save", "-o", "saved.tar", "busybox")
	save.Dir = filepath.Join(e.dir, "home")
	if out, err := save.CombinedOutput(); err != nil {
		t.Fatalf("save -o saved.tar: %v\n%s", err, out)
	}
	if st, err := os.Stat(filepath.Join(e.dir, "home", "saved.tar")); err != nil || st.Size() == 0 {
		t.Errorf("save -o with a relative path did not write in the working directory: %v", err)
	}

	e.fail("--memory, --cpus and --pids-limit need a cgroup", "run", "--rm", "--network", "none", "--memory", "10m", "busybox", "true")
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
	asUser(t, e, uid, uid, e.dir)
	e.Env = append(e.Env, "HOME="+e.dir, "XDG_RUNTIME_DIR="+xdg)
	// Help and version need no namespace.
	if out, err := e.command(e.bin, "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), "berth version") {
		t.Errorf("--version as nobody: %v: %s", err, out)
	}
	start := time.Now()
	e.fail("user nobody has no subordinate uid or gid range in /etc/subuid or /etc/subgid", "images")
	if time.Since(start) > 10*time.Second {
		t.Errorf("the refusal took %s", time.Since(start))
	}
	if _, err := os.Stat(filepath.Join(xdg, "berth", "pause.pid")); !os.IsNotExist(err) {
		t.Errorf("pause pid file made: %v", err)
	}
}

// openTun makes /dev/net/tun usable by every user for the test (this host
// has it at 0600, as the issue says) and restores its mode afterwards.
func openTun(t *testing.T) {
	t.Helper()
	st, err := os.Stat("/dev/net/tun")
	if err != nil {
		t.Skipf("no /dev/net/tun: %v", err)
	}
	if err := os.Chmod("/dev/net/tun", 0o666); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod("/dev/net/tun", st.Mode().Perm()) })
}

// slirpsOf lists the running slirp4netns processes of an engine (their
// command lines name its run root).
func slirpsOf(e *engine) string {
	out, _ := exec.Command("pgrep", "-a", "-f", "slirp4netns.*"+e.runroot).Output()
	return strings.TrimSpace(string(out))
}

// assertNoSlirpLeft fails the test if a slirp4netns of the engine runs or
// a network namespace of it is still mounted, after what.
func assertNoSlirpLeft(t *testing.T, e *engine, after string) {
	t.Helper()
	if s := slirpsOf(e); s != "" {
		t.Errorf("slirp4netns left after %s: %s", after, s)
	}
	if m := netnsMounts(t, e); m != "" {
		t.Errorf("network namespace left mounted after %s:\n%s", after, m)
	}
}

// netnsMounts are the network namespaces mounted under the engine's run
// root in the user's mount namespace.
func netnsMounts(t *testing.T, e *engine) string {
	t.Helper()
	mounts, _ := os.ReadFile("/proc/" + strconv.Itoa(pausePid(e)) + "/mountinfo")
	return grepLines(string(mounts), filepath.Join(e.runroot, "network", "netns"))
}

// TestRootlessNetwork: a rootless container's default network is
// slirp4netns: it has tap0, a default route and slirp's DNS forwarder, its
// published port answers on the host's loopback, and rm leaves no
// slirp4netns, namespace or port. Without access to /dev/net/tun the run
// fails naming it and leaves nothing; CNI networks are refused.
func TestRootlessNetwork(t *testing.T) {
	e := newRootlessEngine(t)
	if st, err := os.Stat("/dev/net/tun"); err == nil && st.Mode().Perm()&0o006 == 0 {
		e.fail(`open("/dev/net/tun"): Permission denied`, "run", "--rm", "busybox", "true")
		assertNoSlirpLeft(t, e, "a failed start")
	}
	openTun(t)

	out := e.ok("run", "--rm", "busybox", "sh", "-c", "ip -4 -o addr show tap0; ip route; cat /etc/resolv.conf")
	for _, want := range []string{"inet 10.0.2.100/24", "default via 10.0.2.2 dev tap0", "nameserver 10.0.2.3"} {
		if !strings.Contains(out, want) {
			t.Errorf("container network lacks %q:\n%s", want, out)
		}
	}

	port := testutil.FreePort(t)
	e.ok("run", "-d", "--name", "web", "-p", "127.0.0.1:"+strconv.Itoa(port)+":80", "busybox",
		"sh", "-c", "echo rootless > /tmp/index.html; exec httpd -f -p 80 -h /tmp")
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	if got := httpGet(t, url); got != "rootless\n" {
		t.Errorf("GET %s: %q", url, got)
	}
	if got := e.ok("port", "web"); got != "80/tcp -> 127.0.0.1:"+strconv.Itoa(port)+"\n" {
		t.Errorf("port: %q", got)
	}
	if got := strings.TrimSpace(e.ok("inspect", "-f", "{{.HostConfig.NetworkMode}}", "web")); got != "slirp4netns" {
		t.Errorf("network mode %q", got)
	}
	if slirpsOf(e) == "" {
		t.Fatal("no slirp4netns for the running container")
	}
	e.ok("rm", "-f", "web")
	assertNoSlirpLeft(t, e, "rm")
	if resp, err := (&http.Client{Timeout: time.Second}).Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("port %d still answers after rm", port)
	}

	// The host's loopback is not the container's to reach (--disable-host-loopback).
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("host secret\n"))
			c.Close()
		}
	}()
	hostPort := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	r := e.run(nil, "run", "--rm", "busybox", "sh", "-c", "timeout 3 nc 10.0.2.2 "+hostPort+" </dev/null")
	if strings.Contains(r.Stdout, "host secret") {
		t.Errorf("the container reached the host's loopback through 10.0.2.2:%s", hostPort)
	}

	// A monitor killed hard: rm still ends slirp4netns and frees the namespace.
	e.ok("run", "-d", "--name", "orphan", "-p", strconv.Itoa(testutil.FreePort(t))+":80", "busybox", "sleep", "60")
	if pid := monitorPidOf(t, e, "orphan"); pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	} else {
		t.Fatal("no monitor for orphan")
	}
	e.ok("rm", "-f", "orphan")
	assertNoSlirpLeft(t, e, "rm of a container whose monitor was killed")

	e.fail("need root", "run", "--rm", "-p", "80:80", "busybox", "true")
	assertNoSlirpLeft(t, e, "a refused port")

	e.fail("a rootless berth has only the slirp4netns network", "network", "create", "mynet")
	e.fail("a rootless berth has only the slirp4netns network", "run", "--rm", "--network", "mynet", "busybox", "true")
	if out := e.ok("network", "ls", "--format", "{{.Name}}"); out != "slirp4netns\n" {
		t.Errorf("network ls: %q", out)
	}
}

// TestSlirpNetworkAsRoot: root may choose slirp4netns too, as in podman.
func TestSlirpNetworkAsRoot(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	out := e.ok("run", "--rm", "--network", "slirp4netns", "busybox", "ip", "-4", "-o", "addr", "show", "tap0")
	if !strings.Contains(out, "inet 10.0.2.100/24") {
		t.Errorf("tap0: %q", out)
	}
	if s := slirpsOf(e); s != "" {
		t.Errorf("slirp4netns left after run --rm: %s", s)
	}
}

// TestRootlessBrokenNewuidmap: when newuidmap and newgidmap fail,
// containers/storage maps the user alone; berth refuses that pause process
// (every image with other owners would fail later) and leaves none running.
func TestRootlessBrokenNewuidmap(t *testing.T) {
	e := userEngine(t)
	fake := filepath.Join(e.dir, "fakebin")
	if err := os.Mkdir(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if err := os.WriteFile(filepath.Join(fake, tool), []byte("#!/bin/sh\necho broken >&2\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.Env = append(e.Env, "PATH="+fake+":/usr/sbin:/usr/bin:/sbin:/bin")
	e.fail("newuidmap and newgidmap (package uidmap) must be installed setuid", "images")
	if pid := pausePid(e); pid > 0 && syscall.Kill(pid, 0) == nil {
		t.Errorf("a pause process with a broken map runs: %d", pid)
	}
	if pids := pausesOf(e); len(pids) > 0 {
		t.Errorf("pause processes left: %v", pids)
	}
}

// pausesOf lists the live pause processes started for the engine's
// XDG_RUNTIME_DIR, recorded or not.
func pausesOf(e *engine) []int {
	want := "XDG_RUNTIME_DIR=" + filepath.Join(e.dir, "xdg") + "\x00"
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		environ, _ := os.ReadFile("/proc/" + d.Name() + "/environ")
		if string(cmdline) == "berth-rootless-pause\x00" && strings.Contains(string(environ), want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestRootlessBuild: an unprivileged user's berth builds: RUN steps in
// the user's namespace (as root there, and as a USER), COPY with --chown
// to subordinate ids, and the cache on a second build.
func TestRootlessBuild(t *testing.T) {
	e := newRootlessEngine(t)
	dir := filepath.Join(e.dir, "home", "ctx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	df := "FROM busybox\nRUN echo built > /x && chown 1000:1000 /x\nCOPY --chown=2000:2000 f /f\nUSER 1000\nRUN id -u > /tmp/u\n"
	for name, data := range map[string]string{"Dockerfile": df, "f": "copied\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.ok("build", "--network", "none", "-t", "mine", dir)
	if got := e.ok("run", "--rm", "--network", "none", "mine", "sh", "-c", "cat /x /f /tmp/u; stat -c %u:%g /x /f"); got != "built\ncopied\n1000\n1000:1000\n2000:2000\n" {
		t.Errorf("rootless build's files: %q", got)
	}
	if out := e.ok("build", "--network", "none", "-t", "mine", dir); strings.Count(out, "--> Using cache") != 3 {
		t.Errorf("second rootless build: %q, want 3 cached steps", out)
	}
}
