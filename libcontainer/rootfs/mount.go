// Package rootfs builds a container's filesystem view inside its new mount
// namespace: the spec's mounts, /dev, pivot_root, and the masked and
// read-only paths. Every target inside the rootfs is resolved without leaving
// it (securejoin's pathrs-lite) and mounted through its file descriptor, so a
// symlink swapped in by the container's image cannot redirect a mount.
package rootfs

import (
	"errors"
	"fmt"
	"github.com/moby/sys/mountinfo"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Options are what the caller decides beyond the spec.
type Options struct {
	UserNS      bool              // in a new user namespace: devices are bind-mounted, not made
	CgroupNS    bool              // in a new cgroup namespace: cgroup mounts are fresh
	CgroupPaths map[string]string // the container's cgroups, for cgroup mounts without cgroupns
	CgroupV2    bool
	// HostMountNS: the spec asks for no mount namespace, so mounts are made
	// in the caller's namespace, under the rootfs only, and Unmount removes
	// them at delete.
	HostMountNS bool
}

// Prepare mounts everything the spec asks for under the rootfs. It runs in the
// container's mount namespace before pivot_root.
func Prepare(s *specs.Spec, o Options) error {
	rootfs := s.Root.Path
	if !o.HostMountNS {
		if err := rootPropagation(s); err != nil {
			return err
		}
	}
	// pivot_root needs the new root to be a mount point under a non-shared
	// parent, and a read-only root needs a mount of its own to remount.
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind mount rootfs %s: %w", rootfs, err)
	}
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs %s: %w", rootfs, err)
	}
	defer root.Close()

	closeLateReadonly()
	devBound := false
	for _, m := range s.Mounts {
		if err := mountOne(root, m, o); err != nil {
			return err
		}
		if filepath.Clean("/"+m.Destination) == "/dev" && isBind(m) {
			devBound = true
		}
	}
	if !devBound {
		if err := setupDev(root, s.Linux.Devices, o.UserNS); err != nil {
			return err
		}
	} else if err := makeDevices(root, s.Linux.Devices, o.UserNS); err != nil {
		return err
	}
	return nil
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// target creates the destination inside root (a directory, or a file when
// isFile) and returns an O_PATH handle to it.
func target(root *os.File, dest string, isFile bool) (*os.File, error) {
	dest = filepath.Clean("/" + dest)
	if f, err := pathrs.OpenatInRoot(root, dest); err == nil {
		return f, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("resolve %s in rootfs: %w", dest, err)
	}
	if !isFile {
		f, err := pathrs.MkdirAllHandle(root, dest, 0o755)
		if err != nil {
			return nil, fmt.Errorf("create mount point %s: %w", dest, err)
		}
		return f, nil
	}
	parent, err := pathrs.MkdirAllHandle(root, filepath.Dir(dest), 0o755)
	if err != nil {
		return nil, fmt.Errorf("create parent of mount point %s: %w", dest, err)
	}
	defer parent.Close()
	// O_PATH would ignore O_CREAT: create with a plain read-only open.
	fd, err := unix.Openat(int(parent.Fd()), filepath.Base(dest), unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create mount point %s: %w", dest, err)
	}
	return os.NewFile(uintptr(fd), dest), nil
}

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// specMount is what a spec mount asks for, read before anything is made.
type specMount struct {
	opts   mountOptions // read-only left off when deferred
	typ    string       // "bind" for every bind mount
	isFile bool         // a bind mount of a file: the mount point is a file
	// late is 1 when Finish makes the mount read-only, 2 recursively (rro).
	late int
}

