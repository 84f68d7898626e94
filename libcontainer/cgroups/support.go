package cgroups

import (
	"fmt"
	"os"
	"path/filepath"

	libcg "github.com/opencontainers/cgroups"
)

// need is one requested limit and the cgroup files able to carry it. The
// library would fail on a missing file with a bare path error, or (v2) skip
// limits that have no v2 file; checking first gives an error naming the
// spec field instead.
type need struct {
	field string   // below linux.resources, for messages
	ctl   string   // v1 controller holding the files
	v1    []string // any one of these must exist in the v1 cgroup
	v2    []string // any one of these in the v2 cgroup; none: no v2 equivalent
}

func needs(r *libcg.Resources) []need {
	var out []need
	add := func(set bool, field, ctl string, v1, v2 []string) {
		if set {
			out = append(out, need{field: field, ctl: ctl, v1: v1, v2: v2})
		}
	}
	add(r.Memory != 0, "memory.limit", "memory", []string{"memory.limit_in_bytes"}, []string{"memory.max"})
	add(r.MemoryReservation != 0, "memory.reservation", "memory", []string{"memory.soft_limit_in_bytes"}, []string{"memory.low"})
	// -1 (unlimited) is accepted by the library even without swap accounting.
	add(r.MemorySwap > 0, "memory.swap", "memory", []string{"memory.memsw.limit_in_bytes"}, []string{"memory.swap.max"})
	// The library reads a swappiness of -1 (as uint64) as "unset".
	add(r.MemorySwappiness != nil && int64(*r.MemorySwappiness) != -1, "memory.swappiness", "memory", []string{"memory.swappiness"}, nil)
	add(r.OomKillDisable, "memory.disableOOMKiller", "memory", []string{"memory.oom_control"}, nil)
	add(r.CpuShares != 0, "cpu.shares", "cpu", []string{"cpu.shares"}, []string{"cpu.weight"})
	add(r.CpuQuota != 0 || r.CpuPeriod != 0, "cpu.quota/period", "cpu", []string{"cpu.cfs_quota_us"}, []string{"cpu.max"})
	add(r.CpuBurst != nil, "cpu.burst", "cpu", []string{"cpu.cfs_burst_us"}, []string{"cpu.max.burst"})
	add(r.CpuRtRuntime != 0 || r.CpuRtPeriod != 0, "cpu.realtimeRuntime/realtimePeriod", "cpu", []string{"cpu.rt_runtime_us"}, nil)
	add(r.CPUIdle != nil, "cpu.idle", "cpu", []string{"cpu.idle"}, []string{"cpu.idle"})
	add(r.CpusetCpus != "", "cpu.cpus", "cpuset", []string{"cpuset.cpus"}, []string{"cpuset.cpus"})
	add(r.CpusetMems != "", "cpu.mems", "cpuset", []string{"cpuset.mems"}, []string{"cpuset.mems"})
	add(r.PidsLimit != nil, "pids.limit", "pids", []string{"pids.max"}, []string{"pids.max"})
	add(r.BlkioWeight != 0, "blockIO.weight", "blkio", []string{"blkio.weight", "blkio.bfq.weight"}, []string{"io.bfq.weight", "io.weight"})
	add(r.BlkioLeafWeight != 0, "blockIO.leafWeight", "blkio", []string{"blkio.leaf_weight"}, nil)
	for _, wd := range r.BlkioWeightDevice {
		// fs2 writes per-device weights only through BFQ.
		add(wd.Weight != 0, "blockIO.weightDevice.weight", "blkio", []string{"blkio.weight_device", "blkio.bfq.weight_device"}, []string{"io.bfq.weight"})
		add(wd.LeafWeight != 0, "blockIO.weightDevice.leafWeight", "blkio", []string{"blkio.leaf_weight_device"}, nil)
	}
	add(len(r.BlkioThrottleReadBpsDevice) > 0, "blockIO.throttleReadBpsDevice", "blkio", []string{"blkio.throttle.read_bps_device"}, []string{"io.max"})
	add(len(r.BlkioThrottleWriteBpsDevice) > 0, "blockIO.throttleWriteBpsDevice", "blkio", []string{"blkio.throttle.write_bps_device"}, []string{"io.max"})
	add(len(r.BlkioThrottleReadIOPSDevice) > 0, "blockIO.throttleReadIOPSDevice", "blkio", []string{"blkio.throttle.read_iops_device"}, []string{"io.max"})
	add(len(r.BlkioThrottleWriteIOPSDevice) > 0, "blockIO.throttleWriteIOPSDevice", "blkio", []string{"blkio.throttle.write_iops_device"}, []string{"io.max"})
	for _, h := range r.HugetlbLimit {
		prefix := "hugetlb." + h.Pagesize
		add(true, "hugepageLimits["+h.Pagesize+"]", "hugetlb", []string{prefix + ".limit_in_bytes"}, []string{prefix + ".max"})
	}
	add(r.NetClsClassid != 0, "network.classID", "net_cls", []string{"net_cls.classid"}, nil)
	add(len(r.NetPrioIfpriomap) > 0, "network.priorities", "net_prio", []string{"net_prio.ifpriomap"}, nil)
	add(len(r.Rdma) > 0, "rdma", "rdma", []string{"rdma.max"}, []string{"rdma.max"})
	return out
}

// checkSupport fails on the first requested limit that the cgroup has no
// file for. It needs the directories made by Apply.
func (m *Manager) checkSupport(r *libcg.Resources) error {
	for _, n := range needs(r) {
		files, dir := n.v1, m.paths[n.ctl]
		if m.v2 {
			files, dir = n.v2, m.paths[""]
			if len(files) == 0 {
				return fmt.Errorf("linux.resources.%s: not supported on cgroup v2", n.field)
			}
		} else if dir == "" {
			return fmt.Errorf("linux.resources.%s: the %s cgroup controller is not available on this host", n.field, n.ctl)
		}
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("linux.resources.%s: cgroup not created yet: %w", n.field, err)
		}
		if !anyExists(dir, files) {
			return fmt.Errorf("linux.resources.%s: not supported by this host (no %v in %s)", n.field, files, dir)
		}
	}
	return nil
}

func anyExists(dir string, files []string) bool {
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}
