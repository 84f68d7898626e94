package volume

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/libcontainer/rootfs"
)

// mountSpec is what a volume's options mount on its data directory.
type mountSpec struct {
	typ, device string
	flags       uintptr
	data        string
}

// optionKeys are the local driver's options.
var optionKeys = []string{"type", "device", "o"}

// parseOptions checks a volume's options; nil means nothing to mount.
func parseOptions(opts map[string]string) (*mountSpec, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(optionKeys, k) {
			return nil, fmt.Errorf("unknown option %q (the local driver takes type, device and o)", k)
		}
	}
	m := &mountSpec{typ: opts["type"], device: opts["device"]}
	switch {
	case m.typ == "":
		return nil, errors.New(`option "type" is required with device or o (e.g. type=tmpfs,device=tmpfs)`)
	case m.device == "":
		return nil, errors.New(`option "device" is required with type (e.g. device=tmpfs)`)
	}
	var words []string
	for _, w := range strings.Split(opts["o"], ",") {
		if w != "" {
			words = append(words, w)
		}
	}
	// The o= words are read as the runtime reads a mount's options.
	m.flags, m.data = rootfs.MountFlags(words)
	if m.flags&unix.MS_BIND != 0 && !filepath.IsAbs(m.device) {
		return nil, fmt.Errorf("bind device %q is not an absolute path", m.device)
	}
	return m, nil
}

// optionString shows options as `--opt` would take them.
func optionString(opts map[string]string) string {
	if len(opts) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + opts[k]
	}
	return strings.Join(parts, ",")
}

// Mount mounts the volume's options (type, device, o) on its Path, unless
// mounted already; for a volume without options it does nothing. The
// mount stays until the volume is removed (or the host reboots: a tmpfs
// volume is then empty again, as docker's).
func (v *Volume) Mount() error {
	m, err := parseOptions(v.Options)
	if err != nil || m == nil {
		if err != nil {
			err = fmt.Errorf("mount volume %s: %w", v.Name, err)
		}
		return err
	}
	unlock, err := lockPath(filepath.Join(v.dir, lockName))
	if err != nil {
		return fmt.Errorf("mount volume %s: %w", v.Name, err)
	}
	defer unlock()
	return v.mountLocked(m)
}

func (v *Volume) mountLocked(m *mountSpec) error {
	mounted, err := mountinfo.Mounted(v.Path())
	if err != nil {
		return fmt.Errorf("mount volume %s: %w", v.Name, err)
	}
	if mounted {
		return nil
	}
	flags := m.flags
	if flags&unix.MS_BIND != 0 {
		// A bind takes no data; its other flags need a remount.
		if err := unix.Mount(m.device, v.Path(), "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return fmt.Errorf("mount volume %s: bind %s: %w", v.Name, m.device, err)
		}
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
			if err := unix.Mount("", v.Path(), "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
				_ = unix.Unmount(v.Path(), unix.MNT_DETACH)
				return fmt.Errorf("mount volume %s: remount: %w", v.Name, err)
			}
		}
		return nil
	}
	if err := unix.Mount(m.device, v.Path(), m.typ, flags, m.data); err != nil {
		return fmt.Errorf("mount volume %s: %s on %s (o=%s): %w", v.Name, m.typ, m.device, v.Options["o"], err)
	}
	return nil
}

// unmount undoes Mount; the caller holds the volume's lock.
func (v *Volume) unmount() error {
	for range 8 { // mounted over itself by concurrent Mounts: peel them all
		mounted, err := mountinfo.Mounted(v.Path())
		if err != nil {
			return err
		}
		if !mounted {
			return nil
		}
		if err := unix.Unmount(v.Path(), 0); err != nil {
			return fmt.Errorf("unmount %s: %w", v.Path(), err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted", v.Path())
}
