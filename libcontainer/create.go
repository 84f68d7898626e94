package libcontainer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/userns"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/libcontainer/cgroups"
	"github.com/berth-containers/berth/libcontainer/config"
	"github.com/berth-containers/berth/libcontainer/exeseal"
	"github.com/berth-containers/berth/libcontainer/hooks"
	"github.com/berth-containers/berth/libcontainer/nsexec"
	"github.com/berth-containers/berth/libcontainer/rootfs"
	"github.com/berth-containers/berth/libcontainer/state"
)

// CreateOptions are the create command's options.
type CreateOptions struct {
	Root          string
	ID            string
	Bundle        string
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFds   int
	// ListenFds are socket-activation descriptors (systemd's LISTEN_FDS),
	// passed from fd 3 on before the preserved ones, with LISTEN_FDS and
	// LISTEN_PID=1 in the process's environment.
	ListenFds int
	// ForegroundTTY lets a terminal process run without a console socket:
	// the pty master is then returned in Container.Console (runc run does this).
	ForegroundTTY bool
}

// Container is a created container, as create leaves it.
type Container struct {
	State   *state.State
	Console *os.File // the pty master, with CreateOptions.ForegroundTTY
}

// Create makes a container from a bundle: state directory, cgroup, and an
// init process in its namespaces that waits for Start. On any error every
// piece made so far is removed again.
func Create(o CreateOptions) (c *Container, err error) {
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle path %s: %w", o.Bundle, err)
	}
	spec, err := config.Load(bundle)
	if err != nil {
		return nil, err
	}
	if spec.Process == nil {
		return nil, errors.New("config.json has no process to run")
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" && !o.ForegroundTTY {
		return nil, errors.New("process.terminal is true but no --console-socket was given")
	}
	if !spec.Process.Terminal && o.ConsoleSocket != "" {
		return nil, errors.New("--console-socket given but process.terminal is false")
	}
	if o.ListenFds > 0 {
		spec.Process.Env = append(spec.Process.Env, "LISTEN_FDS="+strconv.Itoa(o.ListenFds), "LISTEN_PID=1")
		o.PreserveFds += o.ListenFds
	}
	dir, err := state.Create(o.Root, o.ID)
	if err != nil {
		return nil, err
	}
	b := &builder{opts: o, spec: spec, dir: dir, bundle: bundle, initPid: -1}
	defer func() {
		if err != nil {
			b.cleanup()
		}
		dir.Unlock()
	}()
	if err := b.run(); err != nil {
		return nil, err
	}
	return &Container{State: b.st, Console: b.console}, nil
}

// builder carries a create through its steps and knows what to undo.
type builder struct {
	opts    CreateOptions
	spec    *specs.Spec
	dir     *state.Dir
	bundle  string
	cg      *cgroups.Manager
	cmd     *exec.Cmd
	initPid int
	st      *state.State
	console *os.File
	cgOurs  bool // the cgroup did not exist before this create
}

// killChild kills and reaps a process that is our child (CLONE_PARENT).
func killChild(pid int) {
	unix.Kill(pid, unix.SIGKILL)
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, 0, nil)
}

func (b *builder) cleanup() {
	if b.initPid > 0 {
		killChild(b.initPid)
	}
	if b.cmd != nil && b.cmd.Process != nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
	}
	if !config.HasNamespace(b.spec, specs.MountNamespace) {
		if err := rootfs.Unmount(b.spec.Root.Path); err != nil {
			slog.Warn("unmount after failed create", "error", err)
		}
	}
	if b.cg != nil {
		// A cgroup made for this container holds only its processes,
		// including any whose pid the runtime never learnt.
		destroy := b.cg.Destroy
		if b.cgOurs {
			destroy = func() error { return emptyAndDestroy(b.cg) }
		}
		if err := destroy(); err != nil {
			slog.Warn("remove cgroup after failed create", "error", err)
		}
	}
	if err := b.dir.Remove(); err != nil {
		slog.Warn("remove state after failed create", "error", err)
	}
}