func readMount(m specs.Mount) (specMount, error) {
	opts, err := parseOptions(m.Options)
	if err != nil {
		return specMount{}, fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	sm := specMount{opts: opts, typ: m.Type}
	if isBind(m) {
		sm.opts.flags |= unix.MS_BIND
		sm.typ = "bind"
	}
	if sm.typ == "bind" {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return specMount{}, fmt.Errorf("bind mount source %s: %w", m.Source, err)
		}
		sm.isFile = !fi.IsDir()
	}
	// A read-only tmpfs or /dev is mounted writable and made read-only by
	// Finish, as runc does: /dev gets its device nodes, symlinks and
	// console, and any such mount the mount points of the mounts below it.
	if defersReadonly(sm.typ, m.Destination) {
		ro, rro := sm.opts.flags&unix.MS_RDONLY != 0, sm.opts.recAttrSet&unix.MOUNT_ATTR_RDONLY != 0
		if ro || rro {
			sm.opts.flags &^= unix.MS_RDONLY
			sm.opts.recAttrSet &^= unix.MOUNT_ATTR_RDONLY
			sm.late = 1
			if rro {
				sm.late = 2
			}
		}
	}
	return sm, nil
}

func mountOne(root *os.File, m specs.Mount, o Options) error {
	sm, err := readMount(m)
	if err != nil {
		return err
	}
	opts, typ, isFile, source := sm.opts, sm.typ, sm.isFile, m.Source
	if typ == "cgroup" {
		return mountCgroup(root, m, opts, o)
	}
	var late *lateReadonly
	if sm.late > 0 {
		late = &lateReadonly{dest: m.Destination, recursive: sm.late == 2}
	}
	t, err := target(root, m.Destination, isFile)
	if err != nil {
		return err
	}
	defer t.Close()
	err = mountAt(root, source, t, typ, opts, m.Destination)
	if errors.Is(err, unix.EPERM) && typ == "sysfs" && o.UserNS {
		// A user namespace may mount sysfs only with a network namespace
		// of its own; without one, the host's /sys is bound instead (as runc).
		opts.flags |= unix.MS_BIND | unix.MS_REC
		err = mountAt(root, "/sys", t, "bind", opts, m.Destination)
	}
	if err != nil || late == nil {
		return err
	}
	if late.mnt, err = openMount(root, m.Destination); err != nil {
		return err
	}
	pendingReadonly = append(pendingReadonly, *late)
	return nil
}

// defersReadonly tells whether a mount of type typ (after bind options are
// read: "bind" for any bind mount) on dest is made read-only only by Finish.
// Fresh filesystems only: a bind mount of a host directory is read-only at
// once, so that no mount point below it is made in the host's directory.
func defersReadonly(typ, dest string) bool {
	return typ != "bind" && (typ == "tmpfs" || filepath.Clean("/"+dest) == "/dev")
}

// lateReadonly is a mount left writable by Prepare for Finish to make
// read-only.
type lateReadonly struct {
	mnt       *os.File // O_PATH handle of the mount's root
	dest      string
	recursive bool // rro: with every mount below it
}

// pendingReadonly holds the mounts Prepare made that Finish makes read-only.
// The handles pin the mounts themselves: a mount stacked on the same
// destination later (by a createContainer hook, say) is not affected.
var pendingReadonly []lateReadonly

func closeLateReadonly() {
	for _, l := range pendingReadonly {
		l.mnt.Close()
	}
	pendingReadonly = nil
}

// applyLateReadonly makes the mounts in pendingReadonly read-only with
// mount_setattr on their handles, which changes no other flag (neither
// those the spec gave nor those the kernel locks) and needs no path.
func applyLateReadonly() error {
	defer closeLateReadonly()
	for _, l := range pendingReadonly {
		flags := uint(unix.AT_EMPTY_PATH)
		if l.recursive {
			flags |= unix.AT_RECURSIVE
		}
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(int(l.mnt.Fd()), "", flags, attr); err != nil {
			return fmt.Errorf("make %s read-only: %w", l.dest, err)
		}
	}
	return nil
}

