package callers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/tests/registry"
)

// critestSkips are the specs that cannot pass on this host whatever the
// runtime, skipped by name. Specs that need what the host or containerd
// 1.6 lacks (AppArmor, user namespaces, recursive read-only mounts,
// supplemental groups policy) skip themselves; critest skips its
// benchmarks.
var critestSkips = []struct{ spec, why string }{
	{"Image Manager public image with digest should be pulled and removed",
		"it pulls gcr.io's test-image-digest pinned to the digest of upstream's bytes, which cannot be served offline"},
	{"Idempotence StopPodSandbox should not return an error if not found",
		"containerd 1.6.20 answers NotFound (made idempotent in 1.6.35)"},
	{"Idempotence StopContainer should not return an error if not found",
		"containerd 1.6.20 answers NotFound (made idempotent in 1.6.35)"},
}

// critestMinPassed is how many specs runc must pass, so that berth-runtime
// passing all that runc passes cannot hold for an environment in which
// little works.
const critestMinPassed = 80

// critestTimeout bounds one critest run, one runtime's.
const critestTimeout = 5 * time.Minute

// The test's CNI network, apart from TestCRI's; portmap serves critest's
// host ports.
const (
	critestNetwork = "berth-critest"
	critestBridge  = "berthcrit0"
	critestSubnet  = "10.88.78.0/24"
)

// critestPorts are the host ports critest's specs bind.
var critestPorts = []int{12000, 12001, 12002, 12003}

// critestConfig is TestCRI's CRI plugin (criConfig) with every registry
// mirrored by the test's registry, named in @CERTS@/_default/hosts.toml.
var critestConfig = criConfig + `
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "@CERTS@"
`

