package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/cyphar/filepath-securejoin/pathrs-lite/procfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/libcontainer/capabilities"
	"github.com/berth-containers/berth/libcontainer/config"
	"github.com/berth-containers/berth/libcontainer/console"
	"github.com/berth-containers/berth/libcontainer/hooks"
	"github.com/berth-containers/berth/libcontainer/lsm"
	"github.com/berth-containers/berth/libcontainer/nsexec"
	"github.com/berth-containers/berth/libcontainer/rootfs"
	"github.com/berth-containers/berth/libcontainer/seccomp"
)

// Init is the container side of create, run in the runtime binary's init
// mode after the C stage has put the process in its namespaces. It returns
// only on failure, after telling the runtime.
func Init() error {
	// Capabilities and credentials are per thread: everything happens on
	// this one, which also calls execve.
	runtime.LockOSThread()
	fd, err := strconv.Atoi(os.Getenv(nsexec.EnvSyncFd))
	if err != nil {
		return fmt.Errorf("init: bad %s: %w", nsexec.EnvSyncFd, err)
	}
	os.Unsetenv(nsexec.EnvSyncFd)
	os.Unsetenv(nsexec.EnvStage)
	sock := os.NewFile(uintptr(fd), "sync")
	unix.CloseOnExec(fd)
	err = initContainer(sock)
	nsexec.Send(sock, nsexec.MsgError, []byte(err.Error()))
	return err
}

func initContainer(sock *os.File) error {
	typ, data, err := nsexec.Recv(sock)
	if err != nil {
		return fmt.Errorf("read init config: %w", err)
	}
	if typ != nsexec.MsgConfig {
		return fmt.Errorf("unexpected message %q instead of init config", typ)
	}
	var ic initConfig
	if err := json.Unmarshal(data, &ic); err != nil {
		return fmt.Errorf("decode init config: %w", err)
	}
	s := ic.Spec
	for _, fd := range []int{ic.FifoFd, ic.ConsoleFd} {
		if fd >= 0 {
			unix.CloseOnExec(fd)
		}
	}
	// Building the seccomp filter is costly and can fail: done once, here,
	// where an error still reaches the runtime.
	var filter *seccomp.Filter
	if s.Linux != nil && s.Linux.Seccomp != nil {
		if filter, err = seccomp.Build(s.Linux.Seccomp); err != nil {
			return fmt.Errorf("linux.seccomp: %w", err)
		}
	}
	if ic.Exec {
		return execInit(sock, &ic, filter)
	}
	if ic.NewCgroupNS {
		// Namespaces belong to the thread: this one does every later mount
		// and the execve, so the rest of the process need not follow.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	if err := rootfs.Prepare(s, rootfs.Options{
		UserNS: ic.UserNS, CgroupNS: ic.CgroupNS, CgroupPaths: ic.CgroupPaths, CgroupV2: ic.CgroupV2,
		HostMountNS: !config.HasNamespace(s, specs.MountNamespace),
	}); err != nil {
		return err
	}
	if ic.RuntimeHooks {
		if err := nsexec.Send(sock, nsexec.MsgHooks, nil); err != nil {
			return err
		}
		typ, _, err := nsexec.Recv(sock)
		if err != nil || typ != nsexec.MsgHooksDone {
			return fmt.Errorf("wait for createRuntime hooks: %v", err)
		}
	}
	// The pid as the runtime sees it: hooks run in the runtime's pid namespace.
	st := &specs.State{Version: specs.Version, ID: ic.ID, Status: specs.StateCreating, Pid: ic.HostPid, Bundle: ic.Bundle, Annotations: s.Annotations}
	if s.Hooks != nil {
		if err := hooks.Run("createContainer", s.Hooks.CreateContainer, st); err != nil {
			return err
		}
	}
	if err := rootfs.Pivot(s, ic.NoPivot); err != nil {
		return err
	}
	if s.Process.Terminal {
		if err := setupConsole(ic.ConsoleFd, s.Process.ConsoleSize, true); err != nil {
			return err
		}
	}
	if err := rootfs.Finish(s); err != nil {
		return err
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", s.Hostname, err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("set domainname %q: %w", s.Domainname, err)
		}
	}
	if err := writeSysctls(s.Linux.Sysctl); err != nil {
		return err
	}
	if !ic.NoNewKeyring {
		// A session keyring of its own keeps the container out of the host's keys.
		if _, err := unix.KeyctlJoinSessionKeyring("_ses"); err != nil && err != unix.ENOSYS {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	if err := prepareProcess(s.Process); err != nil {
		return err
	}
	path, err := lookPath(s.Process)
	if err != nil {
		return err
	}
	if filter, err = handOverListener(sock, s.Process, filter); err != nil {
		return err
	}
	if err := nsexec.Send(sock, nsexec.MsgReady, nil); err != nil {
		return err
	}
	sock.Close()

	// Wait for start: the open blocks until the runtime opens the FIFO to read.
	fifo, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(ic.FifoFd), os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fatal(fmt.Errorf("open exec fifo: %w", err))
	}
	if _, err := fifo.Write([]byte("0")); err != nil {
		return fatal(fmt.Errorf("write exec fifo: %w", err))
	}
	// The write end stays open (close-on-exec) until execve, so that start
	// returns only once the startContainer hooks ran and the program runs.
	unix.Close(ic.FifoFd)
	if s.Hooks != nil {
		st.Status = specs.StateRunning
		if err := hooks.Run("startContainer", s.Hooks.StartContainer, st); err != nil {
			return fatal(err)
		}
	}
	return fatal(execProcess(s, path, ic.PreserveFds, filter))
}

