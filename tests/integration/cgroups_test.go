package integration

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func requireV1(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		t.Skip("no cgroup v1 memory hierarchy on this host")
	}
}

// cgroupFile reads a cgroup file, trimmed.
func cgroupFile(t *testing.T, dir, name string) string {
	t.Helper()
	return strings.TrimSpace(readFile(t, filepath.Join(dir, name)))
}

// inCgroup reports whether pid is listed in dir/cgroup.procs.
func inCgroup(t *testing.T, dir string, pid int) bool {
	t.Helper()
	return slices.Contains(lines(readFile(t, filepath.Join(dir, "cgroup.procs"))), strconv.Itoa(pid))
}

// v1Dirs maps hierarchy names to the directories an absolute cgroupsPath
// names in them.
func v1Dirs(path string) map[string]string {
	dirs := map[string]string{}
	for _, h := range []string{"memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "systemd"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h)); err == nil {
			dirs[h] = filepath.Join("/sys/fs/cgroup", h, path)
		}
	}
	return dirs
}

// deleteRemovesCgroups deletes container id and checks that its cgroup
// directories went with it.
func deleteRemovesCgroups(e *env, id string, dirs ...string) {
	e.t.Helper()
	e.mustRT("delete", "--force", id)
	for _, dir := range dirs {
		if _, err := os.Stat(dir); err == nil {
			e.t.Errorf("cgroup %s still there after delete", dir)
		}
	}
}

// TestCgroupV1Limits applies memory, swap, pids and cpu limits under an
// absolute cgroupsPath and checks the files, the membership and the removal.
func TestCgroupV1Limits(t *testing.T) {
	t.Parallel()
	requireV1(t)
	e := newEnv(t)
	path := "/berth-test-" + idSalt + "-limits"
	s := newSpec(t, "sleep", "100")
	s.Linux.CgroupsPath = path
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(32 << 20)), Swap: ptr(int64(32 << 20))}
	s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr(int64(20))}
	s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000))}
	id, _ := e.start(s)
	pid := e.state(id).Pid
	dirs := v1Dirs(path)
	for file, want := range map[string]string{
		"memory/memory.limit_in_bytes":       "33554432",
		"memory/memory.memsw.limit_in_bytes": "33554432",
		"pids/pids.max":                      "20",
		"cpu/cpu.shares":                     "512",
		"cpu/cpu.cfs_quota_us":               "50000",
		"cpu/cpu.cfs_period_us":              "100000",
	} {
		h, name, _ := strings.Cut(file, "/")
		if got := cgroupFile(t, dirs[h], name); got != want {
			t.Errorf("%s/%s = %s, want %s", dirs[h], name, got, want)
		}
	}
	for h, dir := range dirs {
		if !inCgroup(t, dir, pid) {
			t.Errorf("init %d not in the %s cgroup %s", pid, h, dir)
		}
	}
	deleteRemovesCgroups(e, id, slices.Collect(maps.Values(dirs))...)
}

// TestCgroupV1RelativePath checks that a relative cgroupsPath lands below
// the runtime's own cgroups.
func TestCgroupV1RelativePath(t *testing.T) {
	t.Parallel()
	requireV1(t)
	e := newEnv(t)
	rel := "berth-test-" + idSalt + "-relative"
	s := newSpec(t, "sleep", "100")
	s.Linux.CgroupsPath = rel
	s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr(int64(33))}
	id, _ := e.start(s)
	pid := e.state(id).Pid
	dirs := cgroupDirs(t, rel)
	if len(dirs) == 0 {
		t.Fatal("no cgroup hierarchies found")
	}
	for _, dir := range dirs {
		if !inCgroup(t, dir, pid) {
			t.Errorf("init %d not in %s", pid, dir)
		}
		if strings.HasPrefix(dir, "/sys/fs/cgroup/pids/") {
			if got := cgroupFile(t, dir, "pids.max"); got != "33" {
				t.Errorf("%s/pids.max = %s, want 33", dir, got)
			}
		}
	}
	deleteRemovesCgroups(e, id, dirs...)
}

