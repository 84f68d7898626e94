package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestProcessEnvCwd checks that process.env and process.cwd are applied.
func TestProcessEnvCwd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := shell(t, `echo "FOO=$FOO|BAZ=$BAZ"; pwd`)
	s.Process.Env = append(s.Process.Env, "FOO=bar", "BAZ=two words")
	s.Process.Cwd = "/dev/shm"
	out := e.mustRun(s)
	if want := "FOO=bar|BAZ=two words\n/dev/shm\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

// TestProcessUser checks uid, gid and additional groups.
func TestProcessUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := shell(t, "echo uid=$(id -u) gid=$(id -g); grep -E '^(Uid|Gid|Groups):' /proc/self/status")
	s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}}
	out := e.mustRun(s)
	contains(t, "id", out, "uid=1000 gid=1000\n")
	if f := strings.Fields(statusField(out, "Uid")); len(f) != 4 || f[0] != "1000" || f[1] != "1000" || f[2] != "1000" {
		t.Errorf("Uid: %v, want real, effective and saved 1000", f)
	}
	if f := strings.Fields(statusField(out, "Gid")); len(f) != 4 || f[0] != "1000" || f[1] != "1000" || f[2] != "1000" {
		t.Errorf("Gid: %v, want real, effective and saved 1000", f)
	}
	if g := statusField(out, "Groups"); g != "10 20" {
		t.Errorf("Groups: %q, want \"10 20\"", g)
	}
}

// TestProcessUmask checks user.umask on the shell's value and on a new file.
func TestProcessUmask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := shell(t, "umask; touch /dev/shm/f; stat -c %a /dev/shm/f")
	s.Process.User.Umask = ptr(uint32(0o027))
	if out := e.mustRun(s); out != "0027\n640\n" {
		t.Errorf("umask and new file mode: %q, want 0027 and 640", out)
	}
}

// TestProcessRlimits sets RLIMIT_NOFILE and reads it back both ways.
func TestProcessRlimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := shell(t, "echo soft=$(ulimit -n) hard=$(ulimit -Hn); grep 'Max open files' /proc/self/limits")
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048}}
	out := e.mustRun(s)
	contains(t, "ulimit", out, "soft=1024 hard=2048\n")
	var soft, hard int
	for _, l := range lines(out) {
		if rest, ok := strings.CutPrefix(l, "Max open files"); ok {
			fmt.Sscan(rest, &soft, &hard)
		}
	}
	if soft != 1024 || hard != 2048 {
		t.Errorf("/proc/self/limits: soft %d hard %d, want 1024 2048:\n%s", soft, hard, out)
	}
}

// TestTightRlimits gives the process limits under which the init, a Go
// process with ~1.5 GiB of address space reserved, could not run: 64 MiB of
// address space, 32 MiB of data, ten files. The init sets them only at
// execve, so the program starts every time (under the old order about one
// run in sixty died of "out of memory") and has them.
func TestTightRlimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := shell(t, "grep -E 'Max (address space|open files|data size)' /proc/self/limits")
	s.Process.Rlimits = []specs.POSIXRlimit{
		{Type: "RLIMIT_AS", Soft: 64 << 20, Hard: 128 << 20},
		{Type: "RLIMIT_DATA", Soft: 32 << 20, Hard: 32 << 20},
		{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 10},
	}
	for i := 0; i < 20; i++ {
		out := e.mustRun(s)
		for _, want := range []string{"67108864             134217728", "33554432             33554432", "10                   10"} {
			contains(t, "limits", out, want)
		}
	}
}

// TestInheritedNofile: without an RLIMIT_NOFILE of its own, the process
// gets the soft limit the runtime was started with, not the one the Go
// runtime raised itself to.
func TestInheritedNofile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := shell(t, "ulimit -Sn")
	s.Process.Rlimits = nil
	r := e.runWith(cmdOpts{wrap: []string{"prlimit", "--nofile=512:"}}, s)
	if r.code != 0 || r.stdout != "512\n" {
		t.Fatalf("soft RLIMIT_NOFILE, want 512: %s", r)
	}
}

