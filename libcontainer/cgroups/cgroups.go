// Package cgroups places container processes in cgroups and applies the
// resource limits of an OCI spec. It drives the cgroupfs managers of
// github.com/opencontainers/cgroups (fs on v1, fs2 on v2) so that the rest of
// the runtime never touches cgroupfs itself. The systemd driver is not
// supported.
package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"

	libcg "github.com/opencontainers/cgroups"
	// Registers the device rule writers (v1 files, v2 eBPF); without it the
	// library refuses device rules.
	_ "github.com/opencontainers/cgroups/devices"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// mountRoot is where every cgroup hierarchy lives; paths outside it are refused.
const mountRoot = "/sys/fs/cgroup"

// Stats are the statistics of a container's cgroups, as the library gathers them.
type Stats = libcg.Stats

// Manager handles the cgroups of one container.
type Manager struct {
	lib libcg.Manager
	v2  bool
	// paths is kept apart from the library's map, which Destroy empties.
	paths map[string]string
	// knowsDevices is false for a Manager rebuilt by Load: its device rules
	// were never recorded, so Set must leave them as they are.
	knowsDevices bool
	extraDevices []specs.LinuxDeviceCgroup
}

// IsV2 reports whether /sys/fs/cgroup is a cgroup2 mount (unified host). The
// library caches the answer for the life of the process.
func IsV2() bool {
	return libcg.IsCgroup2UnifiedMode()
}

// New prepares, without creating anything, the cgroup of container id.
//
// cgroupsPath is linux.cgroupsPath of the spec. An absolute path is taken
// below /sys/fs/cgroup (below each v1 hierarchy). A relative path is taken,
// as runc does, below the runtime's own cgroup on v1 (per hierarchy) and
// below the parent of the runtime's own cgroup on v2. An empty path means the
// relative path "<id>", again as runc does.
//
// r gives the limits to apply later with Set; its device rules are followed
// by extraDevices, the allow rules the runtime adds (spec devices, default
// devices), so that those win over a spec's deny rules.
func New(id, cgroupsPath string, r *specs.LinuxResources, extraDevices []specs.LinuxDeviceCgroup) (*Manager, error) {
	cfg := &libcg.Cgroup{}
	if cgroupsPath == "" {
		if id == "" || id == "." || id == ".." || strings.Contains(id, "/") {
			return nil, fmt.Errorf("cgroup for container %q: invalid id for a default cgroup path", id)
		}
		cfg.Name = id
	} else {
		// The hierarchy roots (and, for relative paths, the runtime's own
		// cgroup) must never be used: Destroy removes the tree below.
		if filepath.Clean("/"+cgroupsPath) == "/" {
			return nil, fmt.Errorf("cgroup for container %s: cgroupsPath %q names a root or the runtime's own cgroup", id, cgroupsPath)
		}
		cfg.Path = cgroupsPath
	}

	v2 := IsV2()
	res, err := convert(r, v2)
	if err != nil {
		return nil, fmt.Errorf("cgroup for container %s: %w", id, err)
	}
	if res.Devices, err = deviceRules(r, extraDevices); err != nil {
		return nil, fmt.Errorf("cgroup for container %s: %w", id, err)
	}
	cfg.Resources = res

	var lib libcg.Manager
	if v2 {
		lib, err = fs2.NewManager(cfg, "")
	} else {
		lib, err = fs.NewManager(cfg, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup for container %s: %w", id, err)
	}
	m := &Manager{
		lib:          lib,
		v2:           v2,
		paths:        maps.Clone(lib.GetPaths()),
		knowsDevices: true,
		extraDevices: extraDevices,
	}
	if err := checkPaths(m.paths, v2); err != nil {
		return nil, fmt.Errorf("cgroup for container %s: %w", id, err)
	}
	return m, nil
}

// Load rebuilds the Manager of an existing container from the paths that
// Paths returned. Its Set leaves device rules untouched, like runc update.
func Load(paths map[string]string) (*Manager, error) {
	v2 := IsV2()
	if err := checkPaths(paths, v2); err != nil {
		return nil, fmt.Errorf("load cgroup: %w", err)
	}
	cfg := &libcg.Cgroup{Resources: &libcg.Resources{}}
	var (
		lib libcg.Manager
		err error
	)
	if v2 {
		lib, err = fs2.NewManager(cfg, paths[""])
	} else {
		lib, err = fs.NewManager(cfg, maps.Clone(paths))
	}
	if err != nil {
		return nil, fmt.Errorf("load cgroup %s: %w", paths, err)
	}
	return &Manager{lib: lib, v2: v2, paths: maps.Clone(paths)}, nil
}

// checkPaths refuses paths outside /sys/fs/cgroup and hierarchy roots, since
// Destroy removes whatever cgroup tree they name. On v2 the only key is "".
func checkPaths(paths map[string]string, v2 bool) error {
	if len(paths) == 0 {
		return errors.New("no cgroup paths")
	}
	if v2 {
		if _, ok := paths[""]; !ok || len(paths) != 1 {
			return fmt.Errorf("cgroup v2 needs a single unified path, got %v", paths)
		}
	}
	for key, p := range paths {
		rel, err := filepath.Rel(mountRoot, p)
		if err != nil || !filepath.IsAbs(p) || filepath.Clean(p) != p || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			return fmt.Errorf("cgroup path %q is not below %s", p, mountRoot)
		}
		// v1 paths are /sys/fs/cgroup/<hierarchy>/<cgroup>: one level more.
		if !v2 && !strings.Contains(rel, "/") {
			return fmt.Errorf("cgroup path %q for %q is a hierarchy root", p, key)
		}
	}
	return nil
}

