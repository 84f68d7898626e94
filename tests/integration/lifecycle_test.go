package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLifecycle walks one container through create, start, kill and delete,
// checking state, list and the errors on a stopped and a deleted container.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pidFile := filepath.Join(e.dir, "pid")
	id, _ := e.create(newSpec(t, "sleep", "100"), "--pid-file", pidFile)

	st := e.state(id)
	if st.Status != "created" || st.ID != id {
		t.Fatalf("after create: %+v, want status created", st)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, pidFile)))
	if err != nil || pid != st.Pid || pid <= 0 {
		t.Fatalf("pid file says %q, state says %d", readFile(t, pidFile), st.Pid)
	}

	// list shows the created container in every format.
	table := e.mustRT("list").stdout
	if ls := lines(table); len(ls) != 2 || !strings.HasPrefix(ls[0], "ID") ||
		!strings.Contains(ls[1], id) || !strings.Contains(ls[1], "created") || !strings.Contains(ls[1], strconv.Itoa(pid)) {
		t.Errorf("list table:\n%s", table)
	}
	var listed []ociState
	if err := json.Unmarshal([]byte(e.mustRT("list", "-f", "json").stdout), &listed); err != nil {
		t.Fatalf("list -f json: %v", err)
	}
	if len(listed) != 1 || listed[0].ID != id || listed[0].Pid != pid || listed[0].Status != "created" {
		t.Errorf("list -f json: %+v", listed)
	}
	if q := e.mustRT("list", "-q").stdout; q != id+"\n" {
		t.Errorf("list -q = %q, want %q", q, id+"\n")
	}

	e.mustRT("start", id)
	if st := e.state(id); st.Status != "running" || st.Pid != pid {
		t.Fatalf("after start: %+v, want running with pid %d", st, pid)
	}
	if q := e.mustRT("list", "-f", "json").stdout; !strings.Contains(q, `"status":"running"`) {
		t.Errorf("list -f json after start: %s", q)
	}

	e.mustRT("kill", id, "SIGKILL")
	st = e.waitStatus(id, "stopped")
	if st.Pid != 0 {
		t.Errorf("stopped container has pid %d, want 0", st.Pid)
	}
	r := e.rt("kill", id, "KILL")
	if r.code == 0 || !strings.Contains(r.stderr, "container not running") {
		t.Errorf("kill of a stopped container: %s", r)
	}

	e.mustRT("delete", id)
	r = e.rt("state", id)
	if r.code == 0 || !strings.Contains(r.stderr, `container "`+id+`" does not exist`) {
		t.Errorf("state after delete: %s", r)
	}
	if _, err := os.Stat(filepath.Join(e.root, id)); err == nil {
		t.Errorf("state directory still there after delete")
	}
	// Container IDs that are urfave/cli's help command's names are IDs.
	for _, name := range []string{"h", "help"} {
		if r := e.rt("state", name); r.code == 0 || !strings.Contains(r.stderr, `container "`+name+`" does not exist`) {
			t.Errorf("state %s: %s", name, r)
		}
	}
	if q := e.mustRT("list", "-q").stdout; q != "" {
		t.Errorf("list -q after delete = %q", q)
	}
}

// TestCreateDuplicateID checks that a second create with a used id fails
// and leaves the first container as it was.
func TestCreateDuplicateID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.create(newSpec(t, "sleep", "100"))
	before := e.state(id)

	r := e.rt("create", "--bundle", e.bundle(newSpec(t, "sleep", "100")), id)
	if r.code == 0 {
		t.Fatalf("second create with id %s succeeded", id)
	}
	contains(t, "second create", r.stderr, id, "already exists")
	after := e.state(id)
	if after != before || after.Status != "created" {
		t.Errorf("first container changed: before %+v, after %+v", before, after)
	}
	// The first container still starts.
	e.mustRT("start", id)
	e.waitStatus(id, "running")
}

// TestDeleteCreated checks that delete without --force refuses a created
// container and that --force removes it with its process.
func TestDeleteCreated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.create(newSpec(t, "sleep", "100"))
	pid := e.state(id).Pid

	r := e.rt("delete", id)
	if r.code == 0 {
		t.Fatalf("delete of a created container succeeded")
	}
	contains(t, "delete without --force", r.stderr, id, "not stopped")
	if st := e.state(id); st.Status != "created" || st.Pid != pid {
		t.Fatalf("after refused delete: %+v", st)
	}

	e.mustRT("delete", "--force", id)
	if r := e.rt("state", id); r.code == 0 {
		t.Errorf("state after delete --force: %s", r)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/exe"); err == nil {
		// The pid may be reused, but not as a live process of ours within this test.
		if status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil &&
			!strings.Contains(statusField(string(status), "State"), "Z") {
			t.Errorf("init %d still alive after delete --force", pid)
		}
	}
}

// TestKillSignalNames checks the three ways of naming SIGKILL.
func TestKillSignalNames(t *testing.T) {
	t.Parallel()
	for _, sig := range []string{"KILL", "SIGKILL", "9"} {
		t.Run(sig, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			// A pid-namespace init ignores signals it has no handler for,
			// except SIGKILL: only SIGKILL can stop this container.
			id, _ := e.start(newSpec(t, "sleep", "100"))
			e.waitStatus(id, "running")
			e.mustRT("kill", id, sig)
			e.waitStatus(id, "stopped")
		})
	}
}
