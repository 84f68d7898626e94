package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/bundle/seccomp"
)

// probeScript prints what the set-up of a container process decides: ids,
// capabilities, seccomp and no_new_privs, limits, umask, cwd, environment,
// descriptors, hostname, terminal, mounts and /dev, and what the seccomp
// profile and the read-only paths refuse.
const probeScript = `id; umask; pwd; hostname; tty 2>&1; stty size 2>&1
grep -E '^(Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status
grep -E '^Max (open files|processes|core)' /proc/self/limits
cat /proc/self/oom_score_adj
env | sort
ls /proc/self/fd
cat /proc/self/mounts
stat -c '%n %F %a %u %g %t %T' /dev/* 2>&1 | sort
ls -l /dev/fd /dev/ptmx /dev/stdin 2>&1 | sed 's/.* \(\/dev\/[a-z]*\)/\1/'
mkdir /proc/sys/x 2>&1; touch /sys/x 2>&1; unshare -m true 2>&1
cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname 2>&1
echo end`

// TestCInitMatchesGoInit runs the same containers set up by the C init
// stage and by the Go init (BERTH_GO_INIT=1) and wants the same view from
// inside, for `run` and for `exec`. It also checks, by the runtime's debug
// log, that each really took the path it was meant to.
func TestCInitMatchesGoInit(t *testing.T) {
	t.Parallel()
	profile, err := seccomp.Default()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(t *testing.T, s *specs.Spec){
		"default": func(t *testing.T, s *specs.Spec) {},
		"process": func(t *testing.T, s *specs.Spec) {
			p := s.Process
			p.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: ptr(uint32(0o077))}
			p.Cwd = "/tmp"
			p.NoNewPrivileges = true
			p.Env = append(p.Env, "HOME=/tmp", "A=b c")
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1024},
				{Type: "RLIMIT_NPROC", Soft: 300, Hard: 400}, {Type: "RLIMIT_CORE", Soft: 0, Hard: 0}}
			p.OOMScoreAdj = ptr(500)
			caps := []string{"CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_CHOWN"}
			p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps,
				Inheritable: caps, Ambient: []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"}}
			s.Hostname = "probe"
			s.Domainname = "example.org"
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
			s.Linux.Seccomp = profile.Resolve(caps)
		},
		"mounts": func(t *testing.T, s *specs.Spec) {
			rootfs := copyRootfs(t, s)
			// A mount point that is an absolute symlink resolves in the rootfs.
			if err := os.Symlink("/tmp", filepath.Join(rootfs, "link")); err != nil {
				t.Fatal(err)
			}
			host := t.TempDir()
			writeFile(t, filepath.Join(host, "file"), "data\n", 0o644)
			s.Root.Readonly = true
			s.Linux.RootfsPropagation = "rprivate"
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/link/sub", Type: "tmpfs", Source: "tmpfs", Options: []string{"ro", "size=1m", "mode=700"}},
				specs.Mount{Destination: "/mnt/host", Type: "bind", Source: host, Options: []string{"rbind", "ro", "nosuid", "rprivate"}},
				specs.Mount{Destination: "/etc/hostfile", Type: "bind", Source: filepath.Join(host, "file"), Options: []string{"bind", "rro"}},
				specs.Mount{Destination: "/deep/new/dir", Type: "tmpfs", Source: "tmpfs", Options: []string{"rnoexec"}})
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: ptr(os.FileMode(0o600)), UID: ptr(uint32(1)), GID: ptr(uint32(2))}}
			s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/etc/hostname", "/no/such/path")
			s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/mnt")
		},
		// A pty made by the runtime, of a given size, bound on /dev/console.
		"terminal": func(t *testing.T, s *specs.Spec) {
			s.Process.Terminal = true
			s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
			s.Process.User = specs.User{UID: 1000, GID: 1000}
		},
		// The container's own cgroups bound in, rather than a cgroup namespace.
		"no-cgroupns": func(t *testing.T, s *specs.Spec) {
			withoutNamespace(s, specs.CgroupNamespace)
		},
		// A cgroup bind with no options is still remounted, as the Go init
		// does, which clears the host mount's nosuid, nodev and noexec
		// (given to them in the runtime's mount namespace, see wraps).
		"cgroup-no-options": func(t *testing.T, s *specs.Spec) {
			withoutNamespace(s, specs.CgroupNamespace)
			for i := range s.Mounts {
				if s.Mounts[i].Type == "cgroup" {
					s.Mounts[i].Options = nil
				}
			}
		},
		// More read-only mounts deferred to the end than a fixed table holds.
		"many-late-readonly": func(t *testing.T, s *specs.Spec) {
			for i := 0; i < 70; i++ {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: fmt.Sprintf("/mnt/%d", i), Type: "tmpfs", Source: "tmpfs", Options: []string{"ro", "size=4k"}})
			}
		},
		// Devices bound from the host, sysfs bound when it cannot be mounted.
		"userns": func(t *testing.T, s *specs.Spec) {
			withUserNamespace(t, s)
		},
		// A user namespace in the host's pid namespace can make no procfs
		// of its own: sysctls are written through the container's /proc,
		// the host's bound.
		"userns-host-pid": func(t *testing.T, s *specs.Spec) {
			withUserNamespace(t, s)
			withoutNamespace(s, specs.PIDNamespace)
			for i := range s.Mounts {
				if s.Mounts[i].Destination == "/proc" {
					s.Mounts[i] = specs.Mount{Destination: "/proc", Type: "bind", Source: "/proc", Options: []string{"rbind"}}
				}
			}
			// A network namespace of its own, whose sysctls its root may set.
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		},
	}
	// Commands the runtime runs under, by case.
	wraps := map[string][]string{
		"cgroup-no-options": {"unshare", "--mount", "sh", "-c",
			`for d in /sys/fs/cgroup/*/; do mount -o remount,bind,nosuid,nodev,noexec "$d" || exit; done; exec "$@"`, "sh"},
	}
	for name, adjust := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := shell(t, probeScript)
			adjust(t, s)
			var outs [2]string
			b := e.bundle(s)
			for i, mode := range []string{"c", "go"} {
				id := e.newID()
				e.track(id)
				outs[i] = runLogged(e, cmdOpts{wrap: wraps[name]}, mode, "run", "--bundle", b, id)
			}
			if outs[0] != outs[1] {
				t.Errorf("C init stage and Go init differ:\n%s", lineDiff(outs[0], outs[1]))
			}
		})
	}

	t.Run("exec", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := newSpec(t, "sleep", "100")
		cases["process"](t, s)
		id, _ := e.start(s)
		for _, tty := range []string{"--tty=false", "--tty"} {
			var outs [2]string
			for i, mode := range []string{"c", "go"} {
				outs[i] = runLogged(e, cmdOpts{}, mode, "exec", tty, "--user", "1000:1000", "--additional-gids", "30",
					"--cwd", "/tmp", "--cap", "CAP_SYS_TIME", "--env", "B=1", id, "sh", "-c", probeScript)
			}
			if outs[0] != outs[1] {
				t.Errorf("C init stage and Go init differ in exec %s:\n%s", tty, lineDiff(outs[0], outs[1]))
			}
		}
		e.mustRT("delete", "--force", id)
	})
}