// deviceRules are the allow rules the runtime adds to the spec's own:
// the default devices and the spec's linux.devices must be usable.
func deviceRules(s *specs.Spec) []specs.LinuxDeviceCgroup {
	devs := append(append([]specs.LinuxDevice{}, rootfs.DefaultDevices...), s.Linux.Devices...)
	var rules []specs.LinuxDeviceCgroup
	for _, d := range devs {
		typ := d.Type
		switch typ {
		case "p":
			continue // fifos are not subject to the device cgroup
		case "u":
			typ = "c" // unbuffered character device
		}
		major, minor := d.Major, d.Minor
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: "rwm"})
	}
	ptsMajor, console, anyMinor := int64(136), int64(1), int64(-1)
	ttyMajor, ptmx := int64(5), int64(2)
	return append(rules,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &ptsMajor, Minor: &anyMinor, Access: "rwm"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &ttyMajor, Minor: &ptmx, Access: "rwm"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &ttyMajor, Minor: &console, Access: "rwm"},
	)
}

// applyCgroup puts pid in the container's cgroup and sets its limits. An
// unprivileged caller without a writable cgroup runs the container without
// one, with a warning, unless the spec asks for limits.
func (b *builder) applyCgroup(pid int) error {
	err := b.cg.Apply(pid)
	if err != nil && unprivileged() && (errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EROFS)) {
		if r := b.spec.Linux.Resources; r != nil && hasLimits(r) {
			return fmt.Errorf("linux.resources asks for limits, but there is no writable cgroup for this user: %w", err)
		}
		slog.Warn("no writable cgroup: running the container without one", "error", err)
		b.cg.Destroy()
		b.cg = nil
		return nil
	}
	if err != nil {
		return err
	}
	return b.cg.Set(b.spec.Linux.Resources)
}

// unprivileged reports whether the runtime runs without root's powers over
// the host: as another user, or as root of a user namespace (a rootless
// engine's).
func unprivileged() bool { return os.Geteuid() != 0 || userns.RunningInUserNS() }

// hasLimits reports whether r limits anything beyond devices.
func hasLimits(r *specs.LinuxResources) bool {
	return r.Memory != nil || r.CPU != nil || r.Pids != nil || r.BlockIO != nil ||
		len(r.HugepageLimits) > 0 || r.Network != nil || len(r.Rdma) > 0 || len(r.Unified) > 0
}

func (b *builder) cgroupPaths() map[string]string {
	if b.cg == nil {
		return nil
	}
	return b.cg.Paths()
}