// execInit is the container side of exec: the C stage joined the
// container's namespaces; what is left is the process itself.
func execInit(sock *os.File, ic *initConfig, filter *seccomp.Filter) error {
	p := ic.Spec.Process
	if p.Terminal {
		if err := setupConsole(ic.ConsoleFd, p.ConsoleSize, false); err != nil {
			return err
		}
	}
	if err := prepareProcess(p); err != nil {
		return err
	}
	path, err := lookPath(p)
	if err != nil {
		return err
	}
	if filter, err = handOverListener(sock, p, filter); err != nil {
		return err
	}
	if err := nsexec.Send(sock, nsexec.MsgReady, nil); err != nil {
		return err
	}
	if ic.WaitGo {
		if typ, _, err := nsexec.Recv(sock); err != nil || typ != nsexec.MsgGo {
			return fatal(fmt.Errorf("wait for the runtime to place the process in its cgroup: %v", err))
		}
	}
	// The socket stays open until execve closes it, so that the runtime
	// returns once the command runs, as runc's exec does.
	unix.CloseOnExec(int(sock.Fd()))
	err = execProcess(ic.Spec, path, ic.PreserveFds, filter)
	runtime.KeepAlive(sock)
	return fatal(err)
}

// handOverListener loads a filter with notify rules now, while the runtime
// still listens, and sends it the listener descriptor for the seccomp agent.
// It returns the filter still to load before execve (nil once loaded).
func handOverListener(sock *os.File, p *specs.Process, filter *seccomp.Filter) (*seccomp.Filter, error) {
	if filter == nil || !filter.Notifies() {
		return filter, nil
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	fd, err := filter.Load()
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := nsexec.Send(sock, nsexec.MsgSeccomp, nil); err != nil {
		return nil, err
	}
	if err := unix.Sendmsg(int(sock.Fd()), []byte{0}, unix.UnixRights(fd), nil, 0); err != nil {
		return nil, fmt.Errorf("send seccomp listener to the runtime: %w", err)
	}
	return nil, nil
}

// fatal reports an error after the runtime has stopped listening: to the
// container's stderr, where the caller of start sees it.
func fatal(err error) error {
	fmt.Fprintln(os.Stderr, "berth-runtime init:", err)
	os.Exit(1)
	return err
}

// writeSysctls writes through a private, verified procfs handle, so an
// overmounted or symlinked /proc/sys in the image cannot redirect the write.
func writeSysctls(sysctls map[string]string) error {
	if len(sysctls) == 0 {
		return nil
	}
	proc, err := procfs.OpenProcRoot()
	if err != nil {
		return fmt.Errorf("open procfs for sysctls: %w", err)
	}
	defer proc.Close()
	for key, value := range sysctls {
		sub := "sys/" + strings.ReplaceAll(key, ".", "/")
		h, err := proc.OpenRoot(sub)
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", key, err)
		}
		f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(h.Fd())), os.O_WRONLY|unix.O_CLOEXEC, 0)
		h.Close()
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", key, err)
		}
		_, err = f.WriteString(value)
		f.Close()
		if err != nil {
			return fmt.Errorf("set sysctl %s=%s: %w", key, value, err)
		}
	}
	return nil
}

