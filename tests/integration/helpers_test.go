// Package integration runs real containers with the berth-runtime binary, as
// root, and checks what the kernel shows from inside and outside.
//
// The binary comes from $BERTH_RUNTIME (default ../../bin/berth-runtime);
// the tests never build it. TestMain makes one busybox rootfs that tests use
// read-only; a test that writes into its rootfs (new mount points, hook
// scripts, ownership) works on its own copy.
package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var (
	// runtimeBin is the absolute path of the binary under test.
	runtimeBin string
	// skipReason, when set, makes every test skip: not root, no binary.
	skipReason string
	// sharedRootfs is the busybox rootfs made once by TestMain.
	sharedRootfs string
	// baseSpec is the output of `berth-runtime spec`, the start of every config.
	baseSpec []byte
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// setup finds the binary and builds the shared rootfs, runs the tests, and
// removes the rootfs again.
func setup(m *testing.M) (int, error) {
	bin := os.Getenv("BERTH_RUNTIME")
	if bin == "" {
		bin = "../../bin/berth-runtime"
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return 0, err
	}
	runtimeBin = abs
	switch {
	case os.Geteuid() != 0:
		skipReason = "integration tests run containers and need root"
	case !isExecutable(runtimeBin):
		skipReason = fmt.Sprintf("runtime binary %s not found: run `make build` or set BERTH_RUNTIME", runtimeBin)
	case !isExecutable("/bin/busybox"):
		skipReason = "/bin/busybox not found (apt-get install busybox-static)"
	}
	if skipReason != "" {
		return m.Run(), nil
	}

	dir, err := os.MkdirTemp("", "berth-integration-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	sharedRootfs = filepath.Join(dir, "rootfs")
	out, err := exec.Command("../fixtures/mkbundle.sh", "--rootfs-only", sharedRootfs).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("mkbundle.sh: %w: %s", err, out)
	}
	specDir := filepath.Join(dir, "spec")
	if err := os.Mkdir(specDir, 0o755); err != nil {
		return 0, err
	}
	if out, err := exec.Command(runtimeBin, "spec", "--bundle", specDir).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%s spec: %w: %s", runtimeBin, err, out)
	}
	if baseSpec, err = os.ReadFile(filepath.Join(specDir, "config.json")); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// newSpec returns the runtime's default config adjusted for tests: no
// terminal, the shared read-only rootfs, and args.
func newSpec(t *testing.T, args ...string) *specs.Spec {
	t.Helper()
	var s specs.Spec
	if err := json.Unmarshal(baseSpec, &s); err != nil {
		t.Fatalf("parse default spec: %v", err)
	}
	s.Process.Terminal = false
	s.Process.Args = args
	s.Root.Path = sharedRootfs
	s.Root.Readonly = true
	return &s
}

// shell is newSpec running a sh -c script.
func shell(t *testing.T, script string) *specs.Spec {
	return newSpec(t, "sh", "-c", script)
}

// copyRootfs gives s a writable copy of the rootfs and returns its path.
func copyRootfs(t *testing.T, s *specs.Spec) string {
	t.Helper()
	tmp := t.TempDir()
	// A container user other than host root (user namespace) must be able
	// to reach its rootfs: temp dirs are made 0700.
	for _, d := range []string{tmp, filepath.Dir(tmp)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(tmp, "rootfs")
	if out, err := exec.Command("cp", "-a", sharedRootfs, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v: %s", err, out)
	}
	s.Root.Path = dst
	s.Root.Readonly = false
	return dst
}

// withoutNamespace drops a namespace type from s.
func withoutNamespace(s *specs.Spec, typ specs.LinuxNamespaceType) {
	var keep []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != typ {
			keep = append(keep, ns)
		}
	}
	s.Linux.Namespaces = keep
}

// withUserNamespace gives s a writable rootfs owned by host uid/gid 100000,
// which a new user namespace maps to root, and no network namespace of its
// own (so sysfs is bound from the host).
func withUserNamespace(t *testing.T, s *specs.Spec) {
	t.Helper()
	rootfs := copyRootfs(t, s)
	if out, err := exec.Command("chown", "-hR", "100000:100000", rootfs).CombinedOutput(); err != nil {
		t.Fatalf("chown rootfs: %v: %s", err, out)
	}
	withoutNamespace(s, specs.NetworkNamespace)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
}

// env is one test's runtime root and scratch space. Every container it
// creates is deleted at cleanup, which then checks that nothing is left.
type env struct {
	t    *testing.T
	bin  string
	root string
	dir  string
	// v2 runs every command in a private mount namespace whose
	// /sys/fs/cgroup is a cgroup2 mount.
	v2 bool
}

// idSalt tells this run's containers (and cgroups) from those of other
// runs; idSeq makes ids unique within the run, also across tests whose
// names read the same once cleaned.
var (
	idSalt = fmt.Sprintf("%04x", rand.Uint32()&0xffff)
	idSeq  atomic.Int32
)

var nonID = regexp.MustCompile(`[^A-Za-z0-9]+`)

func newEnv(t *testing.T) *env {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	e := &env{t: t, bin: runtimeBin, dir: t.TempDir()}
	e.root = filepath.Join(e.dir, "root")
	t.Cleanup(func() {
		// Registered first, so it runs after every container's delete.
		entries, err := os.ReadDir(e.root)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("read runtime root: %v", err)
		}
		for _, en := range entries {
			t.Errorf("state left under --root after cleanup: %s", en.Name())
		}
		checkNoHostMounts(t, e.dir)
	})
	return e
}

