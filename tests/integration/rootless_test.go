package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rootlessUID is the unprivileged host user (and group) the rootless test
// runs the runtime as. It needs no passwd entry: the runtime only looks at
// its ids.
const rootlessUID = 1501

// userRuntime runs the runtime as rootlessUID, with its own HOME and
// XDG_RUNTIME_DIR and no --root, so the runtime picks its default root.
type userRuntime struct {
	e      *env
	bundle string
	xdg    string
}

// newUserRuntime makes the user's HOME, XDG_RUNTIME_DIR and bundle directory
// under the env, and points the env's leftover check at the user's default
// runtime root.
func newUserRuntime(e *env) *userRuntime {
	e.t.Helper()
	// The user must reach its directories through the test's temp dirs,
	// which are made 0700.
	for _, d := range []string{e.dir, filepath.Dir(e.dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	u := &userRuntime{e: e, bundle: filepath.Join(e.dir, "user-bundle"), xdg: filepath.Join(e.dir, "user-xdg")}
	for _, d := range []string{u.bundle, u.xdg, filepath.Join(e.dir, "user-home")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			e.t.Fatal(err)
		}
		if err := os.Chown(d, rootlessUID, rootlessUID); err != nil {
			e.t.Fatal(err)
		}
	}
	e.root = filepath.Join(u.xdg, "berth-runtime")
	return u
}

// rt runs the runtime as the user, in the bundle directory.
func (u *userRuntime) rt(args ...string) result {
	t := u.e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, u.e.bin, args...)
	cmd.Dir = u.bundle
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + filepath.Join(u.e.dir, "user-home"),
		"XDG_RUNTIME_DIR=" + u.xdg,
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: rootlessUID, Gid: rootlessUID, Groups: []uint32{},
	}}
	out, err := os.CreateTemp(u.e.dir, "stdout-")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.CreateTemp(u.e.dir, "stderr-")
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	res := result{args: args, outPath: out.Name(), errPath: errf.Name()}
	start := time.Now()
	err = cmd.Run()
	res.elapsed = time.Since(start)
	res.code = exitCode(t, err)
	res.stdout = readFile(t, out.Name())
	res.stderr = readFile(t, errf.Name())
	return res
}

func (u *userRuntime) mustRT(args ...string) result {
	u.e.t.Helper()
	r := u.rt(args...)
	if r.code != 0 {
		u.e.t.Fatalf("unexpected failure as uid %d: %s", rootlessUID, r)
	}
	return r
}

// track force-deletes the container as the user at cleanup.
func (u *userRuntime) track(id string) {
	u.e.t.Cleanup(func() {
		r := u.rt("delete", "--force", id)
		if r.code != 0 && !strings.Contains(r.stderr, "does not exist") {
			u.e.t.Errorf("cleanup: %s", r)
		}
	})
}

func (u *userRuntime) state(id string) ociState {
	u.e.t.Helper()
	r := u.mustRT("state", id)
	var st ociState
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		u.e.t.Fatalf("parse state %q: %v", r.stdout, err)
	}
	return st
}

// writeSpec rewrites the bundle's config.json; the file keeps its owner.
func (u *userRuntime) writeSpec(s *specs.Spec) {
	u.e.t.Helper()
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		u.e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(u.bundle, "config.json"), data, 0o644); err != nil {
		u.e.t.Fatal(err)
	}
}

