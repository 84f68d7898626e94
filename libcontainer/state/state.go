// Package state keeps a container's record in the runtime's root directory:
// one directory per container holding state.json and the exec FIFO, locked
// against concurrent commands on the same container.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Status values, as the runtime-spec names them.
const (
	Creating = "creating"
	Created  = "created"
	Running  = "running"
	Paused   = "paused"
	Stopped  = "stopped"
)

const (
	stateFile   = "state.json"
	pendingFile = "pending.json"
	// FifoName is the exec FIFO the init process blocks on until start.
	FifoName = "exec.fifo"
)

// ErrNotExist is returned when no container has the id.
var ErrNotExist = errors.New("does not exist")

// State is what the runtime records about a container.
type State struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	PidStart    uint64            `json:"pidStart"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner,omitempty"`
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	Spec        *specs.Spec       `json:"spec"`
}

// Dir is a container's locked directory under the runtime root.
type Dir struct {
	Path string
	ID   string
	lock *os.File
}

// validIDChar is what runc allows in ids: letters, digits, _ + - and '.'.
func validIDChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_+-.", r)
}

// ValidateID refuses ids that could name a path outside the root.
func ValidateID(id string) error {
	if id == "" || id == "." || id == ".." || strings.IndexFunc(id, func(r rune) bool { return !validIDChar(r) }) >= 0 || len(id) > 1024 {
		return fmt.Errorf("invalid container id %q", id)
	}
	return nil
}

// Create makes and locks the directory of a new container.
func Create(root, id string) (*Dir, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("create runtime root %s: %w", root, err)
	}
	path := filepath.Join(root, id)
	if err := os.Mkdir(path, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container with id %q already exists", id)
		}
		return nil, fmt.Errorf("create state directory %s: %w", path, err)
	}
	d, err := lockDir(path, id)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return d, nil
}

// Open locks the directory of an existing container.
func Open(root, id string) (*Dir, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	d, err := lockDir(filepath.Join(root, id), id)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %q %w", id, ErrNotExist)
	}
	return d, err
}

func lockDir(path, id string) (*Dir, error) {
	f, err := os.OpenFile(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// A concurrent delete may have removed the directory while we waited.
	if _, err := os.Stat(path); err != nil {
		f.Close()
		return nil, err
	}
	return &Dir{Path: path, ID: id, lock: f}, nil
}

// Unlock releases the directory lock.
func (d *Dir) Unlock() {
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
}

// Remove deletes the directory and its content, then unlocks.
func (d *Dir) Remove() error {
	err := os.RemoveAll(d.Path)
	d.Unlock()
	if err != nil {
		return fmt.Errorf("remove state directory %s: %w", d.Path, err)
	}
	return nil
}

// FifoPath is the path of the exec FIFO.
func (d *Dir) FifoPath() string { return filepath.Join(d.Path, FifoName) }

// Save writes the state atomically.
func (d *Dir) Save(s *State) error {
	return d.writeJSON(stateFile, s)
}

// Pending is what a create records before it makes anything outside the
// state directory, so that delete can remove it if the create is killed.
type Pending struct {
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	// HostRootfs is the rootfs if the init mounts it in the caller's mount
	// namespace (a spec without a mount namespace).
	HostRootfs string `json:"hostRootfs,omitempty"`
}

// SavePending records p; Load still reports the container as creating.
func (d *Dir) SavePending(p *Pending) error {
	return d.writeJSON(pendingFile, p)
}

// LoadPending reads what a create recorded with SavePending, or nil.
func (d *Dir) LoadPending() (*Pending, error) {
	var p Pending
	if ok, err := d.readJSON(pendingFile, &p); !ok {
		return nil, err
	}
	return &p, nil
}

func (d *Dir) writeJSON(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	tmp := filepath.Join(d.Path, name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(d.Path, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// readJSON decodes the file name of the directory into v; a missing file
// is (false, nil).
func (d *Dir) readJSON(name string, v any) (bool, error) {
	data, err := os.ReadFile(filepath.Join(d.Path, name))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s of %s: %w", name, d.ID, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("parse %s of %s: %w", name, d.ID, err)
	}
	return true, nil
}

// Load reads the state; a directory without one is a container still being created
// (or whose create was killed), reported as (nil, nil).
func (d *Dir) Load() (*State, error) {
	var s State
	if ok, err := d.readJSON(stateFile, &s); !ok {
		return nil, err
	}
	return &s, nil
}

// List returns the ids of all containers under root.
func List(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read runtime root %s: %w", root, err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && ValidateID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// ProcessStart returns the start time of a process in clock ticks since boot,
// which together with the pid names one process for good.
func ProcessStart(pid int) (uint64, byte, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name may contain spaces and parentheses: fields start after the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return start, fields[0][0], nil
}

// Alive reports whether the recorded process still runs (a zombie does not).
func (s *State) Alive() bool { return Alive(s.Pid, s.PidStart) }

// Alive tells whether pid is still the process that started at start
// (clock ticks since boot): a reused pid is not, nor is a zombie nobody has
// reaped yet.
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	got, st, err := ProcessStart(pid)
	return err == nil && got == start && st != 'Z' && st != 'X'
}

// Status derives the status from the process and the FIFO; paused is for
// the caller to decide from the cgroup freezer.
func (d *Dir) Status(s *State) string {
	if s == nil {
		return Creating
	}
	if !s.Alive() {
		return Stopped
	}
	if _, err := os.Lstat(d.FifoPath()); err == nil {
		return Created
	}
	return Running
}

// OCI returns the state as the runtime-spec defines it, for hooks and the
// state command.
func (s *State) OCI(status string) *specs.State {
	var ann map[string]string
	if s.Spec != nil {
		ann = s.Spec.Annotations
	}
	return &specs.State{
		Version:     specs.Version,
		ID:          s.ID,
		Status:      specs.ContainerState(status),
		Pid:         s.Pid,
		Bundle:      s.Bundle,
		Annotations: ann,
	}
}

// View returns the directory of a container without locking it, for
// read-only listings that must not wait for a create in progress.
func View(root, id string) *Dir {
	return &Dir{Path: filepath.Join(root, id), ID: id}
}
