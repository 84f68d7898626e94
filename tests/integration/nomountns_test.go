package integration

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// Without a mount namespace the container shares the caller's: its mounts
// are made under the rootfs in the caller's mount table, and delete (or a
// failed create) must remove every one of them.
func TestNoMountNamespace(t *testing.T) {
	e := newEnv(t)
	s := shell(t, "readlink /proc/self/ns/mnt; sleep 30")
	rootfs := copyRootfs(t, s)
	s.Linux.Namespaces = nil
	s.Hostname = ""
	id, _ := e.start(s)

	host, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	st := e.state(id)
	if inner, err := os.Readlink("/proc/" + strconv.Itoa(st.Pid) + "/ns/mnt"); err != nil || inner != host {
		t.Errorf("container mount namespace %q (%v), want the caller's %q", inner, err, host)
	}
	if !strings.Contains(readFile(t, "/proc/self/mountinfo"), rootfs+"/proc ") {
		t.Errorf("no proc mount under %s in the caller's mount table while the container runs", rootfs)
	}
	e.mustRT("delete", "--force", id)
	checkNoHostMounts(t, rootfs)

	// A create that fails after mounting (missing program) cleans up too.
	bad := shell(t, "true")
	bad.Root.Path = rootfs
	bad.Linux.Namespaces = nil
	bad.Hostname = ""
	bad.Process.Args = []string{"/no/such/program"}
	b := e.bundle(bad)
	if r := e.rt("create", "--bundle", b, e.newID()); r.code == 0 {
		t.Fatalf("create of a missing program succeeded: %s", r)
	}
	checkNoHostMounts(t, rootfs)
}
