package engine

import (
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPsSelection: ps's since/before/network filters, -n/-l (any state),
// -s and inspect --size; container prune's until and label filters.
func TestPsSelection(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	for _, n := range []string{"a", "b", "c"} {
		e.ok("create", "--name", n, "--network", "none", "--label", "n="+n, "busybox", "true")
	}
	names := func(args ...string) string {
		t.Helper()
		return strings.ReplaceAll(e.ok(append(append([]string{"ps"}, args...), "--format", "{{.Names}}")...), "\n", " ")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-a", "--filter", "since=a"}, "c b "},
		{[]string{"-a", "--filter", "before=c"}, "b a "},
		{[]string{"-a", "--filter", "since=a", "--filter", "before=c"}, "b "},
		{[]string{"--filter", "since=a"}, ""}, // created ones are not running
		{[]string{"-n", "2"}, "c b "},
		{[]string{"-l"}, "c "},
		{[]string{"-a", "--filter", "network=none"}, "c b a "},
		{[]string{"-a", "--filter", "network=berth"}, ""},
	} {
		if got := names(tc.args...); got != tc.want {
			t.Errorf("ps %v: %q, want %q", tc.args, got, tc.want)
		}
	}
	e.fail("no such container", "ps", "--filter", "since=nosuch")

	e.ok("run", "--name", "w", "--network", "none", "busybox", "sh", "-c", "head -c 300000 /dev/zero > /f")
	out := strings.Fields(e.ok("inspect", "--size", "--format", "{{.SizeRw}} {{.SizeRootFs}}", "w"))
	if len(out) != 2 {
		t.Fatalf("inspect --size: %q", out)
	}
	rw, _ := strconv.ParseInt(out[0], 10, 64)
	rootfs, _ := strconv.ParseInt(out[1], 10, 64)
	if rw < 300000 || rootfs < rw+1000000 {
		t.Errorf("SizeRw %d, SizeRootFs %d: want the 300 kB written, and busybox's MBs on top", rw, rootfs)
	}
	if got := e.ok("ps", "-l", "-s", "--format", "{{.Size}}"); !strings.Contains(got, "kB (virtual ") {
		t.Errorf("ps -s: %q", got)
	}
	if got := e.ok("inspect", "--format", "{{.SizeRw}}", "w"); got != "<nil>\n" {
		t.Errorf("inspect without --size shows SizeRw %q", got)
	}

	// Prune: label! keeps a; until=1h removes nothing made just now.
	e.fail(`invalid filter "bogus=1"`, "container", "prune", "--filter", "bogus=1")
	if got := e.ok("container", "prune", "--filter", "until=1h"); strings.Contains(got, "Deleted Containers") {
		t.Errorf("prune until=1h removed: %q", got)
	}
	e.ok("container", "prune", "--filter", "label!=n=a")
	if got := names("-a"); got != "a " {
		t.Errorf("after prune --filter label!=n=a: %q", got)
	}
	e.ok("container", "prune", "--filter", "label=n")
	if got := names("-a"); got != "" {
		t.Errorf("after prune --filter label=n: %q", got)
	}
}

// TestAPISelection: the API's list parameters (limit in any state, since,
// size), inspect size, attach logs=1, HostConfig.Init, import and prune
// filters, through the docker CLI where it has them.
func TestAPISelection(t *testing.T) {
	eachDockerCLI(t, func(t *testing.T, e *engine, s *service) {
		s.dockerOK(t, e, "run", "--name", "one", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2")
		s.dockerOK(t, e, "create", "--name", "two", "--network", "none", "--label", "keep=1", "busybox", "true")
		if got := s.dockerOK(t, e, "ps", "-n", "1", "--format", "{{.Names}}"); got != "two\n" {
			t.Errorf("docker ps -n 1: %q", got)
		}
		if got := s.dockerOK(t, e, "ps", "-a", "--filter", "since=one", "--format", "{{.Names}}"); got != "two\n" {
			t.Errorf("docker ps --filter since=one: %q", got)
		}
		if got := s.dockerOK(t, e, "ps", "-a", "-s", "--format", "{{.Size}}"); !strings.Contains(got, "(virtual ") {
			t.Errorf("docker ps -s: %q", got)
		}
		if got := s.dockerOK(t, e, "inspect", "--size", "--format", "{{.SizeRootFs}}", "one"); got == "0\n" || got == "<nil>\n" {
			t.Errorf("docker inspect --size: %q", got)
		}
		// attach logs=1 alone: the logged output, multiplexed, then EOF.
		// (One stream at a time: the two pipes' order in the log is the
		// monitor's reading order, not the writing order.)
		for _, want := range []string{"\x01\x00\x00\x00\x00\x00\x00\x04out\n", "\x02\x00\x00\x00\x00\x00\x00\x04err\n"} {
			stream := map[byte]string{1: "stdout", 2: "stderr"}[want[0]]
			if status, body := s.request(t, "POST", "/v1.41/containers/one/attach?logs=1&"+stream+"=1", ""); status != 200 || body != want {
				t.Errorf("attach logs=1 %s: %d %q, want %q", stream, status, body, want)
			}
		}
		if status, body := s.request(t, "POST", "/v1.41/containers/one/attach?stdout=1", ""); status != 400 {
			t.Errorf("attach without stream or logs: %d %s", status, body)
		}
		if got := s.dockerOK(t, e, "run", "--rm", "--init", "--network", "none", "busybox", "cat", "/proc/1/cmdline"); !strings.HasPrefix(got, "/dev/init\x00") {
			t.Errorf("docker run --init: pid 1 is %q", got)
		}

		// import: a container's export becomes an image with a CMD.
		tarball := filepath.Join(t.TempDir(), "rootfs.tar")
		s.dockerOK(t, e, "export", "-o", tarball, "one")
		if id := s.dockerOK(t, e, "import", "-c", `CMD ["echo", "imported"]`, "-m", "from a tar", tarball, "imp:1"); !strings.HasPrefix(id, "sha256:") {
			t.Errorf("docker import printed %q", id)
		}
		if got := s.dockerOK(t, e, "run", "--rm", "--network", "none", "imp:1"); got != "imported\n" {
			t.Errorf("run of the imported image: %q", got)
		}
		if status, body := s.request(t, "POST", "/v1.41/images/create?fromSrc=http://example.invalid/x.tar", ""); status != 400 || !strings.Contains(body, "fromSrc") {
			t.Errorf("import from a URL: %d %s", status, body)
		}
		if got := s.dockerOK(t, e, "container", "prune", "-f", "--filter", "label!=keep"); !strings.Contains(got, "Deleted Containers") {
			t.Errorf("docker container prune --filter label!=keep: %q", got)
		}
		if got := s.dockerOK(t, e, "ps", "-a", "--format", "{{.Names}}"); got != "two\n" {
			t.Errorf("after prune: %q", got)
		}
		if status, body := s.request(t, "POST", "/v1.41/containers/prune?filters="+url.QueryEscape(`{"nope":{"1":true}}`), ""); status != 400 {
			t.Errorf("prune with a bad filter: %d %s", status, body)
		}
	})
}