// openMount returns an O_PATH handle of the root of the mount just made on
// dest: dest resolved again inside root (so no symlink leads out of it),
// which now ends on the new mount rather than on the directory it covers.
func openMount(root *os.File, dest string) (*os.File, error) {
	f, err := pathrs.OpenatInRoot(root, filepath.Clean("/"+dest))
	if err != nil {
		return nil, fmt.Errorf("open the mount on %s: %w", dest, err)
	}
	return f, nil
}

// mountAt mounts source on the handle t, then applies read-only and other
// flags (a bind mount takes them only on a remount), the recursive
// attributes and the propagation.
func mountAt(root *os.File, source string, t *os.File, typ string, opts mountOptions, dest string) error {
	flags := opts.flags &^ unix.MS_REMOUNT
	fstype := typ
	if typ == "bind" {
		fstype = ""
		flags &= unix.MS_BIND | unix.MS_REC
	}
	if err := unix.Mount(source, fdPath(t), fstype, flags, opts.dataString()); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", source, typ, dest, err)
	}
	if typ == "bind" && opts.flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0 {
		if err := remount(t, opts.flags&^unix.MS_REC, dest); err != nil {
			return err
		}
	}
	if opts.recAttrSet != 0 || opts.recAttrClr != 0 {
		// mount_setattr works on a mount's root only: t is the directory
		// the new mount covers, in the mount below.
		mnt, err := openMount(root, dest)
		if err != nil {
			return err
		}
		attr := &unix.MountAttr{Attr_set: opts.recAttrSet, Attr_clr: opts.recAttrClr}
		err = unix.MountSetattr(int(mnt.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr)
		mnt.Close()
		if err != nil {
			return fmt.Errorf("set recursive attributes on %s: %w", dest, err)
		}
	}
	// Propagation changes apply to the new mount, reached again through the
	// same path since the handle points below it.
	for _, p := range opts.propagation {
		if err := unix.Mount("", mountedPath(t, dest), "", p, ""); err != nil {
			return fmt.Errorf("set propagation of %s: %w", dest, err)
		}
	}
	return nil
}

// mountedPath returns a path to the mount just made on top of handle t: the
// handle itself still refers to the covered directory, but its path (as the
// kernel prints it) now resolves to the new mount.
func mountedPath(t *os.File, dest string) string {
	p, err := os.Readlink(fdPath(t))
	if err != nil {
		return dest
	}
	return p
}

// remount re-applies flags to a bind mount, keeping the flags the kernel locks
// (nosuid, nodev, noexec, ... of a mount from a more privileged namespace).
func remount(t *os.File, flags uintptr, dest string) error {
	p := mountedPath(t, dest)
	flags |= unix.MS_REMOUNT | unix.MS_BIND
	err := unix.Mount("", p, "", flags, "")
	if err == unix.EPERM {
		var st unix.Statfs_t
		if serr := unix.Statfs(p, &st); serr == nil {
			locked := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
			err = unix.Mount("", p, "", flags|locked, "")
		}
	}
	if err != nil {
		return fmt.Errorf("remount %s with flags %#x: %w", dest, flags, err)
	}
	return nil
}

