package container

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CgroupRoot is where the host mounts cgroups: a cgroup2 file system
// (unified), or a tmpfs with a directory per v1 controller.
const CgroupRoot = "/sys/fs/cgroup"

// Stats is one sample of a container's resource use, read from its cgroup
// (v1 or v2) and its init's network namespace.
type Stats struct {
	Read time.Time
	// CPU is the container's CPU time; System the host's (all CPUs, from
	// /proc/stat), both in nanoseconds: CPU % is the ratio of their
	// changes between two samples, times OnlineCPUs.
	CPU, System uint64
	OnlineCPUs  int
	// MemUsage leaves out the inactive page cache, as docker shows it;
	// MemLimit is the host's memory when the cgroup has no lower limit.
	MemUsage, MemLimit    uint64
	NetRx, NetTx          uint64 // bytes, all interfaces but lo
	BlockRead, BlockWrite uint64 // bytes
	Pids                  uint64
}

// ReadStats samples c's cgroup under root (CgroupRoot on the host). The
// hierarchy is v2 when root holds cgroup.controllers, v1 otherwise. Network
// counters come from c's init (none when it has no pid).
func ReadStats(c *Container, root string) (*Stats, error) {
	if c.CgroupPath == "" {
		return nil, fmt.Errorf("stats %s: the container has no cgroup (not run as root)", c.Name)
	}
	st := &Stats{Read: time.Now()}
	var err error
	if st.System, st.OnlineCPUs, err = systemCPU(); err != nil {
		return nil, fmt.Errorf("stats %s: %w", c.Name, err)
	}
	if _, e := os.Stat(filepath.Join(root, "cgroup.controllers")); e == nil {
		err = readV2(st, filepath.Join(root, c.CgroupPath))
	} else {
		err = readV1(st, root, c.CgroupPath)
	}
	if err != nil {
		return nil, fmt.Errorf("stats %s: %w", c.Name, err)
	}
	if total, err := hostMemory(); err == nil && (st.MemLimit == 0 || st.MemLimit > total) {
		st.MemLimit = total
	}
	if c.Pid > 0 {
		// The init may have exited since: no network counters then.
		st.NetRx, st.NetTx, _ = netDev(c.Pid)
	}
	return st, nil
}

// CPUPercent is docker's CPU %: the container's share of the host's CPU
// time between prev and st, scaled to the number of CPUs.
func (st *Stats) CPUPercent(prev *Stats) float64 {
	if prev == nil || st.System <= prev.System || st.CPU < prev.CPU {
		return 0
	}
	return float64(st.CPU-prev.CPU) / float64(st.System-prev.System) * float64(st.OnlineCPUs) * 100
}

// MemPercent is the usage's share of the limit.
func (st *Stats) MemPercent() float64 {
	if st.MemLimit == 0 {
		return 0
	}
	return float64(st.MemUsage) / float64(st.MemLimit) * 100
}

// A cgroup has the files of the controllers enabled for it: those of a
// missing controller count as zero. The CPU time is always there (cpu.stat
// is a core file of v2; v1 needs cpuacct), and tells whether the cgroup
// still exists.

func readV2(st *Stats, dir string) error {
	kv, err := keyValues(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return err
	}
	st.CPU = kv["usage_usec"] * 1000
	usage, err := optional(readUint(filepath.Join(dir, "memory.current")))
	if err != nil {
		return err
	}
	if mem, err := keyValues(filepath.Join(dir, "memory.stat")); err == nil && mem["inactive_file"] < usage {
		usage -= mem["inactive_file"]
	}
	st.MemUsage = usage
	if st.MemLimit, err = optional(readUint(filepath.Join(dir, "memory.max"))); err != nil {
		return err
	}
	if st.Pids, err = optional(readUint(filepath.Join(dir, "pids.current"))); err != nil {
		return err
	}
	// io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device.
	data, err := os.ReadFile(filepath.Join(dir, "io.stat"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cgroup: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		for _, f := range strings.Fields(line) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "rbytes":
				st.BlockRead += n
			case "wbytes":
				st.BlockWrite += n
			}
		}
	}
	return nil
}

func readV1(st *Stats, root, path string) error {
	var err error
	if st.CPU, err = readUint(filepath.Join(root, "cpuacct", path, "cpuacct.usage")); err != nil {
		return err
	}
	mem := filepath.Join(root, "memory", path)
	usage, err := optional(readUint(filepath.Join(mem, "memory.usage_in_bytes")))
	if err != nil {
		return err
	}
	if kv, err := keyValues(filepath.Join(mem, "memory.stat")); err == nil && kv["total_inactive_file"] < usage {
		usage -= kv["total_inactive_file"]
	}
	st.MemUsage = usage
	if st.MemLimit, err = optional(readUint(filepath.Join(mem, "memory.limit_in_bytes"))); err != nil {
		return err
	}
	if st.Pids, err = optional(readUint(filepath.Join(root, "pids", path, "pids.current"))); err != nil {
		return err
	}
	// "MAJ:MIN Read N" lines per device and operation, and a Total.
	blkio := filepath.Join(root, "blkio", path)
	for _, name := range []string{"blkio.throttle.io_service_bytes_recursive", "blkio.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"} {
		data, err := os.ReadFile(filepath.Join(blkio, name))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 {
				continue
			}
			n, _ := strconv.ParseUint(f[2], 10, 64)
			switch f[1] {
			case "Read":
				st.BlockRead += n
			case "Write":
				st.BlockWrite += n
			}
		}
		break
	}
	return nil
}

// optional makes a missing file zero.
func optional(n uint64, err error) (uint64, error) {
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return n, err
}

// readUint reads a cgroup file of one number; "max" is no limit (0).
func readUint(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %s: %w", path, err)
	}
	return n, nil
}

// keyValues reads a flat-keyed cgroup file ("key value" lines).
func keyValues(path string) (map[string]uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	kv := map[string]uint64{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
				kv[k] = n
			}
		}
	}
	return kv, nil
}

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// systemCPU sums the host's CPU time from /proc/stat's "cpu" line, in
// nanoseconds, and counts the CPUs, as dockerd does.
func systemCPU() (uint64, int, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	var total uint64
	cpus := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			cpus++
			continue
		}
		// user nice system idle iowait irq softirq steal (guest is in user).
		for _, v := range f[1:min(len(f), 9)] {
			n, _ := strconv.ParseUint(v, 10, 64)
			total += n
		}
	}
	if total == 0 {
		return 0, 0, errors.New("no cpu line in /proc/stat")
	}
	return total * (1e9 / clockTicks), max(cpus, 1), nil
}

// hostMemory is MemTotal from /proc/meminfo, in bytes.
func hostMemory() (uint64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no MemTotal in /proc/meminfo")
}

// netDev sums the byte counters of pid's network namespace, but for lo.
func netDev(pid int) (rx, tx uint64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, counters, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(counters)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(f[0], 10, 64)
		t, _ := strconv.ParseUint(f[8], 10, 64)
		rx, tx = rx+r, tx+t
	}
	return rx, tx, nil
}
