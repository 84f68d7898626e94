package engine

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/tests/registry"
	"github.com/berth-containers/berth/tests/terminal"
)

// buildContext writes files (path: content) into a new context directory.
func buildContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, data := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// imageConfig is the part of an image's config the build tests compare.
type imageConfig struct {
	Cmd, Entrypoint, Env, Shell, OnBuild []string
	WorkingDir, User, StopSignal         string
	Labels                               map[string]string
	ExposedPorts, Volumes                map[string]struct{}
	Healthcheck                          *struct {
		Test                             []string
		Interval, Timeout, StartInterval int64
		Retries                          int
	}
}

func (e *engine) config(ref string) imageConfig {
	e.t.Helper()
	var c imageConfig
	out := e.ok("image", "inspect", "--format", "{{json .Config}}", ref)
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		e.t.Fatalf("config of %s: %v\n%s", ref, err, out)
	}
	return c
}

// noBuildLeftovers checks that no build layer, mount or runtime container
// is left in the engine's store.
func noBuildLeftovers(t *testing.T, e *engine) {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(e.root))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if strings.HasSuffix(m.Mountpoint, "/merged") {
			t.Errorf("a layer is still mounted: %s", m.Mountpoint)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(e.runroot, "build"))
	if len(entries) > 0 {
		t.Errorf("build bundles left: %v", entries)
	}
	if out, err := e.command(filepath.Join(filepath.Dir(berthBin), "berth-runtime"), "--root", filepath.Join(e.runroot, "runtime"), "list", "-q").CombinedOutput(); err == nil && strings.TrimSpace(string(out)) != "" {
		t.Errorf("runtime containers left: %s", out)
	}
	layers, err := filepath.Glob(filepath.Join(e.root, "overlay-layers", "layers.json"))
	if err == nil && len(layers) == 1 {
		data, _ := os.ReadFile(layers[0])
		if bytes.Contains(data, []byte(`"berth-build-`)) {
			t.Errorf("a build's writable layer is left:\n%s", data)
		}
	}
}

