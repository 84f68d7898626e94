package engine

import (
	"strings"
	"testing"
)

// cgroupLimits reads the memory, swap, CPU quota, shares and pids limits
// a running container sees in its cgroups (v1).
func cgroupLimits(e *engine, name string) string {
	e.t.Helper()
	return e.ok("exec", name, "sh", "-c", "cd /sys/fs/cgroup && cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.shares pids/pids.max | tr '\\n' ' '")
}

// TestUpdate: berth update changes a running container's cgroup limits and
// its bundle, so a restart keeps them; inspect shows them; the monitor
// follows a new restart policy at the next exit; bad values are refused,
// named, with nothing changed.
func TestUpdate(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	e.ok("run", "-d", "--name", "u", "--network", "none", "-m", "64m", "busybox", "sleep", "1000")
	if got := e.ok("update", "-m", "128m", "--memory-swap", "256m", "--cpus", "0.5", "--cpu-shares", "512",
		"--pids-limit", "50", "--restart", "on-failure:3", "u"); got != "u\n" {
		t.Errorf("update printed %q", got)
	}
	const want = "134217728 268435456 50000 512 50 "
	if got := cgroupLimits(e, "u"); got != want {
		t.Errorf("cgroup limits after update: %q, want %q", got, want)
	}
	inspect := "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.CpuQuota}} {{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
	if got := e.ok("inspect", "--format", inspect, "u"); got != "134217728 268435456 50000 512 50 on-failure:3\n" {
		t.Errorf("inspect after update: %q", got)
	}

	// Refused: nothing changes.
	e.fail("memory limit 1024 is below the minimum of 6MB", "update", "-m", "1k", "u")
	e.fail("conflicting options: cpus and cpu-quota", "update", "--cpus", "1", "--cpu-quota", "20000", "u")
	e.fail("memory limit 536870912 is above the memory-swap limit 268435456", "update", "-m", "512m", "u")
	e.fail("invalid --restart", "update", "--restart", "sometimes", "u")
	e.fail("no such container", "update", "-m", "64m", "nosuch")
	if got := e.ok("inspect", "--format", inspect, "u"); got != "134217728 268435456 50000 512 50 on-failure:3\n" {
		t.Errorf("inspect after refused updates: %q", got)
	}

	// A restart runs the container from its bundle: the limits stay.
	e.ok("restart", "-t", "0", "u")
	if got := cgroupLimits(e, "u"); got != want {
		t.Errorf("cgroup limits after restart: %q, want %q", got, want)
	}
	e.ok("update", "--pids-limit", "-1", "--cpus", "1.5", "u")
	if got := cgroupLimits(e, "u"); got != "134217728 268435456 150000 512 max " {
		t.Errorf("cgroup limits after lifting pids: %q", got)
	}
	e.ok("rm", "-f", "u")

	// The monitor reads the restart policy at the exit: a container made
	// with none restarts twice after update gave it on-failure:2.
	e.ok("run", "-d", "--name", "r", "--network", "none", "busybox", "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 3")
	e.ok("update", "--restart", "on-failure:2", "r")
	e.ok("exec", "r", "touch", "/tmp/go")
	waitFor(t, func() bool {
		return e.ok("inspect", "--format", "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", "r") == "exited 2 3\n"
	})
	e.ok("rm", "r")

	e.ok("create", "--name", "gone", "--rm", "busybox", "true")
	e.fail("the restart policy cannot be updated", "update", "--restart", "always", "gone")
	// A created container's bundle changes; its first start has the limit.
	e.ok("update", "-m", "96m", "gone")
	if got := e.ok("start", "-a", "gone"); got != "" {
		t.Errorf("start -a printed %q", got)
	}
	e.ok("create", "--name", "c", "--network", "none", "busybox", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	e.ok("update", "-m", "96m", "c")
	if got := e.ok("start", "-a", "c"); got != "100663296\n" {
		t.Errorf("a created container's limit after update: %q", got)
	}
	e.ok("rm", "c")
}

// TestAPIUpdate: docker update through the service; a field berth does
// not change is a 400 naming it.
func TestAPIUpdate(t *testing.T) {
	eachDockerCLI(t, func(t *testing.T, e *engine, s *service) {
		s.dockerOK(t, e, "run", "-d", "--name", "up", "--network", "none", "busybox", "sleep", "1000")
		if got := s.dockerOK(t, e, "update", "--memory", "96m", "--memory-swap", "-1", "--cpus", "0.25", "--restart", "always", "up"); strings.TrimSpace(got) != "up" {
			t.Errorf("docker update printed %q", got)
		}
		if got := s.dockerOK(t, e, "inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.CpuQuota}} {{.HostConfig.RestartPolicy.Name}}", "up"); got != "100663296 25000 always\n" {
			t.Errorf("docker inspect after update: %q", got)
		}
		if got := e.ok("exec", "up", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); got != "100663296\n25000\n" {
			t.Errorf("cgroup after docker update: %q", got)
		}
		r := s.docker(t, e, "", "update", "--memory", "1k", "up")
		if r.Code == 0 || !strings.Contains(r.Stderr, "memory limit 1024 is below the minimum of 6MB") {
			t.Errorf("docker update --memory 1k: exit %d, %q", r.Code, r.Stderr)
		}
		if status, body := s.request(t, "POST", "/v1.41/containers/up/update", `{"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 10}]}`); status != 400 || !strings.Contains(body, "Ulimits cannot be updated") {
			t.Errorf("update of Ulimits: %d %s", status, body)
		}
		if status, body := s.request(t, "POST", "/v1.41/containers/nosuch/update", `{"Memory": 100000000}`); status != 404 {
			t.Errorf("update of a missing container: %d %s", status, body)
		}
		s.dockerOK(t, e, "rm", "-f", "up")
	})
}
