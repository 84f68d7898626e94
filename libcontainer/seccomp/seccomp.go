// Package seccomp turns the seccomp section of an OCI configuration into a
// libseccomp filter and loads it into the calling process.
package seccomp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"slices"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// syscallArgs is the number of arguments a Linux system call can have.
const syscallArgs = 6

// optimizeAbove is the rule count past which the filter is compiled as a
// binary tree of syscall numbers instead of a linear list: large profiles
// (Docker's default has over 300 names) are then much cheaper per syscall.
// libseccomp up to 2.5.4 misbehaves building a tree for an empty filter, so
// small filters keep the default layout.
const optimizeAbove = 32

var arches = map[specs.Arch]libseccomp.ScmpArch{
	specs.ArchX86:         libseccomp.ArchX86,
	specs.ArchX86_64:      libseccomp.ArchAMD64,
	specs.ArchX32:         libseccomp.ArchX32,
	specs.ArchARM:         libseccomp.ArchARM,
	specs.ArchAARCH64:     libseccomp.ArchARM64,
	specs.ArchMIPS:        libseccomp.ArchMIPS,
	specs.ArchMIPS64:      libseccomp.ArchMIPS64,
	specs.ArchMIPS64N32:   libseccomp.ArchMIPS64N32,
	specs.ArchMIPSEL:      libseccomp.ArchMIPSEL,
	specs.ArchMIPSEL64:    libseccomp.ArchMIPSEL64,
	specs.ArchMIPSEL64N32: libseccomp.ArchMIPSEL64N32,
	specs.ArchPPC:         libseccomp.ArchPPC,
	specs.ArchPPC64:       libseccomp.ArchPPC64,
	specs.ArchPPC64LE:     libseccomp.ArchPPC64LE,
	specs.ArchS390:        libseccomp.ArchS390,
	specs.ArchS390X:       libseccomp.ArchS390X,
	specs.ArchPARISC:      libseccomp.ArchPARISC,
	specs.ArchPARISC64:    libseccomp.ArchPARISC64,
	specs.ArchRISCV64:     libseccomp.ArchRISCV64,
	specs.ArchLOONGARCH64: libseccomp.ArchLOONGARCH64,
	specs.ArchM68K:        libseccomp.ArchM68K,
	specs.ArchSH:          libseccomp.ArchSH,
	specs.ArchSHEB:        libseccomp.ArchSHEB,
}

var operators = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

// Validate reports the first problem that would stop Load: an unknown
// action, operator, architecture or flag, an errnoRet on an action that
// returns no errno, an argument index past 5, a syscall entry without names,
// or a feature the installed libseccomp lacks. Syscall names unknown to
// libseccomp are not errors: Load skips them, so that one profile serves
// kernels and libraries of different ages. A nil s is valid.
func Validate(s *specs.LinuxSeccomp) error {
	if s == nil {
		return nil
	}
	f, _, _, err := build(s)
	if err != nil {
		return err
	}
	f.Release()
	return nil
}

// Filter is a filter built from a spec and not yet loaded. Building is the
// expensive part (Docker's default profile takes milliseconds), so the
// container's init builds once, early, where an error still reaches create.
type Filter struct {
	f      *libseccomp.ScmpFilter
	notify bool
	// enosysAbove, if not negative, is the highest syscall number the
	// profile names: higher ones, newer than the profile, fail with
	// ENOSYS rather than the default errno, as in runc, so that programs
	// fall back to older syscalls.
	enosysAbove int
	// kernelFlags are the spec's flags as seccomp(2) takes them, for a
	// caller that loads the exported program itself.
	kernelFlags uint
	// unexportable says why Programs cannot export the filter, if it cannot.
	unexportable string
}

// Build checks s and builds its filter.
func Build(s *specs.LinuxSeccomp) (*Filter, error) {
	if s == nil {
		return nil, errors.New("load seccomp filter: no seccomp configuration")
	}
	f, notify, highest, err := build(s)
	if err != nil {
		return nil, err
	}
	flt := &Filter{f: f, notify: notify, enosysAbove: -1}
	for _, flag := range s.Flags {
		if kf, ok := kernelFlags[flag]; ok {
			flt.kernelFlags |= kf
		} else if flag != "SECCOMP_FILTER_FLAG_TSYNC" {
			flt.unexportable = "flag " + string(flag)
		}
	}
	if notify {
		flt.unexportable = "SCMP_ACT_NOTIFY rules"
	}
	if def, _ := action(s.DefaultAction, s.DefaultErrnoRet); def != libseccomp.ActAllow && def != libseccomp.ActLog &&
		def != libseccomp.ActErrno.SetReturnCode(int16(unix.ENOSYS)) && nativeArch != 0 {
		flt.enosysAbove = highest
	}
	return flt, nil
}