// Paths returns the cgroup directories, keyed by v1 controller (or "" for
// the v2 directory), to be saved in the container state for Load.
func (m *Manager) Paths() map[string]string {
	return maps.Clone(m.paths)
}

// Existing reports whether the container's cgroup exists before Apply made
// it (a cgroupsPath the caller prepared), and if so how many processes it
// holds and whether it is frozen. One stat when it does not exist.
func (m *Manager) Existing() (exists bool, procs int, frozen bool, err error) {
	dir, ok := m.paths["freezer"]
	if m.v2 {
		dir, ok = m.paths[""]
	}
	if !ok {
		return false, 0, false, nil
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return false, 0, false, nil
	}
	pids, err := libcg.GetPids(dir)
	if err != nil {
		return true, 0, false, fmt.Errorf("list pids of %s: %w", dir, err)
	}
	frozen, err = m.Frozen()
	return true, len(pids), frozen, err
}

// Apply creates the cgroup directories and moves pid into them.
func (m *Manager) Apply(pid int) error {
	if err := m.lib.Apply(pid); err != nil {
		return fmt.Errorf("create cgroup and add pid %d: %w", pid, err)
	}
	return nil
}

// AddPid moves pid into the existing cgroup (exec'd processes), or into the
// cgroups below it that subs names (runc's exec --cgroup), which must exist:
// by controller, or for every controller under the key "".
func (m *Manager) AddPid(pid int, subs map[string]string) error {
	if len(subs) == 0 {
		if err := m.lib.AddPid("", pid); err != nil {
			return fmt.Errorf("add pid %d to the container's cgroup: %w", pid, err)
		}
		return nil
	}
	for key, sub := range subs {
		clean := filepath.Clean(sub)
		if filepath.IsAbs(sub) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("sub-cgroup %q must be a relative path below the container's cgroup", sub)
		}
		if _, ok := m.paths[key]; key != "" && !ok {
			if m.v2 {
				return fmt.Errorf("sub-cgroup %s:%s: cgroup v2 has one hierarchy, give the path without a controller", key, sub)
			}
			return fmt.Errorf("sub-cgroup %s:%s: unknown controller %s", key, sub, key)
		}
	}
	// Each hierarchy gets the sub-cgroup named for its controller, else
	// the one for all, else the container's own cgroup.
	for key, path := range m.paths {
		sub, ok := subs[key]
		if !ok {
			sub = subs[""]
		}
		if err := libcg.WriteCgroupProc(filepath.Join(path, sub), pid); err != nil {
			return fmt.Errorf("add pid %d to cgroup %s: %w", pid, filepath.Join(path, sub), err)
		}
	}
	return nil
}

