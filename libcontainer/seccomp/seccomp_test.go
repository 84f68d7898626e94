package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// A filter cannot be removed once loaded, so the tests load it in a
// re-executed copy of the test binary, selected by these variables.
const (
	envProfile = "BERTH_SECCOMP_TEST_PROFILE" // JSON LinuxSeccomp
	envProbes  = "BERTH_SECCOMP_TEST_PROBES"  // JSON []string, see probe
	envDir     = "BERTH_SECCOMP_TEST_DIR"     // where the mkdir probe creates
	envPrep    = "BERTH_SECCOMP_TEST_PREP"    // "", "nocap" or "nocap,nnp", see child
	envExport  = "BERTH_SECCOMP_TEST_EXPORT"  // "1": load Programs' BPF as the C init stage does
)

func TestMain(m *testing.M) {
	if os.Getenv(envProfile) != "" {
		if err := child(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child loads the profile, then runs each probe and prints one line per
// probe: the errno it got (0 for success) or, for "listener", facts about
// the returned fd. Before loading, envPrep may make it lose CAP_SYS_ADMIN
// ("nocap") and then set no_new_privs ("nocap,nnp").
func child() error {
	runtime.LockOSThread()
	// A killed child must not leave a core file behind.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return err
	}
	prep := os.Getenv(envPrep)
	if strings.HasPrefix(prep, "nocap") {
		caps, err := capability.NewPid2(0)
		if err != nil {
			return err
		}
		if err := caps.Load(); err != nil {
			return err
		}
		caps.Unset(capability.EFFECTIVE, capability.CAP_SYS_ADMIN)
		if err := caps.Apply(capability.CAPS); err != nil {
			return err
		}
	}
	if strings.HasSuffix(prep, "nnp") {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return err
		}
	}
	var profile specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(os.Getenv(envProfile)), &profile); err != nil {
		return err
	}
	var probes []string
	if err := json.Unmarshal([]byte(os.Getenv(envProbes)), &probes); err != nil {
		return err
	}
	f, err := Build(&profile)
	if err != nil {
		return err
	}
	fd := -1
	if os.Getenv(envExport) == "1" {
		err = loadPrograms(f)
	} else {
		fd, err = f.Load()
	}
	if err != nil {
		return err
	}
	for _, p := range probes {
		out, err := probe(p, fd)
		if err != nil {
			return fmt.Errorf("probe %q: %w", p, err)
		}
		fmt.Println(out)
	}
	return nil
}

// loadPrograms loads f's exported programs on this thread the way the C
// init stage does (cinit.c, load_bpf): in order, each with its flags, an
// optional one's refusal ignored.
func loadPrograms(f *Filter) error {
	progs, err := f.Programs()
	if err != nil {
		return err
	}
	for _, p := range progs {
		insns := unsafe.Slice((*unix.SockFilter)(unsafe.Pointer(&p.Code[0])), len(p.Code)/int(unsafe.Sizeof(unix.SockFilter{})))
		fprog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
		_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(p.Flags), uintptr(unsafe.Pointer(&fprog)))
		if e != 0 && !p.Optional {
			return fmt.Errorf("load exported seccomp program: %w", e)
		}
	}
	return nil
}