// prepareProcess does what may fail for reasons of configuration while the
// runtime still listens: hard rlimits are raised (the final values are set
// at exec: a low RLIMIT_AS, DATA or NPROC would starve this Go process
// before then), and the oom score is set. Without an RLIMIT_NOFILE of its
// own, the process gets the one the runtime was started with, not the one
// the Go runtime raised itself to (syscall.Exec, not used here, restores it
// the same way).
func prepareProcess(p *specs.Process) error {
	nofile := false
	for _, r := range p.Rlimits {
		if err := raiseHardLimit(r); err != nil {
			return err
		}
		nofile = nofile || r.Type == "RLIMIT_NOFILE"
	}
	if !nofile {
		inherited := nsexec.InheritedNofile()
		if err := unix.Prlimit(0, unix.RLIMIT_NOFILE, &inherited, nil); err != nil {
			return fmt.Errorf("restore RLIMIT_NOFILE to soft %d hard %d: %w", inherited.Cur, inherited.Max, err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("set oom_score_adj %d: %w", *p.OOMScoreAdj, err)
		}
	}
	return nil
}

// raiseHardLimit raises the hard limit now if r asks for more, while the
// capabilities allow it: the kernel applies its own rules (CAP_SYS_RESOURCE
// in the initial user namespace, fs.nr_open), and setting r at exec can only
// lower limits. (config.Validate has refused a soft limit above the hard.)
func raiseHardLimit(r specs.POSIXRlimit) error {
	res := config.Rlimits[r.Type]
	var lim unix.Rlimit
	if err := unix.Getrlimit(res, &lim); err != nil {
		return fmt.Errorf("get %s: %w", r.Type, err)
	}
	if r.Hard <= lim.Max {
		return nil
	}
	if err := unix.Setrlimit(res, &unix.Rlimit{Cur: lim.Cur, Max: r.Hard}); err != nil {
		return fmt.Errorf("set %s to soft %d hard %d (current hard limit %d): %w", r.Type, r.Soft, r.Hard, lim.Max, err)
	}
	return nil
}

// execve sets the process's rlimits and executes path. Until then this is a
// Go process with ~1.5 GiB of address space reserved, whose runtime may map
// more at any allocation: under a low RLIMIT_AS or RLIMIT_DATA it would die.
// So the limits are set last, by raw system calls on values prepared first,
// with nothing allocated between them and execve.
func execve(path string, args, env []string, rlimits []specs.POSIXRlimit) error {
	argv0, err := unix.BytePtrFromString(path)
	if err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	argv, err := syscall.SlicePtrFromStrings(args)
	if err != nil {
		return fmt.Errorf("exec %s: arguments: %w", path, err)
	}
	envv, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return fmt.Errorf("exec %s: environment: %w", path, err)
	}
	lims := make([]unix.Rlimit, len(rlimits))
	for i, r := range rlimits {
		lims[i] = unix.Rlimit{Cur: r.Soft, Max: r.Hard}
	}
	for i, r := range rlimits {
		if _, _, e := unix.RawSyscall6(unix.SYS_PRLIMIT64, 0, uintptr(config.Rlimits[r.Type]), uintptr(unsafe.Pointer(&lims[i])), 0, 0, 0); e != 0 {
			return fmt.Errorf("set %s to soft %d hard %d: %w", r.Type, r.Soft, r.Hard, e)
		}
	}
	_, _, e := unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(argv0)),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])))
	return fmt.Errorf("exec %s: %w", path, e)
}

