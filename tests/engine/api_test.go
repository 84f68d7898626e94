package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// service is a `berth system service` of the engine's on a socket of its
// own, stopped at the test's end.
type service struct {
	// cli is the docker client the test drives it with.
	cli  string
	sock string
	// done is closed when the service has exited.
	done chan struct{}
	http *http.Client
}

func startService(t *testing.T, e *engine, args ...string) *service {
	t.Helper()
	sock := filepath.Join(e.dir, "api.sock")
	cmd := e.cmd(append([]string{"system", "service"}, append(args, "unix://"+sock)...)...)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		<-done
	})
	s := &service{sock: sock, done: done, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}}
	// The socket exists once the service listens.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return s
		}
		select {
		case <-done:
			t.Fatalf("the service exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service did not listen on %s: %s", sock, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// docker runs the docker CLI against the service.
func (s *service) docker(t *testing.T, e *engine, stdin string, args ...string) result {
	t.Helper()
	c := exec.Command(s.cli, args...)
	c.Env = append(os.Environ(), "DOCKER_HOST=unix://"+s.sock, "DOCKER_CONFIG="+e.DockerConfig)
	if stdin != "" {
		c.Stdin = strings.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	r := result{Stdout: out.String(), Stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return r
}

func (s *service) dockerOK(t *testing.T, e *engine, args ...string) string {
	t.Helper()
	r := s.docker(t, e, "", args...)
	if r.Code != 0 {
		t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// dockerCLIs are the docker clients here: Debian's docker.io (API 1.41)
// and, when another is first on PATH, that one (a current CLI).
func dockerCLIs(t *testing.T) []string {
	t.Helper()
	var out []string
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		out = append(out, "/usr/bin/docker")
	}
	if p, err := exec.LookPath("docker"); err == nil && p != "/usr/bin/docker" {
		out = append(out, p)
	}
	if len(out) == 0 {
		t.Skip("no docker CLI (contrib/install-deps.sh installs Debian's docker.io)")
	}
	return out
}

// request sends one API request and returns the status and body.
func (s *service) request(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://berth"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func TestAPIDockerCLI(t *testing.T) {
	for _, cli := range dockerCLIs(t) {
		t.Run(strings.ReplaceAll(cli, "/", "_"), func(t *testing.T) { testDockerCLI(t, cli) })
	}
}

func testDockerCLI(t *testing.T, cli string) {
	e := newEngine(t)
	withBusybox(t, e)
	s := startService(t, e, "--time", "0")
	s.cli = cli
	if out := s.dockerOK(t, e, "version", "--format", "{{.Server.Os}}"); out != "linux\n" {
		t.Errorf("docker version: %q", out)
	}
	// run in the foreground: output, exit code, --rm.
	if r := s.docker(t, e, "", "run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"); r.Code != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Errorf("docker run: exit %d, stdout %q, stderr %q; want 3, out, err", r.Code, r.Stdout, r.Stderr)
	}
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("docker run --rm left a container: %q", out)
	}
	// stdin reaches the container.
	if r := s.docker(t, e, "hello stdin\n", "run", "--rm", "-i", "--network", "none", "busybox", "cat"); r.Code != 0 || r.Stdout != "hello stdin\n" {
		t.Errorf("docker run -i: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	// Exit codes as with dockerd.
	if r := s.docker(t, e, "", "run", "--rm", "--network", "none", "busybox", "nosuchcmd"); r.Code != 127 {
		t.Errorf("docker run of a missing command: exit %d, want 127: %s", r.Code, r.Stderr)
	}
	if r := s.docker(t, e, "", "run", "--rm", "--network", "none", "nosuch.invalid/image"); r.Code != 125 {
		t.Errorf("docker run of a missing image: exit %d, want 125: %s", r.Code, r.Stderr)
	}
	// What the API makes, berth sees, and the other way round.
	id := strings.TrimSpace(s.dockerOK(t, e, "run", "-d", "--name", "web", "--network", "none", "busybox", "sh", "-c", "echo started; exec sleep 1000"))
	if out := e.ok("ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "web Up") {
		t.Errorf("berth ps after docker run -d: %q", out)
	}
	if out := s.dockerOK(t, e, "ps", "--format", "{{.ID}} {{.Names}} {{.Image}}"); out != id[:12]+" web busybox\n" {
		t.Errorf("docker ps: %q", out)
	}
	if out := s.dockerOK(t, e, "inspect", "--format", "{{.State.Status}} {{.Config.Image}}", "web"); out != "running busybox\n" {
		t.Errorf("docker inspect: %q", out)
	}
	waitFor(t, func() bool { return s.dockerOK(t, e, "logs", "web") == "started\n" })
	s.dockerOK(t, e, "stop", "-t", "0", "web")
	if out := e.ok("ps", "-a", "--format", "{{.Names}} {{.State}}"); out != "web exited\n" {
		t.Errorf("berth ps after docker stop: %q", out)
	}
	e.ok("run", "-d", "--name", "fromberth", "--network", "none", "busybox", "sleep", "1000")
	if out := s.dockerOK(t, e, "ps", "--format", "{{.Names}}"); out != "fromberth\n" {
		t.Errorf("docker ps does not show berth's container: %q", out)
	}
	e.ok("rm", "-f", "fromberth")
	if out := s.dockerOK(t, e, "ps", "-a", "--format", "{{.Names}}"); out != "web\n" {
		t.Errorf("docker ps -a after berth rm: %q", out)
	}
	s.dockerOK(t, e, "rm", "web")
	// Errors are docker's.
	if r := s.docker(t, e, "", "rm", "nosuch"); r.Code != 1 || !strings.Contains(r.Stderr, "No such container: nosuch") {
		t.Errorf("docker rm nosuch: exit %d, %q", r.Code, r.Stderr)
	}
	if out := s.dockerOK(t, e, "images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "busybox:latest") {
		t.Errorf("docker images: %q", out)
	}
	s.dockerOK(t, e, "tag", "busybox", "retagged:1")
	if out := e.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "retagged:1") {
		t.Errorf("berth images after docker tag: %q", out)
	}
	s.dockerOK(t, e, "rmi", "retagged:1")
}

func TestAPIBadRequests(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	s := startService(t, e, "--time", "0")
	for _, c := range []struct {
		method, path, body string
		status             int
		message            string
	}{
		{"GET", "/_ping", "", 200, "OK"},
		{"GET", "/v1.10/_ping", "", 400, "client version 1.10 is not supported"},
		{"GET", "/v1.41/containers/nosuch/json", "", 404, "No such container: nosuch"},
		{"GET", "/containers/..%2F..%2Fetc/json", "", 400, "invalid container name"},
		{"POST", "/containers/create", "{not json", 400, "invalid JSON body"},
		{"POST", "/containers/create", `{"Image": ""}`, 400, "an image is required"},
		{"POST", "/containers/create", `{"Image": "nosuch"}`, 404, "No such image: nosuch"},
		{"POST", "/containers/create", `{"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}`, 400, "HostConfig.RestartPolicy.Name"},
		{"POST", "/containers/create", `{"Image": "busybox", "Cmd": ["` + strings.Repeat("x", 5<<20) + `"]}`, 413, "request body over"},
		{"GET", "/images/nosuch/json", "", 404, "No such image: nosuch"},
		{"GET", "/nothing/here", "", 404, "page not found"},
	} {
		status, body := s.request(t, c.method, c.path, c.body)
		if status != c.status || !strings.Contains(body, c.message) {
			t.Errorf("%s %s: %d %q, want %d and %q", c.method, c.path, status, trim(body), c.status, c.message)
		}
		if status >= 400 {
			var m struct{ Message string }
			if json.Unmarshal([]byte(body), &m) != nil || m.Message == "" {
				t.Errorf("%s %s: the body is not docker's {\"message\": ...}: %q", c.method, c.path, trim(body))
			}
		}
	}
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("bad requests left containers: %q", out)
	}
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// TestAPIIdleExit: with --time the service ends once idle; containers it
// started keep running under their monitors.
func TestAPIIdleExit(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	s := startService(t, e, "--time", "1")
	if status, _ := s.request(t, "POST", "/containers/create?name=stays", `{"Image": "busybox", "Cmd": ["sleep", "1000"], "HostConfig": {"NetworkMode": "none"}}`); status != 201 {
		t.Fatalf("create: %d", status)
	}
	if status, body := s.request(t, "POST", "/containers/stays/start", ""); status != 204 {
		t.Fatalf("start: %d %s", status, body)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the service did not exit after 1 s idle")
	}
	if out := e.ok("ps", "--format", "{{.Names}} {{.State}}"); out != "stays running\n" {
		t.Errorf("after the service exited: %q", out)
	}
	e.ok("rm", "-f", "stays")
}