// probe runs one probe:
//
//	"mkdir"             os.Mkdir in envDir
//	"nnp"               the NoNewPrivs field of the thread's status
//	"listener"          the fd Load returned: its target and close-on-exec bit
//	"<syscall> a0 a1…"  a raw syscall with integer arguments
//	"#N"                the raw syscall number N without arguments
//
// It returns the probe's output line.
func probe(p string, fd int) (string, error) {
	errnoOf := func(err error) string {
		var e syscall.Errno
		if errors.As(err, &e) {
			return strconv.Itoa(int(e))
		}
		if err != nil {
			return err.Error()
		}
		return "0"
	}
	fields := strings.Fields(p)
	switch fields[0] {
	case "mkdir":
		return errnoOf(os.Mkdir(filepath.Join(os.Getenv(envDir), "d"), 0o755)), nil
	case "nnp":
		status, err := os.ReadFile("/proc/thread-self/status")
		if err != nil {
			return "", err
		}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "NoNewPrivs:"); ok {
				return strings.TrimSpace(v), nil
			}
		}
		return "", errors.New("no NoNewPrivs in status")
	case "listener":
		if fd < 0 {
			return "none", nil
		}
		target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil {
			return "", err
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s cloexec=%t", target, flags&unix.FD_CLOEXEC != 0), nil
	}
	if n, ok := strings.CutPrefix(fields[0], "#"); ok {
		nr, err := strconv.Atoi(n)
		if err != nil {
			return "", err
		}
		_, _, e := unix.Syscall(uintptr(nr), 0, 0, 0)
		return strconv.Itoa(int(e)), nil
	}
	nr, err := libseccomp.GetSyscallFromName(fields[0])
	if err != nil {
		return "", err
	}
	var args [3]uintptr
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 0, 64)
		if err != nil {
			return "", err
		}
		args[i] = uintptr(v)
	}
	_, _, e := unix.Syscall(uintptr(nr), args[0], args[1], args[2])
	return strconv.Itoa(int(e)), nil
}

// startChild loads profile in a child prepared as prep, runs probes there
// and returns the child's output and how it ended.
func startChild(t *testing.T, prep string, profile *specs.LinuxSeccomp, probes ...string) (stdout, stderr string, state *os.ProcessState) {
	t.Helper()
	return startChildMode(t, prep, "", profile, probes...)
}

// startChildMode is startChild loading the filter with Load, or with
// export "1" as the C init stage loads Programs.
func startChildMode(t *testing.T, prep, export string, profile *specs.LinuxSeccomp, probes ...string) (stdout, stderr string, state *os.ProcessState) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: filters are loaded without no_new_privs")
	}
	pj, err := json.Marshal(profile)
	if err != nil {
		t.Fatal(err)
	}
	qj, err := json.Marshal(probes)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		envProfile+"="+string(pj), envProbes+"="+string(qj), envDir+"="+dir, envPrep+"="+prep, envExport+"="+export)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), cmd.ProcessState
}

// runChild is startChild for a child with all privileges that must succeed.
// It returns the probes' output lines. A profile without notify rules is
// loaded a second time as the C init stage loads it, which must give the
// same lines.
func runChild(t *testing.T, profile *specs.LinuxSeccomp, probes ...string) []string {
	t.Helper()
	out, stderr, state := startChild(t, "", profile, probes...)
	if !state.Success() {
		t.Fatalf("child: %v: %s", state, stderr)
	}
	if !notifies(profile) {
		exported, stderr, state := startChildMode(t, "", "1", profile, probes...)
		if !state.Success() {
			t.Fatalf("child loading the exported programs: %v: %s", state, stderr)
		}
		if exported != out {
			t.Errorf("exported programs gave %q, Load gave %q", exported, out)
		}
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(probes) {
		t.Fatalf("child printed %q for probes %q", lines, probes)
	}
	return lines
}

func uintp(v uint) *uint { return &v }

func notifies(profile *specs.LinuxSeccomp) bool {
	for _, sc := range profile.Syscalls {
		if sc.Action == specs.ActNotify {
			return true
		}
	}
	return false
}

func checkLines(t *testing.T, probes, got, want []string) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("probe %q: got %s, want %s", probes[i], got[i], want[i])
		}
	}
}

func TestErrnoAction(t *testing.T) {
	probes := []string{"mkdir", "getpid", "nnp"}
	for _, tc := range []struct {
		name     string
		errnoRet *uint
		want     string
	}{
		{"default EPERM", nil, strconv.Itoa(int(unix.EPERM))},
		{"errnoRet 38", uintp(38), "38"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runChild(t, &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{
					Names:    []string{"mkdir", "mkdirat", "no_such_syscall"},
					Action:   specs.ActErrno,
					ErrnoRet: tc.errnoRet,
				}},
			}, probes...)
			// mkdir is refused, getpid still works, and Load left
			// no_new_privs unset.
			checkLines(t, probes, got, []string{tc.want, "0", "0"})
		})
	}
}