// newID returns a container id unique to this test and run.
func (e *env) newID() string {
	name := nonID.ReplaceAllString(strings.TrimPrefix(e.t.Name(), "Test"), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("it-%s-%s-%d", strings.ToLower(name), idSalt, idSeq.Add(1))
}

// bundle writes s as config.json into a new bundle directory.
func (e *env) bundle(s *specs.Spec) string {
	e.t.Helper()
	dir, err := os.MkdirTemp(e.dir, "bundle-")
	if err != nil {
		e.t.Fatal(err)
	}
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// result is one runtime command's outcome. Stdout and stderr went to files
// (a container may keep them open long after the command exits), read back
// when the command ended; outPath lets a test read the container's later output.
type result struct {
	args    []string
	stdout  string
	stderr  string
	code    int
	outPath string
	errPath string
	elapsed time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("berth-runtime %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cmdOpts tweak how a runtime command is started.
type cmdOpts struct {
	extraFiles []*os.File // inherited from fd 3 on
	env        []string   // added to the runtime's environment
	wrap       []string   // a command that runs the runtime, as `prlimit --nofile=512:`
}

// rt runs the runtime with --root and args, with a timeout.
func (e *env) rt(args ...string) result {
	e.t.Helper()
	return e.rtWith(cmdOpts{}, args...)
}

func (e *env) rtWith(o cmdOpts, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := e.command(ctx, append([]string{"--root", e.root}, args...)...)
	if len(o.wrap) > 0 {
		cmd = exec.CommandContext(ctx, o.wrap[0], append(o.wrap[1:], cmd.Args...)...)
	}
	res := result{args: args}
	out, err := os.CreateTemp(e.dir, "stdout-")
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.CreateTemp(e.dir, "stderr-")
	if err != nil {
		e.t.Fatal(err)
	}
	defer errf.Close()
	res.outPath, res.errPath = out.Name(), errf.Name()
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = out, errf, o.extraFiles
	if o.env != nil {
		cmd.Env = append(os.Environ(), o.env...)
	}
	start := time.Now()
	err = cmd.Run()
	res.elapsed = time.Since(start)
	res.code = exitCode(e.t, err)
	res.stdout = readFile(e.t, out.Name())
	res.stderr = readFile(e.t, errf.Name())
	return res
}

// command builds the exec.Cmd for runtime arguments, wrapped for cgroup v2.
func (e *env) command(ctx context.Context, args ...string) *exec.Cmd {
	if e.v2 {
		script := `mount -t cgroup2 none /sys/fs/cgroup && exec "$0" "$@"`
		args = append([]string{"-m", "--propagation", "private", "sh", "-c", script, e.bin}, args...)
		return exec.CommandContext(ctx, "unshare", args...)
	}
	return exec.CommandContext(ctx, e.bin, args...)
}

// background starts a runtime command that the test waits for itself; its
// stdout and stderr go to the returned file. It is killed at cleanup if
// still running.
func (e *env) background(args ...string) (*exec.Cmd, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	out, err := os.CreateTemp(e.dir, "output-")
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Close()
	cmd := e.command(ctx, append([]string{"--root", e.root}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		cancel()
		if cmd.ProcessState == nil {
			cmd.Wait()
		}
	})
	return cmd, out.Name()
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(interface{ Signaled() bool }); ok && ws.Signaled() {
			t.Fatalf("runtime killed: %v", err)
		}
		return ee.ExitCode()
	}
	t.Fatalf("run runtime: %v", err)
	return -1
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// mustRT runs a runtime command that must succeed.
func (e *env) mustRT(args ...string) result {
	e.t.Helper()
	r := e.rt(args...)
	if r.code != 0 {
		e.t.Fatalf("unexpected failure: %s", r)
	}
	return r
}

// track deletes the container at cleanup and checks that its default
// cgroups went with it.
func (e *env) track(id string) {
	e.t.Cleanup(func() {
		r := e.rt("delete", "--force", id)
		if r.code != 0 && !strings.Contains(r.stderr, "does not exist") {
			e.t.Errorf("cleanup: %s", r)
		}
		for _, dir := range cgroupDirs(e.t, id) {
			if _, err := os.Stat(dir); err == nil {
				e.t.Errorf("cgroup %s left after delete", dir)
			}
		}
	})
}

// create writes a bundle for s and creates a container from it.
func (e *env) create(s *specs.Spec, extra ...string) (string, result) {
	e.t.Helper()
	id := e.newID()
	b := e.bundle(s)
	e.track(id)
	args := append([]string{"create", "--bundle", b}, extra...)
	r := e.rt(append(args, id)...)
	if r.code != 0 {
		e.t.Fatalf("create: %s", r)
	}
	return id, r
}

// createMustFail creates a container from s that must fail to be created,
// and returns its id, bundle and the failed command.
func (e *env) createMustFail(s *specs.Spec) (string, string, result) {
	e.t.Helper()
	id := e.newID()
	b := e.bundle(s)
	r := e.rt("create", "--bundle", b, id)
	if r.code == 0 {
		e.track(id)
		e.t.Fatalf("create succeeded, want a failure: %s", r)
	}
	return id, b, r
}

// start creates and starts a detached container from s.
func (e *env) start(s *specs.Spec) (string, result) {
	e.t.Helper()
	id, r := e.create(s)
	if st := e.rt("start", id); st.code != 0 {
		e.t.Fatalf("start: %s\ncontainer stderr: %s", st, readFile(e.t, r.errPath))
	}
	return id, r
}

// run runs s in the foreground (`run`) and returns its result.
func (e *env) run(s *specs.Spec, extra ...string) result {
	e.t.Helper()
	return e.runWith(cmdOpts{}, s, extra...)
}

func (e *env) runWith(o cmdOpts, s *specs.Spec, extra ...string) result {
	e.t.Helper()
	id := e.newID()
	b := e.bundle(s)
	e.track(id)
	args := append([]string{"run", "--bundle", b}, extra...)
	return e.rtWith(o, append(args, id)...)
}

// mustRun runs s and fails the test unless it exits 0.
func (e *env) mustRun(s *specs.Spec) string {
	e.t.Helper()
	r := e.run(s)
	if r.code != 0 {
		e.t.Fatalf("container failed: %s", r)
	}
	return r.stdout
}

// ociState is the state command's output.
type ociState struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
	Rootfs string `json:"rootfs"`
}

func (e *env) state(id string) ociState {
	e.t.Helper()
	r := e.mustRT("state", id)
	var st ociState
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		e.t.Fatalf("parse state %q: %v", r.stdout, err)
	}
	return st
}

// waitStatus polls state until the container has status.
func (e *env) waitStatus(id, status string) ociState {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := e.state(id)
		if st.Status == status {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s is %s, not %s, after 10s", id, st.Status, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitOutput polls a file until it contains want, and returns its content.
func waitOutput(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The file may not exist yet.
		data, _ := os.ReadFile(path)
		s := string(data)
		if strings.Contains(s, want) && (want != "" || len(data) > 0) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never contained %q; it holds %q", path, want, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ownCgroups maps each v1 hierarchy directory under /sys/fs/cgroup to this
// process's cgroup in it: the runtime puts relative cgroup paths below them.
func ownCgroups(t *testing.T) map[string]string {
	t.Helper()
	data := readFile(t, "/proc/self/cgroup")
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[1] == "" {
			continue
		}
		dir := filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(parts[1], "name="))
		if _, err := os.Stat(dir); err == nil {
			out[dir] = parts[2]
		}
	}
	return out
}

// cgroupDirs lists where a relative cgroup path lands in every v1 hierarchy.
func cgroupDirs(t *testing.T, rel string) []string {
	t.Helper()
	var dirs []string
	for dir, own := range ownCgroups(t) {
		dirs = append(dirs, filepath.Join(dir, own, rel))
	}
	return dirs
}

// checkNoHostMounts fails if the host's mount table mentions path.
func checkNoHostMounts(t *testing.T, paths ...string) {
	t.Helper()
	data := readFile(t, "/proc/self/mountinfo")
	for _, line := range strings.Split(data, "\n") {
		for _, p := range paths {
			if p != "" && strings.Contains(line, p) {
				t.Errorf("host mount table mentions %s: %s", p, line)
			}
		}
	}
}

// statusField returns a field of /proc/<pid>/status-like text.
func statusField(text, key string) string {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// lines splits output into trimmed non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// oneLine checks that an error message is a single line.
func oneLine(t *testing.T, r result) {
	t.Helper()
	if n := len(lines(r.stderr)); n != 1 {
		t.Errorf("error output has %d lines, want 1: %q", n, r.stderr)
	}
}

// contains fails the test unless s contains every want.
func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s: %q does not contain %q", what, s, w)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// writeFile writes a file, failing the test on error.
func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}
