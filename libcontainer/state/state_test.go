package state

import (
	"os"
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "abc-123_x.y+z", strings.Repeat("a", 64)} {
		if err := ValidateID(ok); err != nil {
			t.Errorf("ValidateID(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "a b", "a\x00b"} {
		if err := ValidateID(bad); err == nil {
			t.Errorf("ValidateID(%q) accepted", bad)
		}
	}
}

func TestCreateOpenRemove(t *testing.T) {
	root := t.TempDir()
	d, err := Create(root, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(root, "c1"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second Create: %v", err)
	}
	if st, err := d.Load(); err != nil || st != nil {
		t.Errorf("Load before Save = %v, %v; want nil, nil (creating)", st, err)
	}
	if got := d.Status(nil); got != Creating {
		t.Errorf("status without state = %s", got)
	}
	// Our own pid is alive; with the FIFO present the container is created.
	start, _, err := ProcessStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	st := &State{ID: "c1", Pid: os.Getpid(), PidStart: start}
	if err := d.Save(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.FifoPath(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := d.Status(st); got != Created {
		t.Errorf("status = %s, want created", got)
	}
	os.Remove(d.FifoPath())
	if got := d.Status(st); got != Running {
		t.Errorf("status = %s, want running", got)
	}
	// A reused pid has another start time: the container is stopped.
	st.PidStart++
	if got := d.Status(st); got != Stopped {
		t.Errorf("status with another start time = %s, want stopped", got)
	}
	d.Unlock()
	if _, err := Open(root, "nope"); err == nil || !strings.Contains(err.Error(), `container "nope" does not exist`) {
		t.Errorf("Open of a missing container: %v", err)
	}
	d, err = Open(root, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if ids, _ := List(root); len(ids) != 0 {
		t.Errorf("ids after Remove: %v", ids)
	}
}
