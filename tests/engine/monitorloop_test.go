package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/engine/attach"
	"github.com/berth-containers/berth/engine/container"
)

// inLoop waits until the container's monitor is its C loop: executed with
// the loop's variable (the Go monitor it hands back to has another), and
// one thread, where the Go monitor has several.
func inLoop(t *testing.T, e *engine, name string) int {
	t.Helper()
	var pid int
	waitFor(t, func() bool {
		pid = monitorPidOf(t, e, name)
		return pid != 0 && looping(pid)
	})
	return pid
}

func looping(pid int) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	status, _ := os.ReadFile(filepath.Join(dir, "status"))
	environ, _ := os.ReadFile(filepath.Join(dir, "environ"))
	return strings.Contains(string(status), "\nThreads:\t1\n") && bytes.Contains(environ, []byte("\x00_BERTH_MONITOR_LOOP="))
}

// TestMonitorLoopLogs: the C loop logs what an idle container writes as the
// Go LogWriter does, byte for byte, in both formats (HTML characters,
// controls, invalid UTF-8, U+2028, a partial last line), and a rotation
// as it does.
func TestMonitorLoopLogs(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	lines := []string{
		"plain\n",
		"quote \" backslash \\ tab \t cr \r bs \b ff \f\n",
		"html <a href='x'>&amp;</a>\n",
		"controls \x01\x1b\x1f\x7f\n",
		"utf8 é ü 中 😀 \ufffd\n",
		"separators \u2028 \u2029\n",
		"invalid \xff \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82 \xf0\x9f\n",
		"partial",
	}
	in := filepath.Join(e.dir, "in")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, driver := range []string{"json-file", "k8s-file"} {
		name := "logs-" + driver
		e.ok("run", "-d", "--name", name, "--network", "none", "--log-driver", driver, "-v", in+":/in:ro",
			"busybox", "sh", "-c", "until [ -e /tmp/go ]; do sleep 0.05; done; cat /in; cat /in >&2; exec sleep 1000")
		pid := inLoop(t, e, name)
		e.ok("exec", name, "touch", "/tmp/go")
		logPath := strings.TrimSpace(e.ok("inspect", "--format", "{{.LogPath}}", name))
		var data []byte
		waitFor(t, func() bool {
			data, _ = os.ReadFile(logPath)
			return bytes.Count(data, []byte("\n")) == 2*len(lines)
		})
		got := map[string][][]byte{}
		for _, l := range bytes.SplitAfter(data, []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			entry, err := container.ParseLogLine(driver, bytes.TrimSuffix(l, []byte("\n")))
			if err != nil {
				t.Fatalf("%s: %v", driver, err)
			}
			got[entry.Stream] = append(got[entry.Stream], l)
		}
		for _, stream := range []string{"stdout", "stderr"} {
			if len(got[stream]) != len(lines) {
				t.Fatalf("%s %s: %d entries, want %d:\n%s", driver, stream, len(got[stream]), len(lines), data)
			}
			for i, l := range got[stream] {
				entry, _ := container.ParseLogLine(driver, bytes.TrimSuffix(l, []byte("\n")))
				want := container.AppendLogEntry(nil, driver, entry.Time, stream, i == len(lines)-1, []byte(lines[i]))
				if !bytes.Equal(l, want) {
					t.Errorf("%s %s entry %d:\n got %q\nwant %q", driver, stream, i, l, want)
				}
			}
		}
		// No Go came back for the output: still the loop.
		if !looping(pid) {
			t.Errorf("%s: monitor %d left its loop", driver, pid)
		}
		e.ok("rm", "-f", name)
	}

	// Rotation: 3 files of at most 1 KiB, the newest lines in the live one.
	e.ok("run", "-d", "--name", "rotated", "--network", "none", "--log-driver", "json-file",
		"--log-opt", "max-size=1k", "--log-opt", "max-file=3",
		"busybox", "sh", "-c", "until [ -e /tmp/go ]; do sleep 0.05; done; i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done; exec sleep 1000")
	inLoop(t, e, "rotated")
	e.ok("exec", "rotated", "touch", "/tmp/go")
	logPath := strings.TrimSpace(e.ok("inspect", "--format", "{{.LogPath}}", "rotated"))
	waitFor(t, func() bool {
		data, _ := os.ReadFile(logPath)
		return bytes.Contains(data, []byte(`line 199\n`))
	})
	for _, p := range []string{logPath, logPath + ".1", logPath + ".2"} {
		st, err := os.Stat(p)
		if err != nil || st.Size() > 1024 || st.Size() == 0 {
			t.Errorf("rotated file %s: %v %v", p, st, err)
		}
	}
	if _, err := os.Stat(logPath + ".3"); err == nil {
		t.Errorf("max-file=3 kept a fourth file")
	}
	if out := e.ok("logs", "--tail", "1", "rotated"); out != "line 199\n" {
		t.Errorf("logs --tail 1: %q", out)
	}
	e.ok("rm", "-f", "rotated")
	assertNoLeftovers(t, e, "")
}

