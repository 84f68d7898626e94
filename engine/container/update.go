package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage"

	"github.com/berth-containers/berth/bundle"
)

// Limits are what `update` changes, as docker's UpdateConfig has them:
// a zero field stays as it is.
type Limits struct {
	Memory            int64 // bytes
	MemoryReservation int64
	MemorySwap        int64 // memory plus swap; -1: unlimited swap
	CPUs              float64
	CPUShares         uint64
	CPUQuota          int64 // microseconds per period; -1: no limit
	CPUPeriod         uint64
	CpusetCpus        string
	CpusetMems        string
	PidsLimit         *int64 // 0 or -1: no limit
	BlkioWeight       uint16
	Restart           *RestartPolicy
}

// ErrBadLimits matches the errors of limits refused before anything
// changed (the API's 400).
var ErrBadLimits = errors.New("bad limits")

type limitsError string

func (e limitsError) Error() string        { return string(e) }
func (e limitsError) Is(target error) bool { return target == ErrBadLimits }

func badLimits(format string, a ...any) error { return limitsError(fmt.Sprintf(format, a...)) }

// minMemory is docker's smallest memory limit.
const minMemory = 6 << 20

// check refuses values docker refuses, naming them.
func (l *Limits) check(c *Container) error {
	if l.Memory < 0 || l.Memory > 0 && l.Memory < minMemory {
		return badLimits("memory limit %d is below the minimum of 6MB", l.Memory)
	}
	if l.MemoryReservation < 0 {
		return badLimits("memory reservation %d is negative", l.MemoryReservation)
	}
	if l.MemorySwap < -1 {
		return badLimits("memory-swap %d: want memory plus swap in bytes, or -1 for unlimited swap", l.MemorySwap)
	}
	if l.CPUs != 0 {
		if l.CPUQuota != 0 || l.CPUPeriod != 0 {
			return badLimits("conflicting options: cpus and cpu-quota/cpu-period cannot both be set")
		}
		if _, _, err := bundle.CPUQuota(l.CPUs); err != nil {
			return badLimits("%v", err)
		}
	}
	if l.CPUQuota < -1 || l.CPUQuota > 0 && l.CPUQuota < 1000 {
		return badLimits("cpu-quota %d is below the minimum of 1000 microseconds", l.CPUQuota)
	}
	if l.CPUPeriod != 0 && (l.CPUPeriod < 1000 || l.CPUPeriod > 1000000) {
		return badLimits("cpu-period %d is out of range: want 1000 to 1000000 microseconds", l.CPUPeriod)
	}
	if l.BlkioWeight != 0 && (l.BlkioWeight < 10 || l.BlkioWeight > 1000) {
		return badLimits("blkio-weight %d is out of range: want 10 to 1000", l.BlkioWeight)
	}
	if l.Restart != nil {
		switch l.Restart.Name {
		case "no", "always", "unless-stopped", "on-failure":
		default:
			return badLimits("restart policy %q: want no, on-failure, always or unless-stopped", l.Restart.Name)
		}
		if c.AutoRemove && l.Restart.Name != "no" {
			return badLimits("container %s: the restart policy cannot be updated because it is removed when it exits (--rm)", c.Name)
		}
	}
	return nil
}

// apply sets the limits on r.
func (l *Limits) apply(r *specs.LinuxResources) error {
	if l.Memory != 0 || l.MemoryReservation != 0 || l.MemorySwap != 0 {
		m := r.Memory
		if m == nil {
			m = &specs.LinuxMemory{}
		}
		set(&m.Limit, l.Memory)
		set(&m.Reservation, l.MemoryReservation)
		set(&m.Swap, l.MemorySwap)
		if m.Limit != nil && m.Swap != nil && *m.Swap != -1 && *m.Swap < *m.Limit {
			return badLimits("memory limit %d is above the memory-swap limit %d (memory plus swap): update memory-swap with it", *m.Limit, *m.Swap)
		}
		r.Memory = m
	}
	if l.CPUs != 0 || l.CPUShares != 0 || l.CPUQuota != 0 || l.CPUPeriod != 0 || l.CpusetCpus != "" || l.CpusetMems != "" {
		c := r.CPU
		if c == nil {
			c = &specs.LinuxCPU{}
		}
		if l.CPUs != 0 {
			quota, period, _ := bundle.CPUQuota(l.CPUs)
			c.Quota, c.Period = &quota, &period
		}
		set(&c.Shares, l.CPUShares)
		set(&c.Quota, l.CPUQuota)
		set(&c.Period, l.CPUPeriod)
		if l.CpusetCpus != "" {
			c.Cpus = l.CpusetCpus
		}
		if l.CpusetMems != "" {
			c.Mems = l.CpusetMems
		}
		r.CPU = c
	}
	if l.PidsLimit != nil {
		limit := max(*l.PidsLimit, -1)
		if limit == 0 {
			limit = -1 // the runtimes write "max"
		}
		r.Pids = &specs.LinuxPids{Limit: &limit}
	}
	if l.BlkioWeight != 0 {
		if r.BlockIO == nil {
			r.BlockIO = &specs.LinuxBlockIO{}
		}
		set(&r.BlockIO.Weight, l.BlkioWeight)
	}
	return nil
}