// lookPath finds the program in the container the way execvp would, so a
// missing command fails create with the words callers look for.
func lookPath(p *specs.Process) (string, error) {
	name := p.Args[0]
	if strings.Contains(name, "/") {
		if err := checkExecutable(name); err != nil {
			return "", fmt.Errorf("exec: %q: %w", name, err)
		}
		return name, nil
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range p.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		cand := filepath.Join(dir, name)
		if checkExecutable(cand) == nil {
			return cand, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("no such file or directory")
		}
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("permission denied")
	}
	return nil
}

// execProcess switches to the process's user, capabilities and seccomp
// filter and executes it. Only the preserved descriptors stay open.
func execProcess(s *specs.Spec, path string, preserveFds int, filter *seccomp.Filter) error {
	p := s.Process
	// First, before a seccomp profile may forbid close_range.
	if err := unix.CloseRange(uint(3+preserveFds), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark descriptors close-on-exec: %w", err)
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	} else if filter != nil {
		// Without no_new_privs the filter needs CAP_SYS_ADMIN: load it now.
		if _, err := filter.Load(); err != nil {
			return err
		}
		filter = nil
	}
	if err := lsm.ApplyExec(p); err != nil {
		return err
	}
	if err := capabilities.ApplyBounding(p.Capabilities); err != nil {
		return err
	}
	if p.Terminal {
		// As runc: the terminal belongs to the process's user (its group
		// stays devpts' tty group), so that it may change its modes. A uid
		// the user namespace does not map (EINVAL), or no CAP_CHOWN
		// (EPERM), leaves it as it is.
		if err := unix.Fchown(0, int(p.User.UID), -1); err != nil && err != unix.EINVAL && err != unix.EPERM {
			return fmt.Errorf("chown the terminal to uid %d: %w", p.User.UID, err)
		}
	}
	// As runc: the cwd is entered before the user changes when that
	// works, so a directory the user cannot enter may still be its cwd.
	cwdErr := enterCwd(p.Cwd)
	if err := setUser(p.User); err != nil {
		return err
	}
	if err := capabilities.Apply(p.Capabilities); err != nil {
		return err
	}
	umask := 0o022
	if p.User.Umask != nil {
		umask = int(*p.User.Umask)
	}
	unix.Umask(umask)
	if cwdErr != nil {
		if err := enterCwd(p.Cwd); err != nil {
			return err
		}
	}
	if filter != nil {
		if _, err := filter.Load(); err != nil {
			return err
		}
	}
	env := p.Env
	if !hasEnv(env, "HOME") {
		env = append(env, "HOME=/")
	}
	return execve(path, p.Args, env, p.Rlimits)
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

// setUser sets groups, gid and uid on this thread, keeping capabilities so
// that Apply can set the final sets afterwards.
func setUser(u specs.User) error {
	if err := capabilities.KeepCaps(); err != nil {
		return err
	}
	groups := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		groups = append(groups, int(g))
	}
	if err := unix.Setgroups(groups); err != nil && !(err == unix.EPERM && len(groups) == 0) {
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", u.GID, err)
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", u.UID, err)
	}
	return nil
}

// enterCwd changes into the working directory and checks that it lies inside
// the container's root: a descriptor or cwd inherited from outside would show
// as unreachable.
func enterCwd(cwd string) error {
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir to cwd %q set in config.json: %w", cwd, err)
	}
	wd, err := unix.Getwd()
	if err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("cwd %q is outside the container root", cwd)
	}
	return nil
}

// setupConsole makes a pty of size (if given) in the container's devpts,
// sends the master to the console socket and makes the slave the
// process's terminal.
func setupConsole(sockFd int, size *specs.Box, bindConsole bool) error {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("get pty number: %w", err)
	}
	slavePath := "/dev/pts/" + strconv.Itoa(n)
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", slavePath, err)
	}
	defer slave.Close()
	if size != nil {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("set console size: %w", err)
		}
	}
	if bindConsole {
		if err := rootfs.BindConsole(slavePath); err != nil {
			return err
		}
	}
	if err := console.Send(sockFd, master, slavePath); err != nil {
		return err
	}
	unix.Close(sockFd)
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(int(slave.Fd()), unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(int(slave.Fd()), i, 0); err != nil {
			return fmt.Errorf("dup pty to fd %d: %w", i, err)
		}
	}
	return nil
}
