package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/container"
)

func TestTop(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	for _, rt := range runtimes(t) {
		t.Run(runtimeName(rt), func(t *testing.T) {
			c := runDetached(t, e, rt, "top-"+filepath.Base(runtimeName(rt)))
			out := e.ok("top", c)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "USER PID PPID C STIME TT TIME CMD" ||
				!strings.HasSuffix(lines[1], "sleep 1000") || !strings.HasPrefix(lines[1], "root ") {
				t.Errorf("top: %q", out)
			}
			e.ok("exec", "-d", c, "sleep", "999")
			// ps options after the container, flags included.
			out = e.ok("top", c, "-o", "pid,args")
			lines = strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "PID COMMAND" ||
				!strings.Contains(out, "sleep 1000") || !strings.Contains(out, "sleep 999") {
				t.Errorf("top -o pid,args: %q", out)
			}
			// The pid column is the host's: the container's init is berth's record.
			pid := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Pid}}", c))
			if f := strings.Fields(lines[1]); f[0] != pid && strings.Fields(lines[2])[0] != pid {
				t.Errorf("top: init pid %s not in %q", pid, out)
			}
			if out := e.ok("container", "top", c, "aux"); !strings.Contains(out, "%CPU") || strings.Count(out, "sleep") != 2 {
				t.Errorf("container top aux: %q", out)
			}
			e.fail("ps", "top", c, "--no-such-ps-option")
		})
	}
	e.ok("create", "--name", "created", "busybox", "true")
	e.fail("is not running", "top", "created")
	e.fail("no such container", "top", "nosuchcontainer")
}

func TestStats(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	// No network: nothing may count as received or sent.
	c := runDetached(t, e, "", "stats1", "-m", "64m", "--network", "none")
	e.ok("create", "--name", "stopped", "busybox", "true")
	start := time.Now()
	out := e.ok("stats", "--no-stream")
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("--no-stream took %s: want about a second (two samples)", d)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "CONTAINER ID NAME CPU % MEM USAGE / LIMIT MEM % NET I/O BLOCK I/O PIDS" {
		t.Fatalf("stats: %q", out)
	}
	f := strings.Fields(lines[1])
	// ID NAME CPU% USAGE / LIMIT MEM% RX / TX READ / WRITE PIDS
	if len(f) != 14 || f[1] != c || f[5] != "64MiB" || f[13] != "1" || !strings.HasSuffix(f[2], "%") || f[7] != "0B" || f[9] != "0B" {
		t.Errorf("stats row: %q", lines[1])
	}
	e.ok("exec", "-d", c, "sleep", "999")
	if out := e.ok("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemPerc}}", c); !strings.HasPrefix(out, c+" 2 ") || !strings.HasSuffix(out, "%\n") {
		t.Errorf("stats --format: %q", out)
	}
	var row map[string]string
	if err := json.Unmarshal([]byte(e.ok("stats", "--no-stream", "--format", "json", c)), &row); err != nil ||
		row["Name"] != c || !strings.HasSuffix(row["MemUsage"], " / 64MiB") || row["PIDs"] != "2" {
		t.Errorf("stats json: %v %v", row, err)
	}
	// -a adds stopped containers with a zero row; naming one shows it too.
	if out := e.ok("stats", "--no-stream", "-a", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}"); !strings.Contains(out, "stopped 0B / 0B 0\n") || !strings.Contains(out, c+" ") {
		t.Errorf("stats -a: %q", out)
	}
	// Without a memory limit, the host's memory is the limit.
	other := runDetached(t, e, "", "stats2")
	if out := e.ok("stats", "--no-stream", "--format", "{{.MemUsage}}", other); strings.HasSuffix(out, "64MiB\n") || strings.Contains(out, "EiB") || strings.Contains(out, "PiB") {
		t.Errorf("stats without a limit: %q", out)
	}
	// Streaming prints a table a second, one after another off a terminal.
	cmd := e.cmd("stats", c)
	var buf strings.Builder
	cmd.Stdout = &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2800 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	if n := strings.Count(buf.String(), "CONTAINER ID"); n < 2 || n > 3 || strings.Contains(buf.String(), "\033[") {
		t.Errorf("streaming stats: %d tables: %q", n, buf.String())
	}
	e.fail("no such container", "stats", "--no-stream", "nosuchcontainer")
}

