package libcontainer

import (
	"fmt"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/libcontainer/cgroups"
	"github.com/berth-containers/berth/libcontainer/state"
)

// withCgroup opens a container, checks its status with ok, and hands its
// state and cgroup to fn while the container stays locked.
func withCgroup(root, id string, ok func(status string) error, fn func(*state.Dir, *state.State, *cgroups.Manager) error) error {
	return withContainer(root, id, func(d *state.Dir, st *state.State, status string) error {
		if err := ok(status); err != nil {
			return err
		}
		if len(st.CgroupPaths) == 0 {
			return fmt.Errorf("container %s has no cgroup", id)
		}
		cg, err := cgroups.Load(st.CgroupPaths)
		if err != nil {
			return err
		}
		return fn(d, st, cg)
	})
}

func need(id string, want ...string) func(string) error {
	return func(status string) error {
		for _, w := range want {
			if status == w {
				return nil
			}
		}
		if status == state.Stopped {
			return ErrNotRunning
		}
		return fmt.Errorf("container %s is %s, not %s", id, status, want[0])
	}
}

// Pause freezes every process of a running container.
func Pause(root, id string) error {
	return withCgroup(root, id, need(id, state.Running), func(_ *state.Dir, _ *state.State, cg *cgroups.Manager) error {
		return cg.Freeze()
	})
}

// Resume thaws a paused container.
func Resume(root, id string) error {
	return withCgroup(root, id, need(id, state.Paused), func(_ *state.Dir, _ *state.State, cg *cgroups.Manager) error {
		return cg.Thaw()
	})
}

// Pids lists the processes of a container (host pids): those of its cgroup,
// or, for a container without one (an unprivileged caller's), those of its
// own pid namespace.
func Pids(root, id string) ([]int, error) {
	var pids []int
	err := withContainer(root, id, func(_ *state.Dir, st *state.State, status string) error {
		if status == state.Stopped {
			return nil // as runc: a stopped container has no processes
		}
		if err := need(id, state.Running, state.Created, state.Paused)(status); err != nil {
			return err
		}
		if len(st.CgroupPaths) == 0 {
			if !newNamespace(st.Spec, specs.PIDNamespace) {
				return fmt.Errorf("container %s has no cgroup and no pid namespace of its own: its processes cannot be told from others", id)
			}
			var err error
			pids, err = namespacePids(st.Pid)
			return err
		}
		cg, err := cgroups.Load(st.CgroupPaths)
		if err != nil {
			return err
		}
		pids, err = cg.Pids()
		return err
	})
	return pids, err
}

// namespacePids are the processes in the pid namespace of pid.
func namespacePids(pid int) ([]int, error) {
	want, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	if err != nil {
		return nil, fmt.Errorf("pid namespace of %d: %w", pid, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// A process gone meanwhile, or not ours to see, is not listed.
		if ns, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && ns == want {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// Update changes a container's resources: update merges r into the
// recorded ones, which are applied and saved.
func Update(root, id string, update func(*specs.LinuxResources) error) error {
	return withCgroup(root, id, need(id, state.Running, state.Created, state.Paused), func(d *state.Dir, st *state.State, cg *cgroups.Manager) error {
		if st.Spec.Linux.Resources == nil {
			st.Spec.Linux.Resources = &specs.LinuxResources{}
		}
		r := st.Spec.Linux.Resources
		if err := update(r); err != nil {
			return err
		}
		if err := cg.Set(r); err != nil {
			return err
		}
		return d.Save(st)
	})
}

// Stats returns the cgroup statistics of a container.
func Stats(root, id string) (*cgroups.Stats, error) {
	var stats *cgroups.Stats
	err := withCgroup(root, id, need(id, state.Running, state.Created, state.Paused), func(_ *state.Dir, _ *state.State, cg *cgroups.Manager) error {
		var err error
		stats, err = cg.Stats()
		return err
	})
	return stats, err
}

// OOMKills returns the OOM kill count of a container's cgroup, which stays
// readable after the container stopped (the kill may have stopped it).
func OOMKills(root, id string) (uint64, error) {
	var n uint64
	err := withCgroup(root, id, need(id, state.Running, state.Created, state.Paused, state.Stopped), func(_ *state.Dir, _ *state.State, cg *cgroups.Manager) error {
		var err error
		n, err = cg.OOMKills()
		return err
	})
	return n, err
}
