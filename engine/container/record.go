// Package container keeps berth's containers: their records in
// containers/storage, their bundles and state files, and their lifecycle
// through an OCI runtime and a monitor process per running container.
package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.podman.io/storage"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/network"
)

// Statuses, as docker names them.
const (
	Created = "created"
	Running = "running"
	Paused  = "paused"
	Exited  = "exited"
)

// Config is what a container was made with; it does not change after
// create (but for the name).
type Config struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Image   string    `json:"image"` // as the user named it
	ImageID string    `json:"image_id"`
	Created time.Time `json:"created"`
	// Path and Args are the process's command, split as docker shows it.
	Path string   `json:"path"`
	Args []string `json:"args"`

	Runtime     string `json:"runtime"`
	RuntimeRoot string `json:"runtime_root"`

	Tty         bool          `json:"tty"`
	OpenStdin   bool          `json:"open_stdin"`
	AutoRemove  bool          `json:"auto_remove"`
	Restart     RestartPolicy `json:"restart"`
	StopSignal  string        `json:"stop_signal"`
	StopTimeout int           `json:"stop_timeout"`
	Log         LogConfig     `json:"log"`

	// As given to create, for inspect.
	Hostname   string            `json:"hostname"`
	User       string            `json:"user"`
	Env        []string          `json:"env"`
	WorkingDir string            `json:"working_dir"`
	Entrypoint []string          `json:"entrypoint"`
	Cmd        []string          `json:"cmd"`
	Labels     map[string]string `json:"labels"`
	Network    string            `json:"network"`
	// Networks are the container's attachments, set up at each start by
	// the network manager whose directories follow.
	Networks   []network.Attachment `json:"networks,omitempty"`
	NetConfDir string               `json:"net_conf_dir,omitempty"`
	NetRunDir  string               `json:"net_run_dir,omitempty"`
	Binds      []string             `json:"binds"`
	Ports      []string             `json:"ports"`
	CgroupPath string               `json:"cgroup_path"`
	// Volumes are the container's volume and bind mounts (not tmpfs):
	// what --volumes-from copies and rm -v looks at.
	Volumes []MountedVolume `json:"volumes,omitempty"`
	// Healthcheck is what the monitor probes (the image's merged with
	// the user's); nil or NONE: none.
	Healthcheck *Healthcheck `json:"healthcheck,omitempty"`
}