// writeFiles makes files (path: content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func hostMemTotal(t *testing.T) uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// ReadStats parses both cgroup versions' files (a tree of plain files).
func TestReadStatsFiles(t *testing.T) {
	ctr := &container.Container{Config: container.Config{Name: "c", CgroupPath: "/berth/x"}}
	v2 := t.TempDir()
	writeFiles(t, v2, map[string]string{
		"cgroup.controllers":      "cpu memory pids io\n",
		"berth/x/cpu.stat":        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
		"berth/x/memory.current":  "10485760\n",
		"berth/x/memory.stat":     "anon 8388608\nfile 2097152\ninactive_file 1048576\n",
		"berth/x/memory.max":      "67108864\n",
		"berth/x/pids.current":    "3\n",
		"berth/x/io.stat":         "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n",
		"berth/other/cpu.stat":    "usage_usec 1\n",
		"berth/other/memory.max":  "max\n",
		"berth/other/memory.stat": "inactive_file 0\n",
	})
	st, err := container.ReadStats(ctr, v2)
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU != 1500000 || st.MemUsage != 9<<20 || st.MemLimit != 64<<20 || st.Pids != 3 || st.BlockRead != 4097 || st.BlockWrite != 8194 {
		t.Errorf("v2: %+v", st)
	}
	if st.System == 0 || st.OnlineCPUs < 1 {
		t.Errorf("v2: no system CPU time: %+v", st)
	}
	// No limit ("max") and controllers left out: the host's memory, zeros.
	other := &container.Container{Config: container.Config{Name: "o", CgroupPath: "/berth/other"}}
	if st, err := container.ReadStats(other, v2); err != nil || st.MemLimit != hostMemTotal(t) || st.Pids != 0 || st.MemUsage != 0 {
		t.Errorf("v2 without limit: %+v %v", st, err)
	}
	v1 := t.TempDir()
	writeFiles(t, v1, map[string]string{
		"cpuacct/berth/x/cpuacct.usage":                           "123456789\n",
		"memory/berth/x/memory.usage_in_bytes":                    "5242880\n",
		"memory/berth/x/memory.stat":                              "cache 1048576\ntotal_inactive_file 1048576\n",
		"memory/berth/x/memory.limit_in_bytes":                    "9223372036854771712\n",
		"pids/berth/x/pids.current":                               "7\n",
		"blkio/berth/x/blkio.throttle.io_service_bytes_recursive": "8:0 Read 100\n8:0 Write 200\n8:0 Sync 300\n8:0 Async 0\n8:0 Total 300\n8:16 Read 1\nTotal 301\n",
	})
	st, err = container.ReadStats(ctr, v1)
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU != 123456789 || st.MemUsage != 4<<20 || st.MemLimit != hostMemTotal(t) || st.Pids != 7 || st.BlockRead != 101 || st.BlockWrite != 200 {
		t.Errorf("v1: %+v", st)
	}
	// A cgroup that is gone (the container stopped) is an error.
	gone := &container.Container{Config: container.Config{Name: "g", CgroupPath: "/berth/gone"}}
	if _, err := container.ReadStats(gone, v2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing cgroup: %v", err)
	}
	if _, err := container.ReadStats(&container.Container{}, v2); err == nil {
		t.Error("no cgroup path: no error")
	}
	// CPU %: the container's share of the host's time, times the CPUs.
	prev := &container.Stats{CPU: 1e9, System: 10e9}
	cur := &container.Stats{CPU: 2e9, System: 14e9, OnlineCPUs: 4}
	if p := cur.CPUPercent(prev); p != 100 {
		t.Errorf("CPUPercent: %v", p)
	}
	if p := cur.CPUPercent(nil); p != 0 {
		t.Errorf("CPUPercent without a previous sample: %v", p)
	}
}

