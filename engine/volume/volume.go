// Package volume keeps berth's named volumes, as docker's "local" driver
// does: one directory per volume under <storage root>/volumes, holding the
// volume's data in _data (what containers bind-mount) and its record in
// volume.json.
//
// A volume is used by a container whose binds ("SRC:DST[:opts]") name it as
// SRC, by name or by a path under its directory; the caller works that out
// (see InUse) and passes it to Remove, Prune and List, since containers are
// not this package's business.
//
// For a container that mounts a volume, the caller:
//
//  1. gets it with Get, or makes it with Create (docker creates a named
//     volume on first use; CreateOptions{Anonymous: true} and no name for
//     `-v /path` or an image's VOLUME);
//  2. calls Mount (a no-op unless the volume was created with --opt
//     type/device/o: then it mounts them on Path, once);
//  3. after the container's rootfs is mounted and before the container
//     starts, calls CopyUp(rootfs, destination) so that an empty volume is
//     filled with what the image has at the destination (unless the user
//     asked for nocopy);
//  4. bind-mounts Path() at the destination, and keeps the bind as
//     "NAME:DST[:opts]" (or Path():DST) in the container's Binds, which is
//     how Remove and Prune see the volume is in use.
//
// Docker removes a container's anonymous volumes with `rm -v` and `run
// --rm`: the caller calls Remove for those (Volume.Anonymous).
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Driver is the only driver: volumes are directories on the host.
const Driver = "local"

// Files in a volume's directory.
const (
	dataDir    = "_data"
	recordFile = "volume.json"
	lockName   = "lock"
	storeLock  = ".lock" // in the store's root; no volume name starts with "."
)

// ErrNotFound is returned (wrapped) for a volume that does not exist.
var ErrNotFound = errors.New("no such volume")

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidName reports whether name may name a volume. In a bind "SRC:DST",
// a SRC that is not an absolute path is a volume name, as in docker.
func ValidName(name string) bool { return validName.MatchString(name) }

// Store is the volumes of one storage root.
type Store struct {
	root string
}

// Volume is a volume's record. Its fields are what volume.json holds.
type Volume struct {
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	CreatedAt time.Time         `json:"created"`
	// Anonymous volumes were made without a name (`-v /path`, an image's
	// VOLUME); prune removes only those unless asked for all.
	Anonymous bool `json:"anonymous"`
	// CopiedUp is set once CopyUp filled the volume from an image: it is
	// never filled again, even when emptied since.
	CopiedUp bool `json:"copied_up,omitempty"`

	dir string
}

// CreateOptions are `volume create`'s inputs.
type CreateOptions struct {
	// Name is empty for a new anonymous volume with a random name.
	Name   string
	Labels map[string]string
	// Options are the local driver's: type, device and o, as for
	// mount(8) (type=tmpfs,device=tmpfs,o=size=64m); they are mounted on
	// the volume's Path by Mount.
	Options   map[string]string
	Anonymous bool
}

// Open returns the volumes kept under storageRoot (in storageRoot/volumes),
// making the directory if needed.
func Open(storageRoot string) (*Store, error) {
	if storageRoot == "" {
		return nil, errors.New("open volumes: no storage root")
	}
	root := filepath.Join(storageRoot, "volumes")
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("open volumes: %w", err)
	}
	return &Store{root: root}, nil
}

// Root is the directory holding the volumes.
func (s *Store) Root() string { return s.root }

// Path is the volume's data directory: what containers bind-mount, docker's
// Mountpoint.
func (v *Volume) Path() string { return filepath.Join(v.dir, dataDir) }