// mountCgroup gives the container its cgroup tree: a fresh cgroup2 or set of
// v1 hierarchies inside a cgroup namespace, or bind mounts of the container's
// own cgroups otherwise.
func mountCgroup(root *os.File, m specs.Mount, opts mountOptions, o Options) error {
	t, err := target(root, m.Destination, false)
	if err != nil {
		return err
	}
	defer t.Close()
	ro := opts.flags & unix.MS_RDONLY
	base := opts.flags & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RELATIME)
	if o.CgroupV2 {
		if o.CgroupNS {
			if err := unix.Mount("cgroup2", fdPath(t), "cgroup2", base|ro, ""); err != nil {
				return fmt.Errorf("mount cgroup2 on %s: %w", m.Destination, err)
			}
			return nil
		}
		if err := unix.Mount(o.CgroupPaths[""], fdPath(t), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind cgroup %s on %s: %w", o.CgroupPaths[""], m.Destination, err)
		}
		return remount(t, base|ro, m.Destination)
	}
	if err := unix.Mount("tmpfs", fdPath(t), "tmpfs", base, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", m.Destination, err)
	}
	dir, err := os.OpenFile(mountedPath(t, m.Destination), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", m.Destination, err)
	}
	defer dir.Close()
	hierarchies, err := v1Hierarchies()
	if err != nil {
		return err
	}
	for _, h := range hierarchies {
		sub, err := pathrs.MkdirAllHandle(dir, h.name, 0o755)
		if err != nil {
			return fmt.Errorf("create %s/%s: %w", m.Destination, h.name, err)
		}
		if o.CgroupNS {
			err = unix.Mount("cgroup", fdPath(sub), "cgroup", base|ro, h.options)
		} else if src, ok := o.CgroupPaths[h.key]; ok {
			err = unix.Mount(src, fdPath(sub), "", unix.MS_BIND, "")
			if err == nil {
				err = remount(sub, base|ro, m.Destination+"/"+h.name)
			}
		}
		sub.Close()
		if err != nil {
			return fmt.Errorf("mount cgroup %s on %s: %w", h.name, m.Destination, err)
		}
	}
	if ro != 0 {
		return remount(t, base|ro, m.Destination)
	}
	return nil
}

// rootPropagation sets the propagation of the new mount namespace before
// anything is mounted. By default everything is a slave, so nothing made
// here reaches the host. A shared rootfsPropagation keeps the host's peer
// groups, as runc does, so that a bind mount with rshared propagation
// carries mounts both ways; the mount holding the rootfs is then made
// private, so that the container's own mounts stay its own and
// pivot_root, which refuses shared mounts, works.
func rootPropagation(s *specs.Spec) error {
	// Other propagations (private, unbindable ...) are applied by Pivot:
	// an unbindable / could not even be bound onto itself.
	flags := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := propagationOptions[s.Linux.RootfsPropagation]; p&unix.MS_SHARED != 0 {
		flags = p
	}
	if err := unix.Mount("", "/", "", flags, ""); err != nil {
		return fmt.Errorf("set the propagation of / (%s): %w", s.Linux.RootfsPropagation, err)
	}
	if flags&unix.MS_SHARED == 0 {
		return nil
	}
	parent, err := mountHolding(s.Root.Path)
	if err != nil {
		return err
	}
	if err := unix.Mount("", parent, "", unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make %s, which holds the rootfs, a slave: %w", parent, err)
	}
	return nil
}

// mountHolding is the mount point of the mount that holds path: the
// longest mount point that is path or one of its parents.
func mountHolding(path string) (string, error) {
	best := "/"
	_, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		mp := m.Mountpoint
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
		return true, false
	})
	if err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	return best, nil
}

type hierarchy struct {
	name    string // directory name under the mount, e.g. "cpu" or "systemd"
	key     string // key in the cgroup paths map
	options string // mount data to mount it afresh
}

// v1Hierarchies lists the cgroup v1 hierarchies mounted on the host at
// /sys/fs/cgroup/<name>. Other cgroup mounts (a container's, say) are no
// hierarchies of their own and are left out.
func v1Hierarchies() ([]hierarchy, error) {
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.FSType != "cgroup" || filepath.Dir(m.Mountpoint) != "/sys/fs/cgroup", false
	})
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var hs []hierarchy
	seen := map[string]bool{}
	for _, m := range mounts {
		var subs []string
		for _, opt := range strings.Split(m.VFSOptions, ",") {
			if opt != "rw" && opt != "ro" {
				subs = append(subs, opt)
			}
		}
		key := strings.Join(subs, ",")
		if seen[key] {
			continue
		}
		seen[key] = true
		hs = append(hs, hierarchy{name: filepath.Base(m.Mountpoint), key: key, options: key})
	}
	return hs, nil
}