// ReadStats on a real cgroup2 hierarchy: this test's own mount, a child
// cgroup with a busy process in it. On a hybrid host the v1 controllers
// are not in it, so only what v2 has here is checked: cpu.stat always,
// the others when their controller is.
func TestReadStatsCgroup2(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	mnt := t.TempDir()
	if err := unix.Mount("none", mnt, "cgroup2", 0, ""); err != nil {
		t.Skipf("mount cgroup2: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	name := fmt.Sprintf("berth-stats-test-%d", os.Getpid())
	child := filepath.Join(mnt, name)
	if err := os.Mkdir(child, 0o755); err != nil {
		t.Fatal(err)
	}
	busy := exec.Command("sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = busy.Process.Kill()
		_ = busy.Wait()
		// The cgroup empties once the process is reaped.
		for i := 0; i < 100 && os.Remove(child) != nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	})
	if err := os.WriteFile(filepath.Join(child, "cgroup.procs"), []byte(strconv.Itoa(busy.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctr := &container.Container{
		Config: container.Config{Name: "v2", CgroupPath: "/" + name},
		State:  container.State{Pid: busy.Process.Pid},
	}
	first, err := container.ReadStats(ctr, mnt)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	second, err := container.ReadStats(ctr, mnt)
	if err != nil {
		t.Fatal(err)
	}
	if second.CPU <= first.CPU || second.CPU == 0 {
		t.Errorf("CPU time did not grow: %d then %d", first.CPU, second.CPU)
	}
	// A busy loop is most of one CPU.
	if p := second.CPUPercent(first); p < 30 || p > 100*float64(second.OnlineCPUs)+5 {
		t.Errorf("CPU %% of a busy loop: %.2f", p)
	}
	if _, err := os.Stat(filepath.Join(child, "pids.current")); err == nil && second.Pids != 1 {
		t.Errorf("pids: %d", second.Pids)
	}
	if _, err := os.Stat(filepath.Join(child, "memory.current")); err == nil && second.MemUsage == 0 {
		t.Errorf("memory: %+v", second)
	} else if err != nil && second.MemLimit != hostMemTotal(t) {
		t.Errorf("memory limit without the controller: %d", second.MemLimit)
	}
	// The process's network namespace is the host's: its counters are read.
	if rx, tx := second.NetRx, second.NetTx; rx+tx == 0 {
		if data, _ := os.ReadFile("/proc/net/dev"); strings.Count(string(data), ":") > 1 {
			t.Logf("no network traffic counted (host has %q)", data)
		}
	}
}

func TestPort(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	e.ok("create", "--name", "p", "-p", "127.0.0.1::80", "busybox", "true")
	// Ports are published while the container runs.
	if out := e.ok("port", "p"); out != "" {
		t.Errorf("port of a created container: %q", out)
	}
	e.fail("no public port '80/tcp' published for p", "port", "p", "80")
	runDetached(t, e, "", "q", "-p", "127.0.0.1::80", "-p", "127.0.0.1::53/udp", "-p", "127.0.0.1::90-91")
	out := e.ok("port", "q")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"53/udp -> 127.0.0.1:", "80/tcp -> 127.0.0.1:", "90/tcp -> 127.0.0.1:", "91/tcp -> 127.0.0.1:"}
	if len(lines) != len(want) {
		t.Fatalf("port: %q", out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("port line %d: %q, want %q...", i, lines[i], w)
		}
	}
	if out := e.ok("port", "q", "80"); !strings.HasPrefix(out, "127.0.0.1:") {
		t.Errorf("port q 80: %q", out)
	}
	if out := e.ok("container", "port", "q", "53/udp"); !strings.HasPrefix(out, "127.0.0.1:") {
		t.Errorf("port q 53/udp: %q", out)
	}
	if out := e.ok("ps", "--format", "{{.Ports}}", "--filter", "name=q"); !strings.Contains(out, "->80/tcp") {
		t.Errorf("ps ports: %q", out)
	}
	e.fail("no public port '53/tcp'", "port", "q", "53")
	e.fail("invalid port", "port", "q", "http")
	e.fail("no such container", "port", "nosuchcontainer")
	e.fail("invalid port spec", "run", "-p", "99999:80", "busybox", "true")
	e.fail("cannot be published with --network none", "run", "--network", "none", "-p", "80", "busybox", "true")
}

// logLines counts the container's "tick" lines.
func logLines(e *engine, c string) int { return strings.Count(e.ok("logs", c), "tick") }

func TestPause(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	for _, rt := range runtimes(t) {
		t.Run(runtimeName(rt), func(t *testing.T) {
			c := "pause-" + filepath.Base(runtimeName(rt))
			e.ok(append(runFlags(rt), "-d", "--name", c, "busybox", "sh", "-c", "while :; do echo tick; sleep 0.05; done")...)
			t.Cleanup(func() { e.run(nil, "rm", "-f", c) })
			waitFor(t, func() bool { return logLines(e, c) > 0 })
			if out := e.ok("pause", c); out != c+"\n" {
				t.Errorf("pause printed %q", out)
			}
			if out := e.ok("ps", "--format", "{{.Names}} {{.State}} {{.Status}}"); !strings.Contains(out, c+" paused Up ") || !strings.Contains(out, "(Paused)") {
				t.Errorf("ps of a paused container: %q", out)
			}
			if out := e.ok("inspect", "-f", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}", c); out != "paused true true\n" {
				t.Errorf("inspect paused: %q", out)
			}
			// Frozen: no more output.
			time.Sleep(200 * time.Millisecond)
			n := logLines(e, c)
			time.Sleep(500 * time.Millisecond)
			if m := logLines(e, c); m != n {
				t.Errorf("a paused container wrote %d lines", m-n)
			}
			e.fail("is already paused", "pause", c)
			e.fail("is paused", "exec", c, "true")
			// Its processes are still there to see.
			if out := e.ok("top", c, "-o", "pid,stat,args"); !strings.Contains(out, "while") {
				t.Errorf("top of a paused container: %q", out)
			}
			e.ok("unpause", c)
			if out := e.ok("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", c); out != "running false\n" {
				t.Errorf("inspect unpaused: %q", out)
			}
			waitFor(t, func() bool { return logLines(e, c) > n+3 })
			e.fail("is not paused", "unpause", c)
			// A paused container can be stopped and removed (SIGKILL thaws it).
			e.ok("pause", c)
			start := time.Now()
			e.ok("stop", c)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("stop of a paused container took %s", d)
			}
			if out := e.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", c); out != "exited 137\n" {
				t.Errorf("stopped paused container: %q", out)
			}
			e.fail("is not running", "pause", c)
			e.fail("is not paused", "unpause", c)
			e.ok("start", c)
			e.ok("pause", c)
			e.ok("rm", "-f", c)
			e.fail("no such container", "inspect", "--type", "container", c)
		})
	}
	e.fail("no such container", "pause", "nosuchcontainer")
	e.fail("no such container", "unpause", "nosuchcontainer")
}

