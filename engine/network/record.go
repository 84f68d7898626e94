package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/slirp"
)

// lock takes the exclusive flock on runDir/network.lock that every change
// holds. flock locks belong to the open file, so goroutines of one process
// exclude each other as other processes do.
func (m *Manager) lock() (func(), error) {
	path := filepath.Join(m.runDir, "network.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("network lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("network lock %s: %w", path, err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// Attachment states in a record.
const (
	stateAdding = "adding" // ADD started (or failed, or berth died during it)
	stateReady  = "ready"
)

// record is runDir/attachments/<containerID>.json: everything Teardown,
// Disconnect, Peers and Repair need.
type record struct {
	Version       int                 `json:"version"`
	ContainerID   string              `json:"container_id"`
	ContainerName string              `json:"container_name,omitempty"`
	NetnsPath     string              `json:"netns_path"`
	Created       time.Time           `json:"created"`
	Attachments   []*attachmentRecord `json:"attachments"`
}

type attachmentRecord struct {
	Network string   `json:"network"`
	IfName  string   `json:"interface"`
	Aliases []string `json:"aliases,omitempty"`
	// IP asked for (Attachment.IP) and the one given
	RequestedIP string `json:"requested_ip,omitempty"`
	IP          string `json:"ip,omitempty"`
	PrefixLen   int    `json:"prefix_len,omitempty"`
	Gateway     string `json:"gateway,omitempty"`
	MAC         string `json:"mac,omitempty"`
	// Ports published through this attachment, host ports resolved
	Ports []PortMapping `json:"ports,omitempty"`
	State string        `json:"state"`
	// The CNI invocation: the conflist as used (host-local's dataDir
	// set), CNI_ARGS, runtimeConfig by capability, and ADD's result
	Config         json.RawMessage `json:"cni_config"`
	Args           [][2]string     `json:"cni_args,omitempty"`
	CapabilityArgs map[string]any  `json:"cni_capability_args,omitempty"`
	Result         json.RawMessage `json:"cni_result,omitempty"`
	// Slirp is the slirp4netns of a SlirpNetwork attachment (no CNI).
	Slirp *slirp.Process `json:"slirp,omitempty"`
}

func (r *record) displayName() string {
	if r.ContainerName != "" {
		return r.ContainerName
	}
	return shortID(r.ContainerID)
}

func (r *record) attachment(network string) *attachmentRecord {
	for _, a := range r.Attachments {
		if a.Network == network {
			return a
		}
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

var idRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func validID(id string) error {
	if id == "" || len(id) > 200 || !idRE.MatchString(id) {
		return fmt.Errorf("invalid container ID %q", id)
	}
	return nil
}

func (m *Manager) recordPath(id string) string {
	return filepath.Join(m.recordDir(), id+".json")
}

func (m *Manager) netnsPath(id string) string {
	return filepath.Join(m.netnsDir(), id)
}

// readRecord returns nil, nil when the container has no record.
func (m *Manager) readRecord(id string) (*record, error) {
	data, err := os.ReadFile(m.recordPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("network record of %s: %w", shortID(id), err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("network record %s: %w", m.recordPath(id), err)
	}
	if r.ContainerID != id {
		return nil, fmt.Errorf("network record %s: belongs to %q", m.recordPath(id), r.ContainerID)
	}
	return &r, nil
}

func (m *Manager) writeRecord(r *record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("network record of %s: %w", r.displayName(), err)
	}
	if err := writeFileAtomic(m.recordPath(r.ContainerID), data, 0o600); err != nil {
		return fmt.Errorf("network record of %s: %w", r.displayName(), err)
	}
	return nil
}

func (m *Manager) removeRecord(id string) error {
	if err := removeFile(m.recordPath(id)); err != nil {
		return fmt.Errorf("network record of %s: %w", shortID(id), err)
	}
	return nil
}

// records reads every record, by container ID. Unreadable ones are skipped.
func (m *Manager) records() ([]*record, error) {
	entries, err := os.ReadDir(m.recordDir())
	if err != nil {
		return nil, fmt.Errorf("network records: %w", err)
	}
	var out []*record
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(e.Name(), ".") || validID(id) != nil {
			continue
		}
		r, err := m.readRecord(id)
		if err != nil || r == nil {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerID < out[j].ContainerID })
	return out, nil
}

// NetnsPath is where Setup mounts a container's network namespace: known
// before Setup, so the container's config can name it at create.
func (m *Manager) NetnsPath(containerID string) string { return m.netnsPath(containerID) }