// TestMonitorLoopHandsBack: a client that attaches to a container whose
// monitor is the C loop is served by the Go monitor (stdin, output, the
// exit code); when the client leaves the loop takes over again; an exit
// while in the loop is recorded, with --rm removing the container.
func TestMonitorLoopHandsBack(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	e.ok("run", "-d", "-i", "--name", "echo", "--network", "none", "busybox", "sh", "-c", "while read l; do echo got $l; done; exit 4")
	inLoop(t, e, "echo")
	r := e.run([]byte("hello\n"), "attach", "echo")
	if r.Code != 4 || r.Stdout != "got hello\n" {
		t.Errorf("attach: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if out := e.ok("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "echo"); out != "exited 4\n" {
		t.Errorf("after attach: %q", out)
	}
	if out := e.ok("logs", "echo"); out != "got hello\n" {
		t.Errorf("logs: %q", out)
	}
	// The monitor that attach resumed ends with its container.
	waitFor(t, func() bool { return monitorPidOf(t, e, "echo") == 0 })
	e.ok("rm", "echo")

	// A client that goes away: back to the loop, the container running.
	e.ok("run", "-d", "--name", "watched", "--network", "none", "busybox", "sleep", "1000")
	inLoop(t, e, "watched")
	attached := e.cmd("attach", "--no-stdin", "watched")
	if err := attached.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return !looping(monitorPidOf(t, e, "watched")) })
	_ = attached.Process.Kill()
	_ = attached.Wait()
	inLoop(t, e, "watched")
	if out := e.ok("inspect", "--format", "{{.State.Status}}", "watched"); out != "running\n" {
		t.Errorf("after the client left: %q", out)
	}
	e.ok("rm", "-f", "watched")

	// A terminal resized by a client (as docker attach does at once): the
	// loop takes over again after it, and the size reached the pty.
	e.ok("run", "-d", "-t", "--name", "tty", "--network", "none", "busybox", "sh", "-c", "until [ -e /tmp/go ]; do sleep 0.05; done; stty size; exec sleep 1000")
	inLoop(t, e, "tty")
	dir := filepath.Dir(strings.TrimSpace(e.ok("inspect", "--format", "{{.LogPath}}", "tty")))
	ctr, err := container.Open(dir, strings.Replace(dir, e.root, e.runroot, 1))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := attach.Dial(ctr.AttachPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := attach.New(conn).WriteResize(33, 77); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return !looping(monitorPidOf(t, e, "tty")) })
	conn.Close()
	inLoop(t, e, "tty")
	e.ok("exec", "tty", "touch", "/tmp/go")
	waitFor(t, func() bool { return strings.Contains(e.ok("logs", "tty"), "33 77") })
	e.ok("rm", "-f", "tty")

	// Exits while in the loop.
	e.ok("run", "-d", "--name", "exits", "--network", "none", "busybox", "sh", "-c", "until [ -e /tmp/go ]; do sleep 0.05; done; exit 7")
	e.ok("run", "-d", "--rm", "--name", "removed", "--network", "none", "busybox", "sh", "-c", "until [ -e /tmp/go ]; do sleep 0.05; done; exit 3")
	for _, name := range []string{"exits", "removed"} {
		inLoop(t, e, name)
	}
	for _, name := range []string{"exits", "removed"} {
		e.ok("exec", name, "touch", "/tmp/go")
	}
	if out := e.ok("wait", "exits"); out != "7\n" {
		t.Errorf("wait: %q", out)
	}
	// Its code from the events: a wait could start after it is gone.
	eventsUntil(t, e, "destroy", "--filter", "container=removed", "--format", "{{.Action}}")
	if out := e.ok("events", "--filter", "container=removed", "--filter", "event=die", "--until", unixArg(time.Now()),
		"--format", "{{.Actor.Attributes.exitCode}}"); out != "3\n" {
		t.Errorf("--rm container's exit: %q", out)
	}
	e.ok("rm", "exits")
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("left: %q", out)
	}
	assertNoLeftovers(t, e, "")
}
