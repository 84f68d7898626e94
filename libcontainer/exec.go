package libcontainer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/libcontainer/cgroups"
	"github.com/berth-containers/berth/libcontainer/config"
	"github.com/berth-containers/berth/libcontainer/console"
	"github.com/berth-containers/berth/libcontainer/nsexec"
	"github.com/berth-containers/berth/libcontainer/state"
)

// nsFiles names each namespace type's file under /proc/PID/ns.
var nsFiles = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// ExecOptions describe a process to run in an existing container.
type ExecOptions struct {
	Root          string
	ID            string
	Process       *specs.Process // complete, or nil to derive it with Args and the overrides below
	Args          []string
	Cwd           string
	Env           []string
	User          *specs.User
	Caps          []string
	NoNewPrivs    bool
	AppArmor      string
	Label         string
	Tty           bool
	ConsoleSocket string
	PidFile       string
	Detach        bool
	PreserveFds   int
	IgnorePaused  bool
	SubCgroups    map[string]string // cgroups below the container's by controller ("" for all), as runc's --cgroup
}

// process builds the process as runc does without --process: the
// container's own process with other args, extra env, and the overrides.
func (o *ExecOptions) process(base *specs.Process) *specs.Process {
	if o.Process != nil {
		return o.Process
	}
	p := *base
	p.Args = o.Args
	p.Env = append(append([]string{}, base.Env...), o.Env...)
	p.Terminal = o.Tty
	if o.Cwd != "" {
		p.Cwd = o.Cwd
	}
	if o.User != nil {
		p.User = *o.User
	}
	if o.NoNewPrivs {
		p.NoNewPrivileges = true
	}
	if o.AppArmor != "" {
		p.ApparmorProfile = o.AppArmor
	}
	if o.Label != "" {
		p.SelinuxLabel = o.Label
	}
	if len(o.Caps) > 0 {
		c := specs.LinuxCapabilities{}
		if base.Capabilities != nil {
			c = *base.Capabilities
		}
		c.Bounding = append(append([]string{}, c.Bounding...), o.Caps...)
		c.Effective = append(append([]string{}, c.Effective...), o.Caps...)
		c.Permitted = append(append([]string{}, c.Permitted...), o.Caps...)
		p.Capabilities = &c
	}
	return &p
}

// Exec runs a process in a running container. Unless detached it waits and
// returns the process's exit code, forwarding signals to it.
func Exec(o ExecOptions) (int, error) {
	var sigs chan os.Signal
	if !o.Detach {
		sigs = make(chan os.Signal, 32)
		signal.Notify(sigs)
		defer signal.Stop(sigs)
	}
	pid, master, err := startExec(&o)
	if err != nil {
		return -1, err
	}
	if o.Detach {
		return 0, nil
	}
	var outDone <-chan struct{}
	if master != nil {
		defer master.Close()
		var restore func()
		restore, outDone = console.Attach(master)
		defer restore()
	}
	code, err := waitForward(pid, sigs)
	if outDone != nil {
		select {
		case <-outDone:
		case <-time.After(time.Second):
		}
	}
	return code, err
}