// MountedVolume is a volume or bind mount a container was made with.
type MountedVolume struct {
	Type        string `json:"type"`           // MountVolume or MountBind
	Name        string `json:"name,omitempty"` // the volume's
	Source      string `json:"source"`         // the host path
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"read_only,omitempty"`
	Propagation string `json:"propagation,omitempty"` // a bind's
	// Anonymous volumes were made for this container (-v /path, an
	// image's VOLUME): rm -v and --rm remove them.
	Anonymous bool `json:"anonymous,omitempty"`
}

// RestartPolicy is docker's --restart.
type RestartPolicy struct {
	Name       string `json:"name"` // "no", "on-failure", "always", "unless-stopped"
	MaxRetries int    `json:"max_retries"`
}

// LogConfig says how the monitor writes the container's output.
type LogConfig struct {
	Driver   string `json:"driver"` // "k8s-file", "json-file" or "none"
	MaxSize  int64  `json:"max_size"`
	MaxFiles int    `json:"max_files"`
}

// State changes through the container's life; the monitor writes most of it.
type State struct {
	Status       string    `json:"status"`
	Pid          int       `json:"pid,omitempty"`
	MonitorPid   int       `json:"monitor_pid,omitempty"`
	MonitorStart uint64    `json:"monitor_start,omitempty"` // /proc start time: pid reuse guard
	ExitCode     int       `json:"exit_code"`
	OOMKilled    bool      `json:"oom_killed,omitempty"`
	Error        string    `json:"error,omitempty"`
	StartedAt    time.Time `json:"started_at"`
	FinishedAt   time.Time `json:"finished_at"`
	RestartCount int       `json:"restart_count"`
	// Stopped is set by stop, kill and rm: the monitor must not restart.
	Stopped bool `json:"stopped,omitempty"`
	// Restarting: the monitor has decided to run the container again and
	// has not yet (docker's State.Restarting). Stopped and Restarting are
	// set under the state's lock, so a stop or rm and a restart never both
	// win.
	Restarting bool `json:"restarting,omitempty"`
	// IPs maps networks to the container's address while it runs;
	// Published are its published ports, host ports resolved.
	IPs       map[string]string     `json:"ips,omitempty"`
	Published []network.PortMapping `json:"published,omitempty"`
	// Health is the health check's state while it has one.
	Health *Health `json:"health,omitempty"`
}

// Container is a record and where its files live.
type Container struct {
	Config
	State
	// Dir holds config.json (the bundle), berth.json, state.json, the log.
	Dir string
	// RunDir holds sockets and pid files (on a tmpfs: gone at reboot).
	RunDir string
	// LayerID is the container's writable layer in the store.
	LayerID string
	// removed: WaitExit saw the container's monitor remove it (--rm).
	removed bool
}

// Files in Dir and RunDir.
const (
	configFile = "berth.json"
	stateFile  = "state.json"
	lockFile   = "lock"
	LogFile    = "ctr.log"
	AttachSock = "attach.sock"
	PidFile    = "pid"
)

// LogPath is the container's log file.
func (c *Container) LogPath() string { return filepath.Join(c.Dir, LogFile) }

// AttachPath is the monitor's attach socket.
func (c *Container) AttachPath() string { return filepath.Join(c.RunDir, AttachSock) }

// Runtime is the container's runtime.
func (c *Container) Runtime() Runtime { return Runtime{Path: c.Config.Runtime, Root: c.RuntimeRoot} }

// load reads a container's record from the store. Its directories are
// where the store's ContainerDirectory and ContainerRunDirectory put them,
// found without those calls: each takes the store's lock, and a list of
// hundreds of containers spent most of its time there.
func load(s storage.Store, sc *storage.Container) (*Container, error) {
	middle := s.GraphDriverName() + "-containers"
	dir := filepath.Join(s.GraphRoot(), middle, sc.ID, "userdata")
	runDir := filepath.Join(s.RunRoot(), middle, sc.ID, "userdata")
	// The run root is a tmpfs: after a reboot the directory is made again.
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, fmt.Errorf("container %s: %w", short(sc.ID), err)
	}
	c, err := Open(dir, runDir)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", short(sc.ID), err)
	}
	c.LayerID = sc.LayerID
	return c, nil
}

// Open reads a container's record from its directories, without the
// store: the monitor starts faster so.
func Open(dir, runDir string) (*Container, error) {
	c := &Container{Dir: dir, RunDir: runDir}
	if err := readJSON(filepath.Join(dir, configFile), &c.Config); err != nil {
		return nil, err
	}
	if err := readJSON(filepath.Join(dir, stateFile), &c.State); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload rereads the state.
func (c *Container) Reload() error {
	return readJSON(filepath.Join(c.Dir, stateFile), &c.State)
}

func readJSON(path string, v any) error {
	data, err := readFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

// readFile is os.ReadFile in four system calls instead of eight (no
// poller registration, no fstat): listing containers reads two small
// files per container, and system calls are what that time is made of.
func readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	data := make([]byte, 0, 4096)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := unix.Read(fd, data[len(data):cap(data)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return data, nil
		}
		data = data[:len(data)+n]
	}
}

// writeJSON replaces path in one step, so readers never see half a file.
func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// lock takes the container's lock: one state change at a time.
func (c *Container) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(c.Dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock container %s: %w", short(c.ID), err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock container %s: %w", short(c.ID), err)
	}
	return func() { f.Close() }, nil
}

// Update changes the state under the lock, from what is on disk.
func (c *Container) Update(fn func(*State) error) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := c.Reload(); err != nil {
		return err
	}
	if err := fn(&c.State); err != nil {
		return err
	}
	return writeJSON(filepath.Join(c.Dir, stateFile), &c.State)
}

// ErrNotFound is returned (wrapped) when no container matches.
var ErrNotFound = errors.New("no such container")

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
