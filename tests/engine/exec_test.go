package engine

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runDetached starts a busybox container that sleeps, with rt ("" for
// berth-runtime) and extra run flags, and returns its name.
func runDetached(t *testing.T, e *engine, rt, name string, flags ...string) string {
	t.Helper()
	args := append(runFlags(rt), "-d", "--name", name)
	args = append(append(args, flags...), "busybox", "sleep", "1000")
	e.ok(args...)
	t.Cleanup(func() { e.run(nil, "rm", "-f", name) })
	return name
}

func TestExecExitCodes(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	for _, rt := range runtimes(t) {
		t.Run(runtimeName(rt), func(t *testing.T) {
			c := runDetached(t, e, rt, "exec-"+runtimeName(rt))
			if r := e.run(nil, "exec", c, "echo", "hello"); r.Code != 0 || r.Stdout != "hello\n" || r.Stderr != "" {
				t.Errorf("echo: %+v", r)
			}
			// The process's own streams, nothing of the runtime's.
			if r := e.run(nil, "exec", c, "sh", "-c", "echo out; echo err >&2; exit 3"); r.Code != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" {
				t.Errorf("exit 3: %+v", r)
			}
			// 255 from the process is its code, not a runtime failure.
			if r := e.run(nil, "exec", c, "sh", "-c", "exit 255"); r.Code != 255 || r.Stderr != "" {
				t.Errorf("exit 255: %+v", r)
			}
			if r := e.run(nil, "exec", c, "sh", "-c", "kill -9 $$"); r.Code != 137 {
				t.Errorf("killed: %+v", r)
			}
			r := e.run(nil, "exec", c, "nosuchcommand")
			if r.Code != 127 || !strings.HasPrefix(r.Stderr, "Error: ") || !strings.Contains(r.Stderr, "nosuchcommand") ||
				strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
				t.Errorf("not found: %+v", r)
			}
			if r := e.run(nil, "exec", c, "/etc/passwd"); r.Code != 126 || !strings.Contains(strings.ToLower(r.Stderr), "permission denied") {
				t.Errorf("not executable: %+v", r)
			}
			// Stdin only with -i.
			if r := e.run([]byte("typed\n"), "exec", "-i", c, "cat"); r.Code != 0 || r.Stdout != "typed\n" {
				t.Errorf("-i: %+v", r)
			}
			if r := e.run([]byte("typed\n"), "exec", c, "cat"); r.Code != 0 || r.Stdout != "" {
				t.Errorf("without -i: %+v", r)
			}
			e.fail("no such container", "exec", "nosuchcontainer", "true")
			e.fail("requires at least 2 argument(s)", "exec", c)
			e.ok("pause", c)
			e.fail("is paused", "exec", c, "true")
			e.ok("unpause", c)
			e.ok("kill", c)
			waitFor(t, func() bool {
				return strings.Contains(e.ok("ps", "-a", "--format", "{{.Names}} {{.State}}"), c+" exited")
			})
			e.fail("is not running", "exec", c, "true")
			e.ok("start", c)
			if out := e.ok("exec", c, "echo", "again"); out != "again\n" {
				t.Errorf("exec after restart: %q", out)
			}
		})
	}
}

