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
	// dockerConfig, when set, is the docker CLI's DOCKER_CONFIG instead of
	// the engine's.
	dockerConfig string
	// env is added to the docker CLI's environment.
	env []string
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
	s := &service{sock: sock, done: done, http: unixClient(sock)}
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

// unixClient is an HTTP client of the socket sock.
func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
}

// dockerEnv is the docker CLI's environment for the service.
func (s *service) dockerEnv(e *engine) []string {
	conf := e.DockerConfig
	if s.dockerConfig != "" {
		conf = s.dockerConfig
	}
	return append(append(os.Environ(), "DOCKER_HOST=unix://"+s.sock, "DOCKER_CONFIG="+conf), s.env...)
}

// docker runs the docker CLI against the service.
func (s *service) docker(t *testing.T, e *engine, stdin string, args ...string) result {
	t.Helper()
	c := exec.Command(s.cli, args...)
	c.Env = s.dockerEnv(e)
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

// eachDockerCLI runs f as a subtest per docker CLI, each with its own
// engine that holds busybox and a service the CLI talks to.
func eachDockerCLI(t *testing.T, f func(t *testing.T, e *engine, s *service)) {
	for _, cli := range dockerCLIs(t) {
		t.Run(strings.ReplaceAll(cli, "/", "_"), func(t *testing.T) {
			e := newEngine(t)
			withBusybox(t, e)
			s := startService(t, e, "--time", "0")
			s.cli = cli
			f(t, e, s)
		})
	}
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
	eachDockerCLI(t, testDockerCLI)
}

func testDockerCLI(t *testing.T, e *engine, s *service) {
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
	// exec: output, exit code, stdin, a missing command, -d.
	if r := s.docker(t, e, "", "exec", "web", "sh", "-c", "echo in; echo err >&2; exit 4"); r.Code != 4 || r.Stdout != "in\n" || r.Stderr != "err\n" {
		t.Errorf("docker exec: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := s.docker(t, e, "piped\n", "exec", "-i", "web", "cat"); r.Code != 0 || r.Stdout != "piped\n" {
		t.Errorf("docker exec -i: exit %d, stdout %q", r.Code, r.Stdout)
	}
	if r := s.docker(t, e, "", "exec", "web", "nosuchcmd"); r.Code != 127 {
		t.Errorf("docker exec of a missing command: exit %d, want 127: %s", r.Code, r.Stderr)
	}
	s.dockerOK(t, e, "exec", "-d", "web", "sh", "-c", "echo detached > /tmp/d")
	waitFor(t, func() bool { return s.docker(t, e, "", "exec", "web", "cat", "/tmp/d").Stdout == "detached\n" })
	// pause, top, rename, export.
	s.dockerOK(t, e, "pause", "web")
	if out := e.ok("ps", "--format", "{{.Names}} {{.State}}"); out != "web paused\n" {
		t.Errorf("berth ps after docker pause: %q", out)
	}
	s.dockerOK(t, e, "unpause", "web")
	if out := s.dockerOK(t, e, "top", "web"); !strings.Contains(out, "sleep 1000") {
		t.Errorf("docker top: %q", out)
	}
	s.dockerOK(t, e, "rename", "web", "web2")
	if out := e.ok("ps", "--format", "{{.Names}}"); out != "web2\n" {
		t.Errorf("berth ps after docker rename: %q", out)
	}
	s.dockerOK(t, e, "rename", "web2", "web")
	if out := s.dockerOK(t, e, "export", "web"); !strings.Contains(out, "bin/busybox") {
		t.Errorf("docker export has no bin/busybox (%d bytes)", len(out))
	}
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

// TestAPICompose drives the service with each docker compose: Debian's
// docker-compose 1.29 and compose v2 (`make compose-v2` builds it into
// bin/): two services (one reaching the other by name), a named volume, a
// published port, an env file, depends_on, exec.
func TestAPICompose(t *testing.T) {
	var composes []string
	if p, err := exec.LookPath("docker-compose"); err == nil {
		composes = append(composes, p)
	}
	if p := filepath.Join(filepath.Dir(berthBin), "docker-compose-v2"); isFile(p) {
		composes = append(composes, p)
	}
	if len(composes) == 0 {
		t.Skip("no docker compose (contrib/install-deps.sh installs Debian's, make compose-v2 builds v2)")
	}
	for _, compose := range composes {
		t.Run(filepath.Base(compose), func(t *testing.T) { testCompose(t, compose) })
	}
}

func testCompose(t *testing.T, compose string) {
	e := newEngine(t)
	withBusybox(t, e)
	s := startService(t, e, "--time", "0")
	port := freePort(t)
	dir := buildContext(t, map[string]string{
		"app.env": "GREETING=hello-compose\n",
		"docker-compose.yml": `version: "3.8"
services:
  web:
    image: busybox
    command: ["httpd", "-f", "-p", "8080", "-h", "/srv"]
    volumes: ["data:/srv"]
    ports: ["127.0.0.1:` + port + `:8080"]
    # As PID 1, httpd and sleep ignore SIGTERM: down would wait 10 s.
    stop_signal: SIGKILL
    healthcheck:
      test: ["CMD", "pidof", "httpd"]
      interval: 200ms
  client:
    image: busybox
    depends_on:
      web:
        condition: service_healthy
    env_file: app.env
    volumes: ["data:/srv"]
    stop_signal: SIGKILL
    command: ["sh", "-c", "echo $$GREETING > /srv/index.html; until wget -q -O /tmp/got http://web:8080/; do sleep 0.2; done; cat /tmp/got; exec sleep 1000"]
volumes:
  data:
`})
	run := func(args ...string) string {
		t.Helper()
		c := exec.Command(compose, append([]string{"-p", "bt"}, args...)...)
		c.Dir = dir
		c.Env = s.dockerEnv(e)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(compose), strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("up", "-d")
	// up started the client only once web was healthy.
	web := strings.TrimSpace(e.ok("ps", "-q", "--filter", "label=com.docker.compose.service=web"))
	if out := e.ok("inspect", "--format", "{{.State.Health.Status}}", web); out != "healthy\n" {
		t.Errorf("web after up: %q", out)
	}
	if out := run("ps", "-q"); strings.Count(out, "\n") != 2 {
		t.Errorf("compose ps -q:\n%s", out)
	}
	for _, svc := range []string{"web", "client"} {
		if out := e.ok("ps", "-q", "--filter", "label=com.docker.compose.service="+svc); strings.Count(out, "\n") != 1 {
			t.Errorf("running containers of service %s in berth ps: %q", svc, out)
		}
	}
	// The client reached web by its service name and printed the page.
	waitFor(t, func() bool { return strings.Contains(run("logs", "client"), "hello-compose") })
	resp, err := http.Get("http://127.0.0.1:" + port + "/")
	if err != nil {
		t.Fatalf("the published port: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello-compose\n" {
		t.Errorf("the published port served %q", body)
	}
	if out := run("exec", "-T", "web", "cat", "/srv/index.html"); out != "hello-compose\n" {
		t.Errorf("compose exec: %q", out)
	}
	run("down", "-v")
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("down left containers: %q", out)
	}
	if out := e.ok("volume", "ls", "-q"); strings.Contains(out, "bt_data") {
		t.Errorf("down -v left the volume: %q", out)
	}
	if out := e.ok("network", "ls", "--format", "{{.Name}}"); strings.Contains(out, "bt_default") {
		t.Errorf("down left the network: %q", out)
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// TestAPIPythonSDK runs a short script with Debian's python3-docker.
func TestAPIPythonSDK(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import docker").Run() != nil {
		t.Skip("no python3-docker (contrib/install-deps.sh installs it)")
	}
	e := newEngine(t)
	withBusybox(t, e)
	s := startService(t, e, "--time", "0")
	script := `import sys, docker
c = docker.DockerClient(base_url="unix://" + sys.argv[1])
ctr = c.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo line $i; done"], detach=True, network_mode="none")
for chunk in ctr.logs(stream=True, follow=True):
    sys.stdout.write(chunk.decode())
print("exit", ctr.wait()["StatusCode"])
ctr.remove()
print("left", len(c.containers.list(all=True)))
`
	out, err := exec.Command("/usr/bin/python3", "-c", script, s.sock).CombinedOutput()
	if err != nil || string(out) != "line 1\nline 2\nline 3\nexit 0\nleft 0\n" {
		t.Errorf("python3-docker: %v\n%s", err, out)
	}
}