func TestBuildInstructions(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	dir := buildContext(t, map[string]string{
		// A backtick is the escape (written ~ here, in Go's raw string).
		"Dockerfile": strings.ReplaceAll(`# escape=~
ARG TAG=latest
FROM busybox:${TAG} AS base
ARG GREETING=hello
ARG EMPTY
ENV NAME=berth WHO=${GREETING:-nobody} ALT=${EMPTY:+set}
LABEL org.example.one=1 two="two words"
EXPOSE 80 53/udp 8000-8001
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=2s --start-interval=300ms --retries=4 CMD wget -q localhost || exit 1
ONBUILD RUN echo triggered > /tmp/onbuild.txt
WORKDIR /app
WORKDIR sub
RUN echo "$WHO $NAME" > greeting.txt && ~
    echo "[$ALT]" >> greeting.txt
COPY --chown=12:34 --chmod=0640 files/ /copied/
COPY <<EOF /inline.txt
inline ${NAME}
EOF
RUN <<EOT
echo one > /script.txt
echo two >> /script.txt
EOT
SHELL ["/bin/sh", "-ec"]
USER 1000:1000
CMD ["greeting.txt"]
ENTRYPOINT ["cat"]
`, "~", "`"),
		"files/a.txt":   "a\n",
		"files/d/b.txt": "b\n",
	})
	e.ok("build", "-t", "instr", dir)
	c := e.config("instr")
	// An ENTRYPOINT keeps a CMD of the same stage.
	if strings.Join(c.Cmd, " ") != "greeting.txt" || strings.Join(c.Entrypoint, " ") != "cat" {
		t.Errorf("Cmd %q Entrypoint %q", c.Cmd, c.Entrypoint)
	}
	if c.WorkingDir != "/app/sub" || c.User != "1000:1000" || c.StopSignal != "SIGINT" {
		t.Errorf("WorkingDir %q User %q StopSignal %q", c.WorkingDir, c.User, c.StopSignal)
	}
	if env := strings.Join(c.Env, "|"); !strings.Contains(env, "|NAME=berth|WHO=hello|ALT=") || strings.Contains(env, "GREETING") {
		t.Errorf("Env %q: want NAME, WHO and an empty ALT, and no ARG", c.Env)
	}
	if got := e.ok("run", "--rm", "instr"); got != "hello berth\n[]\n" {
		t.Errorf("the image's own command printed %q", got)
	}
	if c.Labels["org.example.one"] != "1" || c.Labels["two"] != "two words" {
		t.Errorf("Labels %v", c.Labels)
	}
	for _, p := range []string{"80/tcp", "53/udp", "8000/tcp", "8001/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("ExposedPorts %v lacks %s", c.ExposedPorts, p)
		}
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("Volumes %v", c.Volumes)
	}
	if h := c.Healthcheck; h == nil || strings.Join(h.Test, "|") != "CMD-SHELL|wget -q localhost || exit 1" || h.Interval != 5e9 || h.Timeout != 2e9 || h.StartInterval != 3e8 || h.Retries != 4 {
		t.Errorf("Healthcheck %+v", c.Healthcheck)
	}
	if strings.Join(c.Shell, " ") != "/bin/sh -ec" || len(c.OnBuild) != 1 || c.OnBuild[0] != "RUN echo triggered > /tmp/onbuild.txt" {
		t.Errorf("Shell %q OnBuild %q", c.Shell, c.OnBuild)
	}
	out := e.ok("run", "--rm", "--user", "0", "--entrypoint", "sh", "instr", "-c",
		"cat greeting.txt /inline.txt /script.txt; stat -c '%u:%g %a %n' /copied/a.txt /copied/d /copied/d/b.txt; ls -ld /app/sub | cut -c1-10")
	want := "hello berth\n[]\ninline berth\none\ntwo\n12:34 640 /copied/a.txt\n12:34 640 /copied/d\n12:34 640 /copied/d/b.txt\ndrwxr-xr-x\n"
	if out != want {
		t.Errorf("files of the image:\n%s\nwant:\n%s", out, want)
	}

	// The image as a base: its trigger runs (as the base's user, at once),
	// and is not inherited.
	child := buildContext(t, map[string]string{"Dockerfile": "FROM instr\nUSER 0\nRUN cat /tmp/onbuild.txt\nENTRYPOINT [\"/bin/sh\", \"-c\"]\n"})
	e.ok("build", "-t", "child", child)
	cc := e.config("child")
	if h := cc.Healthcheck; h == nil || h.StartInterval != 3e8 {
		t.Errorf("child: the base's Healthcheck %+v, want its StartInterval", h)
	}
	if got := e.ok("create", "--name", "child-hc", "child"); got == "" {
		t.Error("create printed no ID")
	}
	if got := e.ok("inspect", "--format", "{{.Config.Healthcheck.StartInterval}}", "child-hc"); got != "300ms\n" {
		t.Errorf("container of child: StartInterval %q", got)
	}
	e.ok("rm", "child-hc")
	if len(cc.OnBuild) != 0 || len(cc.Cmd) != 0 {
		t.Errorf("child: OnBuild %q, Cmd %q (a new ENTRYPOINT drops an inherited CMD)", cc.OnBuild, cc.Cmd)
	}
	if got := e.ok("run", "--rm", "child", "cat /tmp/onbuild.txt"); got != "triggered\n" {
		t.Errorf("ONBUILD trigger's file: %q", got)
	}
	noBuildLeftovers(t, e)
}

