package callers

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cmdResult is what a caller's command line printed and how it exited.
type cmdResult struct {
	stdout, stderr string
	code           int
}

// runCmd runs cmd to its end, failing the test if it does not end within
// timeout or cannot be started; a non-zero exit is the caller's to judge.
func runCmd(t *testing.T, timeout time.Duration, name string, args []string, env []string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: no answer in %s; stderr: %s", name, strings.Join(args, " "), timeout, stderr.String())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return cmdResult{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

// hostPaths are paths outside the test's temporary directory that a caller
// creates on first use whatever it is told, and never removes.
type hostPaths []string

// absentHostPaths returns those of paths (parents before children) that do
// not exist yet: the ones the test will have created.
func absentHostPaths(paths ...string) hostPaths {
	var absent hostPaths
	for _, p := range paths {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			absent = append(absent, p)
		}
	}
	return absent
}

// remove removes the paths, children first. A directory that is not empty
// holds something the callers left: an error.
func (paths hostPaths) remove(t *testing.T) {
	for i := len(paths) - 1; i >= 0; i-- {
		if err := os.Remove(paths[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove %s (created by the test): %v", paths[i], err)
		}
	}
}

// cgroupsNamed lists the v1 and v2 cgroups /sys/fs/cgroup/*/rel.
func cgroupsNamed(rel string) []string {
	found, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", rel))
	var dirs []string
	for _, cg := range found {
		if fi, err := os.Stat(cg); err == nil && fi.IsDir() {
			dirs = append(dirs, cg)
		}
	}
	return dirs
}

// newCgroups returns a function that removes the cgroups named rel made
// since the call: the parents the runtimes make for a caller's containers.
// They are not the runtime's to remove, so they are no error.
func newCgroups(rel string) func(t *testing.T) {
	before := cgroupsNamed(rel)
	return func(t *testing.T) {
		for _, cg := range cgroupsNamed(rel) {
			if !slices.Contains(before, cg) {
				removeCgroup(t, cg)
			}
		}
	}
}

// killCgroups kills, as a failure, the processes left in the cgroups named
// rel and removes the cgroups.
func killCgroups(t *testing.T, rel string) {
	cgroups := cgroupsNamed(rel)
	killed := map[int]bool{}
	for _, cg := range cgroups {
		t.Errorf("cgroup left: %s", cg)
		for _, pid := range cgroupPids(cg) {
			if !killed[pid] {
				killed[pid] = true
				t.Errorf("container process left, pid %d in %s: killing it", pid, cg)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for _, cg := range cgroups {
		removeCgroup(t, cg)
	}
}

// processesMentioning returns the pids of the processes with dir in their
// command line: a caller's daemons and monitors started for the test.
func processesMentioning(dir string) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(data, []byte(dir)) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killProcessesMentioning kills, as a failure, what processesMentioning
// finds once given a few seconds to exit on their own.
func killProcessesMentioning(t *testing.T, dir string) {
	var pids []int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if pids = processesMentioning(dir); len(pids) == 0 {
			return
		}
	}
	for _, pid := range pids {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		t.Errorf("process left, pid %d (%s): killing it", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// unmountUnder unmounts, as a failure, what is mounted below dir.
func unmountUnder(t *testing.T, dir string) {
	for _, mnt := range mountsUnder(dir) {
		t.Errorf("mount left: %s: unmounting it", mnt)
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	}
}

// lookPaths skips the test unless every program is installed.
func lookPaths(t *testing.T, pkg string, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed (Debian package %s): %v", p, pkg, err)
		}
	}
}
