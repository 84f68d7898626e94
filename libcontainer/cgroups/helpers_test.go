package cgroups

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

var testSeq atomic.Int64

// testName returns a cgroup name unique to this test run.
func testName() string {
	return fmt.Sprintf("berth-test-%d-%d", os.Getpid(), testSeq.Add(1))
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// startSleeper starts a process to put in a cgroup; it is killed at cleanup.
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(cmd) })
	return cmd
}

func stopProcess(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// destroyAtCleanup removes the manager's cgroups even when the test failed
// half way, killing what is left inside first.
func destroyAtCleanup(t *testing.T, m *Manager) {
	t.Helper()
	t.Cleanup(func() {
		// A frozen cgroup would keep its killed processes forever.
		_ = m.Thaw()
		if pids, err := m.Pids(); err == nil {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

func readCgroupFile(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func expectFile(t *testing.T, dir, file, want string) {
	t.Helper()
	if got := readCgroupFile(t, dir, file); got != want {
		t.Errorf("%s/%s = %q, want %q", dir, file, got, want)
	}
}

func expectProcs(t *testing.T, dir string, want ...int) {
	t.Helper()
	var got []int
	for _, f := range strings.Fields(readCgroupFile(t, dir, "cgroup.procs")) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pid)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s/cgroup.procs = %v, want %v", dir, got, want)
	}
}

func expectGone(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there after Destroy (stat: %v)", dir, err)
	}
}

func expectErrorMentions(t *testing.T, err error, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", words)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func ptr[T any](v T) *T { return &v }