// Notifies reports whether a rule hands syscalls to a seccomp agent, so that
// Load will return a listener descriptor.
func (flt *Filter) Notifies() bool { return flt.notify }

// Load loads the filter into the kernel for every thread of the calling
// process (libseccomp always asks for TSYNC), and releases it.
//
// It does not set no_new_privs: whether the container gets it is the
// spec's process.noNewPrivileges, which the caller applies. The kernel
// accepts the filter only if the calling thread has either no_new_privs or
// CAP_SYS_ADMIN, so a caller without noNewPrivileges must load the filter
// before dropping capabilities, and a caller with it should set it first and
// load as late as possible, on the same locked OS thread.
//
// If a rule uses SCMP_ACT_NOTIFY, Load returns the listener file descriptor
// (close-on-exec; the caller hands it to the seccomp agent and closes it);
// otherwise it returns -1. From then on a syscall matching a notify rule
// waits for an agent's answer, so until the agent holds the fd the caller
// must not make such syscalls (for instance while passing the fd on).
func (flt *Filter) Load() (int, error) {
	f := flt.f
	defer f.Release()
	if err := f.Load(); err != nil {
		if errors.Is(err, unix.EACCES) {
			return -1, fmt.Errorf("load seccomp filter: %w (the thread needs no_new_privs or CAP_SYS_ADMIN)", err)
		}
		return -1, fmt.Errorf("load seccomp filter: %w", err)
	}
	if flt.enosysAbove >= 0 {
		loadENOSYS(flt.enosysAbove)
	}
	if !flt.notify {
		return -1, nil
	}
	fd, err := f.GetNotifFd()
	if err != nil {
		return -1, fmt.Errorf("get seccomp listener fd: %w", err)
	}
	return int(fd), nil
}

// loadENOSYS stacks a filter on the calling thread that fails syscalls of
// the native architecture numbered above highest with ENOSYS and allows
// the rest, which the profile's filter decides. The kernel evaluates the
// newest filter first and keeps its answer over one of equal precedence,
// so ENOSYS wins over the profile's default errno; a default that kills or
// traps is stronger and still wins.
func loadENOSYS(highest int) {
	prog := enosysProgram(highest)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// The thread is the one that execs the container's program (the init
	// runs locked to it), so the filter needs no TSYNC.
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		// The profile's filter, loaded already, may deny seccomp(2)
		// itself: the container then runs as the profile alone says.
		slog.Debug("no ENOSYS filter for syscalls newer than the seccomp profile", "highest", highest, "error", errno)
	}
}

func enosysProgram(highest int) []unix.SockFilter {
	return []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: nativeArch, Jt: 0, Jf: 4},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, K: x32Bit, Jt: 2, Jf: 0},
		{Code: unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, K: uint32(highest), Jt: 0, Jf: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
}

// Program is a compiled filter for a process to load with seccomp(2)
// itself, in order: the profile's, then (Optional) the ENOSYS filter,
// whose refusal the process ignores as Load does.
type Program struct {
	Flags    uint   // SECCOMP_FILTER_FLAG_*
	Code     []byte // struct sock_filter array, host byte order
	Optional bool
}

// Programs compiles the filter to BPF, as Load would load it, and releases
// it. A filter that notifies cannot be exported (its listener must be
// passed on, which only Load does), nor one with the wait-killable flag,
// which belongs to a listener.
func (flt *Filter) Programs() ([]Program, error) {
	defer flt.f.Release()
	if flt.unexportable != "" {
		return nil, fmt.Errorf("export seccomp filter: %s: %w", flt.unexportable, ErrNotExportable)
	}
	fd, err := unix.MemfdCreate("seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("export seccomp filter: %w", err)
	}
	f := os.NewFile(uintptr(fd), "seccomp-bpf")
	defer f.Close()
	if err := flt.f.ExportBPF(f); err != nil {
		return nil, fmt.Errorf("export seccomp filter: %w", err)
	}
	code, err := io.ReadAll(io.NewSectionReader(f, 0, math.MaxInt64))
	if err != nil {
		return nil, fmt.Errorf("export seccomp filter: %w", err)
	}
	progs := []Program{{Flags: flt.kernelFlags, Code: code}}
	if flt.enosysAbove >= 0 {
		prog := enosysProgram(flt.enosysAbove)
		progs = append(progs, Program{Code: unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(prog)*int(unsafe.Sizeof(prog[0]))), Optional: true})
	}
	return progs, nil
}

