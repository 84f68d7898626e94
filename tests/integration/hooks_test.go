package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hookScript logs its kind (first argument) and the container id from the
// state on stdin to "log" beside itself, after sleeping for the second
// argument if given.
const hookScript = `state=$(cat)
id=$(echo "$state" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ -z "$2" ] || sleep "$2"
echo "$1 $id" >> "$(dirname "$0")/log"
`

// TestHooksOrder runs one logging hook of each kind through create, start,
// kill and delete, and checks order and the id each one was given. The
// startContainer hook is slow: start must still return only once the
// user's process runs, after the poststart hooks, which come after it.
func TestHooksOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hostDir := t.TempDir()
	writeFile(t, filepath.Join(hostDir, "hook.sh"), hookScript, 0o755)
	logPath := filepath.Join(hostDir, "log")
	hook := func(kind string) []specs.Hook {
		return []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", filepath.Join(hostDir, "hook.sh"), kind}}}
	}
	s := newSpec(t, "sleep", "100")
	copyRootfs(t, s)
	// startContainer hooks run in the container, after pivot_root: they
	// find the script and log through a bind mount.
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hooks", Type: "bind", Source: hostDir, Options: []string{"rbind", "rw"}})
	s.Hooks = &specs.Hooks{
		Prestart:        hook("prestart"),
		CreateRuntime:   hook("createRuntime"),
		CreateContainer: hook("createContainer"),
		StartContainer:  []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "/hooks/hook.sh", "startContainer", "0.3"}}},
		Poststart:       hook("poststart"),
		Poststop:        hook("poststop"),
	}
	id, _ := e.create(s)
	want := []string{"prestart " + id, "createRuntime " + id, "createContainer " + id}
	checkLog := func(when string) {
		t.Helper()
		if got := lines(readFile(t, logPath)); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("hook log after %s:\n%s\nwant:\n%s", when, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	checkLog("create")
	e.mustRT("start", id)
	want = append(want, "startContainer "+id, "poststart "+id)
	checkLog("start")
	st := e.state(id)
	if exe, err := os.Readlink("/proc/" + strconv.Itoa(st.Pid) + "/exe"); st.Status != "running" || err != nil || !strings.HasSuffix(exe, "/bin/busybox") {
		t.Errorf("after start the container is %s running %q (%v), want running /bin/busybox", st.Status, exe, err)
	}
	e.mustRT("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	checkLog("kill")
	e.mustRT("delete", id)
	want = append(want, "poststop "+id)
	checkLog("delete")
}

// TestHookFailure checks that a failing createRuntime hook fails create and
// that nothing is left.
func TestHookFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.privateRuntime()
	s := newSpec(t, "sleep", "100")
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hook says no >&2; exit 3"}}}}
	id, b, r := e.createMustFail(s)
	contains(t, "create error", r.stderr, "createRuntime", "hook says no")
	e.checkNothingLeft(id, b)
}

// TestHookTimeout checks that a hook that outlives its timeout fails create
// soon after the timeout.
func TestHookTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.privateRuntime()
	s := newSpec(t, "sleep", "100")
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 10"}, Timeout: ptr(1)}}}
	id, b, r := e.createMustFail(s)
	if r.elapsed > 5*time.Second {
		t.Errorf("create took %v to give up on a hook with timeout 1", r.elapsed)
	}
	contains(t, "create error", r.stderr, "createRuntime", "timed out")
	e.checkNothingLeft(id, b)
}

// TestKilledCreate kills create with SIGKILL while a createRuntime hook
// holds it (its init in the new namespaces, its cgroup made): delete
// --force, as containerd's cleanup runs it, must remove the cgroup too.
func TestKilledCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.privateRuntime()
	dir := t.TempDir()
	release := filepath.Join(dir, "release")
	if err := unix.Mkfifo(release, 0o600); err != nil {
		t.Fatal(err)
	}
	held := filepath.Join(dir, "held")
	s := newSpec(t, "sleep", "100")
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c",
		`echo $$ > "$1.tmp" && mv "$1.tmp" "$1"; read -r x < "$2"`, "hook", held, release}}}}
	id := e.newID()
	b := e.bundle(s)
	create, _ := e.background("create", "--bundle", b, id)
	data := waitOutput(t, held, "\n") // the hook's pid: create is held
	hookPid, err := strconv.Atoi(strings.TrimSpace(data))
	if err != nil {
		t.Fatalf("hook pid %q: %v", data, err)
	}
	if dirs := cgroupDirs(t, id); len(dirs) == 0 {
		t.Fatal("no cgroup while create is held by its hook")
	}
	create.Process.Kill()
	create.Wait()
	unix.Kill(hookPid, unix.SIGKILL)
	if st := e.state(id); st.Status != "creating" {
		t.Errorf("state after the killed create: %q, want creating", st.Status)
	}
	e.mustRT("delete", "--force", id)
	e.checkNothingLeft(id, b)
}