func (b *builder) run() error {
	s := b.spec
	fifo := b.dir.FifoPath()
	if err := unix.Mkfifo(fifo, 0o622); err != nil {
		return fmt.Errorf("create exec fifo: %w", err)
	}
	// The container's root opens it for writing, maybe as another host uid.
	if err := os.Chown(fifo, hostID(s.Linux.UIDMappings, os.Geteuid()), hostID(s.Linux.GIDMappings, os.Getegid())); err != nil {
		return fmt.Errorf("chown exec fifo: %w", err)
	}
	fifoFile, err := os.OpenFile(fifo, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer fifoFile.Close()

	extra := []*os.File{fifoFile}
	con, err := openConsole(b.opts.ConsoleSocket, s.Process.Terminal)
	if err != nil {
		return err
	}
	defer con.Close()
	if con.theirs != nil {
		extra = append(extra, con.theirs)
	}
	fifoFd := 3 + b.opts.PreserveFds + 1
	consoleFd := -1
	if len(extra) > 1 {
		consoleFd = fifoFd + 1
	}
	entries := bootstrapFor(s)
	if !config.HasNamespace(s, specs.MountNamespace) {
		// The init must not stay in the private namespace the runtime binary
		// is sealed in: it goes back to ours, passed as a descriptor.
		ns, err := os.Open("/proc/thread-self/ns/mnt")
		if err != nil {
			return fmt.Errorf("open mount namespace: %w", err)
		}
		defer ns.Close()
		entries = append(entries, fmt.Sprintf("join=%d:/proc/self/fd/%d", unix.CLONE_NEWNS, fifoFd+len(extra)))
		extra = append(extra, ns)
	}
	p, err := startInit(b.opts.PreserveFds, extra)
	if err != nil {
		return err
	}
	defer p.sock.Close()
	b.cmd = p.cmd

	// The cgroup is made while the init process starts, and the init is
	// moved in once it has its pid (it makes its cgroup namespace after).
	cg, err := cgroups.New(b.opts.ID, s.Linux.CgroupsPath, s.Linux.Resources, deviceRules(s))
	if err != nil {
		return err
	}
	// As runc: a prepared cgroup that is frozen would freeze the init
	// mid-setup; other processes in it are only worth a warning. Such a
	// cgroup is not ours to remove if create fails here.
	if exists, procs, frozen, err := cg.Existing(); err != nil {
		return fmt.Errorf("check existing cgroup: %w", err)
	} else if frozen {
		return errors.New("container's cgroup unexpectedly frozen")
	} else if exists && procs > 0 {
		slog.Warn(fmt.Sprintf("container's cgroup is not empty: %d process(es) found", procs))
	} else {
		b.cgOurs = !exists
	}
	b.cg = cg
	// Before anything exists outside the state directory, it is written
	// down for a delete after this process is killed (the init dies with
	// its socket; its cgroup and mounts would stay).
	pending := &state.Pending{CgroupPaths: b.cgroupPaths()}
	if !config.HasNamespace(s, specs.MountNamespace) {
		pending.HostRootfs = s.Root.Path
	}
	if err := b.dir.SavePending(pending); err != nil {
		return err
	}
	hasRuntimeHooks := s.Hooks != nil && (len(s.Hooks.Prestart) > 0 || len(s.Hooks.CreateRuntime) > 0)
	ic := initConfig{
		ID:           b.opts.ID,
		Bundle:       b.bundle,
		Spec:         s,
		NoPivot:      b.opts.NoPivot,
		NoNewKeyring: b.opts.NoNewKeyring,
		UserNS:       config.HasNamespace(s, specs.UserNamespace) || userns.RunningInUserNS(),
		CgroupNS:     config.HasNamespace(s, specs.CgroupNamespace),
		NewCgroupNS:  newNamespace(s, specs.CgroupNamespace),
		CgroupV2:     cgroups.IsV2(),
		PreserveFds:  b.opts.PreserveFds,
		FifoFd:       fifoFd,
		ConsoleFd:    consoleFd,
		RuntimeHooks: hasRuntimeHooks,
	}
	// The process that runs the C stage joins the cgroup while it starts,
	// before it forks: the container's processes are born in it.
	if err := b.applyCgroup(p.cmd.Process.Pid); err != nil {
		return err
	}
	ic.CgroupPaths = b.cgroupPaths() // none if a rootless caller has no cgroup
	slog.Debug("container cgroup set up", "id", b.opts.ID, "paths", ic.CgroupPaths)
	plan, err := choosePlan(&ic)
	if err != nil {
		return err
	}
	early := plan != nil && !slices.Contains(entries, "maps=1")
	if plan != nil {
		entries = append(entries, "plan=1")
	}
	if early {
		// The plan waits for nothing but the cgroup, and there are no id
		// maps to write.
		if err := p.sendWithPlan(entries, plan); err != nil {
			return err
		}
	}
	b.initPid, err = p.bootstrap(entries, func(pid int) error { return writeIDMaps(pid, s.Linux) })
	if err != nil {
		return err
	}
	b.cmd = nil
	slog.Debug("container init started in its namespaces", "id", b.opts.ID, "pid", b.initPid, "cinit", plan != nil)
	if !early {
		ic.HostPid = b.initPid
		if err := sendInit(p.sock, plan, &ic); err != nil {
			return err
		}
	}
	start, _, err := state.ProcessStart(b.initPid)
	if err != nil {
		return fmt.Errorf("read start time of init %d: %w", b.initPid, err)
	}
	b.st = &state.State{
		ID: b.opts.ID, Pid: b.initPid, PidStart: start, Bundle: b.bundle, Rootfs: s.Root.Path,
		Created: time.Now().UTC(), CgroupPaths: b.cgroupPaths(), Spec: s, Owner: strconv.Itoa(os.Geteuid()),
	}
	for {
		typ, payload, err := nsexec.Recv(p.sock)
		if err != nil {
			return fmt.Errorf("container init exited before it was ready: %w", initExitError(b.initPid, err))
		}
		switch typ {
		case nsexec.MsgError:
			return errors.New(string(payload))
		case nsexec.MsgHooks:
			// The old prestart hooks see "created", as in crun and the
			// runtime-tools suite; createRuntime sees the truth.
			if err := hooks.Run("prestart", s.Hooks.Prestart, b.st.OCI(state.Created)); err != nil {
				return err
			}
			if err := hooks.Run("createRuntime", s.Hooks.CreateRuntime, b.st.OCI(state.Creating)); err != nil {
				return err
			}
			if err := nsexec.Send(p.sock, nsexec.MsgHooksDone, nil); err != nil {
				return err
			}
		case nsexec.MsgSeccomp:
			if err := forwardListener(p.sock, s, b.st.OCI(state.Creating)); err != nil {
				return err
			}
		case nsexec.MsgReady:
			slog.Debug("container init ready, waiting on the exec fifo", "id", b.opts.ID)
			if b.console, err = con.receive(); err != nil {
				return err
			}
			if err := b.dir.Save(b.st); err != nil {
				return err
			}
			if b.opts.PidFile != "" {
				if err := writePidFile(b.opts.PidFile, b.initPid); err != nil {
					return err
				}
			}
			return nil
		default:
			return fmt.Errorf("unexpected message %q from container init", typ)
		}
	}
}

func initExitError(pid int, err error) error {
	var ws unix.WaitStatus
	if wpid, werr := unix.Wait4(pid, &ws, unix.WNOHANG, nil); werr == nil && wpid == pid {
		if ws.Signaled() {
			return fmt.Errorf("killed by signal %v", ws.Signal())
		}
		return fmt.Errorf("exit status %d", ws.ExitStatus())
	}
	return err
}

func writePidFile(path string, pid int) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	return nil
}