// TestRootless runs the whole lifecycle as an unprivileged user: the
// config from `spec --rootless`, a rootfs the user owns, the default state
// root under $XDG_RUNTIME_DIR, and no writable cgroup.
func TestRootless(t *testing.T) {
	e := newEnv(t)
	// A private copy the user can execute, so that leftover processes of
	// this test can be told from those of other tests.
	e.privateRuntime()
	if err := os.Chmod(e.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	u := newUserRuntime(e)

	u.mustRT("spec", "--rootless")
	cfgPath := filepath.Join(u.bundle, "config.json")
	var fst syscall.Stat_t
	if err := syscall.Stat(cfgPath, &fst); err != nil {
		t.Fatal(err)
	}
	if fst.Uid != rootlessUID {
		t.Errorf("config.json written by the user is owned by uid %d", fst.Uid)
	}
	var s specs.Spec
	if err := json.Unmarshal([]byte(readFile(t, cfgPath)), &s); err != nil {
		t.Fatalf("parse rootless spec: %v", err)
	}
	if m := s.Linux.UIDMappings; len(m) != 1 || m[0].HostID != rootlessUID || m[0].ContainerID != 0 {
		t.Fatalf("rootless spec uidMappings %+v, want container 0 -> host %d", m, rootlessUID)
	}
	if out, err := exec.Command("cp", "-a", sharedRootfs, filepath.Join(u.bundle, s.Root.Path)).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v: %s", err, out)
	}
	if out, err := exec.Command("chown", "-R", strconv.Itoa(rootlessUID)+":"+strconv.Itoa(rootlessUID), u.bundle).CombinedOutput(); err != nil {
		t.Fatalf("chown rootfs: %v: %s", err, out)
	}
	s.Process.Terminal = false

	// run: root inside, a warning about the cgroup, and it runs anyway.
	s.Process.Args = []string{"id", "-u"}
	u.writeSpec(&s)
	runID := e.newID()
	u.track(runID)
	r := u.rt("run", runID)
	if r.code != 0 {
		t.Fatalf("rootless run failed: %s", r)
	}
	if got := strings.TrimSpace(r.stdout); got != "0" {
		t.Errorf("id -u in the rootless container = %q, want 0", got)
	}
	contains(t, "run stderr", r.stderr, "level=warning", "no writable cgroup")
	for _, dir := range cgroupDirs(t, runID) {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s exists for a container run without one", dir)
		}
	}

	// create/start: the process is the user on the host, state under XDG.
	s.Process.Args = []string{"sleep", "60"}
	u.writeSpec(&s)
	id := e.newID()
	u.track(id)
	r = u.rt("create", id)
	if r.code != 0 {
		t.Fatalf("rootless create failed: %s", r)
	}
	contains(t, "create stderr", r.stderr, "no writable cgroup")
	stateDir := filepath.Join(u.xdg, "berth-runtime", id)
	if err := syscall.Stat(filepath.Join(stateDir, "state.json"), &fst); err != nil {
		t.Errorf("no state under $XDG_RUNTIME_DIR/berth-runtime: %v", err)
	} else if fst.Uid != rootlessUID {
		t.Errorf("state.json owned by uid %d, want %d", fst.Uid, rootlessUID)
	}
	if _, err := os.Stat(filepath.Join("/run/berth-runtime", id)); err == nil {
		t.Errorf("state of the user's container under root's /run/berth-runtime")
	}
	u.mustRT("start", id)
	st := u.state(id)
	if st.Status != "running" {
		t.Errorf("status after start %q, want running", st.Status)
	}
	proc := "/proc/" + strconv.Itoa(st.Pid)
	status := readFile(t, proc+"/status")
	want := strings.Repeat(strconv.Itoa(rootlessUID)+"\t", 3) + strconv.Itoa(rootlessUID)
	if got := statusField(status, "Uid"); got != want {
		t.Errorf("container process host Uid %q, want %q", got, want)
	}
	if got := strings.Fields(readFile(t, proc+"/uid_map")); strings.Join(got, " ") != "0 "+strconv.Itoa(rootlessUID)+" 1" {
		t.Errorf("container uid_map %q, want 0 %d 1", got, rootlessUID)
	}

	// Without a cgroup, ps lists the processes of the container's pid
	// namespace.
	ps := u.mustRT("ps", "--format", "json", id)
	if strings.TrimSpace(ps.stdout) != "["+strconv.Itoa(st.Pid)+"]" {
		t.Errorf("ps of a container without a cgroup: %q, want [%d]", ps.stdout, st.Pid)
	}

	list := u.mustRT("list")
	found := false
	for _, l := range lines(list.stdout) {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == id {
			found = true
			if f[2] != "running" {
				t.Errorf("list shows %s as %s, want running: %q", id, f[2], l)
			}
		}
	}
	if !found {
		t.Errorf("list as the user does not show %s: %q", id, list.stdout)
	}

	u.mustRT("kill", id, "KILL")
	deadline := time.Now().Add(10 * time.Second)
	for u.state(id).Status != "stopped" {
		if time.Now().After(deadline) {
			t.Fatalf("container %s not stopped 10s after kill", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	u.mustRT("delete", id)
	if _, err := os.Stat(stateDir); err == nil {
		t.Errorf("state directory %s left after delete", stateDir)
	}
	if r := u.rt("state", id); r.code == 0 {
		t.Errorf("state after delete succeeded: %s", r)
	}

	// A memory limit needs a cgroup the user cannot have: refused, and
	// nothing is left.
	s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20))}}
	u.writeSpec(&s)
	badID := e.newID()
	r = u.rt("create", badID)
	if r.code == 0 {
		u.track(badID)
		t.Fatalf("rootless create with a memory limit succeeded: %s", r)
	}
	oneLine(t, r)
	contains(t, "error", r.stderr, "no writable cgroup", "linux.resources")
	e.checkNothingLeft(badID, u.bundle)
}
