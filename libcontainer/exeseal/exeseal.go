// Package exeseal starts the runtime binary so that no container can write
// to it (the CVE-2019-5736 class of attack, where a container process opens
// /proc/<pid>/exe of a runtime process that entered the container and
// rewrites the runtime on the host).
//
// The child is started from a thread of its own that has a private mount
// namespace holding a read-only bind mount of the binary over itself, so the
// child's /proc/<pid>/exe leads to a read-only mount. This costs an unshare
// and two mounts, and no copy of the binary and no extra execve.
package exeseal

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
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
	cmd.Path = exe
	done := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it ends with the goroutine, taking
		// its private mount namespace with it.
		runtime.LockOSThread()
		if err := sealOnThisThread(exe); err != nil {
			done <- err
			return
		}
		done <- cmd.Start()
	}()
	return <-done
}

func sealOnThisThread(exe string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("seal runtime binary: unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("seal runtime binary: make / a slave: %w", err)
	}
	if err := unix.Mount(exe, exe, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("seal runtime binary: bind %s: %w", exe, err)
	}
	if err := unix.Mount("", exe, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("seal runtime binary: remount %s read-only: %w", exe, err)
	}
	return nil
}