// bootstrapFor lists the namespaces for the C stage: new ones as clone
// flags, existing ones as paths to join.
func bootstrapFor(s *specs.Spec) []string {
	flags := 0
	var entries []string
	maps := false
	for _, ns := range s.Linux.Namespaces {
		f := config.NamespaceFlags[ns.Type]
		if ns.Path != "" {
			entries = append(entries, "join="+strconv.Itoa(f)+":"+ns.Path)
			continue
		}
		if ns.Type == specs.CgroupNamespace {
			continue // made by init once it is in its cgroup (initConfig.NewCgroupNS)
		}
		flags |= f
		if ns.Type == specs.UserNamespace {
			maps = len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0
		}
	}
	entries = append(entries, "clone="+strconv.Itoa(flags))
	if maps {
		entries = append(entries, "maps=1")
	}
	if off := config.TimeOffsets(s); off != "" {
		entries = append(entries, "timens="+off)
	}
	return entries
}

// newNamespace reports whether the spec asks for a new namespace of type t.
func newNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

// hostID is the host id that id 0 of a user namespace maps to, or def.
func hostID(maps []specs.LinuxIDMapping, def int) int {
	for _, m := range maps {
		if m.ContainerID == 0 {
			return int(m.HostID)
		}
	}
	return def
}

