package callers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pauseImage is the sandbox image the CRI plugin is told to use, made
// offline from the static busybox.
const pauseImage = "registry.k8s.io/pause:3.6"

// criConfig runs containerd's CRI plugin with berth-runtime (handler
// berth, the default), runc (handler runc) and berth-runtime behind the
// test's hold wrapper (handler hold) through the runc.v2 shim,
// the cgroupfs driver, and CNI's bridge on a private range whose address
// leases live in the test's directory. restrict_oom_score_adj keeps the
// sandbox's oom_score_adj (-998) from going below containerd's own: this
// host has no CAP_SYS_RESOURCE, so neither runtime could lower it.
var criConfig = containerdBase() + `
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "` + pauseImage + `"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "@CNI@"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "berth"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]
        BinaryName = "@BERTH@"
        Root = "%[5]s/runtime-berth"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "` + runcPath + `"
        Root = "%[5]s/runtime-runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hold]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hold.options]
        BinaryName = "@HOLD@"
        Root = "%[5]s/runtime-hold"
`

// criBridge and criSubnet are the test's CNI network: a name and range no
// other test uses.
const (
	criBridge = "berthcri0"
	criSubnet = "10.88.77.0/24"
)

// TestCRI runs a pod through containerd 1.6's CRI plugin, driven by
// crictl, once with berth-runtime and once with runc as the runtime
// handler: sandbox, container, logs, exec (with a terminal too), stats,
// update of its limits, stop and removal, with nothing left behind.
func TestCRI(t *testing.T) {
	berth := requireCaller(t, "containerd", "containerd", "ctr", "containerd-shim-runc-v2")
	crictl := filepath.Join(filepath.Dir(berth), "crictl")
	if _, err := os.Stat(crictl); err != nil {
		t.Skipf("no crictl beside berth-runtime (make crictl builds it): %v", err)
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skipf("no CNI plugins (Debian package containernetworking-plugins): %v", err)
	}
	cniDir := t.TempDir()
	writeCNIConfig(t, cniDir, "berth-cri-test", criBridge, criSubnet, false)
	t.Cleanup(func() { removeCNILeftovers(t) })

	holdDir := t.TempDir()
	hold := writeHoldHandler(t, holdDir, berth)
	d := startContainerdWith(t, "k8s.io", strings.NewReplacer("@CNI@", cniDir, "@BERTH@", berth, "@HOLD@", hold).Replace(criConfig))
	t.Cleanup(func() { removeCRICgroups(t) })
	dir := t.TempDir()
	for _, img := range []struct {
		name  string
		write func(dst, busybox, name string) error
	}{{busyboxImage, writeBusyboxImage}, {pauseImage, writePauseImage}} {
		archive := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(img.name)+".tar")
		if err := img.write(archive, busyboxPath, img.name); err != nil {
			t.Fatal(err)
		}
		d.ctr.mustRun(t, "images", "import", archive)
	}
	c := cli{program: crictl, global: []string{"--config", filepath.Join(dir, "crictl.yaml"), "--runtime-endpoint", "unix://" + d.sock, "--image-endpoint", "unix://" + d.sock, "--timeout", "30s"}}
	if err := os.WriteFile(filepath.Join(dir, "crictl.yaml"), []byte("pull-image-on-create: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(runcPath); err != nil {
		t.Fatalf("runc: %v", err)
	}
	results := map[string]string{}
	for _, handler := range []string{"berth", "runc"} {
		t.Run(handler, func(t *testing.T) {
			results[handler] = runPod(t, c, handler, filepath.Join(dir, handler))
		})
	}
	if results["berth"] != results["runc"] {
		t.Errorf("the pod with berth-runtime:\n%s\nwith runc:\n%s", results["berth"], results["runc"])
	}
	if out := c.mustRun(t, "pods", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("pods left: %q", out)
	}
	t.Run("parallel-pods", func(t *testing.T) {
		testParallelPods(t, c, d, "berth", t.TempDir())
	})
	for _, victim := range []string{"runtime", "shim"} {
		t.Run("kill-"+victim+"-mid-create", func(t *testing.T) {
			testKillMidCreate(t, c, d, holdDir, victim)
		})
	}
}

