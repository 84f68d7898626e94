package container

import (
	"encoding/csv"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage"

	"github.com/berth-containers/berth/bundle"
	"github.com/berth-containers/berth/engine/volume"
)

// Mount types.
const (
	MountVolume = "volume"
	MountBind   = "bind"
	MountTmpfs  = "tmpfs"
)

// Mount is a volume, bind or tmpfs mount as `-v` or `--mount` asks for it.
type Mount struct {
	Type string
	// Source is the volume's name ("" for a new anonymous volume) or the
	// bind's absolute host path; tmpfs has none.
	Source   string
	Target   string
	ReadOnly bool
	// NoCopy keeps an empty volume empty: it is not filled with what the
	// image has at Target.
	NoCopy bool
	// Propagation of a bind ("" is rprivate).
	Propagation string
	// VolumeLabels and VolumeOptions are for a volume made by this mount.
	VolumeLabels  map[string]string
	VolumeOptions map[string]string
	// TmpfsSize in bytes (0: half the RAM) and TmpfsMode (0: 1777).
	TmpfsSize int64
	TmpfsMode os.FileMode
}

// propagations are the bind propagation modes.
var propagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

// ParseVolume parses docker's `-v`: "NAME:DST[:OPTS]" (a named volume,
// made on first use), "DST" (a new anonymous volume) or "/HOST:DST[:OPTS]"
// (a bind). OPTS are ro, rw, nocopy (volumes), a propagation mode (binds),
// and z, Z, consistent, cached, delegated, which change nothing here.
func ParseVolume(spec string) (Mount, error) {
	parts := strings.Split(spec, ":")
	var m Mount
	switch len(parts) {
	case 1:
		m = Mount{Type: MountVolume, Target: parts[0]}
	case 2, 3:
		m = Mount{Type: MountVolume, Source: parts[0], Target: parts[1]}
		if filepath.IsAbs(parts[0]) {
			m.Type, m.Source = MountBind, filepath.Clean(parts[0])
		} else if !volume.ValidName(parts[0]) {
			return m, fmt.Errorf("%q is not a valid volume name (only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed); a host directory needs an absolute path", parts[0])
		}
	default:
		return Mount{}, errors.New("want [SOURCE:]DESTINATION[:OPTIONS]")
	}
	if len(parts) == 3 {
		for _, opt := range strings.Split(parts[2], ",") {
			switch {
			case opt == "ro":
				m.ReadOnly = true
			case opt == "rw":
				m.ReadOnly = false
			case opt == "nocopy" && m.Type == MountVolume:
				m.NoCopy = true
			case slices.Contains(propagations, opt) && m.Type == MountBind:
				m.Propagation = opt
			case opt == "z", opt == "Z", opt == "consistent", opt == "cached", opt == "delegated":
				// SELinux labels (no SELinux here) and Docker Desktop's hints.
			default:
				return m, fmt.Errorf("invalid option %q for a %s mount", opt, m.Type)
			}
		}
	}
	return m, checkTarget(&m)
}