// Set applies the limits of r to the cgroup, which Apply must have created.
// A limit this host cannot apply is an error naming the spec field.
func (m *Manager) Set(r *specs.LinuxResources) error {
	res, err := convert(r, m.v2)
	if err != nil {
		return err
	}
	var v1Devices []*devconfig.Rule
	if m.knowsDevices {
		if res.Devices, err = deviceRules(r, m.extraDevices); err != nil {
			return err
		}
	} else {
		res.SkipDevices = true
	}
	if err := m.checkSupport(res); err != nil {
		return err
	}
	if !m.v2 && m.knowsDevices {
		// The library's v1 rule emulator writes a minimal, reordered set of
		// rules; the runtime-spec wants them applied in the listed order.
		v1Devices, res.SkipDevices = res.Devices, true
	}
	if err := m.lib.Set(res); err != nil {
		return fmt.Errorf("set cgroup resources: %w", err)
	}
	return writeV1Devices(m.paths["devices"], v1Devices)
}

// writeV1Devices denies every device, then writes the rules in order.
func writeV1Devices(dir string, rules []*devconfig.Rule) error {
	if len(rules) == 0 {
		return nil
	}
	write := func(file, rule string) error {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(rule), 0); err != nil {
			return fmt.Errorf("write %q to %s/%s: %w", rule, dir, file, err)
		}
		return nil
	}
	if err := write("devices.deny", "a"); err != nil {
		return err
	}
	for _, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if err := write(file, r.CgroupString()); err != nil {
			return err
		}
	}
	return nil
}

// Pids returns the pids of every process in the cgroup and its descendants;
// a cgroup removed behind our back has none.
func (m *Manager) Pids() ([]int, error) {
	pids, err := m.lib.GetAllPids()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list cgroup pids: %w", err)
	}
	return pids, nil
}

// Freeze stops every process of the cgroup (v1 freezer, v2 cgroup.freeze).
func (m *Manager) Freeze() error {
	if err := m.lib.Freeze(libcg.Frozen); err != nil {
		return fmt.Errorf("freeze cgroup: %w", err)
	}
	return nil
}

// Thaw resumes the processes stopped by Freeze.
func (m *Manager) Thaw() error {
	if err := m.lib.Freeze(libcg.Thawed); err != nil {
		return fmt.Errorf("thaw cgroup: %w", err)
	}
	return nil
}

// Frozen reports whether the cgroup is frozen.
func (m *Manager) Frozen() (bool, error) {
	state, err := m.lib.GetFreezerState()
	if err != nil {
		return false, fmt.Errorf("read freezer state: %w", err)
	}
	return state == libcg.Frozen, nil
}

// Stats gathers the memory, cpu, pids, blkio/io and hugetlb statistics.
func (m *Manager) Stats() (*Stats, error) {
	st, err := m.lib.GetStats()
	if err != nil {
		return nil, fmt.Errorf("cgroup stats: %w", err)
	}
	return st, nil
}

// Destroy removes the cgroup directories (and any sub-cgroups). It fails
// while processes remain; directories already gone are not an error.
func (m *Manager) Destroy() error {
	if err := m.lib.Destroy(); err != nil {
		return fmt.Errorf("remove cgroup: %w", err)
	}
	return nil
}

// OOMKills returns how many processes of the cgroup the OOM killer killed.
func (m *Manager) OOMKills() (uint64, error) {
	n, err := m.lib.OOMKillCount()
	if err != nil {
		return 0, fmt.Errorf("read oom kill count: %w", err)
	}
	return n, nil
}
