package libcontainer

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/libcontainer/capabilities"
	"github.com/berth-containers/berth/libcontainer/config"
	"github.com/berth-containers/berth/libcontainer/nsexec"
	"github.com/berth-containers/berth/libcontainer/rootfs"
	"github.com/berth-containers/berth/libcontainer/seccomp"
)

// EnvGoInit, set to 1 in the runtime's environment, makes every container
// process use the Go init, as when the C init stage cannot run a spec (for
// tests that compare the two, and as a way around a C stage bug).
const EnvGoInit = "BERTH_GO_INIT"

// errGoInit marks a process that the C init stage does not set up.
var errGoInit = errors.New("needs the Go init")

// initPlan returns the plan the C init stage (libcontainer/nsexec,
// cinit.c) executes for ic instead of the Go init: the same work in the
// same order, every decision taken here. It returns an error wrapping
// errGoInit for what only the Go init does (LSM labels, seccomp notify
// rules, hooks run inside the container), and other errors
// for a spec that neither could run.
func initPlan(ic *initConfig) ([]byte, error) {
	s, p := ic.Spec, ic.Spec.Process
	switch {
	case os.Getenv(EnvGoInit) == "1":
		return nil, fmt.Errorf("%s=1: %w", EnvGoInit, errGoInit)
	case p.ApparmorProfile != "" || p.SelinuxLabel != "":
		return nil, fmt.Errorf("an LSM label: %w", errGoInit)
	case !ic.Exec && s.Hooks != nil && (len(s.Hooks.CreateContainer) > 0 || len(s.Hooks.StartContainer) > 0):
		return nil, fmt.Errorf("hooks in the container: %w", errGoInit)
	}
	var e planEntries
	if !ic.Exec {
		var ops rootfs.Ops
		if ic.NewCgroupNS {
			ops.Add("cgroupns")
		}
		err := rootfs.Plan(&ops, s, rootfs.Options{
			UserNS: ic.UserNS, CgroupNS: ic.CgroupNS, CgroupPaths: ic.CgroupPaths, CgroupV2: ic.CgroupV2,
			HostMountNS: !config.HasNamespace(s, specs.MountNamespace),
		}, ic.NoPivot, ic.RuntimeHooks, p.Terminal)
		if errors.Is(err, rootfs.ErrNoPlan) {
			return nil, fmt.Errorf("%w: %w", err, errGoInit)
		} else if err != nil {
			return nil, err
		}
		if s.Hostname != "" {
			ops.Add("hostname", s.Hostname)
		}
		if s.Domainname != "" {
			ops.Add("domainname", s.Domainname)
		}
		for key, value := range s.Linux.Sysctl {
			ops.Add("sysctl", strings.ReplaceAll(key, ".", "/"), value)
		}
		if !ic.NoNewKeyring {
			ops.Add("keyring")
		}
		if err := ops.Err(); err != nil {
			return nil, fmt.Errorf("%w: %w", err, errGoInit)
		}
		for _, op := range ops {
			e.add("op", op)
		}
		e.add("fifo", strconv.Itoa(ic.FifoFd))
	}
	if err := e.process(p, ic); err != nil {
		return nil, err
	}
	if s.Linux != nil && s.Linux.Seccomp != nil {
		filter, err := seccomp.Build(s.Linux.Seccomp)
		if err != nil {
			return nil, fmt.Errorf("linux.seccomp: %w", err)
		}
		progs, err := filter.Programs()
		if errors.Is(err, seccomp.ErrNotExportable) {
			return nil, fmt.Errorf("%w: %w", err, errGoInit)
		} else if err != nil {
			return nil, fmt.Errorf("linux.seccomp: %w", err)
		}
		for _, prog := range progs {
			e.add("bpf", fmt.Sprintf("%d:%d:%s", prog.Flags, map[bool]int{false: 0, true: 1}[prog.Optional], hex.EncodeToString(prog.Code)))
		}
	}
	if e.bad {
		return nil, fmt.Errorf("an argument or variable holds a NUL byte: %w", errGoInit)
	}
	return []byte(strings.Join(e.list, "\x00") + "\x00"), nil
}

// planEntries are the plan's key=value entries.
type planEntries struct {
	list []string
	bad  bool // a value holds a NUL byte, which the encoding cannot carry
}

func (e *planEntries) add(key, value string) {
	e.bad = e.bad || strings.IndexByte(value, 0) >= 0
	e.list = append(e.list, key+"="+value)
}

// process adds what execProcess and prepareProcess do.
func (e *planEntries) process(p *specs.Process, ic *initConfig) error {
	for _, a := range p.Args {
		e.add("arg", a)
	}
	for _, v := range p.Env {
		e.add("env", v)
	}
	e.add("cwd", p.Cwd)
	e.add("uid", strconv.FormatUint(uint64(p.User.UID), 10))
	e.add("gid", strconv.FormatUint(uint64(p.User.GID), 10))
	groups := make([]string, len(p.User.AdditionalGids))
	for i, g := range p.User.AdditionalGids {
		groups[i] = strconv.FormatUint(uint64(g), 10)
	}
	e.add("groups", strings.Join(groups, ","))
	if p.User.Umask != nil {
		e.add("umask", strconv.FormatUint(uint64(*p.User.Umask), 10))
	}
	if p.NoNewPrivileges {
		e.add("nnp", "1")
	}
	for _, r := range p.Rlimits {
		e.add("rlimit", fmt.Sprintf("%s:%d:%d:%d", r.Type, config.Rlimits[r.Type], r.Soft, r.Hard))
	}
	if p.OOMScoreAdj != nil {
		e.add("oom", strconv.Itoa(*p.OOMScoreAdj))
	}
	m, err := capabilities.MasksOf(p.Capabilities)
	if err != nil {
		return err
	}
	e.add("lastcap", strconv.Itoa(m.Last))
	for _, c := range []struct {
		key  string
		mask uint64
	}{{"capb", m.Bounding}, {"cape", m.Effective}, {"capp", m.Permitted}, {"capi", m.Inheritable}, {"capa", m.Ambient}} {
		e.add(c.key, strconv.FormatUint(c.mask, 10))
	}
	e.add("preserve", strconv.Itoa(ic.PreserveFds))
	if p.Terminal {
		rows, cols := uint(0), uint(0)
		if p.ConsoleSize != nil {
			rows, cols = p.ConsoleSize.Height, p.ConsoleSize.Width
		}
		e.add("console", fmt.Sprintf("%d:%d:%d", ic.ConsoleFd, rows, cols))
	}
	if ic.WaitGo {
		e.add("waitgo", "1")
	}
	return nil
}

// choosePlan decides between the C init stage and the Go init for ic:
// the plan for the first, nil for the second.
func choosePlan(ic *initConfig) ([]byte, error) {
	plan, err := initPlan(ic)
	if errors.Is(err, errGoInit) {
		slog.Debug("container process set up by the Go init", "id", ic.ID, "reason", err)
		return nil, nil
	}
	return plan, err
}

// sendInit hands the process its work: the plan, which the C stage was
// told to expect, or else the Go init's configuration.
func sendInit(sock *os.File, plan []byte, ic *initConfig) error {
	if plan != nil {
		return nsexec.Send(sock, nsexec.MsgPlan, plan)
	}
	data, err := json.Marshal(ic)
	if err != nil {
		return fmt.Errorf("encode init config: %w", err)
	}
	return nsexec.Send(sock, nsexec.MsgConfig, data)
}