// TestCritest runs critest, the CRI validation suite, against containerd
// 1.6's CRI plugin once with runtime handler berth (berth-runtime) and once
// with runc, offline: the images it pulls are made up and served by a
// local registry as containerd's mirror of every registry. berth-runtime
// must pass every spec that runc passes.
func TestCritest(t *testing.T) {
	berth := requireCaller(t, "containerd", "containerd", "ctr", "containerd-shim-runc-v2")
	critest := filepath.Join(filepath.Dir(berth), "critest")
	if _, err := os.Stat(critest); err != nil {
		t.Skipf("no critest beside berth-runtime (make critest builds it): %v", err)
	}
	// crictl removes what a failed spec left, so that the next run starts clean.
	crictl := filepath.Join(filepath.Dir(berth), "crictl")
	if _, err := os.Stat(crictl); err != nil {
		t.Skipf("no crictl beside berth-runtime (make crictl builds it): %v", err)
	}
	for _, plugin := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", plugin)); err != nil {
			t.Skipf("no CNI plugin %s (Debian package containernetworking-plugins): %v", plugin, err)
		}
	}
	lookPaths(t, "iptables", "iptables")
	lookPaths(t, "util-linux", "ipcmk") // critest's HostIpc specs run it on the host
	if _, err := os.Stat(dynamicBusybox); err != nil {
		t.Skipf("no dynamic busybox for critest's image (contrib/install-deps.sh unpacks it): %v", err)
	}
	if _, err := os.Stat(runcPath); err != nil {
		t.Fatalf("runc: %v", err)
	}
	for _, port := range critestPorts {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			t.Fatalf("critest needs host port %d: %v", port, err)
		}
		l.Close()
	}

	r := registry.Start(t, registry.Options{})
	pushCritestImages(t, r)

	dir := t.TempDir()
	certs := filepath.Join(dir, "certs.d")
	if err := os.MkdirAll(filepath.Join(certs, "_default"), 0o755); err != nil {
		t.Fatal(err)
	}
	// containerd 1.6 ignores a hosts.toml without a host table.
	hosts := fmt.Sprintf("server = \"http://%[1]s\"\n\n[host.\"http://%[1]s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", r.Host)
	if err := os.WriteFile(filepath.Join(certs, "_default", "hosts.toml"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	cniDir := filepath.Join(dir, "cni")
	writeCNIConfig(t, cniDir, critestNetwork, critestBridge, critestSubnet, true)
	imagesFile := filepath.Join(dir, "images.yaml")
	if err := os.WriteFile(imagesFile, []byte(critestImagesFile), 0o644); err != nil {
		t.Fatal(err)
	}
	// Registered before containerd's cleanup, so run after it.
	t.Cleanup(func() { removeCritestLeftovers(t) })

	// The hold handler of criConfig is berth-runtime itself here: unused.
	config := strings.NewReplacer("@CNI@", cniDir, "@BERTH@", berth, "@HOLD@", berth, "@CERTS@", certs).Replace(critestConfig)
	d := startContainerdWith(t, "k8s.io", config)
	if err := os.WriteFile(filepath.Join(dir, "crictl.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := cli{program: crictl, global: []string{"--config", filepath.Join(dir, "crictl.yaml"), "--runtime-endpoint", "unix://" + d.sock, "--image-endpoint", "unix://" + d.sock, "--timeout", "30s"}}
	// After a critest run that did not end, its pods go while containerd
	// still runs; the checks of a run that ended have removed them.
	t.Cleanup(func() { removeCritestPods(t, c) })
	leases := filepath.Join(cniDir, "leases", critestNetwork)

	results := map[string]critestResult{}
	for _, handler := range []string{"berth", "runc"} {
		runDir := filepath.Join(dir, handler)
		if err := os.Mkdir(runDir, 0o755); err != nil {
			t.Fatal(err)
		}
		res := runCritest(t, critest, d, handler, imagesFile, runDir)
		results[handler] = res
		t.Logf("%s: %d passed, %d failed, %d skipped in %s", handler, len(res.passed), len(res.failed), len(res.skipped), res.took.Round(time.Second))
		for _, name := range sortedKeys(res.failed) {
			t.Logf("%s failed: %s\n%s", handler, name, res.failed[name])
		}
		assertCritestClean(t, c, d, leases, runDir)
	}

	berthRes, runc := results["berth"], results["runc"]
	if len(runc.passed) < critestMinPassed {
		t.Errorf("runc passed %d specs, want at least %d; failed: %s", len(runc.passed), critestMinPassed, strings.Join(sortedKeys(runc.failed), "; "))
	}
	for _, name := range sortedKeys(runc.passed) {
		if _, ok := berthRes.passed[name]; !ok {
			t.Errorf("runc passed, berth-runtime did not: %s\n%s", name, berthRes.failed[name])
		}
	}
	for _, s := range critestSkips {
		for handler, res := range results {
			if !slices.ContainsFunc(sortedKeys(res.skipped), func(name string) bool { return strings.Contains(name, s.spec) }) {
				t.Errorf("%s: no spec %q was skipped: the skip list is out of date", handler, s.spec)
			}
		}
	}
	for _, name := range sortedKeys(runc.skipped) {
		t.Logf("skipped: %s: %s", name, runc.skipped[name])
	}
}

// critestResult is what one critest run's specs came to: spec name to its
// failure message, or to why it was skipped.
type critestResult struct {
	passed, failed, skipped map[string]string
	took                    time.Duration
}

// runCritest runs critest with runtime handler, its report, log and the
// files its specs make on the host (TMPDIR) in dir.
func runCritest(t *testing.T, critest string, d *containerd, handler, imagesFile, dir string) critestResult {
	t.Helper()
	report := filepath.Join(dir, "report.json")
	logPath := filepath.Join(dir, "critest.log")
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	// critest's specs mount there (mount propagation); they unmount at their end.
	t.Cleanup(func() { unmountUnder(t, tmp) })
	args := []string{
		"-runtime-endpoint", "unix://" + d.sock, "-image-endpoint", "unix://" + d.sock,
		"-runtime-handler", handler, "-test-images-file", imagesFile,
		"-ginkgo.json-report", report, "-ginkgo.no-color", "-ginkgo.timeout", (critestTimeout - 30*time.Second).String(),
	}
	for _, s := range critestSkips {
		args = append(args, "-ginkgo.skip", regexp.QuoteMeta(s.spec))
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	ctx, cancel := context.WithTimeout(context.Background(), critestTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, critest, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	// critest exits 1 when a spec fails: the specs are judged below.
	var exitErr *exec.ExitError
	if ctx.Err() != nil || (err != nil && !errors.As(err, &exitErr)) {
		t.Fatalf("critest with handler %s: %v after %s; its log:\n%s", handler, err, took.Round(time.Second), tail(logPath, 40))
	}
	res, err := readCritestReport(report)
	if err != nil {
		t.Fatalf("critest with handler %s: %v; its log:\n%s", handler, err, tail(logPath, 40))
	}
	res.took = took
	return res
}

// readCritestReport reads ginkgo's JSON report of a critest run.
func readCritestReport(path string) (critestResult, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return critestResult{}, fmt.Errorf("critest report: %w", err)
	}
	var reports []struct {
		SpecReports []struct {
			ContainerHierarchyTexts []string
			LeafNodeText            string
			LeafNodeType            string
			State                   string
			Failure                 struct {
				Message  string
				Location struct {
					FileName   string
					LineNumber int
				}
			}
		}
	}
	if err := json.Unmarshal(data, &reports); err != nil {
		return critestResult{}, fmt.Errorf("critest report %s: %w", path, err)
	}
	res := critestResult{passed: map[string]string{}, failed: map[string]string{}, skipped: map[string]string{}}
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType != "It" {
				// BeforeSuite and the like: their failure fails every spec.
				if s.State != "passed" {
					res.failed[s.LeafNodeType] = s.Failure.Message
				}
				continue
			}
			name := strings.Join(append(slices.Clone(s.ContainerHierarchyTexts), s.LeafNodeText), " ")
			switch s.State {
			case "passed":
				res.passed[name] = ""
			case "skipped":
				res.skipped[name] = s.Failure.Message
			default:
				// gomega follows the error's text with a dump of its value.
				msg, _, _ := strings.Cut(s.Failure.Message, "\n")
				res.failed[name] = fmt.Sprintf("%s at %s:%d: %s", s.State, filepath.Base(s.Failure.Location.FileName), s.Failure.Location.LineNumber, msg)
			}
		}
	}
	for name, why := range res.skipped {
		if skip, ok := critestSkipOf(name); ok {
			res.skipped[name] = "skipped by the test: " + skip.why
		} else if why == "" && strings.Contains(name, "benchmark") {
			res.skipped[name] = "a benchmark: critest runs them only with -benchmark"
		}
	}
	return res, nil
}

// critestSkipOf returns the entry of critestSkips that skips spec name.
func critestSkipOf(name string) (struct{ spec, why string }, bool) {
	for _, s := range critestSkips {
		if strings.Contains(name, s.spec) {
			return s, true
		}
	}
	return struct{ spec, why string }{}, false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// assertCritestClean checks that a critest run left no pod or container in
// containerd, no shim, no cgroup, no address lease or bridge port, no port
// mapping rule and no mount; pods left are removed.
func assertCritestClean(t *testing.T, c cli, d *containerd, leases, dir string) {
	t.Helper()
	removeCritestPods(t, c)
	if out := strings.TrimSpace(d.ctr.mustRun(t, "containers", "ls", "-q")); out != "" {
		t.Errorf("containers left in containerd: %q", out)
	}
	waitFor(t, 20*time.Second, func() error {
		if pids := d.shims(); len(pids) > 0 {
			return fmt.Errorf("shims left: %v", pids)
		}
		return nil
	})
	for _, cg := range critestCgroups() {
		t.Errorf("cgroup left: %s", cg)
	}
	// host-local keeps a file named by the address for each pod on the
	// network until the pod's teardown.
	entries, _ := os.ReadDir(leases)
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			t.Errorf("address lease left: %s", filepath.Join(leases, e.Name()))
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show", "master", critestBridge).CombinedOutput(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("bridge ports left: %s", out)
	}
	if out, err := exec.Command("iptables", "-t", "nat", "-S").Output(); err != nil {
		t.Errorf("iptables -t nat -S: %v", err)
	} else {
		for _, rule := range strings.Split(string(out), "\n") {
			if strings.Contains(rule, critestNetwork) {
				t.Errorf("port mapping rule left: %s", rule)
			}
		}
	}
	for _, m := range mountsUnder(dir) {
		t.Errorf("mount left: %s", m)
	}
}

// removeCritestPods removes, as a failure, the pods left in containerd.
func removeCritestPods(t *testing.T, c cli) {
	t.Helper()
	if pods := strings.Fields(c.mustRun(t, "pods", "-q")); len(pods) > 0 {
		t.Errorf("pods left: %v: removing them", pods)
		c.mustRun(t, append([]string{"rmp", "-f"}, pods...)...)
	}
}

// critestCgroups lists the pods' cgroups. critest gives every pod the
// parent /test.slice, which containerd 1.6 turns into systemd's form,
// test.slice:cri-containerd:ID, even for the cgroupfs driver; the runtimes
// take that as a path relative to their own cgroup, which is the test's.
func critestCgroups() []string {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	var found []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		// "4:memory:/path", "1:name=systemd:/path", "0::/path" (v2)
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		hierarchy := filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(f[1], "name="))
		if f[1] == "" {
			if hierarchy = "/sys/fs/cgroup/unified"; !isDir(hierarchy) {
				hierarchy = "/sys/fs/cgroup"
			}
		}
		matches, _ := filepath.Glob(filepath.Join(hierarchy, f[2], "test.slice*"))
		found = append(found, matches...)
	}
	return found
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// removeCritestLeftovers removes the bridge, which the bridge plugin leaves
// when the last pod goes, and, as a failure, the pods' cgroups and the
// processes in them that containerd left when it stopped.
func removeCritestLeftovers(t *testing.T) {
	if err := exec.Command("ip", "link", "del", critestBridge).Run(); err != nil {
		t.Logf("bridge %s: %v", critestBridge, err)
	}
	cgroups := critestCgroups()
	for _, cg := range cgroups {
		t.Errorf("cgroup left: %s", cg)
	}
	removeCgroups(t, cgroups)
}