func TestBuildCache(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	dir := buildContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nRUN echo step1 > /s1\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy\n",
		"app.txt":    "v1\n",
	})
	first := strings.TrimSpace(e.ok("build", "-q", "-t", "c:1", dir))
	again := e.ok("build", "-t", "c:2", dir)
	if n := strings.Count(again, "--> Using cache"); n != 3 {
		t.Errorf("a second build hit the cache %d times, want 3:\n%s", n, again)
	}
	if !strings.Contains(again, strings.TrimPrefix(first, "sha256:")) {
		t.Errorf("the same build made another image: %s\n%s", first, again)
	}
	// A new mtime is no change; new content is.
	later := mustTouch(t, filepath.Join(dir, "app.txt"))
	if n := strings.Count(e.ok("build", dir), "--> Using cache"); n != 3 {
		t.Errorf("after touch (%v): %d cache hits, want 3", later, n)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.txt"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	edited := e.ok("build", "-t", "c:3", dir)
	if n := strings.Count(edited, "--> Using cache"); n != 1 {
		t.Errorf("after an edit: %d cache hits, want 1 (the RUN before the COPY):\n%s", n, edited)
	}
	if got := e.ok("run", "--rm", "c:3", "cat", "/copy"); got != "v2\n" {
		t.Errorf("the edited build copied %q", got)
	}
	if n := strings.Count(e.ok("build", "--no-cache", dir), "Using cache"); n != 0 {
		t.Errorf("--no-cache hit the cache %d times", n)
	}
}