func TestDefaultErrnoRet(t *testing.T) {
	// Every syscall libseccomp knows but getppid is allowed, so that the Go
	// runtime of the child keeps working whatever it calls.
	var allowed []string
	for nr := range 1024 {
		name, err := libseccomp.ScmpSyscall(nr).GetName()
		if err == nil && name != "getppid" {
			allowed = append(allowed, name)
		}
	}
	probes := []string{"getpid", "getppid"}
	got := runChild(t, &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(uint(unix.EDOM)),
		Syscalls:        []specs.LinuxSyscall{{Names: allowed, Action: specs.ActAllow}},
	}, probes...)
	checkLines(t, probes, got, []string{"0", strconv.Itoa(int(unix.EDOM))})
}

// TestENOSYSAboveProfile: a syscall numbered above every one the profile
// names is newer than the profile: it fails with ENOSYS, not the default
// errno, as in runc, so that programs fall back to older calls. A syscall
// within the profile's range keeps the default errno.
func TestENOSYSAboveProfile(t *testing.T) {
	var allowed []string
	for nr := range 1024 {
		name, err := libseccomp.ScmpSyscall(nr).GetName()
		if err == nil && name != "getppid" {
			allowed = append(allowed, name)
		}
	}
	probes := []string{"getpid", "getppid", "#1000"}
	got := runChild(t, &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(uint(unix.EDOM)),
		Syscalls:        []specs.LinuxSyscall{{Names: allowed, Action: specs.ActAllow}},
	}, probes...)
	checkLines(t, probes, got, []string{"0", strconv.Itoa(int(unix.EDOM)), strconv.Itoa(int(unix.ENOSYS))})
}

func TestLargeProfile(t *testing.T) {
	// More rules than optimizeAbove: the filter is built as a binary tree.
	denied := []string{
		"acct", "add_key", "bpf", "chroot", "delete_module", "fanotify_init", "finit_module",
		"getppid", "init_module", "ioperm", "iopl", "kexec_load", "keyctl", "mkdir", "mkdirat",
		"mount", "move_pages", "name_to_handle_at", "open_by_handle_at", "perf_event_open",
		"pivot_root", "quotactl", "reboot", "request_key", "setdomainname", "sethostname",
		"setns", "settimeofday", "swapoff", "swapon", "syslog", "umount2", "unshare", "uselib",
		"userfaultfd", "vhangup",
	}
	if len(denied) <= optimizeAbove {
		t.Fatalf("only %d rules", len(denied))
	}
	probes := []string{"mkdir", "getppid", "getpid"}
	eperm := strconv.Itoa(int(unix.EPERM))
	got := runChild(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: denied, Action: specs.ActErrno}},
	}, probes...)
	checkLines(t, probes, got, []string{eperm, eperm, "0"})
}

func TestArgumentFilter(t *testing.T) {
	const edom = "33"
	profile := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			// Only the personality query is allowed.
			{
				Names:    []string{"personality"},
				Action:   specs.ActErrno,
				ErrnoRet: uintp(uint(unix.EDOM)),
				Args:     []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpNotEqual}},
			},
			// Different arguments: both must match.
			{
				Names:    []string{"getpriority"},
				Action:   specs.ActErrno,
				ErrnoRet: uintp(uint(unix.EDOM)),
				Args: []specs.LinuxSeccompArg{
					{Index: 0, Value: unix.PRIO_PROCESS, Op: specs.OpEqualTo},
					{Index: 1, Value: 1, Op: specs.OpEqualTo},
				},
			},
			// The same argument twice: either may match.
			{
				Names:    []string{"getpgid"},
				Action:   specs.ActErrno,
				ErrnoRet: uintp(uint(unix.EDOM)),
				Args: []specs.LinuxSeccompArg{
					{Index: 0, Value: 1, Op: specs.OpEqualTo},
					{Index: 0, Value: 2, Op: specs.OpEqualTo},
				},
			},
		},
	}
	probes := []string{
		"personality 0xffffffff", "personality 0",
		"getpriority 0 1", "getpriority 0 0", "getpriority 1 0",
		"getpgid 1", "getpgid 2", "getpgid 0",
	}
	got := runChild(t, profile, probes...)
	checkLines(t, probes, got, []string{"0", edom, edom, "0", "0", edom, edom, "0"})
}

