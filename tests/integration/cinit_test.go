package integration

import (
	"os"
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
		// Devices bound from the host, sysfs bound when it cannot be mounted.
		"userns": func(t *testing.T, s *specs.Spec) {
			withUserNamespace(t, s)
		},
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
				outs[i] = runLogged(e, mode, "run", "--bundle", b, id)
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
				outs[i] = runLogged(e, mode, "exec", tty, "--user", "1000:1000", "--additional-gids", "30",
					"--cwd", "/tmp", "--cap", "CAP_SYS_TIME", "--env", "B=1", id, "sh", "-c", probeScript)
			}
			if outs[0] != outs[1] {
				t.Errorf("C init stage and Go init differ in exec %s:\n%s", tty, lineDiff(outs[0], outs[1]))
			}
		}
		e.mustRT("delete", "--force", id)
	})
}

// TestGoInitFallback: what the C init stage does not do (here, a
// createContainer hook, which runs inside the container) still works, by
// the Go init, and the debug log says why.
func TestGoInitFallback(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := shell(t, "cat /tmp/hooked")
	rootfs := copyRootfs(t, s)
	// The hook runs in the container's mount namespace, before pivot_root.
	s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh",
		Args: []string{"sh", "-c", "echo hooked > " + rootfs + "/tmp/hooked"}}}}
	log := filepath.Join(e.dir, "debug.log")
	id := e.newID()
	e.track(id)
	if out := e.rt("--log", log, "--debug", "run", "--bundle", e.bundle(s), id); out.code != 0 || out.stdout != "hooked\n" {
		t.Fatalf("container with a createContainer hook: %s", out)
	}
	contains(t, "debug log", readFile(t, log), "set up by the Go init", "hooks in the container")
}

// runLogged runs a runtime command that runs probeScript, by the C init
// stage (mode "c") or the Go init ("go"), checks by the debug log that
// this path was taken, and returns the command's output.
func runLogged(e *env, mode string, args ...string) string {
	e.t.Helper()
	o := cmdOpts{}
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
	return r.stdout
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
