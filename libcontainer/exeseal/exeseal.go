// Package exeseal starts the runtime binary so that no container can write
// to it (the CVE-2019-5736 class of attack, where a container process opens
// /proc/<pid>/exe of a runtime process that entered the container and
// rewrites the runtime on the host).
//
// The child runs the binary from a detached, read-only bind mount of it
// (open_tree and mount_setattr): its /proc/<pid>/exe leads to a read-only
// mount that is attached to no mount namespace. This costs two system
// calls, no copy of the binary and no extra execve, and leaves the child in
// the caller's mount namespace, so a container's mounts keep the host's
// peer groups (rshared mounts propagate both ways, as with runc).
package exeseal

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Start starts cmd, whose Path is ignored: it runs the current binary,
// sealed read-only where the caller may mount (root), as is otherwise.
func Start(cmd *exec.Cmd) error {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil || strings.HasSuffix(exe, " (deleted)") || os.Geteuid() != 0 {
		// Without a path to mount over (binary replaced) or the right to
		// mount, the child runs the binary as it is.
		if os.Geteuid() == 0 {
			slog.Warn("cannot seal runtime binary", "exe", exe, "error", err)
		}
		cmd.Path = "/proc/self/exe"
		return cmd.Start()
	}
	sealed, err := seal(exe)
	if err != nil {
		return err
	}
	// The detached mount lives as long as something holds it: this file
	// until the child has started, then the child's executable.
	defer sealed.Close()
	// Resolved by the child's execve, before close-on-exec closes it.
	cmd.Path = "/proc/self/fd/" + strconv.Itoa(int(sealed.Fd()))
	return cmd.Start()
}

// seal returns the binary on a detached read-only bind mount of it.
func seal(exe string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, exe, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seal runtime binary: open_tree %s: %w", exe, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("seal runtime binary: make the mount of %s read-only: %w", exe, err)
	}
	return os.NewFile(uintptr(fd), exe), nil
}