func TestOperators(t *testing.T) {
	const edom = "33"
	// getpgid of a pid that does not exist fails with ESRCH, so EDOM shows
	// the rule matched and ESRCH that it did not.
	esrch := strconv.Itoa(int(unix.ESRCH))
	probes := []string{"getpgid 0x7ffff050", "getpgid 0x7ffff100", "getpgid 0x7ffff150"}
	for _, tc := range []struct {
		op         specs.LinuxSeccompOperator
		value, two uint64
		want       []string
	}{
		{specs.OpNotEqual, 0x7ffff100, 0, []string{edom, esrch, edom}},
		{specs.OpLessThan, 0x7ffff100, 0, []string{edom, esrch, esrch}},
		{specs.OpLessEqual, 0x7ffff100, 0, []string{edom, edom, esrch}},
		{specs.OpEqualTo, 0x7ffff100, 0, []string{esrch, edom, esrch}},
		{specs.OpGreaterEqual, 0x7ffff100, 0, []string{esrch, edom, edom}},
		{specs.OpGreaterThan, 0x7ffff100, 0, []string{esrch, esrch, edom}},
		// value is the mask, valueTwo what the masked argument must equal.
		{specs.OpMaskedEqual, 0xff, 0x50, []string{edom, esrch, edom}},
	} {
		t.Run(string(tc.op), func(t *testing.T) {
			got := runChild(t, &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{
					Names:    []string{"getpgid"},
					Action:   specs.ActErrno,
					ErrnoRet: uintp(uint(unix.EDOM)),
					Args:     []specs.LinuxSeccompArg{{Index: 0, Value: tc.value, ValueTwo: tc.two, Op: tc.op}},
				}},
			}, probes...)
			checkLines(t, probes, got, tc.want)
		})
	}
}

func TestLoadPrivileges(t *testing.T) {
	profile := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno}},
	}
	// Without CAP_SYS_ADMIN the kernel wants no_new_privs, which Load
	// leaves to the caller.
	_, stderr, state := startChild(t, "nocap", profile, "getppid")
	if state.Success() || !strings.Contains(stderr, "no_new_privs") {
		t.Fatalf("load without CAP_SYS_ADMIN or no_new_privs: %v, stderr %q", state, stderr)
	}
	out, stderr, state := startChild(t, "nocap,nnp", profile, "getppid", "nnp")
	if !state.Success() {
		t.Fatalf("load with no_new_privs: %v: %s", state, stderr)
	}
	if want := "1\n1\n"; out != want {
		t.Fatalf("with no_new_privs: got %q, want %q", out, want)
	}
}

func TestKillProcess(t *testing.T) {
	// The probe runs on the child's locked main thread; the whole process,
	// not just that thread, must die.
	out, stderr, state := startChild(t, "", &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getpgid"}, Action: specs.ActKillProcess}},
	}, "getpgid 0")
	ws := state.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("child ended with %v, want killed by SIGSYS; output %q %q", state, out, stderr)
	}
}

func TestNotifyListener(t *testing.T) {
	probes := []string{"listener"}
	got := runChild(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getpgid"}, Action: specs.ActNotify}},
	}, probes...)
	checkLines(t, probes, got, []string{"anon_inode:seccomp notify cloexec=true"})

	got = runChild(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, probes...)
	checkLines(t, probes, got, []string{"none"})
}

func TestFlags(t *testing.T) {
	probes := []string{"getpid"}
	got := runChild(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags: []specs.LinuxSeccompFlag{
			"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow,
		},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"getpgid"}, Action: specs.ActLog}},
	}, probes...)
	checkLines(t, probes, got, []string{"0"})

	err := Validate(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv},
	})
	major, minor, _ := libseccomp.GetLibraryVersion()
	if major == 2 && minor < 6 {
		if err == nil || !strings.Contains(err.Error(), string(specs.LinuxSeccompFlagWaitKillableRecv)) {
			t.Fatalf("wait-killable-recv with libseccomp 2.%d: err = %v", minor, err)
		}
	} else if err != nil {
		t.Fatalf("wait-killable-recv: %v", err)
	}
}

