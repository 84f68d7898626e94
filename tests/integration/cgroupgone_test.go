package integration

import (
	"os"
	"testing"
)

// A stopped container whose cgroup someone else removed is still deleted.
func TestDeleteWithCgroupGone(t *testing.T) {
	e := newEnv(t)
	s := shell(t, "true")
	id, _ := e.start(s)
	e.waitStatus(id, "stopped")
	// The default cgroups path is relative: <own cgroup>/<id> in each hierarchy.
	for _, dir := range cgroupDirs(t, id) {
		if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
			t.Fatalf("remove cgroup %s: %v", dir, err)
		}
	}
	if r := e.rt("delete", id); r.code != 0 {
		t.Fatalf("delete after the cgroup was removed: %s", r)
	}
	if r := e.rt("state", id); r.code == 0 {
		t.Errorf("state after delete succeeded: %s", r)
	}
}