// TestCInitErrorsMatchGoInit: a process that cannot be started fails with
// the same words by either path, which callers match.
func TestCInitErrorsMatchGoInit(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		adjust func(t *testing.T, s *specs.Spec)
		want   string
	}{
		// An error of stat other than "does not exist", in Go's lower case.
		"stat error": {func(t *testing.T, s *specs.Spec) { s.Process.Args = []string{"/etc/passwd/x"} },
			"stat /etc/passwd/x: not a directory"},
		// An empty PATH has no directories, not even the current one,
		// where a program of that name is.
		"empty PATH": {func(t *testing.T, s *specs.Spec) {
			writeFile(t, filepath.Join(copyRootfs(t, s), "probe"), "#!/bin/sh\n", 0o755)
			s.Process.Args, s.Process.Cwd, s.Process.Env = []string{"probe"}, "/", []string{"PATH="}
		}, `exec: "probe": executable file not found in $PATH`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.privateRuntime() // checkNothingLeft looks for its processes
			s := newSpec(t, "true")
			c.adjust(t, s)
			b := e.bundle(s)
			var errs [2]string
			for i, env := range [][]string{nil, {"BERTH_GO_INIT=1"}} {
				id := e.newID()
				r := e.rtWith(cmdOpts{env: env}, "create", "--bundle", b, id)
				if r.code == 0 {
					e.track(id)
					t.Fatalf("create succeeded: %s", r)
				}
				oneLine(t, r)
				e.checkNothingLeft(id, b)
				errs[i] = r.stderr
			}
			contains(t, "C init stage's error", errs[0], c.want)
			if errs[0] != errs[1] {
				t.Errorf("C init stage and Go init fail differently:\n%q\n%q", errs[0], errs[1])
			}
		})
	}
	// A message longer than the C stage's buffer is cut, and keeps its
	// errno's words: a mount point under a regular file, 1500 bytes deep.
	t.Run("long message", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.privateRuntime()
		s := newSpec(t, "true")
		dest := "/etc/passwd/" + strings.Repeat("d/", 750)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs"})
		id, b, r := e.createMustFail(s)
		oneLine(t, r)
		contains(t, "create error", r.stderr, "resolve /etc/passwd/d/d/", ": not a directory")
		e.checkNothingLeft(id, b)
	})
}

