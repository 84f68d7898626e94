package callers

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// cliRuntime runs containers through docker or podman with one runtime.
// Each container is named after the runtime and its scenario, and `run`
// writes the container's id to a cidfile, which outlives `run --rm`.
type cliRuntime struct {
	cli                      // the caller's client, set to use the runtime
	name     string          // the runtime's own name
	dir      string          // where the cidfiles go
	runFlags []string        // the caller's own flags of run for this runtime
	track    func(id string) // has the caller's cleanup look for container id
}

// container is the name of the scenario's container.
func (r *cliRuntime) container(scenario string) string { return r.name + "-" + scenario }

func (r *cliRuntime) cidFile(scenario string) string {
	return filepath.Join(r.dir, r.container(scenario)+".cid")
}

// runArgs returns the arguments of `run` for the scenario's container,
// then args.
func (r *cliRuntime) runArgs(scenario string, args ...string) []string {
	run := []string{"run", "--name", r.container(scenario), "--cidfile", r.cidFile(scenario)}
	return slices.Concat(run, r.runFlags, args)
}

// id returns the id of the container run for scenario, and has the
// caller's cleanup look for it.
func (r *cliRuntime) id(t *testing.T, scenario string) string {
	t.Helper()
	data, err := os.ReadFile(r.cidFile(scenario))
	if err != nil {
		t.Fatalf("container id: %v", err)
	}
	id := strings.TrimSpace(string(data))
	r.track(id)
	return id
}

// inspect returns the container's fields in inspect's format.
func (r *cliRuntime) inspect(t *testing.T, name, format string) string {
	t.Helper()
	return strings.TrimSpace(r.mustRun(t, "inspect", "--format", format, name))
}

// startDetached runs command in the scenario's container with `run -d`,
// checks that it runs, and returns its name, id and pid.
func (r *cliRuntime) startDetached(t *testing.T, scenario string, command ...string) (name, id string, pid int) {
	t.Helper()
	r.mustRun(t, r.runArgs(scenario, append([]string{"-d", busyboxImage}, command...)...)...)
	name, id = r.container(scenario), r.id(t, scenario)
	if status := r.inspect(t, name, "{{.State.Status}}"); status != "running" {
		t.Errorf("%s status after run -d: %q, want running", r.program, status)
	}
	pid, err := strconv.Atoi(r.inspect(t, name, "{{.State.Pid}}"))
	if err != nil {
		t.Fatalf("container pid: %v", err)
	}
	return name, id, pid
}

// assertExecEcho checks that exec runs a command in the running container
// name.
func (r *cliRuntime) assertExecEcho(t *testing.T, name string) {
	t.Helper()
	if out := r.mustRun(t, "exec", name, "echo", "from-exec"); out != "from-exec\n" {
		t.Errorf("%s exec echo: stdout %q, want \"from-exec\\n\"", r.program, out)
	}
}

// assertNoContainers checks that the caller lists no container.
func (r *cliRuntime) assertNoContainers(t *testing.T) {
	t.Helper()
	if out := r.mustRun(t, "ps", "--all", "--quiet"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %q", out)
	}
}

// testShared runs, as subtests, the scenarios docker and podman share;
// assertClean is the caller's check that nothing of a container is left.
func (r *cliRuntime) testShared(t *testing.T, assertClean func(t *testing.T, id string)) {
	t.Run("run", func(t *testing.T) {
		res := r.run(t, r.runArgs("run", "--rm", busyboxImage, "echo", "hi")...)
		id := r.id(t, "run")
		if res.code != 0 || res.stdout != "hi\n" {
			t.Errorf("%s run echo hi: exit %d, stdout %q, want 0 and \"hi\\n\"; stderr: %s", r.program, res.code, res.stdout, res.stderr)
		}
		assertClean(t, id)
	})
	t.Run("exit-code", func(t *testing.T) {
		res := r.run(t, r.runArgs("exit-code", "--rm", busyboxImage, "sh", "-c", "exit 3")...)
		id := r.id(t, "exit-code")
		if res.code != 3 {
			t.Errorf("%s run sh -c 'exit 3': exit %d, want 3; stderr: %s", r.program, res.code, res.stderr)
		}
		assertClean(t, id)
	})
	t.Run("missing-command", func(t *testing.T) {
		res := r.run(t, r.runArgs("missing-command", "--rm", busyboxImage, "no-such-command")...)
		id := r.id(t, "missing-command")
		// The runtime's "executable file not found" reaches the client (from
		// the shim through dockerd, or read by podman), which exits 127.
		if res.code != 127 || !strings.Contains(res.stderr, "executable file not found") {
			t.Errorf("%s run no-such-command: exit %d, stderr %q; want 127 and the runtime's \"executable file not found\"", r.program, res.code, res.stderr)
		}
		t.Logf("%s run no-such-command: exit %d: %s", r.program, res.code, strings.TrimSpace(res.stderr))
		assertClean(t, id)
	})
}
