package engine

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartAttachRestartPrune covers start -a, attach, restart, ps
// filters and container prune.
func TestStartAttachRestartPrune(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	e.ok("create", "--name", "once", "--label", "kind=job", "busybox", "sh", "-c", "echo started; exit 4")
	r := e.run(nil, "start", "-a", "once")
	if r.Code != 4 || r.Stdout != "started\n" {
		t.Errorf("start -a: %+v", r)
	}
	// -i with a container made with -i: input reaches it.
	e.ok("create", "-i", "--name", "reader", "busybox", "sh", "-c", "read line; echo got $line")
	if r := e.run([]byte("hello\n"), "start", "-a", "-i", "reader"); r.Code != 0 || r.Stdout != "got hello\n" {
		t.Errorf("start -a -i: %+v", r)
	}
	// attach to a running container sees its output and its exit code.
	e.ok("run", "-d", "--name", "talker", "busybox", "sh", "-c", "sleep 0.5; echo late; exit 6")
	att := e.cmd("attach", "talker")
	out, _ := att.StdoutPipe()
	if err := att.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "late" {
		t.Errorf("attach output: %q", sc.Text())
	}
	var ee *exec.ExitError
	if err := att.Wait(); !asExit(err, &ee) || ee.ExitCode() != 6 {
		t.Errorf("attach exit: %v", err)
	}
	e.fail("is not running", "attach", "talker")

	// restart: a new start of the same container.
	e.ok("run", "-d", "--name", "svc", "--network", "none", "busybox", "sleep", "1000")
	pid1 := e.ok("inspect", "--format", "{{.State.Pid}}", "svc")
	e.ok("restart", "-t", "0", "svc")
	if pid2 := e.ok("inspect", "--format", "{{.State.Pid}} {{.State.Status}}", "svc"); strings.HasPrefix(pid2, strings.TrimSpace(pid1)+" ") || !strings.HasSuffix(pid2, " running\n") {
		t.Errorf("restart: pid %q then %q", pid1, pid2)
	}

	// ps filters.
	if out := e.ok("ps", "-a", "--filter", "label=kind=job", "--format", "{{.Names}}"); out != "once\n" {
		t.Errorf("label filter: %q", out)
	}
	if out := e.ok("ps", "--filter", "status=exited", "--filter", "exited=4", "--format", "{{.Names}}"); out != "once\n" {
		t.Errorf("status+exited filter: %q", out)
	}
	if out := e.ok("ps", "--filter", "name=sv", "-q"); len(strings.TrimSpace(out)) != 12 {
		t.Errorf("name filter: %q", out)
	}
	// As docker: without -a (or a status filter) only running containers,
	// whatever the other filters match.
	if out := e.ok("ps", "--filter", "name=once", "--format", "{{.Names}}"); out != "" {
		t.Errorf("ps --filter name=once lists an exited container: %q", out)
	}
	if out := e.ok("ps", "--filter", "label=kind=job", "--format", "{{.Names}}"); out != "" {
		t.Errorf("ps --filter label=... lists an exited container: %q", out)
	}
	if out := e.ok("ps", "-a", "--filter", "name=once", "--format", "{{.Names}}"); out != "once\n" {
		t.Errorf("ps -a --filter name=once: %q", out)
	}
	// Names are regular expressions, as docker's, with or without "/".
	for _, f := range []string{"name=^once$", "name=^/once$", "name=o.c"} {
		if out := e.ok("ps", "-a", "--filter", f, "--format", "{{.Names}}"); out != "once\n" {
			t.Errorf("ps -a --filter %s: %q", f, out)
		}
	}
	e.fail("invalid filter", "ps", "--filter", "name=(")
	e.fail("invalid filter", "ps", "--filter", "colour=red")
	// Full IDs are what other commands take back.
	if out := strings.TrimSpace(e.ok("ps", "-q", "--no-trunc")); len(out) != 64 {
		t.Errorf("ps -q --no-trunc: %q", out)
	} else if got := e.ok("inspect", "--format", "{{.Name}}", out); got != "/svc\n" {
		t.Errorf("inspect by full ID: %q", got)
	}

	// prune removes what is stopped, not what runs.
	out2 := e.ok("container", "prune", "-f")
	// docker's: a header, once, reader and talker, a blank line, the total
	if strings.Count(out2, "\n") != 6 || !strings.HasPrefix(out2, "Deleted Containers:\n") || !strings.Contains(out2, "\n\nTotal reclaimed space: ") {
		t.Errorf("prune: %q", out2)
	}
	if out := e.ok("ps", "-a", "--format", "{{.Names}}"); out != "svc\n" {
		t.Errorf("after prune: %q", out)
	}
	e.ok("rm", "-f", "svc")
}

// TestBundleCommand writes a standalone bundle that berth-runtime and runc
// both run by hand.
func TestBundleCommand(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	dir := filepath.Join(t.TempDir(), "b")
	e.ok("bundle", "--network", "none", "busybox", dir, "sh", "-c", "echo from-bundle $(cat /etc/hostname)")
	for _, f := range []string{"config.json", "rootfs/bin/busybox", "hosts", "resolv.conf", "hostname"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("bundle lacks %s: %v", f, err)
		}
	}
	runtimeBin := filepath.Join(filepath.Dir(berthBin), "berth-runtime")
	for _, rt := range []string{runtimeBin, "runc"} {
		if _, err := exec.LookPath(rt); err != nil {
			continue
		}
		out, err := exec.Command(rt, "--root", t.TempDir(), "run", "--bundle", dir, "bundle-test").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "from-bundle ") {
			t.Errorf("%s run: %v: %s", rt, err, out)
		}
	}
	e.fail("is not empty", "bundle", "busybox", dir)
	if out := e.ok("ps", "-a", "-q"); out != "" {
		t.Errorf("bundle left containers: %q", out)
	}
}
