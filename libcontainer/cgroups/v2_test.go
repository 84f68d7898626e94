package cgroups

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v2ChildEnv carries the cgroup name to the re-executed test binary, which
// runs in a private mount namespace where /sys/fs/cgroup is a cgroup2 mount,
// as the runtime will see it on a unified host. The child detects the
// cgroup version afresh: the library's cached answer lives per process.
const v2ChildEnv = "BERTH_CGROUPS_V2_TEST_NAME"

func TestV2(t *testing.T) {
	requireRoot(t)
	if os.Getenv(v2ChildEnv) != "" {
		t.Skip("inside the v2 child")
	}
	name := testName()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--",
		"/bin/sh", "-c", `mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"`, "sh",
		os.Args[0], "-test.run=^TestV2Child$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), v2ChildEnv+"="+name)
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() { removeHostV2Leftover(t, name) })
	if err != nil {
		t.Fatalf("v2 child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestV2Child") {
		t.Fatalf("v2 child did not pass:\n%s", out)
	}
	t.Logf("v2 child:\n%s", out)
}

// removeHostV2Leftover checks, from the host's view of the cgroup2
// hierarchy, that the child left nothing, and removes what it left.
func removeHostV2Leftover(t *testing.T, name string) {
	hierarchy := "/sys/fs/cgroup/unified"
	if IsV2() {
		hierarchy = "/sys/fs/cgroup"
	}
	var st unix.Statfs_t
	if unix.Statfs(hierarchy, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return
	}
	dir := filepath.Join(hierarchy, name)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return
	}
	t.Errorf("v2 child left %s behind", dir)
	_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	_ = os.Remove(dir)
}

func TestV2Child(t *testing.T) {
	name := os.Getenv(v2ChildEnv)
	if name == "" {
		t.Skip("run by TestV2")
	}
	if !IsV2() {
		t.Fatal("IsV2() is false on a cgroup2 /sys/fs/cgroup")
	}
	restoreRootControllers(t)

	// Relative paths hang below the parent of our own cgroup ("/" here).
	rel, err := New("berth-test-rel", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rel.Paths(), map[string]string{"": "/sys/fs/cgroup/berth-test-rel"}; got[""] != want[""] || len(got) != 1 {
		t.Errorf("default path = %v, want %v", got, want)
	}

	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false}}}
	hugetlb := hugetlbAvailable()
	if hugetlb {
		r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 * mib}}
	}
	devZero := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "rwm"}
	m, err := New(name, "/"+name, r, []specs.LinuxDeviceCgroup{devZero})
	if err != nil {
		t.Fatal(err)
	}
	destroyAtCleanup(t, m)
	dir := filepath.Join(mountRoot, name)
	if got := m.Paths(); got[""] != dir || len(got) != 1 {
		t.Fatalf("Paths() = %v, want only %q", got, dir)
	}
	sleeper := startSleeper(t)
	pid := sleeper.Process.Pid
	if err := m.Apply(pid); err != nil {
		t.Fatal(err)
	}
	expectProcs(t, dir, pid)
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	if hugetlb {
		expectFile(t, dir, "hugetlb.2MB.max", "4194304")
	} else {
		t.Log("no hugetlb 2MB pages in this cgroup2 mount: limit not checked")
	}

	// The eBPF device filter: /dev/zero allowed, /dev/null denied.
	if err := runInCgroup(t, dir, ": < /dev/zero"); err != nil {
		t.Errorf("opening /dev/zero in the cgroup: %v", err)
	}
	if err := runInCgroup(t, dir, ": < /dev/null"); err == nil {
		t.Error("opening /dev/null in the cgroup succeeded despite the deny rule")
	}

	if !strings.Contains(readCgroupFile(t, dir, "cgroup.controllers"), "memory") {
		err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 * mib)}})
		expectErrorMentions(t, err, "memory.limit", "memory.max")
	}
	err = m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](10)}})
	expectErrorMentions(t, err, "memory.swappiness", "v2")

	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pids, []int{pid}) {
		t.Errorf("Pids() = %v, want [%d]", pids, pid)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.PidsStats.Current != 1 {
		t.Errorf("pids stats current = %d, want 1", st.PidsStats.Current)
	}

	loaded, err := Load(m.Paths())
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.Freeze(); err != nil {
		t.Fatal(err)
	}
	expectFile(t, dir, "cgroup.freeze", "1")
	if !strings.Contains(readCgroupFile(t, dir, "cgroup.events"), "frozen 1") {
		t.Errorf("cgroup.events does not say frozen after Freeze")
	}
	if frozen, err := loaded.Frozen(); err != nil || !frozen {
		t.Errorf("Frozen() = %v, %v after Freeze", frozen, err)
	}
	if err := loaded.Thaw(); err != nil {
		t.Fatal(err)
	}
	expectFile(t, dir, "cgroup.freeze", "0")
	if frozen, err := loaded.Frozen(); err != nil || frozen {
		t.Errorf("Frozen() = %v, %v after Thaw", frozen, err)
	}
	if hugetlb {
		// An update through Load keeps the device filter in place.
		update := &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 8 * mib}}}
		if err := loaded.Set(update); err != nil {
			t.Fatal(err)
		}
		expectFile(t, dir, "hugetlb.2MB.max", "8388608")
		if err := runInCgroup(t, dir, ": < /dev/null"); err == nil {
			t.Error("device filter lost after an update")
		}
	}

	stopProcess(sleeper)
	if err := loaded.Destroy(); err != nil {
		t.Fatal(err)
	}
	expectGone(t, dir)
}

// runInCgroup runs a shell command born inside the cgroup (CLONE_INTO_CGROUP),
// so it meets the device filter from its first open.
func runInCgroup(t *testing.T, dir, script string) error {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd, Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return errors.New(strings.TrimSpace(string(out)) + ": " + err.Error())
	}
	return nil
}

func hugetlbAvailable() bool {
	ctl, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if err != nil || !slices.Contains(strings.Fields(string(ctl)), "hugetlb") {
		return false
	}
	_, err = os.Stat("/sys/kernel/mm/hugepages/hugepages-2048kB")
	return err == nil
}

// restoreRootControllers undoes, at cleanup, the controllers that creating a
// cgroup enabled in the root's subtree_control: on a hybrid host that root is
// the host's /sys/fs/cgroup/unified.
func restoreRootControllers(t *testing.T) {
	const file = "/sys/fs/cgroup/cgroup.subtree_control"
	before, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		after, err := os.ReadFile(file)
		if err != nil {
			t.Error(err)
			return
		}
		for _, c := range strings.Fields(string(after)) {
			if !slices.Contains(strings.Fields(string(before)), c) {
				if err := os.WriteFile(file, []byte("-"+c), 0); err != nil {
					t.Errorf("disable %s again in root subtree_control: %v", c, err)
				}
			}
		}
	})
}