// ErrNotExportable marks a filter that only Load can load.
var ErrNotExportable = errors.New("only loadable by the runtime's Go init")

var kernelFlags = map[specs.LinuxSeccompFlag]uint{
	specs.LinuxSeccompFlagLog:       unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow: unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
}

// build checks s and returns the filter context for it, whether any rule
// notifies a listener, and the highest syscall number s names (-1 for
// none). The caller releases the filter.
func build(s *specs.LinuxSeccomp) (*libseccomp.ScmpFilter, bool, int, error) {
	defAct, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, false, -1, fmt.Errorf("seccomp default action: %w", err)
	}
	// Every syscall would wait for an agent that is only reachable after
	// the runtime has passed on the listener, using syscalls itself.
	if defAct == libseccomp.ActNotify {
		return nil, false, -1, errors.New("seccomp default action: SCMP_ACT_NOTIFY cannot be the default action")
	}
	f, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return nil, false, -1, fmt.Errorf("create seccomp filter: %w", err)
	}
	notify, highest, err := configure(f, s, defAct)
	if err != nil {
		f.Release()
		return nil, false, -1, err
	}
	return f, notify, highest, nil
}

// configure sets the attributes, architectures and rules of s on f and
// reports whether any rule notifies a listener and the highest syscall
// number (native) that s names.
func configure(f *libseccomp.ScmpFilter, s *specs.LinuxSeccomp, defAct libseccomp.ScmpAction) (bool, int, error) {
	// Report the kernel's errno from Load rather than libseccomp's
	// catch-all ECANCELED.
	if err := f.SetRawRC(true); err != nil {
		return false, -1, fmt.Errorf("seccomp filter: report raw errors: %w", err)
	}
	// The spec's noNewPrivileges decides, not libseccomp (whose default
	// is to set it on load).
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return false, -1, fmt.Errorf("seccomp filter: leave no_new_privs alone: %w", err)
	}

	for _, a := range s.Architectures {
		arch, ok := arches[a]
		if !ok {
			return false, -1, fmt.Errorf("unknown seccomp architecture %q", a)
		}
		if err := f.AddArch(arch); err != nil {
			if errors.Is(err, unix.EDOM) {
				return false, -1, fmt.Errorf("seccomp architecture %s: its byte order differs from the filter's other architectures (the native one included): %w", a, err)
			}
			return false, -1, fmt.Errorf("seccomp architecture %s: %w", a, err)
		}
	}

	for _, flag := range s.Flags {
		if err := setFlag(f, flag); err != nil {
			return false, -1, err
		}
	}

	rules, notify, highest := 0, false, -1
	for i, sc := range s.Syscalls {
		if len(sc.Names) == 0 {
			return false, -1, fmt.Errorf("seccomp syscalls[%d]: no syscall names", i)
		}
		if slices.Contains(sc.Names, "") {
			return false, -1, fmt.Errorf("seccomp syscalls[%d]: empty syscall name", i)
		}
		act, err := action(sc.Action, sc.ErrnoRet)
		if err != nil {
			return false, -1, fmt.Errorf("seccomp syscalls[%d] %v: %w", i, sc.Names, err)
		}
		conds, err := conditions(sc.Args)
		if err != nil {
			return false, -1, fmt.Errorf("seccomp syscalls[%d] %v: %w", i, sc.Names, err)
		}
		if act == libseccomp.ActNotify {
			if api, _ := libseccomp.GetAPI(); api < 6 {
				return false, -1, fmt.Errorf("seccomp syscalls[%d] %v: SCMP_ACT_NOTIFY needs libseccomp API level 6 (libseccomp >= 2.5.0, Linux >= 5.7), have %d", i, sc.Names, api)
			}
		}
		for _, name := range sc.Names {
			nr, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				// Unknown to this libseccomp (newer than it, or
				// from another architecture): nothing to filter.
				continue
			}
			highest = max(highest, int(nr))
			// libseccomp refuses rules that repeat the default
			// action, and they change nothing.
			if act == defAct {
				continue
			}
			if err := addRules(f, nr, act, conds); err != nil {
				return false, -1, fmt.Errorf("seccomp rule for %s: %w", name, err)
			}
			rules++
			notify = notify || act == libseccomp.ActNotify
		}
	}

	if rules > optimizeAbove {
		if err := f.SetOptimize(2); err != nil {
			return false, -1, fmt.Errorf("seccomp filter: binary tree optimization: %w", err)
		}
	}
	return notify, highest, nil
}