func startExec(o *ExecOptions) (int, *os.File, error) {
	d, err := state.Open(o.Root, o.ID)
	if err != nil {
		return -1, nil, err
	}
	st, status, err := Status(d)
	d.Unlock()
	if err != nil {
		return -1, nil, err
	}
	switch {
	case status == state.Paused && !o.IgnorePaused:
		return -1, nil, errors.New("cannot exec in a paused container (use --ignore-paused to override)")
	case status != state.Running && status != state.Created && status != state.Paused:
		return -1, nil, fmt.Errorf("cannot exec in container %s: %w", o.ID, ErrNotRunning)
	}
	spec := *st.Spec
	spec.Process = o.process(st.Spec.Process)
	if err := config.ValidateProcess(spec.Process); err != nil {
		return -1, nil, fmt.Errorf("exec process: %w", err)
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" && o.Detach {
		return -1, nil, errors.New("a detached terminal process needs --console-socket")
	}
	con, err := openConsole(o.ConsoleSocket, spec.Process.Terminal)
	if err != nil {
		return -1, nil, err
	}
	defer con.Close()
	var extra []*os.File
	consoleFd := -1
	if con.theirs != nil {
		extra = append(extra, con.theirs)
		consoleFd = 3 + o.PreserveFds + 1
	}
	p, err := startInit(o.PreserveFds, extra)
	if err != nil {
		return -1, nil, err
	}
	defer p.sock.Close()
	fail := func(err error) (int, *os.File, error) {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		return -1, nil, err
	}
	var cg *cgroups.Manager
	if len(st.CgroupPaths) > 0 {
		if cg, err = cgroups.Load(st.CgroupPaths); err != nil {
			return fail(err)
		}
	}
	// In a paused container the process would freeze before it could set
	// itself up: it joins the cgroup last, and execs only after that.
	late := status == state.Paused
	if cg != nil && !late {
		if err := cg.AddPid(p.cmd.Process.Pid, o.SubCgroups); err != nil {
			return fail(err)
		}
	}
	var entries []string
	for _, ns := range st.Spec.Linux.Namespaces {
		path := fmt.Sprintf("/proc/%d/ns/%s", st.Pid, nsFiles[ns.Type])
		entries = append(entries, fmt.Sprintf("join=%d:%s", config.NamespaceFlags[ns.Type], path))
	}
	ic := initConfig{ID: o.ID, Bundle: st.Bundle, Spec: &spec, Exec: true,
		PreserveFds: o.PreserveFds, FifoFd: -1, ConsoleFd: consoleFd, WaitGo: late}
	plan, err := choosePlan(&ic)
	if err != nil {
		return fail(err)
	}
	entries = append(entries, "clone=0")
	if plan != nil {
		entries = append(entries, "plan=1")
		// Nothing in the plan waits for the pid.
		if err := p.sendWithPlan(entries, plan); err != nil {
			return fail(err)
		}
	}
	pid, err := p.bootstrap(entries, nil)
	if err != nil {
		if pid > 0 {
			killChild(pid)
		}
		return -1, nil, err
	}
	fail = func(err error) (int, *os.File, error) {
		killChild(pid)
		return -1, nil, err
	}
	if plan == nil {
		ic.HostPid = pid
		if err := sendInit(p.sock, nil, &ic); err != nil {
			return fail(err)
		}
	}
	if err := waitExecReady(p.sock, &spec, st.OCI(state.Running), pid); err != nil {
		return fail(err)
	}
	if late {
		if cg != nil {
			if err := cg.AddPid(pid, o.SubCgroups); err != nil {
				return fail(err)
			}
		}
		if err := nsexec.Send(p.sock, nsexec.MsgGo, nil); err != nil {
			return fail(err)
		}
	}
	master, err := con.receive()
	if err != nil {
		return fail(err)
	}
	// The process closes its end at execve (or by exiting); in a paused
	// container it is frozen before that, and runs once resumed.
	if !late {
		_, _ = io.Copy(io.Discard, p.sock)
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			return fail(err)
		}
	}
	return pid, master, nil
}

// waitExecReady waits until the exec'd process reports ready, passing on a
// seccomp listener on the way.
func waitExecReady(sock *os.File, spec *specs.Spec, st *specs.State, pid int) error {
	st.Pid = pid
	for {
		typ, payload, err := nsexec.Recv(sock)
		switch {
		case err != nil:
			return fmt.Errorf("exec process exited before it was ready: %w", initExitError(pid, err))
		case typ == nsexec.MsgError:
			return errors.New(string(payload))
		case typ == nsexec.MsgSeccomp:
			if err := forwardListener(sock, spec, st); err != nil {
				return err
			}
		case typ == nsexec.MsgReady:
			return nil
		default:
			return fmt.Errorf("unexpected message %q from exec process", typ)
		}
	}
}
