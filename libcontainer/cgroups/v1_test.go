package cgroups

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func requireV1(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if IsV2() {
		t.Skip("host uses cgroup v2")
	}
}

const mib = 1 << 20

func TestV1Lifecycle(t *testing.T) {
	requireV1(t)
	name := testName()
	r := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		Memory:  &specs.LinuxMemory{Limit: ptr[int64](64 * mib)},
		CPU: &specs.LinuxCPU{
			Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000),
			Cpus: "0", Mems: "0",
		},
		Pids: &specs.LinuxPids{Limit: ptr[int64](42)},
	}
	devNull := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "wr"}
	m, err := New(name, "/"+name+"/ctr", r, []specs.LinuxDeviceCgroup{devNull})
	if err != nil {
		t.Fatal(err)
	}
	destroyAtCleanup(t, m)
	// The parent directory is ours too; the library removes only the leaf.
	t.Cleanup(func() {
		for _, p := range m.Paths() {
			_ = os.Remove(filepath.Dir(p))
		}
	})
	sleeper := startSleeper(t)
	pid := sleeper.Process.Pid

	if err := m.Apply(pid); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	for _, ctl := range []string{"memory", "cpu", "cpuset", "pids", "devices", "freezer"} {
		want := filepath.Join(mountRoot, ctl, name, "ctr")
		if paths[ctl] != want {
			t.Errorf("path of %s = %q, want %q", ctl, paths[ctl], want)
			continue
		}
		expectProcs(t, want, pid)
	}
	expectFile(t, paths["memory"], "memory.limit_in_bytes", "67108864")
	expectFile(t, paths["pids"], "pids.max", "42")
	expectFile(t, paths["cpu"], "cpu.shares", "512")
	expectFile(t, paths["cpu"], "cpu.cfs_quota_us", "50000")
	expectFile(t, paths["cpu"], "cpu.cfs_period_us", "100000")
	expectFile(t, paths["cpuset"], "cpuset.cpus", "0")
	expectFile(t, paths["devices"], "devices.list", "c 1:3 rw")

	// An update as `update` does it: from the saved paths, devices untouched.
	loaded, err := Load(paths)
	if err != nil {
		t.Fatal(err)
	}
	update := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](128 * mib)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](100)},
	}
	if err := loaded.Set(update); err != nil {
		t.Fatal(err)
	}
	expectFile(t, paths["memory"], "memory.limit_in_bytes", "134217728")
	expectFile(t, paths["pids"], "pids.max", "100")
	expectFile(t, paths["cpu"], "cpu.shares", "512")
	expectFile(t, paths["devices"], "devices.list", "c 1:3 rw")

	pids, err := loaded.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pids, []int{pid}) {
		t.Errorf("Pids() = %v, want [%d]", pids, pid)
	}
	st, err := loaded.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.PidsStats.Current != 1 || st.PidsStats.Limit != 100 {
		t.Errorf("pids stats = %+v, want current 1, limit 100", st.PidsStats)
	}
	if st.MemoryStats.Usage.Limit != 128*mib {
		t.Errorf("memory limit in stats = %d, want %d", st.MemoryStats.Usage.Limit, 128*mib)
	}

	if err := loaded.Freeze(); err != nil {
		t.Fatal(err)
	}
	expectFile(t, paths["freezer"], "freezer.state", "FROZEN")
	if frozen, err := loaded.Frozen(); err != nil || !frozen {
		t.Errorf("Frozen() = %v, %v after Freeze", frozen, err)
	}
	if err := loaded.Thaw(); err != nil {
		t.Fatal(err)
	}
	expectFile(t, paths["freezer"], "freezer.state", "THAWED")
	if frozen, err := loaded.Frozen(); err != nil || frozen {
		t.Errorf("Frozen() = %v, %v after Thaw", frozen, err)
	}

	stopProcess(sleeper)
	if err := loaded.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		expectGone(t, p)
	}
	// Destroying what is gone (a second `delete`) is not an error.
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

// TestV1Unsupported checks that limits this host cannot apply fail with an
// error naming the spec field, and that a supported one still works.
func TestV1Unsupported(t *testing.T) {
	requireV1(t)
	name := testName()
	m, err := New(name, "/"+name, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	destroyAtCleanup(t, m)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	if paths["net_cls"] == "" {
		err := m.Set(&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](0x100001)}})
		expectErrorMentions(t, err, "network.classID", "net_cls")
	}
	if paths["hugetlb"] == "" {
		err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 * mib}}})
		expectErrorMentions(t, err, "hugepageLimits[2MB]", "hugetlb")
	}
	if _, err := os.Stat(filepath.Join(paths["blkio"], "blkio.leaf_weight")); err != nil {
		err := m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: ptr[uint16](300)}})
		expectErrorMentions(t, err, "blockIO.leafWeight", "blkio.leaf_weight")
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](7)}}); err != nil {
		t.Fatal(err)
	}
	expectFile(t, paths["memory"], "memory.swappiness", "7")

	_, err = New(name, "/"+name, &specs.LinuxResources{Unified: map[string]string{"memory.max": "1"}}, nil)
	expectErrorMentions(t, err, "unified", "v2")
}

// ownCgroup reads this process's v1 cgroup for one controller.
func ownCgroup(t *testing.T, ctl string) string {
	t.Helper()
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// "4:memory:/some/path"
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), ctl) {
			return parts[2]
		}
	}
	t.Fatalf("no %s line in /proc/self/cgroup", ctl)
	return ""
}

func TestV1PathRules(t *testing.T) {
	requireV1(t)
	// Nothing is created: New only resolves paths.
	for _, tc := range []struct{ id, cgroupsPath, inner string }{
		{"berth-test-a", "", "berth-test-a"},
		{"ignored", "berth-test/b", "berth-test/b"},
		{"ignored", "../../berth-test/c", "berth-test/c"},
	} {
		m, err := New(tc.id, tc.cgroupsPath, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, ctl := range []string{"memory", "pids"} {
			want := filepath.Join(mountRoot, ctl, ownCgroup(t, ctl), tc.inner)
			if got := m.Paths()[ctl]; got != want {
				t.Errorf("New(%q, %q): %s path %q, want %q", tc.id, tc.cgroupsPath, ctl, got, want)
			}
		}
	}
	m, err := New("x", "/berth-test/abs/../d", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Paths()["cpu"], "/sys/fs/cgroup/cpu/berth-test/d"; got != want {
		t.Errorf("absolute path: cpu path %q, want %q", got, want)
	}

	for _, tc := range []struct{ id, cgroupsPath string }{
		{"x", "/"}, {"x", "/.."}, {"x", ".."}, {"x", "a/.."}, {"", ""}, {"a/b", ""}, {"..", ""},
	} {
		if _, err := New(tc.id, tc.cgroupsPath, nil, nil); err == nil {
			t.Errorf("New(%q, %q) accepted", tc.id, tc.cgroupsPath)
		}
	}
	for _, paths := range []map[string]string{
		{"memory": "/sys/fs/cgroup/memory"},
		{"memory": "/tmp/x"},
		{"memory": "/sys/fs/cgroup/memory/../../../tmp"},
		{},
	} {
		if _, err := Load(paths); err == nil {
			t.Errorf("Load(%v) accepted", paths)
		}
	}
}