// action maps an OCI action and its errnoRet to a libseccomp action.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	var act libseccomp.ScmpAction
	switch a {
	case specs.ActKill, specs.ActKillThread:
		act = libseccomp.ActKillThread
	case specs.ActKillProcess:
		act = libseccomp.ActKillProcess
	case specs.ActTrap:
		act = libseccomp.ActTrap
	case specs.ActErrno, specs.ActTrace:
		ret := uint(unix.EPERM)
		if errnoRet != nil {
			ret = *errnoRet
		}
		// The kernel passes 16 bits of data with the action.
		if ret > math.MaxUint16 {
			return libseccomp.ActInvalid, fmt.Errorf("errnoRet %d of %s does not fit in 16 bits", ret, a)
		}
		act = libseccomp.ActErrno
		if a == specs.ActTrace {
			act = libseccomp.ActTrace
		}
		return act.SetReturnCode(int16(ret)), nil
	case specs.ActAllow:
		act = libseccomp.ActAllow
	case specs.ActLog:
		act = libseccomp.ActLog
	case specs.ActNotify:
		act = libseccomp.ActNotify
	default:
		return libseccomp.ActInvalid, fmt.Errorf("unknown seccomp action %q", a)
	}
	if errnoRet != nil {
		return libseccomp.ActInvalid, fmt.Errorf("errnoRet is set but %s returns no errno", a)
	}
	return act, nil
}

func conditions(args []specs.LinuxSeccompArg) ([]libseccomp.ScmpCondition, error) {
	conds := make([]libseccomp.ScmpCondition, 0, len(args))
	for _, arg := range args {
		op, ok := operators[arg.Op]
		if !ok {
			return nil, fmt.Errorf("unknown seccomp operator %q", arg.Op)
		}
		if arg.Index >= syscallArgs {
			return nil, fmt.Errorf("argument index %d: syscalls have %d arguments", arg.Index, syscallArgs)
		}
		c, err := libseccomp.MakeCondition(arg.Index, op, arg.Value, arg.ValueTwo)
		if err != nil {
			return nil, fmt.Errorf("argument %d %s: %w", arg.Index, arg.Op, err)
		}
		conds = append(conds, c)
	}
	return conds, nil
}

// addRules adds the rule for one syscall. Conditions on distinct arguments
// must all hold (one rule). libseccomp cannot combine two conditions on the
// same argument in one rule, so if any argument repeats, each condition
// becomes a rule of its own and any one of them matching is enough; runc
// has the same rule, and profiles such as Docker's are written for it.
func addRules(f *libseccomp.ScmpFilter, nr libseccomp.ScmpSyscall, act libseccomp.ScmpAction, conds []libseccomp.ScmpCondition) error {
	if len(conds) == 0 {
		return f.AddRule(nr, act)
	}
	var seen [syscallArgs]bool
	repeated := false
	for _, c := range conds {
		repeated = repeated || seen[c.Argument]
		seen[c.Argument] = true
	}
	if !repeated {
		return f.AddRuleConditional(nr, act, conds)
	}
	for _, c := range conds {
		if err := f.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
			return err
		}
	}
	return nil
}

func setFlag(f *libseccomp.ScmpFilter, flag specs.LinuxSeccompFlag) error {
	var err error
	switch flag {
	case "SECCOMP_FILTER_FLAG_TSYNC":
		// libseccomp-golang sets TSYNC on every filter it creates.
		return nil
	case specs.LinuxSeccompFlagLog:
		err = f.SetLogBit(true)
	case specs.LinuxSeccompFlagSpecAllow:
		err = f.SetSSB(true)
	case specs.LinuxSeccompFlagWaitKillableRecv:
		err = f.SetWaitKill(true)
	default:
		return fmt.Errorf("unknown seccomp flag %q", flag)
	}
	if err != nil {
		return fmt.Errorf("seccomp flag %s: %w", flag, err)
	}
	return nil
}