// TestRlimitForbiddenBySeccomp: the rlimits are set after the seccomp
// filter is loaded, so a profile that forbids prlimit64 fails the run of a
// process with rlimits, with a line naming the limit, and the run leaves no
// container behind; a process without rlimits runs.
func TestRlimitForbiddenBySeccomp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newSpec(t, "true")
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 100}}
	s.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"prlimit64"}, Action: specs.ActErrno}},
	}
	r := e.run(s)
	if r.code == 0 {
		t.Fatalf("run succeeded: %s", r)
	}
	contains(t, "run error", r.stderr, "set RLIMIT_NOFILE to soft 100 hard 100: operation not permitted")
	oneLine(t, r)
	if list := e.mustRT("list", "-q"); list.stdout != "" {
		t.Errorf("containers left: %q", list.stdout)
	}
	// Without rlimits of its own the process needs no prlimit64 after the
	// filter (the inherited RLIMIT_NOFILE is restored before it).
	s.Process.Rlimits = nil
	e.mustRun(s)
}

// TestRlimitAboveHostCap asks for more open files than the host's hard
// limit lets root (without CAP_SYS_RESOURCE) set: create must fail quickly,
// name the limit, and leave nothing.
func TestRlimitAboveHostCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.privateRuntime()
	s := newSpec(t, "true")
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 30000, Hard: 30000}}
	id, b, r := e.createMustFail(s)
	contains(t, "create error", r.stderr, "RLIMIT_NOFILE")
	oneLine(t, r)
	if r.elapsed > 5*time.Second {
		t.Errorf("create took %v to fail", r.elapsed)
	}
	e.checkNothingLeft(id, b)
}

// TestNoNewPrivileges checks the no_new_privs bit both ways.
func TestNoNewPrivileges(t *testing.T) {
	t.Parallel()
	for _, nnp := range []bool{true, false} {
		t.Run(fmt.Sprint(nnp), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := newSpec(t, "cat", "/proc/self/status")
			s.Process.NoNewPrivileges = nnp
			want := "0"
			if nnp {
				want = "1"
			}
			if got := statusField(e.mustRun(s), "NoNewPrivs"); got != want {
				t.Errorf("NoNewPrivs: %q, want %s", got, want)
			}
		})
	}
}

// TestCapabilities checks that the process gets exactly the requested
// capabilities.
func TestCapabilities(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newSpec(t, "cat", "/proc/self/status")
	caps := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"} // bits 0, 5, 10
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	out := e.mustRun(s)
	for _, field := range []string{"CapEff", "CapPrm", "CapBnd"} {
		if got := statusField(out, field); got != "0000000000000421" {
			t.Errorf("%s: %s, want 0000000000000421", field, got)
		}
	}
	for _, field := range []string{"CapInh", "CapAmb"} {
		if got := statusField(out, field); got != "0000000000000000" {
			t.Errorf("%s: %s, want none", field, got)
		}
	}
}

// TestUnknownCapability checks that create refuses a capability it does not
// know, by name, and leaves nothing.
func TestUnknownCapability(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.privateRuntime()
	s := newSpec(t, "true")
	s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_BERTH_BOGUS")
	id, b, r := e.createMustFail(s)
	contains(t, "create error", r.stderr, "CAP_BERTH_BOGUS")
	oneLine(t, r)
	e.checkNothingLeft(id, b)
}

// TestOOMScoreAdj checks process.oomScoreAdj.
func TestOOMScoreAdj(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newSpec(t, "cat", "/proc/self/oom_score_adj")
	s.Process.OOMScoreAdj = ptr(423)
	if out := e.mustRun(s); out != "423\n" {
		t.Errorf("oom_score_adj %q, want 423", out)
	}
}