func TestValidate(t *testing.T) {
	if err := Validate(nil); err != nil {
		t.Errorf("nil: %v", err)
	}
	valid := specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(1),
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "not_a_syscall_anywhere"}, Action: specs.ActAllow},
			{Names: []string{"write"}, Action: specs.ActTrace, ErrnoRet: uintp(5)},
			{Names: []string{"kill"}, Action: specs.ActKill},
			{Names: []string{"tkill"}, Action: specs.ActKillThread},
			{Names: []string{"tgkill"}, Action: specs.ActTrap},
			{Names: []string{"getpid"}, Action: specs.ActLog},
			{Names: []string{"getppid"}, Action: specs.ActNotify},
			{Names: []string{"getuid"}, Action: specs.ActKillProcess},
			{Names: []string{"mkdir"}, Action: specs.ActErrno}, // same as default: skipped
		},
	}
	if err := Validate(&valid); err != nil {
		t.Errorf("valid profile: %v", err)
	}

	for _, tc := range []struct {
		name string
		edit func(s *specs.LinuxSeccomp)
		want string // in the error
	}{
		{"unknown default action", func(s *specs.LinuxSeccomp) { s.DefaultAction = "SCMP_ACT_BOGUS" }, "SCMP_ACT_BOGUS"},
		{"unknown rule action", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = "SCMP_ACT_FOO" }, "SCMP_ACT_FOO"},
		{"unknown arch", func(s *specs.LinuxSeccomp) { s.Architectures = append(s.Architectures, "SCMP_ARCH_AMD64") }, "SCMP_ARCH_AMD64"},
		{"unknown flag", func(s *specs.LinuxSeccomp) { s.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_X"} }, "SECCOMP_FILTER_FLAG_X"},
		{"unknown operator", func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_ABOUT"}}
		}, "SCMP_CMP_ABOUT"},
		{"argument index", func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}
		}, "index 6"},
		{"errnoRet on allow", func(s *specs.LinuxSeccomp) { s.Syscalls[0].ErrnoRet = uintp(1) }, "SCMP_ACT_ALLOW"},
		{"defaultErrnoRet on kill", func(s *specs.LinuxSeccomp) { s.DefaultAction = specs.ActKill }, "SCMP_ACT_KILL"},
		{"errnoRet too big", func(s *specs.LinuxSeccomp) { s.DefaultErrnoRet = uintp(1 << 16) }, "65536"},
		{"no names", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Names = nil }, "no syscall names"},
		{"empty name", func(s *specs.LinuxSeccomp) { s.Syscalls[0].Names = []string{""} }, "empty syscall name"},
		{"notify default", func(s *specs.LinuxSeccomp) {
			s.DefaultAction, s.DefaultErrnoRet = specs.ActNotify, nil
		}, "SCMP_ACT_NOTIFY"},
	} {
		s := valid
		s.Syscalls = append([]specs.LinuxSyscall(nil), valid.Syscalls...)
		s.Architectures = append([]specs.Arch(nil), valid.Architectures...)
		tc.edit(&s)
		err := Validate(&s)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
}

func TestSpecArchitecturesKnown(t *testing.T) {
	// Every architecture the spec lists is understood; the installed
	// libseccomp may still lack some (reported as such, not as unknown).
	for _, a := range []specs.Arch{
		specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
		specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL,
		specs.ArchMIPSEL64, specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64,
		specs.ArchPPC64LE, specs.ArchS390, specs.ArchS390X, specs.ArchPARISC,
		specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64, specs.ArchM68K,
		specs.ArchSH, specs.ArchSHEB,
	} {
		err := Validate(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{a}})
		if err != nil && (strings.Contains(err.Error(), "unknown") || !strings.Contains(err.Error(), string(a))) {
			t.Errorf("%s: %v", a, err)
		}
	}
}