// writeIDMaps writes the uid and gid maps of a new user namespace.
func writeIDMaps(pid int, l *specs.Linux) error {
	render := func(ms []specs.LinuxIDMapping) []byte {
		var sb strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&sb, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
		}
		return []byte(sb.String())
	}
	base := "/proc/" + strconv.Itoa(pid)
	if os.Geteuid() != 0 {
		// An unprivileged writer may set a gid map only after denying setgroups.
		if err := os.WriteFile(base+"/setgroups", []byte("deny"), 0); err != nil {
			return fmt.Errorf("write setgroups: %w", err)
		}
	}
	if err := os.WriteFile(base+"/uid_map", render(l.UIDMappings), 0); err != nil {
		return fmt.Errorf("write uid_map: %w", err)
	}
	if err := os.WriteFile(base+"/gid_map", render(l.GIDMappings), 0); err != nil {
		return fmt.Errorf("write gid_map: %w", err)
	}
	return nil
}

// initProcess is a started init (or exec) process still in its C stage.
type initProcess struct {
	cmd           *exec.Cmd
	sock          *os.File
	bootstrapSent bool
}

// startInit starts the runtime binary in its init mode. The caller's first
// preserveFds descriptors above stdio are passed on at the same numbers,
// followed by the sync socket and then extra.
func startInit(preserveFds int, extra []*os.File) (*initProcess, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("create sync socket: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "sync-parent")
	child := os.NewFile(uintptr(fds[1]), "sync-child")
	defer child.Close()
	files := make([]*os.File, 0, preserveFds+1+len(extra))
	for i := 0; i < preserveFds; i++ {
		files = append(files, os.NewFile(uintptr(3+i), "preserved"))
	}
	files = append(files, child)
	files = append(files, extra...)
	cmd := &exec.Cmd{
		Args:       []string{"berth-runtime", "init"},
		Env:        []string{nsexec.EnvSyncFd + "=" + strconv.Itoa(3+preserveFds)},
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		ExtraFiles: files,
	}
	if err := exeseal.Start(cmd); err != nil {
		parent.Close()
		return nil, fmt.Errorf("start container init: %w", err)
	}
	return &initProcess{cmd: cmd, sock: parent}, nil
}

func (p *initProcess) sendBootstrap(entries []string) error {
	payload := []byte(strings.Join(entries, "\x00") + "\x00")
	p.bootstrapSent = true
	return nsexec.Send(p.sock, nsexec.MsgBootstrap, payload)
}

// sendWithPlan sends the bootstrap and, right behind it, the plan, before
// bootstrap reads the answers: the intermediate process reads only its
// bootstrap, and the final process finds the plan as soon as it is forked.
// Only for a process without id maps to write (the intermediate would read
// the plan instead of its "maps done").
func (p *initProcess) sendWithPlan(entries []string, plan []byte) error {
	if err := p.sendBootstrap(entries); err != nil {
		return err
	}
	return nsexec.Send(p.sock, nsexec.MsgPlan, plan)
}

// bootstrap sends the namespace list to the C stage (unless sendBootstrap did), writes id maps when it
// asks, and returns the pid of the final process. The intermediate process
// is reaped here.
func (p *initProcess) bootstrap(entries []string, writeMaps func(pid int) error) (int, error) {
	if !p.bootstrapSent {
		if err := p.sendBootstrap(entries); err != nil {
			return -1, err
		}
	}
	for {
		typ, data, err := nsexec.Recv(p.sock)
		if err != nil {
			werr := p.cmd.Wait()
			return -1, fmt.Errorf("container init stage failed: %v (%v)", err, werr)
		}
		switch typ {
		case nsexec.MsgWantMaps:
			if err := writeMaps(p.cmd.Process.Pid); err != nil {
				return -1, err
			}
			if err := nsexec.Send(p.sock, nsexec.MsgMapsDone, nil); err != nil {
				return -1, err
			}
		case nsexec.MsgPid:
			if len(data) != 4 {
				return -1, errors.New("bad pid message from container init")
			}
			pid := int(int32(binary.LittleEndian.Uint32(data)))
			if err := p.cmd.Wait(); err != nil {
				// The pid still goes back, for the caller to kill.
				return pid, fmt.Errorf("container init stage: %w", err)
			}
			return pid, nil
		case nsexec.MsgError:
			p.cmd.Wait()
			return -1, errors.New(string(data))
		default:
			return -1, fmt.Errorf("unexpected message %q from container init stage", typ)
		}
	}
}