// TestGoInitFallback: what the C init stage does not do still works, by
// the Go init, and the debug log says why: a createContainer hook, which
// runs inside the container, and a mount namespace joined by path, whose
// mounts the runtime cannot look at to make a plan.
func TestGoInitFallback(t *testing.T) {
	t.Parallel()
	t.Run("hook", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := shell(t, "cat /tmp/hooked")
		rootfs := copyRootfs(t, s)
		// The hook runs in the container's mount namespace, before pivot_root.
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh",
			Args: []string{"sh", "-c", "echo hooked > " + rootfs + "/tmp/hooked"}}}}
		runFallback(e, s, "hooked\n", "hooks in the container")
	})
	t.Run("joined mount namespace", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		// The holder says so once it is in its own mount namespace.
		holder := exec.Command("unshare", "--mount", "--propagation", "slave", "sh", "-c", "echo ready; exec sleep 1000")
		out, err := holder.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
		if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
			t.Fatalf("mount namespace holder: %q, %v", line, err)
		}
		ns := fmt.Sprintf("/proc/%d/ns/mnt", holder.Process.Pid)
		s := shell(t, "echo joined")
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == specs.MountNamespace {
				s.Linux.Namespaces[i].Path = ns
			}
		}
		runFallback(e, s, "joined\n", "joining mount namespace "+ns)
	})
}

// runFallback runs s, which must print want, set up by the Go init for the
// given reason.
func runFallback(e *env, s *specs.Spec, want, reason string) {
	e.t.Helper()
	log := filepath.Join(e.dir, "debug.log")
	id := e.newID()
	e.track(id)
	if out := e.rt("--log", log, "--debug", "run", "--bundle", e.bundle(s), id); out.code != 0 || out.stdout != want {
		e.t.Fatalf("run: %s", out)
	}
	contains(e.t, "debug log", readFile(e.t, log), "set up by the Go init", reason)
}

// runLogged runs a runtime command that runs probeScript (with o), by the
// C init stage (mode "c") or the Go init ("go"), checks by the debug log that
// this path was taken, and returns the command's output.
func runLogged(e *env, o cmdOpts, mode string, args ...string) string {
	e.t.Helper()
	if mode == "go" {
		o.env = []string{"BERTH_GO_INIT=1"}
	}
	log := filepath.Join(e.dir, mode+".log")
	r := e.rtWith(o, append([]string{"--log", log, "--debug"}, args...)...)
	if r.code != 0 || !strings.HasSuffix(strings.ReplaceAll(r.stdout, "\r", ""), "end\n") {
		e.t.Fatalf("%s init: %s", mode, r)
	}
	text := readFile(e.t, log)
	if usedGo := strings.Contains(text, "set up by the Go init"); usedGo != (mode == "go") {
		e.t.Errorf("mode %s, but the debug log says Go init = %v:\n%s", mode, usedGo, text)
	}
	// With a terminal, lines written before the runtime clears the pty's
	// ONLCR (after it receives the master, as runc does) end in \r\n, later
	// ones in \n: where that falls is timing, not the init's doing.
	return strings.ReplaceAll(r.stdout, "\r", "")
}

// lineDiff lists the lines only a or only b has.
func lineDiff(a, b string) string {
	var out []string
	bl := map[string]int{}
	for _, l := range strings.Split(b, "\n") {
		bl[l]++
	}
	for _, l := range strings.Split(a, "\n") {
		if bl[l] > 0 {
			bl[l]--
			continue
		}
		out = append(out, "C only:  "+l)
	}
	for l, n := range bl {
		for ; n > 0; n-- {
			out = append(out, "Go only: "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestParallelRuns starts many containers at once: on a loaded host the
// final process may be ready before the process that forked it has
// reported its pid, which the runtime must never see out of order.
func TestParallelRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 40
	errs := make(chan string, n)
	for range n {
		go func() {
			r := e.run(newSpec(t, "true"))
			if r.code != 0 {
				errs <- r.String()
				return
			}
			errs <- ""
		}()
	}
	for range n {
		if msg := <-errs; msg != "" {
			t.Error(msg)
		}
	}
}