// ParseMount parses docker's `--mount`: comma-separated KEY=VALUE fields
// (CSV: a field may be quoted). type is volume (the default), bind or
// tmpfs; source (src), target (destination, dst), readonly (ro),
// bind-propagation, volume-nocopy, volume-label, volume-opt, volume-driver
// (local), tmpfs-size, tmpfs-mode, consistency. An error names the field.
func ParseMount(spec string) (Mount, error) {
	r := csv.NewReader(strings.NewReader(spec))
	fields, err := r.Read()
	if err != nil {
		return Mount{}, fmt.Errorf("cannot split into fields: %w", err)
	}
	m := Mount{Type: MountVolume}
	seen := map[string]string{} // a field of one type only, for the error
	for _, f := range fields {
		key, val, hasVal := strings.Cut(f, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		boolean := func() (bool, error) {
			if !hasVal {
				return true, nil
			}
			switch strings.ToLower(val) {
			case "true", "1":
				return true, nil
			case "false", "0":
				return false, nil
			}
			return false, fmt.Errorf("invalid value %q for field %q: want true or false", val, key)
		}
		needVal := func() error {
			if !hasVal || val == "" {
				return fmt.Errorf("field %q needs a value", key)
			}
			return nil
		}
		switch key {
		case "type", "source", "src", "target", "destination", "dst", "bind-propagation", "volume-label", "volume-opt",
			"volume-driver", "tmpfs-size", "tmpfs-mode", "consistency", "volume-subpath", "bind-recursive", "bind-nonrecursive":
			if err := needVal(); err != nil {
				return m, err
			}
		}
		switch key {
		case "type":
			switch val {
			case MountVolume, MountBind, MountTmpfs:
				m.Type = val
			default:
				return m, fmt.Errorf("invalid value %q for field \"type\": want volume, bind or tmpfs", val)
			}
		case "source", "src":
			m.Source = val
		case "target", "destination", "dst":
			m.Target = val
		case "readonly", "ro":
			if m.ReadOnly, err = boolean(); err != nil {
				return m, err
			}
		case "consistency":
			// Docker Desktop's hint: nothing to do.
		case "bind-propagation":
			if !slices.Contains(propagations, val) {
				return m, fmt.Errorf("invalid value %q for field %q: want %s", val, key, strings.Join(propagations, ", "))
			}
			m.Propagation, seen[key] = val, MountBind
		case "volume-nocopy":
			if m.NoCopy, err = boolean(); err != nil {
				return m, err
			}
			seen[key] = MountVolume
		case "volume-driver":
			if val != volume.Driver {
				return m, fmt.Errorf("invalid value %q for field %q: only %q is supported", val, key, volume.Driver)
			}
			seen[key] = MountVolume
		case "volume-label", "volume-opt":
			k, v, _ := strings.Cut(val, "=")
			if k == "" {
				return m, fmt.Errorf("invalid value %q for field %q: want KEY=VALUE", val, key)
			}
			target := &m.VolumeLabels
			if key == "volume-opt" {
				target = &m.VolumeOptions
			}
			if *target == nil {
				*target = map[string]string{}
			}
			(*target)[k] = v
			seen[key] = MountVolume
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil || n <= 0 {
				return m, fmt.Errorf("invalid value %q for field %q: want a size such as 64m", val, key)
			}
			m.TmpfsSize, seen[key] = n, MountTmpfs
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil || n > 0o7777 {
				return m, fmt.Errorf("invalid value %q for field %q: want an octal mode such as 1777", val, key)
			}
			m.TmpfsMode, seen[key] = os.FileMode(n), MountTmpfs
		case "volume-subpath", "bind-recursive", "bind-nonrecursive":
			return m, fmt.Errorf("field %q is not supported", key)
		default:
			return m, fmt.Errorf("unknown field %q", key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(seen)) {
		if seen[key] != m.Type {
			return m, fmt.Errorf("field %q is for %s mounts, not %s", key, seen[key], m.Type)
		}
	}
	switch m.Type {
	case MountBind:
		if m.Source == "" {
			return m, errors.New(`field "source" is required for a bind mount`)
		}
		if !filepath.IsAbs(m.Source) {
			return m, fmt.Errorf("invalid value %q for field \"source\": a bind source must be an absolute path", m.Source)
		}
		m.Source = filepath.Clean(m.Source)
	case MountVolume:
		if m.Source != "" && !volume.ValidName(m.Source) {
			return m, fmt.Errorf("invalid value %q for field \"source\": not a volume name (only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed)", m.Source)
		}
	case MountTmpfs:
		if m.Source != "" {
			return m, errors.New(`field "source" is not allowed for a tmpfs mount`)
		}
	}
	if m.Target == "" {
		return m, errors.New(`field "target" is required`)
	}
	return m, checkTarget(&m)
}

// checkTarget requires an absolute destination other than /, and cleans it.
func checkTarget(m *Mount) error {
	if !filepath.IsAbs(m.Target) {
		return fmt.Errorf("destination %q is not an absolute path", m.Target)
	}
	m.Target = filepath.Clean(m.Target)
	if m.Target == "/" {
		return errors.New("cannot mount over /")
	}
	return nil
}

// bindOptions is ":opt,opt" for a bind entry, or "".
func bindOptions(readOnly bool, propagation string) string {
	var opts []string
	if readOnly {
		opts = append(opts, "ro")
	}
	if propagation != "" {
		opts = append(opts, propagation)
	}
	if len(opts) == 0 {
		return ""
	}
	return ":" + strings.Join(opts, ",")
}

// tmpfsEntry is the bundle's "/path[:opts]" for a tmpfs mount.
func tmpfsEntry(m Mount) string {
	var opts []string
	if m.TmpfsSize > 0 {
		opts = append(opts, "size="+strconv.FormatInt(m.TmpfsSize, 10))
	}
	if m.TmpfsMode != 0 {
		opts = append(opts, "mode="+strconv.FormatUint(uint64(m.TmpfsMode), 8))
	}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	if len(opts) == 0 {
		return m.Target
	}
	return m.Target + ":" + strings.Join(opts, ",")
}

// plannedMount is a mount of the container being made.
type plannedMount struct {
	Mount
	// shared comes from --volumes-from: the volume is not filled again.
	shared bool
}

// volumePlan is what Create mounts: checked before anything is made,
// applied once the rootfs is mounted, undone if the create fails.
type volumePlan struct {
	s       storage.Store
	vs      *volume.Store
	mounts  []plannedMount
	created []string // volumes this create made
}

// store opens the volumes on first need.
func (p *volumePlan) store() (*volume.Store, error) {
	if p.vs == nil {
		vs, err := volume.Open(p.s.GraphRoot())
		if err != nil {
			return nil, err
		}
		p.vs = vs
	}
	return p.vs, nil
}

// planVolumes checks o's mounts and --volumes-from, and adds an anonymous
// volume for each of the image's VOLUMEs no other mount covers (unless
// o.Bundle.ImageVolumes says otherwise). It makes nothing.
func planVolumes(s storage.Store, o CreateOptions, img *ocispec.Image) (*volumePlan, error) {
	p := &volumePlan{s: s}
	taken := map[string]bool{}
	take := func(dest string) error {
		if taken[dest] {
			return fmt.Errorf("duplicate mount point: %s", dest)
		}
		taken[dest] = true
		return nil
	}
	for _, t := range o.Bundle.Tmpfs {
		dest, _, _ := strings.Cut(t, ":")
		if err := take(filepath.Clean(dest)); err != nil {
			return nil, err
		}
	}
	for _, b := range o.Bundle.Binds {
		if parts := strings.Split(b, ":"); len(parts) >= 2 {
			if err := take(filepath.Clean(parts[1])); err != nil {
				return nil, err
			}
		}
	}
	for _, m := range o.Mounts {
		if err := checkTarget(&m); err != nil {
			return nil, err
		}
		if err := take(m.Target); err != nil {
			return nil, err
		}
		if m.Type == MountBind {
			if err := bindSourceExists(m.Source); err != nil {
				return nil, err
			}
		}
		p.mounts = append(p.mounts, plannedMount{Mount: m})
	}
	// --volumes-from: the other containers' volumes and binds where the
	// user mounted nothing; a later one wins over an earlier one.
	shared := map[string]int{} // destination: index in p.mounts
	for _, ref := range o.VolumesFrom {
		name, mode, _ := strings.Cut(ref, ":")
		if mode != "" && mode != "ro" && mode != "rw" {
			return nil, fmt.Errorf("volumes from %q: invalid mode %q (want ro or rw)", ref, mode)
		}
		from, err := Lookup(s, name)
		if err != nil {
			return nil, fmt.Errorf("volumes from %s: %w", name, err)
		}
		for _, mv := range from.Volumes {
			if taken[mv.Destination] {
				if _, ok := shared[mv.Destination]; !ok {
					continue
				}
			}
			m := Mount{Type: mv.Type, Source: mv.Source, Target: mv.Destination, ReadOnly: mv.ReadOnly, Propagation: mv.Propagation}
			switch mode {
			case "ro":
				m.ReadOnly = true
			case "rw":
				m.ReadOnly = false
			}
			switch mv.Type {
			case MountVolume:
				m.Source = mv.Name
				vs, err := p.store()
				if err != nil {
					return nil, err
				}
				if _, err := vs.Get(mv.Name); err != nil {
					return nil, fmt.Errorf("volumes from %s: %w", name, err)
				}
			case MountBind:
				if err := bindSourceExists(mv.Source); err != nil {
					return nil, fmt.Errorf("volumes from %s: %w", name, err)
				}
			default:
				continue
			}
			pm := plannedMount{Mount: m, shared: true}
			if i, ok := shared[mv.Destination]; ok {
				p.mounts[i] = pm
				continue
			}
			taken[mv.Destination] = true
			shared[mv.Destination] = len(p.mounts)
			p.mounts = append(p.mounts, pm)
		}
	}
	// The image's VOLUMEs, as docker: anonymous volumes filled from the image.
	if o.Bundle.ImageVolumes == "" && img != nil {
		for _, v := range slices.Sorted(maps.Keys(img.Config.Volumes)) {
			dest := filepath.Join("/", v)
			if dest == "/" || taken[dest] {
				continue
			}
			taken[dest] = true
			p.mounts = append(p.mounts, plannedMount{Mount: Mount{Type: MountVolume, Target: dest}})
		}
	}
	return p, nil
}

func bindSourceExists(src string) error {
	if _, err := os.Stat(src); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("bind source path does not exist: %s", src)
		}
		return fmt.Errorf("bind source path %s: %w", src, err)
	}
	return nil
}

// apply makes or finds the volumes, fills empty ones from the mounted
// rootfs, and adds the mounts to bo (binds and tmpfs) and to c's record
// (Binds, Volumes).
func (p *volumePlan) apply(rootfs string, bo *bundle.Options, c *Container) error {
	bo.Binds = slices.Clone(bo.Binds)
	bo.Tmpfs = slices.Clone(bo.Tmpfs)
	c.Binds = slices.Clone(bo.Binds)
	c.Volumes = nil
	for _, m := range p.mounts {
		opts := bindOptions(m.ReadOnly, m.Propagation)
		switch m.Type {
		case MountTmpfs:
			bo.Tmpfs = append(bo.Tmpfs, tmpfsEntry(m.Mount))
		case MountBind:
			bind := m.Source + ":" + m.Target + opts
			bo.Binds = append(bo.Binds, bind)
			c.Binds = append(c.Binds, bind)
			c.Volumes = append(c.Volumes, MountedVolume{Type: MountBind, Source: m.Source, Destination: m.Target,
				ReadOnly: m.ReadOnly, Propagation: m.Propagation})
		case MountVolume:
			v, err := p.volume(m)
			if err != nil {
				return err
			}
			if err := v.Mount(); err != nil {
				return err
			}
			if !m.NoCopy && !m.shared {
				if err := v.CopyUp(rootfs, m.Target); err != nil {
					return err
				}
			}
			bo.Binds = append(bo.Binds, v.Path()+":"+m.Target+opts)
			// A named volume by its name, as docker's Binds; an anonymous
			// one by its path (either tells `volume rm` it is in use).
			if v.Anonymous {
				c.Binds = append(c.Binds, v.Path()+":"+m.Target+opts)
			} else {
				c.Binds = append(c.Binds, v.Name+":"+m.Target+opts)
			}
			c.Volumes = append(c.Volumes, MountedVolume{Type: MountVolume, Name: v.Name, Source: v.Path(),
				Destination: m.Target, ReadOnly: m.ReadOnly, Anonymous: v.Anonymous})
		default:
			return fmt.Errorf("mount on %s: unknown type %q", m.Target, m.Type)
		}
	}
	return nil
}

// volume finds the mount's volume, or makes it (and remembers so).
func (p *volumePlan) volume(m plannedMount) (*volume.Volume, error) {
	vs, err := p.store()
	if err != nil {
		return nil, err
	}
	if m.Source != "" {
		v, err := vs.Get(m.Source)
		if err == nil || !errors.Is(err, volume.ErrNotFound) {
			return v, err
		}
		if m.shared {
			return nil, err // removed since planVolumes
		}
	}
	v, err := vs.Create(volume.CreateOptions{Name: m.Source, Labels: m.VolumeLabels, Options: m.VolumeOptions})
	if err != nil {
		return nil, err
	}
	p.created = append(p.created, v.Name)
	return v, nil
}

// undo removes the volumes this create made (unless another container
// took a named one up meanwhile).
func (p *volumePlan) undo() {
	if p == nil || p.vs == nil || len(p.created) == 0 {
		return
	}
	var inUse func(string) []string
	if users, err := volumeUsers(p.s, ""); err == nil {
		inUse = p.vs.InUse(users)
	}
	for _, name := range slices.Backward(p.created) {
		_ = p.vs.Remove(name, true, inUse)
	}
	p.created = nil
}

// VolumesInUse tells, for a volume name, which containers use it.
func VolumesInUse(s storage.Store, vs *volume.Store) (func(name string) []string, error) {
	users, err := volumeUsers(s, "")
	if err != nil {
		return nil, err
	}
	return vs.InUse(users), nil
}

// volumeUsers are berth's containers, but except, as the volumes see them.
func volumeUsers(s storage.Store, except string) ([]volume.User, error) {
	list, err := List(s)
	if err != nil {
		return nil, err
	}
	users := make([]volume.User, 0, len(list))
	for _, c := range list {
		if c.ID != except {
			users = append(users, volume.User{Name: c.Name, Binds: c.Binds})
		}
	}
	return users, nil
}

// standaloneMounts adds o's bind and tmpfs mounts to o.Bundle, for a bundle
// berth keeps no record of (WriteBundle): volumes need berth's.
func standaloneMounts(o *CreateOptions) error {
	if len(o.VolumesFrom) > 0 {
		return errors.New("bundle: --volumes-from needs a container berth runs")
	}
	o.Bundle.Binds = slices.Clone(o.Bundle.Binds)
	o.Bundle.Tmpfs = slices.Clone(o.Bundle.Tmpfs)
	for _, m := range o.Mounts {
		switch m.Type {
		case MountBind:
			if err := bindSourceExists(m.Source); err != nil {
				return err
			}
			o.Bundle.Binds = append(o.Bundle.Binds, m.Source+":"+m.Target+bindOptions(m.ReadOnly, m.Propagation))
		case MountTmpfs:
			o.Bundle.Tmpfs = append(o.Bundle.Tmpfs, tmpfsEntry(m))
		default:
			return fmt.Errorf("bundle: a volume on %s needs a container berth runs: use a bind mount", m.Target)
		}
	}
	o.Mounts = nil
	return nil
}

// removeVolumes removes c's anonymous volumes that no other container
// uses (c is gone from the store already); named volumes stay.
func removeVolumes(s storage.Store, c *Container) error {
	var names []string
	for _, mv := range c.Volumes {
		if mv.Type == MountVolume && mv.Name != "" && !slices.Contains(names, mv.Name) {
			names = append(names, mv.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	vs, err := volume.Open(s.GraphRoot())
	if err != nil {
		return err
	}
	users, err := volumeUsers(s, c.ID)
	if err != nil {
		return err
	}
	inUse := vs.InUse(users)
	var errs []error
	for _, name := range names {
		v, err := vs.Get(name)
		if errors.Is(err, volume.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !v.Anonymous || len(inUse(name)) > 0 {
			continue // named, or shared with --volumes-from: kept, as docker
		}
		if err := vs.Remove(name, true, inUse); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