// set points dst at v unless v is zero (not given).
func set[T int64 | uint64 | uint16](dst **T, v T) {
	if v != 0 {
		*dst = &v
	}
}

// UpdateLimits is docker update: the container's resources change in its
// bundle (so every later start has them) and, while it runs, in its
// cgroup through `runtime update`; the restart policy changes in its
// record, where the monitor reads it at the next exit. Nothing is written
// when the runtime refuses the change.
func UpdateLimits(ctx context.Context, s storage.Store, c *Container, l Limits) error {
	if err := l.check(c); err != nil {
		return err
	}
	if err := Refresh(ctx, s, c); err != nil {
		return err
	}
	return c.Update(func(st *State) error {
		spec, err := c.BundleSpec()
		if err != nil {
			return err
		}
		if spec.Linux == nil {
			spec.Linux = &specs.Linux{}
		}
		if spec.Linux.Resources == nil {
			spec.Linux.Resources = &specs.LinuxResources{}
		}
		res := spec.Linux.Resources
		if err := l.apply(res); err != nil {
			return err
		}
		if st.Status == Running || st.Status == Paused {
			if err := c.runtimeUpdate(ctx, res); err != nil {
				return err
			}
		}
		if err := bundle.WriteBundle(c.Dir, spec); err != nil {
			return fmt.Errorf("update %s: %w", c.Name, err)
		}
		if l.Restart != nil {
			return c.setRestart(*l.Restart)
		}
		return nil
	})
}

// runtimeUpdate hands the runtime the changed parts of the resources (it
// replaces each of memory, cpu, pids and block I/O whole, as runc does).
func (c *Container) runtimeUpdate(ctx context.Context, res *specs.LinuxResources) error {
	data, err := json.Marshal(specs.LinuxResources{Memory: res.Memory, CPU: res.CPU, Pids: res.Pids, BlockIO: res.BlockIO})
	if err != nil {
		return err
	}
	file := filepath.Join(c.RunDir, "update.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return fmt.Errorf("update %s: %w", c.Name, err)
	}
	defer os.Remove(file)
	if _, err := c.Runtime().Run(ctx, "update", "--resources", file, c.ID); err != nil {
		if errors.Is(err, ErrNoRuntimeContainer) {
			return nil // it exited meanwhile: the next start reads the bundle
		}
		return fmt.Errorf("update %s: %w", c.Name, err)
	}
	return nil
}

// setRestart rewrites the record's restart policy; the caller holds the
// lock.
func (c *Container) setRestart(p RestartPolicy) error {
	path := filepath.Join(c.Dir, configFile)
	var cfg Config
	if err := readJSON(path, &cfg); err != nil {
		return fmt.Errorf("update %s: %w", c.Name, err)
	}
	cfg.Restart = p
	if err := writeJSON(path, &cfg); err != nil {
		return fmt.Errorf("update %s: %w", c.Name, err)
	}
	c.Restart = p
	return nil
}

// CurrentRestart rereads the restart policy, which update may have changed
// since the record was opened.
func (c *Container) CurrentRestart() RestartPolicy {
	var cfg Config
	if err := readJSON(filepath.Join(c.Dir, configFile), &cfg); err != nil {
		return c.Restart
	}
	return cfg.Restart
}