// runPod runs the pod's life with one runtime handler and returns what
// its container showed, for the comparison between runtimes.
func runPod(t *testing.T, c cli, handler, dir string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	pod := writeJSON(t, filepath.Join(dir, "pod.json"), map[string]any{
		"metadata":      map[string]any{"name": "pod-" + handler, "namespace": "berth-test", "uid": "uid-" + handler},
		"log_directory": filepath.Join(dir, "logs"),
		"linux":         map[string]any{},
	})
	ctr := writeJSON(t, filepath.Join(dir, "ctr.json"), map[string]any{
		"metadata": map[string]any{"name": "c"},
		"image":    map[string]any{"image": busyboxImage},
		"command":  []string{"sh", "-c", "echo hello-from-pod; exec nc -ll -p 8080 -e echo served"},
		"log_path": "c.log",
		"linux":    map[string]any{},
	})
	podID := strings.TrimSpace(c.mustRun(t, "runp", "--runtime", handler, pod))
	t.Cleanup(func() {
		c.run(t, "stopp", podID)
		c.run(t, "rmp", "-f", podID)
	})
	id := strings.TrimSpace(c.mustRun(t, "create", podID, ctr, pod))
	c.mustRun(t, "start", id)

	var shown []string
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(c.mustRun(t, "logs", id), "hello-from-pod") {
		if time.Now().After(deadline) {
			t.Fatalf("no output of the container in its log: %q", c.run(t, "logs", id).stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	shown = append(shown, "logs: hello-from-pod")

	// The pod shares one pid namespace: its pid 1 is the sandbox's.
	out := c.mustRun(t, "exec", id, "sh", "-c", "echo exec-ok; tr '\\0' ' ' < /proc/1/cmdline; id -u")
	shown = append(shown, "exec: "+out)
	if out != "exec-ok\n/bin/sleep 2147483647 0\n" {
		t.Errorf("exec: %q", out)
	}
	// crictl exits 1 for any failing command.
	if r := c.run(t, "exec", id, "sh", "-c", "exit 3"); r.code != 1 {
		t.Errorf("exec of exit 3: exit %d", r.code)
	}
	p := c.startOnPty(t, "exec", "-it", id, "sh", "-c", "tty && echo on-a-terminal")
	if code, out := p.Wait(t, 30*time.Second); code != 0 || !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "on-a-terminal") {
		t.Errorf("exec -it: exit %d, %q", code, out)
	}

	shown = append(shown, "port-forward: "+portForward(t, c, podID))
	shown = append(shown, "attach: "+attachEcho(t, c, podID, pod, filepath.Join(dir, "cat.json")))

	var stats struct {
		Stats []struct {
			Attributes struct{ ID string }
			Memory     struct {
				WorkingSetBytes struct{ Value string }
			}
		}
	}
	if err := json.Unmarshal([]byte(c.mustRun(t, "stats", "-o", "json", id)), &stats); err != nil || len(stats.Stats) != 1 || stats.Stats[0].Attributes.ID != id || stats.Stats[0].Memory.WorkingSetBytes.Value == "" {
		t.Errorf("stats: %+v (%v)", stats, err)
	}

	c.mustRun(t, "update", "--memory", "67108864", "--cpu-quota", "50000", "--cpu-period", "100000", id)
	out = c.mustRun(t, "exec", id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
	shown = append(shown, "limits after update: "+out)
	if out != "67108864\n50000\n" {
		t.Errorf("cgroup limits after update: %q", out)
	}

	var inspect struct {
		Status struct {
			State   string
			Network struct{ IP string }
		}
	}
	if err := json.Unmarshal([]byte(c.mustRun(t, "inspectp", podID)), &inspect); err != nil || inspect.Status.State != "SANDBOX_READY" || !strings.HasPrefix(inspect.Status.Network.IP, "10.88.77.") {
		t.Errorf("inspectp: %+v (%v)", inspect.Status, err)
	}

	c.mustRun(t, "stop", "--timeout", "1", id)
	if out := c.mustRun(t, "ps", "-a", "-q", "--state", "exited"); !strings.Contains(out, id) {
		t.Errorf("container not exited after stop: %q", out)
	}
	c.mustRun(t, "rm", id)
	c.mustRun(t, "stopp", podID)
	c.mustRun(t, "rmp", podID)
	if out := c.mustRun(t, "ps", "-a", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %q", out)
	}
	return strings.Join(shown, "")
}

func writeJSON(t *testing.T, path string, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeCNIConfig writes a network named name into dir: a bridge without
// masquerade (so no iptables rules of its own), addresses leased from dir,
// and with portmap the pods' host ports.
func writeCNIConfig(t *testing.T, dir, name, bridge, subnet string, portmap bool) {
	t.Helper()
	plugins := fmt.Sprintf(`{"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}}`, bridge, subnet, filepath.Join(dir, "leases"))
	if portmap {
		plugins += `,
  {"type": "portmap", "capabilities": {"portMappings": true}}`
	}
	conf := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": %q, "plugins": [
  %s,
  {"type": "loopback"}]}`, name, plugins)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "10-"+name+".conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// removeCNILeftovers deletes the test's bridge, which the bridge plugin
// leaves when the last pod goes.
func removeCNILeftovers(t *testing.T) {
	if err := exec.Command("ip", "link", "del", criBridge).Run(); err != nil {
		t.Logf("bridge %s: %v", criBridge, err)
	}
}

// removeCRICgroups checks that no pod's cgroup is left under the CRI
// plugin's parent, k8s.io, and removes the parent.
func removeCRICgroups(t *testing.T) {
	for _, cg := range cgroupsNamed("k8s.io") {
		entries, _ := os.ReadDir(cg)
		for _, e := range entries {
			if e.IsDir() {
				t.Errorf("cgroup left: %s", filepath.Join(cg, e.Name()))
			}
		}
		_ = unix.Rmdir(cg)
	}
}

// portForward forwards a free local port to the pod's port 8080 with
// crictl port-forward and returns what the server there answered.
func portForward(t *testing.T, c cli, podID string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(c.program, c.args("port-forward", podID, fmt.Sprintf("%d:8080", port))...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			got, _ := io.ReadAll(conn)
			conn.Close()
			if string(got) != "served\n" {
				t.Errorf("through port-forward: %q; crictl: %s", got, logs.String())
			}
			return string(got)
		}
		if time.Now().After(deadline) {
			t.Fatalf("port-forward to %d: %v; crictl: %s", port, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// attachEcho runs cat with its stdin open in the pod, attaches to it with
// stdin, and returns what came back; closing stdin (stdin_once) ends it.
func attachEcho(t *testing.T, c cli, podID, pod, config string) string {
	t.Helper()
	cat := writeJSON(t, config, map[string]any{
		"metadata": map[string]any{"name": "cat"},
		"image":    map[string]any{"image": busyboxImage},
		"command":  []string{"cat"},
		"stdin":    true, "stdin_once": true,
		"log_path": "cat.log",
		"linux":    map[string]any{},
	})
	id := strings.TrimSpace(c.mustRun(t, "create", podID, cat, pod))
	c.mustRun(t, "start", id)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.program, c.args("attach", "-i", id)...)
	cmd.Stdin = strings.NewReader("via-attach\n")
	out, err := cmd.Output()
	if err != nil || string(out) != "via-attach\n" {
		t.Errorf("attach -i: %q, %v", out, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(c.mustRun(t, "ps", "-a", "-q", "--state", "exited"), id) {
		if time.Now().After(deadline) {
			t.Fatalf("cat did not exit once its stdin closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.mustRun(t, "rm", id)
	return string(out)
}