func TestExecOptions(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	for _, rt := range runtimes(t) {
		t.Run(runtimeName(rt), func(t *testing.T) {
			c := runDetached(t, e, rt, "opts-"+runtimeName(rt), "-e", "FROMRUN=kept", "-e", "OVER=run", "-w", "/etc")
			show := `echo "$FROMRUN $OVER $A $(pwd) $(id -un):$(id -g) $HOME"`
			if out := e.ok("exec", c, "sh", "-c", show); out != "kept run  /etc root:0 /root\n" {
				t.Errorf("container's defaults: %q", out)
			}
			home := strings.TrimSpace(e.ok("exec", c, "sh", "-c", "grep ^nobody: /etc/passwd | cut -d: -f6"))
			gid := strings.TrimSpace(e.ok("exec", c, "sh", "-c", "grep ^nobody: /etc/passwd | cut -d: -f4"))
			envFile := filepath.Join(t.TempDir(), "env")
			if err := os.WriteFile(envFile, []byte("# comment\nA=fromfile\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			out := e.ok("exec", "-u", "nobody", "-w", "/tmp", "--env-file", envFile, "-e", "OVER=exec", c, "sh", "-c", show)
			if want := "kept exec fromfile /tmp nobody:" + gid + " " + home + "\n"; out != want {
				t.Errorf("-u -w -e: %q, want %q", out, want)
			}
			if out := e.ok("exec", "-u", "1234:5678", c, "sh", "-c", "echo $(id -u):$(id -g)"); out != "1234:5678\n" {
				t.Errorf("numeric -u: %q", out)
			}
			e.fail("absolute path", "exec", "-w", "tmp", c, "true")
			e.fail(`user "nosuchuser"`, "exec", "-u", "nosuchuser", c, "true")
			// Capabilities are the container's, or all with --privileged.
			caps := func(args ...string) string {
				return strings.TrimSpace(e.ok(append(append([]string{"exec"}, args...), c, "sh", "-c", "grep CapEff /proc/self/status")...))
			}
			// All: what this test's (and so berth's) bounding set holds.
			status, err := os.ReadFile("/proc/self/status")
			if err != nil {
				t.Fatal(err)
			}
			all := ""
			for _, l := range strings.Split(string(status), "\n") {
				if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
					all = "CapEff:" + v
				}
			}
			plain, priv := caps(), caps("--privileged")
			if plain == priv || priv != all {
				t.Errorf("capabilities: plain %q, --privileged %q, want %q", plain, priv, all)
			}
			// -d leaves the process running in the container.
			if r := e.run(nil, "exec", "-d", c, "sleep", "4321"); r.Code != 0 || r.Stdout != "" {
				t.Fatalf("exec -d: %+v", r)
			}
			if out := e.ok("top", c, "-o", "pid,args"); !strings.Contains(out, "sleep 4321") {
				t.Errorf("top after exec -d: %q", out)
			}
			e.fail("cannot have a terminal", "exec", "-dt", c, "sh")
		})
	}
}

func TestExecTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) not found")
	}
	e := newEngine(t)
	withBusybox(t, e)
	for _, rt := range runtimes(t) {
		t.Run(runtimeName(rt), func(t *testing.T) {
			c := runDetached(t, e, rt, "tty-"+runtimeName(rt))
			cmd := e.cmd("exec", "-it", c, "sh")
			cmdline := strings.Join(append([]string{cmd.Path}, cmd.Args[1:]...), " ")
			// Typed into the terminal; the shell reads it from its own pty.
			script := exec.Command("script", "-qfec", "stty cols 80 rows 24; "+cmdline, "/dev/null")
			script.Env = cmd.Env
			script.Stdin = strings.NewReader("tty; stty size; echo $TERM; exit 7\n")
			out, err := script.CombinedOutput()
			text := string(out)
			if !strings.Contains(text, "/dev/pts/") || !strings.Contains(text, "24 80") || !strings.Contains(text, "xterm") {
				t.Errorf("terminal session: %q", text)
			}
			var ee *exec.ExitError
			if err == nil || !asExit(err, &ee) || ee.ExitCode() != 7 {
				t.Errorf("exit code through script: %v\n%s", err, text)
			}
			// -t alone: a terminal for the output, no input.
			if r := e.run(nil, "exec", "-t", c, "sh", "-c", "tty; echo done"); r.Code != 0 ||
				!strings.Contains(r.Stdout, "/dev/pts/") || !strings.Contains(r.Stdout, "done") {
				t.Errorf("exec -t: %+v", r)
			}
		})
	}
}