func TestRename(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	e.ok("run", "-d", "--name", "old", "busybox", "sh", "-c", "echo tick; sleep 1000")
	t.Cleanup(func() { e.run(nil, "rm", "-f", "new") })
	id := strings.TrimSpace(e.ok("inspect", "-f", "{{.Id}}", "old"))
	e.ok("create", "--name", "taken", "busybox", "true")
	e.fail("name already in use", "rename", "old", "taken")
	e.fail("invalid container name", "rename", "old", "bad/name")
	e.fail("current name", "rename", "old", "old")
	if r := e.run(nil, "rename", "old", "new"); r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		t.Fatalf("rename: %+v", r)
	}
	e.fail("no such container", "inspect", "--type", "container", "old")
	e.fail("no such container", "rename", "old", "again")
	// The new name works everywhere, and the old one is free.
	if out := e.ok("inspect", "-f", "{{.Name}} {{.Id}}", "new"); out != "/new "+id+"\n" {
		t.Errorf("inspect new: %q", out)
	}
	if out := e.ok("ps", "--format", "{{.Names}}"); out != "new\n" {
		t.Errorf("ps: %q", out)
	}
	if out := e.ok("exec", "new", "echo", "hi"); out != "hi\n" {
		t.Errorf("exec: %q", out)
	}
	if out := e.ok("top", "new"); !strings.Contains(out, "sleep 1000") {
		t.Errorf("top: %q", out)
	}
	if out := e.ok("stats", "--no-stream", "--format", "{{.Name}}", "new"); out != "new\n" {
		t.Errorf("stats: %q", out)
	}
	if out := e.ok("logs", "new"); out != "tick\n" {
		t.Errorf("logs: %q", out)
	}
	e.ok("port", "new")
	e.ok("pause", "new")
	e.ok("unpause", "new")
	e.ok("kill", "new")
	waitFor(t, func() bool {
		return strings.Contains(e.ok("ps", "-a", "--format", "{{.Names}} {{.State}}"), "new exited")
	})
	e.ok("start", "new")
	e.ok("container", "rename", "taken", "old")
	if out := e.ok("ps", "-a", "--format", "{{.Names}}"); out != "old\nnew\n" {
		t.Errorf("ps -a after renames: %q", out)
	}
	e.ok("rm", "-f", "new")
	e.fail("requires exactly 2 argument(s)", "rename", "old")
	e.fail("no such container", "rename", "nosuchcontainer", "x")
}