// TestBuildCachePrune: a stage's layers that no image holds are the build
// cache; system df counts them and builder prune removes them.
func TestBuildCachePrune(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	dir := buildContext(t, map[string]string{"Dockerfile": "FROM busybox AS tool\nRUN echo made > /made\nFROM busybox\nCOPY --from=tool /made /made\n"})
	e.ok("build", "-t", "pruned", dir)
	df := e.ok("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
	if !strings.Contains(df, "Build Cache 1") {
		t.Errorf("system df, want the tool stage's layer as build cache:\n%s", df)
	}
	if n := strings.Count(e.ok("build", dir), "Using cache"); n != 2 {
		t.Errorf("rebuild: %d cache hits, want 2", n)
	}
	if out := e.ok("builder", "prune", "-f"); !strings.Contains(out, "Deleted 1 cached layers") {
		t.Errorf("builder prune: %s", out)
	}
	if df := e.ok("system", "df", "--format", "{{.Type}} {{.TotalCount}}"); !strings.Contains(df, "Build Cache 0") {
		t.Errorf("after builder prune:\n%s", df)
	}
	if got := e.ok("run", "--rm", "pruned", "cat", "/made"); got != "made\n" {
		t.Errorf("the image lost its layer to prune: %q", got)
	}
	if n := strings.Count(e.ok("build", dir), "Using cache"); n != 0 {
		t.Errorf("after prune: %d cache hits, want none", n)
	}
}

func mustTouch(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	later := fi.ModTime().Add(3600e9)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	return later.String()
}

func TestBuildMultiStage(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	dir := buildContext(t, map[string]string{"Dockerfile": `FROM busybox AS one
RUN echo one > /one.txt
FROM busybox AS two
RUN echo two > /two.txt
FROM busybox AS unused
RUN exit 9
FROM busybox
COPY --from=one /one.txt /
COPY --from=1 /two.txt /
COPY --from=busybox /bin/busybox /bb
`})
	out := e.ok("build", "-t", "multi", dir)
	if strings.Contains(out, "exit 9") {
		t.Errorf("a stage the target does not need was built:\n%s", out)
	}
	if got := e.ok("run", "--rm", "multi", "cat", "/one.txt", "/two.txt"); got != "one\ntwo\n" {
		t.Errorf("copied from stages: %q", got)
	}
	e.ok("build", "--target", "two", "-t", "two", dir)
	if got := e.ok("run", "--rm", "two", "sh", "-c", "cat /two.txt; ls /one.txt 2>&1 || true"); !strings.HasPrefix(got, "two\n") || !strings.Contains(got, "No such file") {
		t.Errorf("--target two: %q", got)
	}
}

func TestBuildDockerignore(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	dir := buildContext(t, map[string]string{
		"Dockerfile":    "FROM busybox\nCOPY . /ctx/\n",
		".dockerignore": "**/*.log\nsecret\n!keep.log\n",
		"a.txt":         "a",
		"x/debug.log":   "no",
		"keep.log":      "yes",
		"secret/key":    "no",
	})
	// An excluded file is never opened: a FIFO there would block the build.
	if err := unix.Mkfifo(filepath.Join(dir, "secret", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.ok("build", "-t", "ign", dir)
	got := e.ok("run", "--rm", "ign", "sh", "-c", "cd /ctx && find . -type f | sort")
	if got != "./.dockerignore\n./Dockerfile\n./a.txt\n./keep.log\n" {
		t.Errorf("copied context:\n%s", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile.dockerignore"), []byte("a.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The Dockerfile's own ignore file replaces the context's.
	e.ok("build", "-t", "ign2", dir)
	if got := e.ok("run", "--rm", "ign2", "sh", "-c", "cd /ctx && find . -type f | sort | tr '\\n' ' '"); got != "./.dockerignore ./Dockerfile ./Dockerfile.dockerignore ./keep.log ./secret/key ./x/debug.log " {
		t.Errorf("with Dockerfile.dockerignore:\n%s", got)
	}
}

func TestBuildStdinAndTar(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	r := e.run([]byte("FROM busybox\nRUN echo piped > /p\n"), "build", "-q", "-t", "piped", "-")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "sha256:") {
		t.Fatalf("Dockerfile on stdin: %+v", r)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range map[string]string{"Dockerfile": "FROM busybox\nCOPY f /f\n", "f": "from tar\n"} {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))})
		_, _ = tw.Write([]byte(data))
	}
	tw.Close()
	if r := e.run(buf.Bytes(), "build", "-t", "tarred", "-"); r.Code != 0 {
		t.Fatalf("tar on stdin: %+v", r)
	}
	if got := e.ok("run", "--rm", "tarred", "cat", "/f"); got != "from tar\n" {
		t.Errorf("from the tar context: %q", got)
	}
}

// buildFails expects a build to exit 1 with an error line holding want.
func buildFails(t *testing.T, e *engine, dockerfile, want string, ctxFiles map[string]string) {
	t.Helper()
	files := map[string]string{"Dockerfile": dockerfile}
	for k, v := range ctxFiles {
		files[k] = v
	}
	dir := buildContext(t, files)
	r := e.run(nil, "build", dir)
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	last := lines[len(lines)-1]
	if r.Code != 1 || !strings.HasPrefix(last, "Error: ") || !strings.Contains(last, want) {
		t.Errorf("build of %q: exit %d, last error line %q; want exit 1 and %q", dockerfile, r.Code, last, want)
	}
}

func TestBuildErrors(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	buildFails(t, e, "FROM busybox\nRUN true\nFOO bar\n", "line 3: unknown instruction: FOO", nil)
	buildFails(t, e, "FROM busybox\nRUN true\nRUN sh -c 'exit 3'\n", `"/bin/sh -c sh -c 'exit 3'" returned a non-zero code: 3`, nil)
	buildFails(t, e, "FROM busybox\nCOPY missing.txt /\n", "missing.txt: not found in the build context", nil)
	buildFails(t, e, "FROM busybox\nCOPY ../outside /\n", "forbidden path outside the build context: ../outside", nil)
	buildFails(t, e, "FROM nosuch.invalid/image\n", "FROM nosuch.invalid/image", nil)
	buildFails(t, e, "", "the Dockerfile is empty", nil)
	buildFails(t, e, "FROM busybox\nCOPY a b /notadir\n", "must be a directory and end with a /", map[string]string{"a": "a", "b": "b"})
	dir := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY etc/passwd /stolen\n"})
	if err := os.Symlink("/etc", filepath.Join(dir, "etc")); err != nil {
		t.Fatal(err)
	}
	if r := e.run(nil, "build", dir); r.Code != 1 || !strings.Contains(r.Stderr, "Error: COPY etc/passwd /stolen (line 2): etc/passwd") {
		t.Errorf("a symlink out of the context was followed: exit %d\n%s", r.Code, r.Stderr)
	}
	r := e.run(nil, "build", "--target", "nope", buildContext(t, map[string]string{"Dockerfile": "FROM busybox\n"}))
	if r.Code != 1 || !strings.Contains(r.Stderr, `target stage "nope" could not be found`) {
		t.Errorf("unknown target: exit %d\n%s", r.Code, r.Stderr)
	}
	noBuildLeftovers(t, e)
	// The cache still works after the failures.
	ok := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"})
	e.ok("build", ok)
	if n := strings.Count(e.ok("build", ok), "Using cache"); n != 1 {
		t.Errorf("after failed builds, %d cache hits, want 1", n)
	}
}

// TestBuildKilled: a build killed with -9 in the middle of a RUN leaves
// nothing once the next build has run, and that build still uses the cache.
func TestBuildKilled(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	dir := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo first > /f\nRUN touch /started; echo running; sleep 600\n"})
	c := e.cmd("build", dir)
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// "running" is printed by the RUN itself: its container is up.
	buf := make([]byte, 4096)
	seen := ""
	for !strings.Contains(seen, "running\n") {
		n, err := out.Read(buf)
		if err != nil {
			t.Fatalf("build ended before its RUN printed: %v\n%s", err, seen)
		}
		seen += string(buf[:n])
	}
	if err := c.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.Wait()
	next := dir
	if err := os.WriteFile(filepath.Join(next, "Dockerfile"), []byte("FROM busybox\nRUN echo first > /f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := e.ok("build", next); !strings.Contains(got, "Using cache") {
		t.Errorf("the build after the killed one did not use the cache:\n%s", got)
	}
	noBuildLeftovers(t, e)
}

// TestBuildTerminal: on a terminal, what RUN prints is a window redrawn in
// place and wiped when the step ends; the step lines stay; a failing step
// leaves its output; --progress plain and a pipe get plain lines.
func TestBuildTerminal(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	dir := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo windowed-1; echo windowed-2\n"})
	c := e.cmd("build", "--no-cache", dir)
	p := terminal.Start(t, c.Path, c.Args[1:], c.Env)
	code, out := p.Wait(t, time.Minute)
	if code != 0 || !strings.Contains(out, "STEP 2/2: RUN echo windowed-1") || !strings.Contains(out, "\x1b[2mwindowed-2") {
		t.Fatalf("build on a terminal: exit %d, %q", code, out)
	}
	// The window is erased before the step's end line.
	if i, j := strings.LastIndex(out, "\x1b[2F\x1b[J"), strings.Index(out, "--> "); i < 0 || j < i {
		t.Errorf("the window of 2 lines is not wiped before the step ends: %q", out)
	}

	c = e.cmd("build", "--no-cache", "--progress", "plain", dir)
	p = terminal.Start(t, c.Path, c.Args[1:], c.Env)
	if code, out := p.Wait(t, time.Minute); code != 0 || strings.Contains(out, "\x1b[") || !strings.Contains(out, "windowed-2") {
		t.Errorf("--progress plain on a terminal: exit %d, %q", code, out)
	}
	if out := e.ok("build", "--no-cache", dir); strings.Contains(out, "\x1b[") || !strings.Contains(out, "windowed-1\nwindowed-2\n") {
		t.Errorf("build to a pipe: %q", out)
	}

	bad := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo why-it-failed; exit 4\n"})
	c = e.cmd("build", bad)
	p = terminal.Start(t, c.Path, c.Args[1:], c.Env)
	code, out = p.Wait(t, time.Minute)
	// The last thing before the error is the output, written plainly.
	if i := strings.LastIndex(out, "\x1b[J"); code == 0 || i < 0 || !strings.Contains(out[i:], "why-it-failed\r\n") || !strings.Contains(out[i:], "returned a non-zero code: 4") {
		t.Errorf("failing build on a terminal: exit %d, %q", code, out)
	}
}

// TestBuildRegistryCache: --cache-to pushes every layer step to a
// registry repository under its key; another store building the same
// Dockerfile with --cache-from takes the steps from there and runs none.
func TestBuildRegistryCache(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	repo := reg.Ref("cache/app")
	files := map[string]string{
		"Dockerfile": "FROM busybox\nRUN cat /proc/sys/kernel/random/uuid > /stamp\nCOPY f /f\nRUN cat /stamp /f > /both && echo ran-the-last-step\n",
		"f":          "content\n",
	}
	e1 := newEngine(t)
	withBusybox(t, e1)
	out := e1.ok("build", "-t", "one", "--cache-to", repo, buildContext(t, files))
	if !strings.Contains(out, "\nran-the-last-step\n") {
		t.Fatalf("first build: %q", out)
	}
	stamp := e1.ok("run", "--rm", "--network", "none", "one", "cat", "/both")

	// The same base image (busybox-image.sh makes a new one each time,
	// and keys start from the base's ID).
	e2 := newEngine(t)
	saved := e1.run(nil, "save", "busybox:latest")
	if saved.Code != 0 {
		t.Fatalf("save: %s", saved.Stderr)
	}
	if r := e2.run([]byte(saved.Stdout), "load"); r.Code != 0 {
		t.Fatalf("load: %s", r.Stderr)
	}
	out = e2.ok("build", "-t", "two", "--cache-from", repo, buildContext(t, files))
	if strings.Count(out, "--> Using cache") != 3 || strings.Contains(out, "\nran-the-last-step\n") {
		t.Errorf("build from the registry cache: %q, want 3 cached steps and no RUN", out)
	}
	if got := e2.ok("run", "--rm", "--network", "none", "two", "cat", "/both"); got != stamp {
		t.Errorf("the cached image's file: %q, want the first build's %q", got, stamp)
	}
	// An edit misses from the edited step on.
	files["f"] = "edited\n"
	if out := e2.ok("build", "--cache-from", repo, buildContext(t, files)); strings.Count(out, "--> Using cache") != 1 || !strings.Contains(out, "\nran-the-last-step\n") {
		t.Errorf("build after an edit: %q, want 1 cached step", out)
	}

	// A tag is refused; an unreachable cache is a warning, not a failure.
	dir := buildContext(t, files)
	r := e2.run(nil, "build", "--cache-to", repo+":v1", dir)
	if r.Code != 1 || !strings.Contains(r.Stderr, "give a repository, without a tag") {
		t.Errorf("--cache-to with a tag: exit %d, %q", r.Code, r.Stderr)
	}
	r = e2.run(nil, "build", "--no-cache", "--cache-from", "127.0.0.1:1/nothing", dir)
	if r.Code != 0 {
		t.Errorf("build with an unreachable --cache-from: exit %d, %q", r.Code, r.Stderr)
	}
	r = e2.run(nil, "build", "--cache-from", "127.0.0.1:1/nothing", buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo new-step\n"}))
	if r.Code != 0 || !strings.Contains(r.Stderr, "WARNING: --cache-from 127.0.0.1:1/nothing") {
		t.Errorf("build with an unreachable --cache-from: exit %d, %q", r.Code, r.Stderr)
	}
}

// TestBuildPlatformArgs: buildkit's predefined platform ARGs serve FROM
// lines and the stages that declare them; COPY --link copies as COPY; a
// FROM --platform other than the host's is refused by name.
func TestBuildPlatformArgs(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	dir := buildContext(t, map[string]string{"Dockerfile": `FROM --platform=$BUILDPLATFORM busybox AS b
ARG TARGETARCH
ARG BUILDPLATFORM
RUN echo "$TARGETARCH $BUILDPLATFORM" > /arch
FROM busybox
COPY --link --from=b /arch /arch
RUN echo "[$TARGETOS]" > /undeclared
`})
	e.ok("build", "--network", "none", "-t", "plat", dir)
	want := fmt.Sprintf("%s linux/%s\n[]\n", runtime.GOARCH, runtime.GOARCH)
	if got := e.ok("run", "--rm", "--network", "none", "plat", "cat", "/arch", "/undeclared"); got != want {
		t.Errorf("platform args: %q, want %q", got, want)
	}
	buildFails(t, e, "FROM --platform=linux/s390x busybox\nRUN true\n", "FROM --platform=linux/s390x busybox: --platform linux/s390x cannot be built here", nil)
}