// Create makes a volume. Creating an existing volume returns it, as docker
// does, unless the options differ (labels are those it was made with).
func (s *Store) Create(o CreateOptions) (*Volume, error) {
	if o.Name == "" {
		o.Name, o.Anonymous = randomName(), true
	} else if !ValidName(o.Name) {
		return nil, fmt.Errorf("invalid volume name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", o.Name)
	}
	for k := range o.Labels {
		if k == "" {
			return nil, fmt.Errorf("create volume %s: empty label name", o.Name)
		}
	}
	if _, err := parseOptions(o.Options); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	unlock, err := lockPath(filepath.Join(s.root, storeLock))
	if err != nil {
		return nil, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	defer unlock()

	if v, err := s.get(o.Name); err == nil {
		if !maps.Equal(v.Options, o.Options) && (len(v.Options) > 0 || len(o.Options) > 0) {
			return nil, fmt.Errorf("volume %s already exists with other options (%s)", o.Name, optionString(v.Options))
		}
		return v, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	v := &Volume{Name: o.Name, Driver: Driver, Labels: cloneMap(o.Labels), Options: cloneMap(o.Options),
		CreatedAt: time.Now().UTC().Truncate(time.Second), Anonymous: o.Anonymous}
	// Made aside and renamed into place: a volume is whole or absent.
	tmp, err := os.MkdirTemp(s.root, ".creating-")
	if err != nil {
		return nil, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	defer os.RemoveAll(tmp) // gone after the rename
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	if err := os.Mkdir(filepath.Join(tmp, dataDir), 0o755); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	v.dir = tmp
	if err := v.save(); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	v.dir = filepath.Join(s.root, o.Name)
	if err := os.Rename(tmp, v.dir); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", o.Name, err)
	}
	return v, nil
}

// Get returns the volume called name.
func (s *Store) Get(name string) (*Volume, error) { return s.get(name) }

func (s *Store) get(name string) (*Volume, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	dir := filepath.Join(s.root, name)
	data, err := os.ReadFile(filepath.Join(dir, recordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	v := &Volume{}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("volume %s: parse %s: %w", name, recordFile, err)
	}
	if v.Name != name {
		return nil, fmt.Errorf("volume %s: %s names %q", name, recordFile, v.Name)
	}
	v.dir = dir
	return v, nil
}

// save writes the record in one step.
func (v *Volume) save() error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(v.dir, recordFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(v.dir, recordFile))
}

// all returns every volume, by name.
func (s *Store) all() ([]*Volume, error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []*Volume
	for _, e := range entries {
		if !e.IsDir() || !ValidName(e.Name()) {
			continue // .lock, volumes being made or removed
		}
		v, err := s.get(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// List returns the volumes matching every filter, by name. Filters are
// docker's: name=SUBSTRING, label=KEY or label=KEY=VALUE, label!=KEY[=VALUE],
// driver=local, dangling=true|false (not used by any container); a filter
// key given twice matches either value. inUse (may be nil without a
// dangling filter) names the containers using a volume.
func (s *Store) List(filters []string, inUse func(name string) []string) ([]*Volume, error) {
	f, err := parseFilters(filters, "name", "label", "label!", "driver", "dangling")
	if err != nil {
		return nil, err
	}
	if f.has("dangling") && inUse == nil {
		return nil, errors.New("list volumes: the dangling filter needs the containers")
	}
	all, err := s.all()
	if err != nil {
		return nil, err
	}
	var out []*Volume
	for _, v := range all {
		ok, err := f.match(v, inUse)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, v)
		}
	}
	return out, nil
}

// Remove removes a volume and its data. A volume in use by a container is
// never removed, even with force (as docker); force makes a missing volume
// no error.
func (s *Store) Remove(name string, force bool, inUse func(name string) []string) error {
	unlock, err := lockPath(filepath.Join(s.root, storeLock))
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	defer unlock()
	v, err := s.get(name)
	if err != nil {
		if force && errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	if users := usersOf(inUse, name); len(users) > 0 {
		return inUseError(name, users)
	}
	_, err = s.remove(v)
	return err
}

func inUseError(name string, users []string) error {
	if len(users) == 1 {
		return fmt.Errorf("volume %s is in use by container %s", name, users[0])
	}
	return fmt.Errorf("volume %s is in use by containers %s", name, strings.Join(users, ", "))
}

func usersOf(inUse func(string) []string, name string) []string {
	if inUse == nil {
		return nil
	}
	return inUse(name)
}

// remove deletes v, under the store's lock; it returns the bytes freed.
func (s *Store) remove(v *Volume) (int64, error) {
	unlock, err := lockPath(filepath.Join(v.dir, lockName)) // wait for a CopyUp or Import
	if err != nil {
		return 0, fmt.Errorf("remove volume %s: %w", v.Name, err)
	}
	defer unlock()
	if err := v.unmount(); err != nil {
		return 0, fmt.Errorf("remove volume %s: %w", v.Name, err)
	}
	size, _ := dirSize(v.Path())
	// Out of the way first: a half-removed volume is never seen.
	gone, err := os.MkdirTemp(s.root, ".removing-")
	if err != nil {
		return 0, fmt.Errorf("remove volume %s: %w", v.Name, err)
	}
	target := filepath.Join(gone, v.Name)
	if err := os.Rename(v.dir, target); err != nil {
		_ = os.Remove(gone)
		return 0, fmt.Errorf("remove volume %s: %w", v.Name, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return size, fmt.Errorf("remove volume %s: %w", v.Name, err)
	}
	return size, nil
}

// Prune removes the volumes no container uses: the anonymous ones, or all
// with the filter all=true. Filters label=KEY[=VALUE] and label!=KEY[=VALUE]
// narrow the choice, as in docker. It returns the names removed and the
// bytes freed; on an error, what was removed so far.
func (s *Store) Prune(inUse func(name string) []string, filters ...string) (removed []string, freed int64, err error) {
	f, err := parseFilters(filters, "all", "label", "label!")
	if err != nil {
		return nil, 0, err
	}
	all := false
	if vals := f["all"]; len(vals) > 0 {
		if all, err = parseBool("all", vals[len(vals)-1]); err != nil {
			return nil, 0, err
		}
	}
	delete(f, "all")
	unlock, err := lockPath(filepath.Join(s.root, storeLock))
	if err != nil {
		return nil, 0, fmt.Errorf("prune volumes: %w", err)
	}
	defer unlock()
	vols, err := s.all()
	if err != nil {
		return nil, 0, err
	}
	for _, v := range vols {
		if !all && !v.Anonymous {
			continue
		}
		if ok, _ := f.match(v, nil); !ok {
			continue
		}
		if len(usersOf(inUse, v.Name)) > 0 {
			continue
		}
		n, err := s.remove(v)
		freed += n
		if err != nil {
			return removed, freed, err
		}
		removed = append(removed, v.Name)
	}
	return removed, freed, nil
}

// Size is the bytes of the volume's files (hard links counted once).
func (s *Store) Size(name string) (int64, error) {
	v, err := s.get(name)
	if err != nil {
		return 0, err
	}
	n, err := dirSize(v.Path())
	if err != nil {
		return 0, fmt.Errorf("volume %s: size: %w", name, err)
	}
	return n, nil
}

// dirSize walks dir without following symbolic links out of it.
func dirSize(dir string) (int64, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed by a running container meanwhile
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*unix.Stat_t); ok && st.Nlink > 1 {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += fi.Size()
		return nil
	})
	return total, err
}

// BindSource is the SRC of a bind "SRC:DST[:opts]".
func BindSource(bind string) string {
	src, _, _ := strings.Cut(bind, ":")
	return src
}

// User is a container as volumes see it: its name and its binds.
type User struct {
	Name  string
	Binds []string
}

// InUse returns what Remove, Prune and List take: for a volume name, the
// containers (of users) whose binds name that volume as SRC, or a path in
// its directory.
func (s *Store) InUse(users []User) func(name string) []string {
	by := map[string][]string{}
	for _, u := range users {
		for _, b := range u.Binds {
			if name := s.sourceVolume(BindSource(b)); name != "" && !slices.Contains(by[name], u.Name) {
				by[name] = append(by[name], u.Name)
			}
		}
	}
	return func(name string) []string { return by[name] }
}

// sourceVolume is the volume a bind source names, or "".
func (s *Store) sourceVolume(src string) string {
	if !filepath.IsAbs(src) {
		if ValidName(src) {
			return src
		}
		return ""
	}
	rel, err := filepath.Rel(s.root, filepath.Clean(src))
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return ""
	}
	name, _, _ := strings.Cut(rel, "/")
	if !ValidName(name) {
		return ""
	}
	return name
}

// lockPath takes an exclusive lock on the file path until the returned
// function is called.
func lockPath(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

func randomName() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// filters are parsed KEY=VALUE filters.
type filters map[string][]string

func parseFilters(list []string, keys ...string) (filters, error) {
	f := filters{}
	for _, s := range list {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("invalid filter %q: want KEY=VALUE", s)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if !slices.Contains(keys, k) {
			return nil, fmt.Errorf("invalid filter %q: supported are %s", s, strings.Join(keys, ", "))
		}
		if k == "dangling" || k == "all" {
			if _, err := parseBool(k, v); err != nil {
				return nil, err
			}
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

func (f filters) has(k string) bool { return len(f[k]) > 0 }

func parseBool(k, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("invalid filter %s=%q: want true or false", k, v)
}

// match: every key must match, by any of its values (label: all of them,
// as docker).
func (f filters) match(v *Volume, inUse func(string) []string) (bool, error) {
	if vals := f["name"]; len(vals) > 0 && !slices.ContainsFunc(vals, func(s string) bool { return strings.Contains(v.Name, s) }) {
		return false, nil
	}
	if vals := f["driver"]; len(vals) > 0 && !slices.Contains(vals, v.Driver) {
		return false, nil
	}
	for _, l := range f["label"] {
		if !hasLabel(v.Labels, l) {
			return false, nil
		}
	}
	for _, l := range f["label!"] {
		if hasLabel(v.Labels, l) {
			return false, nil
		}
	}
	if vals := f["dangling"]; len(vals) > 0 {
		dangling := len(usersOf(inUse, v.Name)) == 0
		ok := false
		for _, s := range vals {
			want, err := parseBool("dangling", s)
			if err != nil {
				return false, err
			}
			ok = ok || want == dangling
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// hasLabel matches "KEY" or "KEY=VALUE".
func hasLabel(labels map[string]string, l string) bool {
	k, want, withValue := strings.Cut(l, "=")
	got, ok := labels[k]
	return ok && (!withValue || got == want)
}
