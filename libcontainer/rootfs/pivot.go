package rootfs

import (
	"sort"

	"errors"
	"fmt"
	"github.com/moby/sys/mountinfo"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/libcontainer/config"
)

// Pivot makes rootfs the root of the mount namespace and detaches the old
// root, or only chroots into it when noPivot is set (for ramfs roots), then
// applies the spec's rootfsPropagation to the new root.
func Pivot(s *specs.Spec, noPivot bool) error {
	if !config.HasNamespace(s, specs.MountNamespace) {
		// In the caller's mount namespace only chroot is harmless.
		if err := unix.Chroot(s.Root.Path); err != nil {
			return fmt.Errorf("chroot %s: %w", s.Root.Path, err)
		}
		return unix.Chdir("/")
	}
	if err := pivot(s.Root.Path, noPivot); err != nil {
		return err
	}
	if p := s.Linux.RootfsPropagation; p != "" {
		if err := unix.Mount("", "/", "", propagationOptions[p], ""); err != nil {
			return fmt.Errorf("set rootfsPropagation %s: %w", p, err)
		}
	}
	return nil
}

func pivot(rootfs string, noPivot bool) error {
	if noPivot {
		if err := unix.Chdir(rootfs); err != nil {
			return fmt.Errorf("chdir %s: %w", rootfs, err)
		}
		if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move rootfs to /: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldroot)
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir %s: %w", rootfs, err)
	}
	// Stacking the old root under the new one avoids needing a directory for it.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root to %s: %w", rootfs, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("fchdir old root: %w", err)
	}
	// Keep the unmount from propagating to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root a slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// Finish applies what must come after pivot_root (and the console): the
// read-only flag Prepare left off tmpfs mounts and /dev, masked and
// read-only paths and a read-only root.
func Finish(s *specs.Spec) error {
	// First, so that a read-only path's bind of such a mount is read-only too.
	if err := applyLateReadonly(); err != nil {
		return err
	}
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	defer root.Close()
	for _, p := range s.Linux.ReadonlyPaths {
		if err := readonlyPath(root, p); err != nil {
			return err
		}
	}
	if len(s.Linux.MaskedPaths) > 0 {
		null, err := verifiedNull()
		if err != nil {
			return err
		}
		defer null.Close()
		for _, p := range s.Linux.MaskedPaths {
			if err := maskPath(root, null, p); err != nil {
				return err
			}
		}
	}
	if s.Root.Readonly {
		if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			var st unix.Statfs_t
			if unix.Statfs("/", &st) == nil {
				err = unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|uintptr(st.Flags)&(unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC), "")
			}
			if err != nil {
				return fmt.Errorf("make root read-only: %w", err)
			}
		}
	}
	return nil
}

// verifiedNull opens the container's /dev/null and checks that it is the null
// device, so a masked path can never be covered with something else (a
// symlink or a file the image placed there).
func verifiedNull() (*os.File, error) {
	f, err := os.OpenFile("/dev/null", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/null for masking: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat /dev/null: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		f.Close()
		return nil, errors.New("/dev/null in the container is not the null device (1:3); refusing to mask paths with it")
	}
	return f, nil
}

func openExisting(root *os.File, p string) (*os.File, error) {
	f, err := pathrs.OpenatInRoot(root, p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return f, err
}

func maskPath(root, null *os.File, p string) error {
	t, err := openExisting(root, p)
	if err != nil {
		return fmt.Errorf("resolve masked path %s: %w", p, err)
	}
	if t == nil {
		return nil
	}
	defer t.Close()
	// A symlink (/proc/mounts is one, to self/mounts) would mask what it
	// points to, which the spec did not name.
	if link, err := isSymlink(root, p); err != nil {
		return fmt.Errorf("resolve masked path %s: %w", p, err)
	} else if link {
		return fmt.Errorf("masked path %s is a symlink: refusing to mask what it points to", p)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(t.Fd()), &st); err != nil {
		return fmt.Errorf("stat masked path %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = unix.Mount("tmpfs", fdPath(t), "tmpfs", unix.MS_RDONLY, "size=0k")
	} else {
		err = unix.Mount(fdPath(null), fdPath(t), "", unix.MS_BIND, "")
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}

// isSymlink reports whether the last component of p, inside root, is a
// symbolic link.
func isSymlink(root *os.File, p string) (bool, error) {
	p = filepath.Clean("/" + p)
	parent, err := pathrs.OpenatInRoot(root, filepath.Dir(p))
	if err != nil {
		return false, err
	}
	defer parent.Close()
	var st unix.Stat_t
	if err := unix.Fstatat(int(parent.Fd()), filepath.Base(p), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, err
	}
	return st.Mode&unix.S_IFMT == unix.S_IFLNK, nil
}

func readonlyPath(root *os.File, p string) error {
	t, err := openExisting(root, p)
	if err != nil {
		return fmt.Errorf("resolve read-only path %s: %w", p, err)
	}
	if t == nil {
		return nil
	}
	defer t.Close()
	if err := unix.Mount(fdPath(t), fdPath(t), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind read-only path %s: %w", p, err)
	}
	return remount(t, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, p)
}

// BindConsole bind-mounts the pty slave on /dev/console.
func BindConsole(slave string) error {
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	t, err := target(root, "/dev/console", true)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := unix.Mount(slave, fdPath(t), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on /dev/console: %w", slave, err)
	}
	return nil
}

// Unmount detaches every mount at or below rootfs in the caller's mount
// namespace, deepest first: what a container without a mount namespace of
// its own left there.
func Unmount(rootfs string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(rootfs))
	if err != nil {
		return fmt.Errorf("list mounts under %s: %w", rootfs, err)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}
