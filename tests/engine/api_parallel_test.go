package engine

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-containers/berth/tests/registry"
)

// TestAPIParallelRuns starts 100 `docker run -d` at once through one
// service, on a network of the test's own: every one makes a running
// container with an address of its own, and removing them all at once
// leaves no mount, cgroup, monitor, network namespace or veth.
func TestAPIParallelRuns(t *testing.T) {
	const n = 100
	e := newEngine(t)
	withBusybox(t, e)
	s := startService(t, e, "--time", "0")
	s.cli = dockerCLIs(t)[0]
	netName := "par" + filepath.Base(e.dir)[len("berth-engine-test-"):]
	s.dockerOK(t, e, "network", "create", netName)
	bridge := strings.TrimSpace(e.ok("network", "inspect", "--format", `{{index .Options "com.docker.network.bridge.name"}}`, netName))

	ids := make([]string, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.docker(t, e, "", "run", "-d", "--name", fmt.Sprint("p", i), "--network", netName, "busybox", "sleep", "1000")
			if r.Code != 0 {
				errs[i] = fmt.Sprintf("docker run p%d: exit %d: %s", i, r.Code, r.Stderr)
			}
			ids[i] = strings.TrimSpace(r.Stdout)
		}()
	}
	wg.Wait()
	for _, msg := range errs {
		if msg != "" {
			t.Error(msg)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Each is running, with its own address on the network.
	out := s.dockerOK(t, e, append([]string{"inspect", "--format", "{{.State.Status}} {{(index .NetworkSettings.Networks \"" + netName + "\").IPAddress}}"}, ids...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != n {
		t.Fatalf("docker inspect of %d containers: %d lines", n, len(lines))
	}
	seen := map[string]int{}
	for i, l := range lines {
		status, ip, _ := strings.Cut(l, " ")
		if status != "running" || net.ParseIP(ip) == nil {
			t.Errorf("p%d: %q", i, l)
		}
		if j, dup := seen[ip]; dup {
			t.Errorf("p%d and p%d have the same address %s", j, i, ip)
		}
		seen[ip] = i
	}
	if got := strings.Count(e.ok("ps", "-q"), "\n"); got != n {
		t.Errorf("berth ps lists %d containers, want %d", got, n)
	}

	s.dockerOK(t, e, append([]string{"rm", "-f"}, ids...)...)
	if out := s.dockerOK(t, e, "ps", "-aq"); out != "" {
		t.Errorf("docker ps -aq after rm -f: %q", out)
	}
	for _, id := range ids {
		assertNoLeftovers(t, e, id)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.runroot, "network", "netns")); len(entries) > 0 {
		t.Errorf("network namespaces left: %d", len(entries))
	}
	if out, err := exec.Command("ip", "-o", "link", "show", "master", bridge).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("veths left on %s: %v %s", bridge, err, out)
	}
	s.dockerOK(t, e, "network", "rm", netName)
}

// TestAPIClientGone: clients that hang up in the middle of an attach and of
// a pull leave the service serving, the attached container running, and
// the store able to pull the same image whole.
func TestAPIClientGone(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref := reg.Ref("gone/busybox:1")
	reg.Push(t, ref, registry.BusyboxImage(t))
	e := newEngine(t)
	withBusybox(t, e)
	s := startService(t, e, "--time", "0")
	s.cli = dockerCLIs(t)[0]
	s.dockerOK(t, e, "run", "-d", "--name", "talker", "--network", "none", "busybox", "sh", "-c", "while :; do echo hi; sleep 0.1; done")

	// hangUp sends a request, reads the status line, and closes.
	hangUp := func(method, path string, header ...string) string {
		c, err := net.Dial("unix", s.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req := method + " " + path + " HTTP/1.1\r\nHost: berth\r\n" + strings.Join(header, "") + "\r\n"
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return line
	}
	if line := hangUp("POST", "/v1.41/containers/talker/attach?stream=1&stdout=1", "Connection: Upgrade\r\n", "Upgrade: tcp\r\n"); !strings.Contains(line, " 101 ") {
		t.Fatalf("attach: %q", line)
	}
	if line := hangUp("POST", "/v1.41/images/create?fromImage="+url.QueryEscape(ref)); !strings.Contains(line, " 200 ") {
		t.Fatalf("pull: %q", line)
	}

	if out := s.dockerOK(t, e, "inspect", "--format", "{{.State.Status}}", "talker"); out != "running\n" {
		t.Errorf("the container after its client hung up: %q", out)
	}
	if out := s.dockerOK(t, e, "logs", "--tail", "1", "talker"); out != "hi\n" {
		t.Errorf("logs after the attach hung up: %q", out)
	}
	s.dockerOK(t, e, "pull", ref)
	if out := s.dockerOK(t, e, "run", "--rm", "--network", "none", ref, "echo", "whole"); out != "whole\n" {
		t.Errorf("run of the image pulled after a hung-up pull: %q", out)
	}
	s.dockerOK(t, e, "rm", "-f", "talker")
}

// TestAPIAttachBeforeStart: a client that attaches to a created container
// and starts it as soon as its attach is answered (as `docker run` does)
// gets the output and the end of the stream, every time: the service
// registers the attach before it answers. logs=1 makes the answer come
// before the service has read the log, the widest window there was.
func TestAPIAttachBeforeStart(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	s := startService(t, e, "--time", "0")
	s.cli = dockerCLIs(t)[0]
	for i := range 10 {
		name := fmt.Sprint("early", i)
		s.dockerOK(t, e, "create", "--name", name, "--network", "none", "busybox", "echo", name)
		c, err := net.Dial("unix", s.sock)
		if err != nil {
			t.Fatal(err)
		}
		req := "POST /v1.41/containers/" + name + "/attach?logs=1&stream=1&stdout=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("attach %s: %v", name, err)
			}
			if line == "\r\n" {
				break
			}
		}
		if code, body := s.request(t, "POST", "/v1.41/containers/"+name+"/start", ""); code != 204 {
			t.Fatalf("start %s: %d %s", name, code, body)
		}
		// The stream ends when the container does; a lost attach never would.
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		out, err := io.ReadAll(br)
		c.Close()
		if err != nil || !strings.Contains(string(out), name+"\n") {
			t.Fatalf("attach to %s before its start: %q, %v", name, out, err)
		}
		s.dockerOK(t, e, "rm", name)
	}
}
