package cgroups

import (
	"errors"
	"fmt"
	"strings"

	libcg "github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// convert turns the spec's resources into the library's, except devices.
// Kernel memory limits are ignored (deprecated by the spec, gone from
// kernels). On v2 cpu shares become cpu.weight here because fs2 leaves that
// conversion to its caller; swap and blkio weight are converted by fs2.
func convert(r *specs.LinuxResources, v2 bool) (*libcg.Resources, error) {
	res := &libcg.Resources{}
	if r == nil {
		return res, nil
	}
	if mem := r.Memory; mem != nil {
		res.Memory = deref(mem.Limit)
		res.MemoryReservation = deref(mem.Reservation)
		res.MemorySwap = deref(mem.Swap)
		res.MemorySwappiness = mem.Swappiness
		res.OomKillDisable = deref(mem.DisableOOMKiller)
		res.MemoryCheckBeforeUpdate = deref(mem.CheckBeforeUpdate)
	}
	if cpu := r.CPU; cpu != nil {
		res.CpuShares = deref(cpu.Shares)
		if v2 {
			res.CpuWeight = libcg.ConvertCPUSharesToCgroupV2Value(res.CpuShares)
		}
		res.CpuQuota = deref(cpu.Quota)
		res.CpuPeriod = deref(cpu.Period)
		res.CpuBurst = cpu.Burst
		res.CpuRtRuntime = deref(cpu.RealtimeRuntime)
		res.CpuRtPeriod = deref(cpu.RealtimePeriod)
		res.CpusetCpus = cpu.Cpus
		res.CpusetMems = cpu.Mems
		res.CPUIdle = cpu.Idle
	}
	if r.Pids != nil {
		res.PidsLimit = r.Pids.Limit
	}
	if bio := r.BlockIO; bio != nil {
		res.BlkioWeight = deref(bio.Weight)
		res.BlkioLeafWeight = deref(bio.LeafWeight)
		for _, wd := range bio.WeightDevice {
			res.BlkioWeightDevice = append(res.BlkioWeightDevice,
				libcg.NewWeightDevice(wd.Major, wd.Minor, deref(wd.Weight), deref(wd.LeafWeight)))
		}
		res.BlkioThrottleReadBpsDevice = throttle(bio.ThrottleReadBpsDevice)
		res.BlkioThrottleWriteBpsDevice = throttle(bio.ThrottleWriteBpsDevice)
		res.BlkioThrottleReadIOPSDevice = throttle(bio.ThrottleReadIOPSDevice)
		res.BlkioThrottleWriteIOPSDevice = throttle(bio.ThrottleWriteIOPSDevice)
	}
	for _, h := range r.HugepageLimits {
		res.HugetlbLimit = append(res.HugetlbLimit, &libcg.HugepageLimit{Pagesize: h.Pagesize, Limit: h.Limit})
	}
	if net := r.Network; net != nil {
		res.NetClsClassid = deref(net.ClassID)
		for _, p := range net.Priorities {
			res.NetPrioIfpriomap = append(res.NetPrioIfpriomap, &libcg.IfPrioMap{Interface: p.Name, Priority: int64(p.Priority)})
		}
	}
	if len(r.Rdma) > 0 {
		res.Rdma = make(map[string]libcg.LinuxRdma, len(r.Rdma))
		for dev, l := range r.Rdma {
			res.Rdma[dev] = libcg.LinuxRdma{HcaHandles: l.HcaHandles, HcaObjects: l.HcaObjects}
		}
	}
	if len(r.Unified) > 0 {
		if !v2 {
			return nil, errors.New("invalid configuration: linux.resources.unified needs cgroup v2: cannot use unified on cgroup v1")
		}
		res.Unified = r.Unified
	}
	return res, nil
}

func throttle(devs []specs.LinuxThrottleDevice) []*libcg.ThrottleDevice {
	var out []*libcg.ThrottleDevice
	for _, d := range devs {
		out = append(out, libcg.NewThrottleDevice(d.Major, d.Minor, d.Rate))
	}
	return out
}

// deviceRules lists the spec's device rules, then the runtime's extra ones.
// The rules start from "deny everything", so an empty list denies all
// devices. An omitted type means all types, omitted numbers are wildcards and
// an omitted access means "rwm".
func deviceRules(r *specs.LinuxResources, extra []specs.LinuxDeviceCgroup) ([]*devconfig.Rule, error) {
	var all []specs.LinuxDeviceCgroup
	if r != nil {
		all = append(all, r.Devices...)
	}
	all = append(all, extra...)
	rules := make([]*devconfig.Rule, 0, len(all))
	for i, d := range all {
		rule := &devconfig.Rule{
			Type:  devconfig.WildcardDevice,
			Major: devconfig.Wildcard,
			Minor: devconfig.Wildcard,
			Allow: d.Allow,
		}
		switch d.Type {
		case "", "a":
		case "b":
			rule.Type = devconfig.BlockDevice
		case "c":
			rule.Type = devconfig.CharDevice
		default:
			return nil, fmt.Errorf("device rule %d: invalid type %q (want a, b or c)", i, d.Type)
		}
		if d.Major != nil {
			rule.Major = *d.Major
		}
		if d.Minor != nil {
			rule.Minor = *d.Minor
		}
		perms, err := accessPermissions(d.Access)
		if err != nil {
			return nil, fmt.Errorf("device rule %d: %w", i, err)
		}
		rule.Permissions = perms
		rules = append(rules, rule)
	}
	return rules, nil
}

// accessPermissions checks an access string and puts it in the "rwm" order
// the library's rule emulator insists on.
func accessPermissions(access string) (devconfig.Permissions, error) {
	if access == "" {
		return "rwm", nil
	}
	if strings.Trim(access, "rwm") != "" {
		return "", fmt.Errorf("invalid access %q (want letters of rwm)", access)
	}
	var p string
	for _, c := range "rwm" {
		if strings.ContainsRune(access, c) {
			p += string(c)
		}
	}
	return devconfig.Permissions(p), nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
