package callers

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

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

// assertNoCgroups checks that there is no cgroup named rel.
func assertNoCgroups(t *testing.T, rel string) {
	t.Helper()
	for _, cg := range cgroupsNamed(rel) {
		t.Errorf("cgroup left: %s", cg)
	}
}

// assertInCgroup checks that the container process pid is in cgroup cg.
func assertInCgroup(t *testing.T, cg string, pid int) {
	t.Helper()
	if procs, err := os.ReadFile(filepath.Join(cg, "cgroup.procs")); err != nil {
		t.Errorf("container cgroup: %v", err)
	} else if !containsLine(string(procs), strconv.Itoa(pid)) {
		t.Errorf("container cgroup.procs %q lacks the container's pid %d", procs, pid)
	}
}

// killCgroups kills, as a failure, the processes left in the cgroups named
// rel and removes the cgroups, whose being left is a failure too.
func killCgroups(t *testing.T, rel string) {
	cgroups := cgroupsNamed(rel)
	for _, cg := range cgroups {
		t.Errorf("cgroup left: %s", cg)
	}
	removeCgroups(t, cgroups)
}

// removeCgroups kills, as a failure, the processes left in cgroups, then
// removes the cgroups.
func removeCgroups(t *testing.T, cgroups []string) {
	killed := map[int]bool{}
	for _, cg := range cgroups {
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

// removeCgroup removes cg once the processes killed in it are gone.
func removeCgroup(t *testing.T, cg string) {
	var err error
	for range 100 {
		if err = unix.Rmdir(cg); err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("remove cgroup %s: %v", cg, err)
}

func cgroupPids(cg string) []int {
	data, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// processes returns the pids of the processes, but the test's own, whose
// command line (its arguments, each ended by a NUL) matches.
func processes(match func(cmdline []byte) bool) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || !match(data) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// processesMentioning returns the pids of the processes with dir in their
// command line: a caller's daemons and monitors started for the test.
func processesMentioning(dir string) []int {
	return processes(func(cmdline []byte) bool { return bytes.Contains(cmdline, []byte(dir)) })
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

// assertGone checks that the container process pid is gone after what
// was to end it.
func assertGone(t *testing.T, pid int, after string) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("container process %d still exists after %s (kill 0: %v)", pid, after, err)
	}
}

// killIfSleeper kills the container process pid if delete left it running:
// a runtime that lost it may also have left it outside the cgroup.
func killIfSleeper(t *testing.T, pid int) {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil && string(cmdline) == "sleep\x001000\x00" {
		t.Errorf("container process %d left: killing it", pid)
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

// mountsUnder lists the mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// waitFor polls check until it returns nil, failing the test with its last
// error after timeout.
func waitFor(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("after %s: %v", timeout, err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func containsLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