// TestCgroupV1OOMKill runs a process that wants far more than its memory
// limit: the kernel kills it, and run reports 128+SIGKILL.
func TestCgroupV1OOMKill(t *testing.T) {
	t.Parallel()
	requireV1(t)
	e := newEnv(t)
	// The shell keeps the whole 100 MB output of the pipe in a variable.
	s := shell(t, `x=$(head -c 100000000 /dev/zero | tr "\0" a); echo survived ${#x}`)
	s.Linux.CgroupsPath = "/berth-test-" + idSalt + "-oom"
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(32 << 20)), Swap: ptr(int64(32 << 20))}
	r := e.run(s)
	if r.code != 137 || strings.Contains(r.stdout, "survived") {
		t.Errorf("run of a 100 MB allocation in 32 MiB: %s", r)
	}
}

// TestCgroupV1PidsLimit forks more processes than the pids limit allows and
// checks that the cgroup never holds more than the limit.
func TestCgroupV1PidsLimit(t *testing.T) {
	t.Parallel()
	requireV1(t)
	e := newEnv(t)
	path := "/berth-test-" + idSalt + "-pids"
	// The loop runs in a subshell, which dies at its first failed fork; the
	// outer shell then needs no fork to report and wait.
	s := shell(t, `(i=0; while [ $i -lt 40 ]; do sleep 100 & i=$((i+1)); done) 2>/dev/null; echo forks done; exec sleep 100`)
	s.Linux.CgroupsPath = path
	s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr(int64(20))}
	_, r := e.start(s)
	waitOutput(t, r.outPath, "forks done")
	dir := filepath.Join("/sys/fs/cgroup/pids", path)
	current, err := strconv.Atoi(cgroupFile(t, dir, "pids.current"))
	if err != nil || current > 20 || current < 15 {
		t.Errorf("pids.current = %d (%v), want at most 20 and close to it", current, err)
	}
	events := cgroupFile(t, dir, "pids.events")
	if f := strings.Fields(events); len(f) != 2 || f[0] != "max" || f[1] == "0" {
		t.Errorf("pids.events = %q, want refused forks", events)
	}
}

// mknodDevices makes, in a rootfs on the host, a node of a device the
// container is allowed (/zero2, 1:5) and one it is not (/tun, 10:200).
func mknodDevices(t *testing.T, rootfs string) {
	t.Helper()
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"zero2", 1, 5}, {"tun", 10, 200}} {
		if err := unix.Mknod(filepath.Join(rootfs, d.name), unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			t.Fatal(err)
		}
	}
}

// deviceScript reads one byte of each node: the allowed one must give a NUL
// byte, the other EPERM from the device rules (a reachable tun device
// would fail with a different error).
const deviceScript = `echo zero2=$(head -c1 /zero2 | od -An -tx1); head -c1 /tun; echo ready; exec sleep 100`

func checkDeviceOutput(t *testing.T, out, errOut string) {
	t.Helper()
	contains(t, "allowed device", out, "zero2= 00")
	contains(t, "denied device", errOut, "/tun: Operation not permitted")
}

// TestCgroupV1Devices checks the device rules on v1.
func TestCgroupV1Devices(t *testing.T) {
	t.Parallel()
	requireV1(t)
	e := newEnv(t)
	s := shell(t, deviceScript)
	mknodDevices(t, copyRootfs(t, s))
	_, r := e.start(s)
	out := waitOutput(t, r.outPath, "ready")
	checkDeviceOutput(t, out, readFile(t, r.errPath))
}

// TestCgroupV2 runs the runtime in mount namespaces whose /sys/fs/cgroup is
// the host's cgroup2 hierarchy (/sys/fs/cgroup/unified here), so that it
// works as on a unified host: membership, device rules, removal.
func TestCgroupV2(t *testing.T) {
	t.Parallel()
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Skip("no cgroup2 hierarchy at /sys/fs/cgroup/unified")
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		t.Skip("the host is unified already")
	}
	e := newEnv(t)
	e.v2 = true
	path := "/berth-test-" + idSalt + "-v2"
	s := shell(t, deviceScript)
	mknodDevices(t, copyRootfs(t, s))
	s.Linux.CgroupsPath = path
	id, r := e.start(s)
	out := waitOutput(t, r.outPath, "ready")
	checkDeviceOutput(t, out, readFile(t, r.errPath))

	dir := filepath.Join("/sys/fs/cgroup/unified", path)
	pid := e.state(id).Pid
	if !inCgroup(t, dir, pid) {
		t.Errorf("init %d not in %s/cgroup.procs", pid, dir)
	}
	deleteRemovesCgroups(e, id, dir)
}
