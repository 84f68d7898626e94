package rootfs

import (
	"fmt"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func mode(m os.FileMode) *os.FileMode { return &m }

// DefaultDevices are made in every container with its own /dev.
var DefaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: mode(0o666)},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: mode(0o666)},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, FileMode: mode(0o666)},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, FileMode: mode(0o666)},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, FileMode: mode(0o666)},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, FileMode: mode(0o666)},
}

// setupDev fills a container-owned /dev: default devices, the spec's devices,
// and the usual symlinks.
func setupDev(root *os.File, devices []specs.LinuxDevice, userNS bool) error {
	all := append(append([]specs.LinuxDevice{}, DefaultDevices...), devices...)
	if err := makeDevices(root, all, userNS); err != nil {
		return err
	}
	dev, err := pathrs.MkdirAllHandle(root, "/dev", 0o755)
	if err != nil {
		return fmt.Errorf("open /dev in rootfs: %w", err)
	}
	defer dev.Close()
	for _, l := range devLinks() {
		if err := unix.Symlinkat(l[0], int(dev.Fd()), l[1]); err != nil && err != unix.EEXIST {
			return fmt.Errorf("symlink /dev/%s -> %s: %w", l[1], l[0], err)
		}
	}
	return nil
}

// devLinks are the symlinks of a container-owned /dev: target and name.
func devLinks() [][2]string {
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	return links
}

// makeDevices creates device nodes; in a user namespace, where mknod is not
// allowed, it bind-mounts the host's node instead.
func makeDevices(root *os.File, devices []specs.LinuxDevice, userNS bool) error {
	for _, d := range devices {
		if err := makeDevice(root, d, userNS); err != nil {
			return fmt.Errorf("create device %s: %w", d.Path, err)
		}
	}
	return nil
}

func makeDevice(root *os.File, d specs.LinuxDevice, userNS bool) error {
	path := filepath.Clean("/" + d.Path)
	if userNS {
		t, err := target(root, path, true)
		if err != nil {
			return err
		}
		defer t.Close()
		return unix.Mount(path, fdPath(t), "", unix.MS_BIND, "")
	}
	parent, err := pathrs.MkdirAllHandle(root, filepath.Dir(path), 0o755)
	if err != nil {
		return err
	}
	defer parent.Close()
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	}
	name := filepath.Base(path)
	// A device that the image or a mount already has is replaced.
	if err := unix.Unlinkat(int(parent.Fd()), name, 0); err != nil && err != unix.ENOENT {
		return err
	}
	if err := unix.Mknodat(int(parent.Fd()), name, typ|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(int(parent.Fd()), name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	// mknod is subject to the umask: set the mode the spec asks for.
	return unix.Fchmodat(int(parent.Fd()), name, perm, 0)
}
