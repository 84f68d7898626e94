package engine

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/tests/registry"
)

// TestAPIFiles drives, with each docker CLI, what works on a container's
// files and on images: cp both ways, diff, stats, events, system df,
// history, save and load, and the prunes.
func TestAPIFiles(t *testing.T) {
	eachDockerCLI(t, testAPIFiles)
}

func testAPIFiles(t *testing.T, e *engine, s *service) {
	since := fmt.Sprint(time.Now().Unix() - 1)
	s.dockerOK(t, e, "run", "-d", "--name", "box", "--network", "none", "busybox", "sleep", "1000")

	// cp into the container (a file, then a directory's contents) and out.
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("from host\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(host, "d", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "d", "sub", "g"), []byte("deep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.dockerOK(t, e, "cp", filepath.Join(host, "f"), "box:/tmp/")
	s.dockerOK(t, e, "cp", filepath.Join(host, "d"), "box:/tmp/newdir")
	if out := s.dockerOK(t, e, "exec", "box", "sh", "-c", "stat -c '%a %u' /tmp/f; cat /tmp/f /tmp/newdir/sub/g"); out != "640 0\nfrom host\ndeep\n" {
		t.Errorf("after docker cp into the container: %q", out)
	}
	s.dockerOK(t, e, "cp", "box:/etc/passwd", filepath.Join(host, "passwd"))
	if got := readHost(t, filepath.Join(host, "passwd")); !strings.HasPrefix(got, "root:") {
		t.Errorf("docker cp out of the container: %q", got)
	}
	s.dockerOK(t, e, "cp", "box:/tmp/newdir/.", filepath.Join(host, "contents"))
	if got := readHost(t, filepath.Join(host, "contents", "sub", "g")); got != "deep\n" {
		t.Errorf("docker cp of a directory's contents: %q", got)
	}
	if r := s.docker(t, e, "", "cp", "box:/nosuch", host); r.Code == 0 || !strings.Contains(r.Stderr, "/nosuch") {
		t.Errorf("docker cp of a missing path: exit %d, %q", r.Code, r.Stderr)
	}
	// diff shows what cp added.
	if out := s.dockerOK(t, e, "diff", "box"); !strings.Contains(out, "A /tmp/f\n") || !strings.Contains(out, "C /tmp\n") {
		t.Errorf("docker diff: %q", out)
	}
	if out := e.ok("diff", "box"); !strings.Contains(out, "A /tmp/newdir/sub/g\n") {
		t.Errorf("berth diff: %q", out)
	}

	// stats: a one-shot table with the container, and the raw sample with
	// its predecessor, so that CPU use can be computed.
	if out := s.dockerOK(t, e, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "box"); out != "box 1\n" {
		t.Errorf("docker stats --no-stream: %q", out)
	}
	status, body := s.request(t, "GET", "/containers/box/stats?stream=0", "")
	var st struct {
		CPU struct {
			Usage struct {
				Total uint64 `json:"total_usage"`
			} `json:"cpu_usage"`
			System uint64 `json:"system_cpu_usage"`
		} `json:"cpu_stats"`
		Pre struct {
			System uint64 `json:"system_cpu_usage"`
		} `json:"precpu_stats"`
		Memory struct{ Usage, Limit uint64 } `json:"memory_stats"`
	}
	if err := json.Unmarshal([]byte(body), &st); status != 200 || err != nil || st.CPU.Usage.Total == 0 || st.CPU.System <= st.Pre.System || st.Pre.System == 0 || st.Memory.Usage == 0 || st.Memory.Limit < st.Memory.Usage {
		t.Errorf("stats?stream=0: %d %v %s", status, err, body)
	}

	// events: bounded by since and until, filtered, and followed.
	evs := s.dockerOK(t, e, "events", "--since", since, "--until", fmt.Sprint(time.Now().Unix()+1), "--filter", "container=box", "--format", "{{.Type}} {{.Action}}")
	if !strings.Contains(evs, "container create\n") || !strings.Contains(evs, "container start\n") {
		t.Errorf("docker events --since --until: %q", evs)
	}
	// Followed: the answer's head comes once the service reads the log,
	// so the die of a container run after it is in the stream.
	req, err := http.NewRequest("GET", `http://berth/events?filters={"event":{"die":true}}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s.dockerOK(t, e, "run", "-d", "--name", "dies", "--network", "none", "busybox", "true")
	var ev struct {
		Action string
		Actor  struct{ Attributes map[string]string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil || ev.Action != "die" || ev.Actor.Attributes["name"] != "dies" {
		t.Errorf("GET /events followed: %v %+v", err, ev)
	}

	// system df lists the four kinds.
	if out := s.dockerOK(t, e, "system", "df", "--format", "{{.Type}} {{.TotalCount}}"); !strings.Contains(out, "Images 1\n") || !strings.Contains(out, "Containers 2\n") || !strings.Contains(out, "Local Volumes 0\n") || !strings.Contains(out, "Build Cache") {
		t.Errorf("docker system df: %q", out)
	}
	bbID := strings.TrimPrefix(strings.TrimSpace(e.ok("inspect", "--format", "{{.Id}}", "busybox")), "sha256:")
	if out := s.dockerOK(t, e, "history", "--format", "{{.ID}} {{.CreatedBy}}", "busybox"); !strings.HasPrefix(out, bbID[:12]+" ") {
		t.Errorf("docker history: %q, want the image %s first", out, bbID[:12])
	}

	// save, rmi, load: the same image ID comes back.
	s.dockerOK(t, e, "tag", "busybox", "saved:1")
	id := strings.TrimSpace(s.dockerOK(t, e, "inspect", "--format", "{{.Id}}", "saved:1"))
	archive := filepath.Join(host, "saved.tar")
	s.dockerOK(t, e, "save", "-o", archive, "saved:1")
	s.dockerOK(t, e, "rmi", "saved:1")
	if out := s.dockerOK(t, e, "load", "-i", archive); !strings.Contains(out, "Loaded image: docker.io/library/saved:1") {
		t.Errorf("docker load: %q", out)
	}
	if out := e.ok("inspect", "--format", "{{.Id}}", "saved:1"); strings.TrimSpace(out) != id {
		t.Errorf("loaded image %q, saved %q", out, id)
	}
	if r := s.docker(t, e, "not a tar", "load"); r.Code == 0 {
		t.Errorf("docker load of garbage: exit 0")
	}

	// The prunes: stopped containers go, running ones stay; images in use stay.
	s.dockerOK(t, e, "stop", "-t", "0", "dies")
	if out := s.dockerOK(t, e, "container", "prune", "-f"); !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("docker container prune: %q", out)
	}
	if out := e.ok("ps", "-a", "--format", "{{.Names}}"); out != "box\n" {
		t.Errorf("after docker container prune: %q", out)
	}
	s.dockerOK(t, e, "rmi", "saved:1")
	s.dockerOK(t, e, "image", "prune", "-a", "-f")
	if out := e.ok("images", "--format", "{{.Repository}}"); out != "localhost/busybox\n" {
		t.Errorf("docker image prune -a removed the image in use: %q", out)
	}
	s.dockerOK(t, e, "rm", "-f", "box")
}

// TestAPIArchiveHostile puts tars that try to leave the container's root:
// nothing lands outside it.
func TestAPIArchiveHostile(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	s := startService(t, e, "--time", "0")
	if status, body := s.request(t, "POST", "/containers/create?name=target", `{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}`); status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	outside := filepath.Join(e.dir, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, tarball := range map[string][]byte{
		"dotdot":   makeTar(t, []tarFile{{name: "../../../../../../" + outside[1:] + "/escaped", body: "x", mode: 0o644}}),
		"absolute": makeTar(t, []tarFile{{name: outside + "/escaped", body: "x", mode: 0o644}}),
		"symlink":  makeTar(t, []tarFile{{name: "link", link: outside, mode: 0o777}, {name: "link/escaped", body: "x", mode: 0o644}}),
	} {
		req, err := http.NewRequest("PUT", "http://berth/containers/target/archive?path=/tmp", strings.NewReader(string(tarball)))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if entries, _ := os.ReadDir(outside); len(entries) != 0 {
			t.Errorf("%s: PUT archive (status %d) wrote outside the container: %v", name, resp.StatusCode, entries)
		}
	}
	if status, _ := s.request(t, "PUT", "/containers/target/archive?path=/nosuchdir", "x"); status != 400 && status != 404 {
		t.Errorf("PUT archive to a missing directory: %d", status)
	}
	if status, _ := s.request(t, "HEAD", "/containers/target/archive?path=/nosuch", ""); status != 404 {
		t.Errorf("HEAD archive of a missing path: %d, want 404", status)
	}
	if status, body := s.request(t, "GET", "/containers/target/archive", ""); status != 400 || !strings.Contains(body, "path") {
		t.Errorf("GET archive without path: %d %s", status, body)
	}
	req, _ := http.NewRequest("HEAD", "http://berth/containers/target/archive?path=/bin/sh", nil)
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var st struct {
		Name, LinkTarget string
		Mode             os.FileMode
	}
	raw, _ := base64.StdEncoding.DecodeString(resp.Header.Get("X-Docker-Container-Path-Stat"))
	if err := json.Unmarshal(raw, &st); err != nil || st.Name != "sh" || st.Mode&os.ModeSymlink == 0 || st.LinkTarget == "" {
		t.Errorf("path stat of /bin/sh: %v %s", err, raw)
	}
	e.ok("rm", "target")
}

// TestAPIBuild builds through POST /build with each docker CLI's classic
// builder: a COPY, a RUN, a build arg; the image runs; a failing RUN fails
// the build.
func TestAPIBuild(t *testing.T) {
	eachDockerCLI(t, func(t *testing.T, e *engine, s *service) {
		dir := buildContext(t, map[string]string{
			"Dockerfile":    "FROM busybox\nARG WHO=nobody\nCOPY hello.txt /hello.txt\nRUN echo \"built for $WHO\" >> /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n",
			"hello.txt":     "hello\n",
			"ignored":       "never sent\n",
			".dockerignore": "ignored\n",
		})
		s.env = []string{"DOCKER_BUILDKIT=0"}
		out := s.dockerOK(t, e, "build", "--network", "none", "--build-arg", "WHO=api", "-t", "built:1", "--iidfile", filepath.Join(dir, "iid"), dir)
		if !strings.Contains(out, "Successfully tagged built:1") {
			t.Errorf("docker build: %q", out)
		}
		iid := readHost(t, filepath.Join(dir, "iid"))
		if got := strings.TrimSpace(e.ok("inspect", "--format", "{{.Id}}", "built:1")); "sha256:"+strings.TrimPrefix(got, "sha256:") != iid {
			t.Errorf("--iidfile %q, image %q", iid, got)
		}
		if r := s.docker(t, e, "", "run", "--rm", "--network", "none", "built:1"); r.Stdout != "hello\nbuilt for api\n" {
			t.Errorf("docker run of the built image: %q %q", r.Stdout, r.Stderr)
		}
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nRUN exit 7\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := s.docker(t, e, "", "build", "--network", "none", dir); r.Code == 0 || !strings.Contains(r.Stderr+r.Stdout, "7") {
			t.Errorf("docker build of a failing RUN: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
		}
		noBuildLeftovers(t, e)
	})
}

// TestAPIRegistry logs in through POST /auth and pushes with the
// credentials the docker CLI sends (X-Registry-Auth): the service's own
// credentials file stays empty.
func TestAPIRegistry(t *testing.T) {
	reg := registry.Start(t, registry.Options{Auth: true})
	eachDockerCLI(t, func(t *testing.T, e *engine, s *service) {
		s.dockerConfig = t.TempDir()
		if r := s.docker(t, e, "wrong\n", "login", "-u", reg.User, "--password-stdin", reg.Host); r.Code == 0 {
			t.Errorf("docker login with a wrong password: exit 0")
		}
		if r := s.docker(t, e, reg.Password+"\n", "login", "-u", reg.User, "--password-stdin", reg.Host); r.Code != 0 || !strings.Contains(r.Stdout, "Login Succeeded") {
			t.Fatalf("docker login: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
		}
		ref := reg.Ref("api/" + strings.Trim(strings.ReplaceAll(s.cli, "/", "-"), "-") + ":1")
		s.dockerOK(t, e, "tag", "busybox", ref)
		if out := s.dockerOK(t, e, "push", ref); !strings.Contains(out, "digest: sha256:") {
			t.Errorf("docker push: %q", out)
		}
		if _, err := os.Stat(filepath.Join(e.DockerConfig, "config.json")); err == nil {
			t.Errorf("the service stored credentials")
		}
		s.dockerOK(t, e, "rmi", ref)
		s.dockerOK(t, e, "pull", ref)
		if out := e.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, ref) {
			t.Errorf("after docker pull: %q", out)
		}
	})
}

// TestAPISocketActivation checks the unit files of contrib/systemd and
// starts the service as systemd would, with the socket passed in.
func TestAPISocketActivation(t *testing.T) {
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("no systemd-socket-activate")
	}
	units := filepath.Join("..", "..", "contrib", "systemd")
	for _, dir := range []string{units, filepath.Join(units, "user")} {
		sock, err := os.ReadFile(filepath.Join(dir, "berth.socket"))
		if err != nil {
			t.Fatal(err)
		}
		svc, err := os.ReadFile(filepath.Join(dir, "berth.service"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(sock), "ListenStream=%t/berth/berth.sock\n") || !strings.Contains(string(svc), " system service ") {
			t.Errorf("%s: the units do not name berth's socket and service", dir)
		}
		if verify, err := exec.LookPath("systemd-analyze"); err == nil {
			// The service names the installed binary: verify a copy that
			// names the one under test.
			tmp := t.TempDir()
			os.WriteFile(filepath.Join(tmp, "berth.socket"), sock, 0o644)
			os.WriteFile(filepath.Join(tmp, "berth.service"), []byte(strings.ReplaceAll(string(svc), "/usr/local/bin/berth", berthBin)), 0o644)
			if out, err := exec.Command(verify, "verify", filepath.Join(tmp, "berth.socket"), filepath.Join(tmp, "berth.service")).CombinedOutput(); err != nil {
				t.Errorf("systemd-analyze verify %s: %v\n%s", dir, err, out)
			}
		}
	}

	e := newEngine(t)
	withBusybox(t, e)
	sockPath := filepath.Join(e.dir, "activated.sock")
	cmd := e.command(activate, append([]string{"-l", sockPath, berthBin, "--root", e.root, "--runroot", e.runroot, "--config", e.Config}, "system", "service", "--time", "0", "unix:///nonexistent/dir/not-used.sock")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	s := &service{sock: sockPath, http: unixClient(sockPath)}
	waitFor(t, func() bool { _, err := os.Stat(sockPath); return err == nil })
	// The first request starts the service on the passed socket (the URI
	// given, in a directory that does not exist, is not used).
	if status, body := s.request(t, "GET", "/version", ""); status != 200 || !strings.Contains(body, `"Os":"linux"`) {
		t.Errorf("GET /version on the activated socket: %d %s", status, body)
	}
}
