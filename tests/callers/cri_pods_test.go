package callers

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// parallelPods is how many pods parallelPods starts at once.
const parallelPods = 50

// testParallelPods starts parallelPods sandboxes at once with handler,
// removes them all at once, and checks that nothing of them is left.
func testParallelPods(t *testing.T, c cli, d *containerd, handler, dir string) {
	netns := cniNetns()
	// 50 sandboxes on two cores: a single call may wait long for its turn.
	slow := cli{program: c.program, global: append(append([]string(nil), c.global...), "--timeout", "180s")}
	ids := make([]string, parallelPods)
	errs := make([]error, parallelPods)
	var wg sync.WaitGroup
	for i := range parallelPods {
		pod := writeJSON(t, filepath.Join(dir, fmt.Sprintf("pod%d.json", i)), map[string]any{
			"metadata": map[string]any{"name": fmt.Sprintf("many-%d", i), "namespace": "berth-test", "uid": fmt.Sprintf("uid-many-%d", i)},
			"linux":    map[string]any{},
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out string
			out, errs[i] = slow.output("runp", "--runtime", handler, pod)
			ids[i] = strings.TrimSpace(out)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
	ready := 0
	for _, line := range strings.Split(c.mustRun(t, "pods", "--state", "ready", "-q"), "\n") {
		if line != "" {
			ready++
		}
	}
	if ready != parallelPods {
		t.Errorf("%d pods ready, want %d", ready, parallelPods)
	}
	for i, id := range ids {
		if id == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = slow.output("rmp", "-f", id)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
	assertNodeClean(t, c, d, netns)
}

// holdWrapper is the runtime of the hold handler: berth-runtime, with a
// createRuntime hook added to the first create after the test has put the
// file arm in place. The hook says where it runs (the runtime's pid and
// its own) and waits on the FIFO release: berth-runtime is then
// mid-create, with the init in its namespaces and its cgroup made.
const holdWrapper = `#!/bin/sh
dir=%[1]q
bundle= prev= create=
for a; do
	[ "$prev" = --bundle ] && bundle=$a
	[ "$a" = create ] && create=1
	prev=$a
done
if [ -n "$create" ] && mv "$dir/arm" "$dir/armed" 2>/dev/null; then
	jq --arg hook "$dir/hook" '.hooks.createRuntime += [{"path": $hook}]' "$bundle/config.json" >"$bundle/config.hold" &&
		mv "$bundle/config.hold" "$bundle/config.json" || exit 1
fi
exec %[2]q "$@"
`

const holdHook = `#!/bin/sh
dir=%[1]q
echo "$PPID $$" >"$dir/held.tmp" && mv "$dir/held.tmp" "$dir/held"
read -r answer <"$dir/release"
[ "$answer" = go ]
`

// writeHoldHandler writes the hold handler's wrapper and hook into dir and
// returns the wrapper's path.
func writeHoldHandler(t *testing.T, dir, berth string) string {
	t.Helper()
	if err := syscall.Mkfifo(filepath.Join(dir, "release"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, "hold-runtime")
	for path, text := range map[string]string{wrapper: holdWrapper, filepath.Join(dir, "hook"): holdHook} {
		if err := os.WriteFile(path, []byte(fmt.Sprintf(text, dir, berth)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return wrapper
}

// testKillMidCreate starts a pod with the hold handler, and when the
// runtime is held mid-create, kills victim ("runtime": berth-runtime and
// its hook; "shim": the shim, then the hook lets create go on). The pod
// that is left must go with `crictl rmp -f`, and nothing of it stay.
func testKillMidCreate(t *testing.T, c cli, d *containerd, holdDir, victim string) {
	netns := cniNetns()
	for _, f := range []string{"armed", "held"} {
		os.Remove(filepath.Join(holdDir, f))
	}
	if err := os.WriteFile(filepath.Join(holdDir, "arm"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pod := writeJSON(t, filepath.Join(holdDir, "pod-"+victim+".json"), map[string]any{
		"metadata": map[string]any{"name": "held-" + victim, "namespace": "berth-test", "uid": "uid-held-" + victim},
		"linux":    map[string]any{},
	})
	runp := exec.Command(c.program, c.args("runp", "--runtime", "hold", pod)...)
	var out bytes.Buffer
	runp.Stdout, runp.Stderr = &out, &out
	if err := runp.Start(); err != nil {
		t.Fatal(err)
	}
	var runpErr error
	done := make(chan struct{})
	go func() { runpErr = runp.Wait(); close(done) }()
	defer func() {
		runp.Process.Kill()
		<-done
	}()

	var runtimePid, hookPid int
	waitFor(t, 30*time.Second, func() error {
		data, err := os.ReadFile(filepath.Join(holdDir, "held"))
		if err != nil {
			return fmt.Errorf("the runtime did not reach the hook: %v; crictl: %s", err, out.String())
		}
		_, err = fmt.Sscan(string(data), &runtimePid, &hookPid)
		return err
	})
	if t.Failed() {
		t.FailNow()
	}
	switch victim {
	case "runtime":
		kill(t, runtimePid)
		kill(t, hookPid)
	case "shim":
		kill(t, parentOf(t, runtimePid))
	}
	select {
	case <-done:
		if runpErr == nil {
			t.Errorf("runp succeeded though the %s was killed: %s", victim, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("runp did not return after the %s was killed", victim)
	}
	if victim == "shim" {
		// The create the shim started goes on to its end with no one to
		// report to.
		if err := os.WriteFile(filepath.Join(holdDir, "release"), []byte("go\n"), 0); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, func() error {
			if syscall.Kill(runtimePid, 0) == nil {
				return fmt.Errorf("berth-runtime create %d still runs", runtimePid)
			}
			return nil
		})
	}
	for _, id := range strings.Fields(c.mustRun(t, "pods", "-q")) {
		c.mustRun(t, "rmp", "-f", id)
	}
	assertNodeClean(t, c, d, netns)
}

// output runs the program with args and returns its stdout, or an error
// with its stderr if it fails; unlike mustRun it may run in any goroutine.
func (c cli) output(args ...string) (string, error) {
	cmd := exec.Command(c.program, c.args(args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", c.program, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func kill(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
}

// parentOf returns the parent pid of pid.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name in parentheses may hold spaces: fields follow it.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("parent of %d in %q: %v", pid, data, err)
	}
	return ppid
}

// cniNetns lists the network namespaces the CRI plugin has made.
func cniNetns() map[string]bool {
	found, _ := filepath.Glob("/run/netns/cni-*")
	set := map[string]bool{}
	for _, ns := range found {
		set[ns] = true
	}
	return set
}

// assertNodeClean checks that no pod, shim, container process, pod cgroup,
// mount, network namespace or bridge port is left; before is the set of
// network namespaces cniNetns found before the pods were made.
func assertNodeClean(t *testing.T, c cli, d *containerd, before map[string]bool) {
	t.Helper()
	if out := strings.TrimSpace(c.mustRun(t, "pods", "-q")); out != "" {
		t.Errorf("pods left: %q", out)
	}
	// A shim exits shortly after its last task is deleted.
	waitFor(t, 20*time.Second, func() error {
		if pids := d.shims(); len(pids) > 0 {
			return fmt.Errorf("shims left: %v", pids)
		}
		return nil
	})
	for _, cg := range cgroupsNamed("k8s.io") {
		entries, _ := os.ReadDir(cg)
		for _, e := range entries {
			if e.IsDir() {
				t.Errorf("cgroup left: %s", filepath.Join(cg, e.Name()))
			}
		}
	}
	if pids := processes(func(cmdline []byte) bool { return string(cmdline) == "/bin/sleep\x002147483647\x00" }); len(pids) > 0 {
		t.Errorf("sandbox processes left: %v", pids)
	}
	for _, m := range mountsUnder(d.dir) {
		t.Errorf("mount left: %s", m)
	}
	for ns := range cniNetns() {
		if !before[ns] {
			t.Errorf("network namespace left: %s", ns)
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show", "master", criBridge).CombinedOutput(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("bridge ports left: %s", out)
	}
}
