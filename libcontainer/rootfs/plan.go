package rootfs

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/libcontainer/config"
)

// ErrNoPlan marks a spec whose filesystem only the Go init sets up.
var ErrNoPlan = errors.New("not expressible as a plan for the C init stage")

// Ops is the list of operations the C init stage (libcontainer/nsexec,
// cinit_rootfs.c) executes in order; each is a kind and its fields.
type Ops []string

// Add appends one operation. A field the plan's encoding cannot carry
// makes the plan unusable (Err).
func (o *Ops) Add(kind string, fields ...string) {
	for _, f := range fields {
		if strings.ContainsAny(f, "\x00\x1f") {
			*o = append(*o, "\x00") // poisoned: Err reports it
			return
		}
	}
	*o = append(*o, strings.Join(append([]string{kind}, fields...), "\x1f"))
}

// Err reports whether some operation could not be encoded.
func (o Ops) Err() error {
	for _, op := range o {
		if op == "\x00" {
			return fmt.Errorf("a path or option holds a NUL or \\x1f byte: %w", ErrNoPlan)
		}
	}
	return nil
}

func u(v uintptr) string  { return strconv.FormatUint(uint64(v), 10) }
func b(v bool) string     { return map[bool]string{false: "0", true: "1"}[v] }
func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// Plan adds to ops what Prepare, Pivot (noPivot as there) and Finish do,
// in their order, with hooks (the runtime's prestart and createRuntime
// hooks) and console (the terminal, bound on /dev/console) where Prepare's
// caller does them. Every decision that needs no
// look at the rootfs is taken here; what the rootfs holds (missing mount
// points, symlinks, file types) is left to the C stage, which resolves
// and checks each path when it gets there.
func Plan(ops *Ops, s *specs.Spec, o Options, noPivot, hooks, console bool) error {
	rootfs := s.Root.Path
	for _, ns := range s.Linux.Namespaces {
		// Mount sources, types and the hierarchies are looked at here, in
		// the runtime's mount namespace: the joined one may differ.
		if ns.Type == specs.MountNamespace && ns.Path != "" {
			return fmt.Errorf("joining mount namespace %s: %w", ns.Path, ErrNoPlan)
		}
	}
	if !o.HostMountNS {
		flags := uintptr(unix.MS_SLAVE | unix.MS_REC)
		if p := propagationOptions[s.Linux.RootfsPropagation]; p&unix.MS_SHARED != 0 {
			flags = p
		}
		ops.Add("prop", "/", u(flags))
		if flags&unix.MS_SHARED != 0 {
			parent, err := mountHolding(rootfs)
			if err != nil {
				return err
			}
			ops.Add("prop", parent, u(unix.MS_SLAVE))
		}
	}
	ops.Add("root", rootfs)
	devBound := false
	for _, m := range s.Mounts {
		if err := planMount(ops, m, o); err != nil {
			return err
		}
		if filepath.Clean("/"+m.Destination) == "/dev" && isBind(m) {
			devBound = true
		}
	}
	devices := s.Linux.Devices
	if !devBound {
		devices = append(append([]specs.LinuxDevice{}, DefaultDevices...), devices...)
	}
	for _, d := range devices {
		planDevice(ops, d, o.UserNS)
	}
	if !devBound {
		for _, l := range devLinks() {
			ops.Add("symlink", "/dev", l[1], l[0])
		}
	}
	if hooks {
		ops.Add("hooks")
	}
	switch {
	case !config.HasNamespace(s, specs.MountNamespace):
		ops.Add("pivot", rootfs, "chroot")
	case noPivot:
		ops.Add("pivot", rootfs, "move")
	default:
		ops.Add("pivot", rootfs, "pivot")
	}
	if p := s.Linux.RootfsPropagation; p != "" && config.HasNamespace(s, specs.MountNamespace) {
		ops.Add("prop", "/", u(propagationOptions[p]))
	}
	if console {
		ops.Add("console")
	}
	ops.Add("latero")
	for _, p := range s.Linux.ReadonlyPaths {
		ops.Add("readonly", filepath.Clean("/"+p))
	}
	if len(s.Linux.MaskedPaths) > 0 {
		ops.Add("nullcheck") // as Finish: once, even if no masked path exists
	}
	for _, p := range s.Linux.MaskedPaths {
		ops.Add("mask", filepath.Clean("/"+p))
	}
	if s.Root.Readonly {
		ops.Add("rootro")
	}
	return ops.Err()
}

// addMount adds a mount operation; the C stage's op_mount reads the
// fields in this order.
func addMount(ops *Ops, src, dest, fstype string, flags uintptr, data string, isFile bool, remount uintptr,
	opts mountOptions, late int, sysfsBind bool) {
	props := make([]string, len(opts.propagation))
	for i, p := range opts.propagation {
		props[i] = u(p)
	}
	ops.Add("mount", src, filepath.Clean("/"+dest), fstype, u(flags), data, b(isFile), u(remount),
		u64(opts.recAttrSet), u64(opts.recAttrClr), strings.Join(props, ","), strconv.Itoa(late), b(sysfsBind))
}

// planMount is mountOne's counterpart.
func planMount(ops *Ops, m specs.Mount, o Options) error {
	sm, err := readMount(m)
	if err != nil {
		return err
	}
	opts, typ := sm.opts, sm.typ
	if typ == "cgroup" {
		return planCgroup(ops, m, opts, o)
	}
	// As mountAt: a bind mount takes its other flags only on a remount.
	flags, fstype, remount := opts.flags&^unix.MS_REMOUNT, typ, uintptr(0)
	if typ == "bind" {
		fstype = ""
		flags &= unix.MS_BIND | unix.MS_REC
		if opts.flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0 {
			remount = opts.flags &^ unix.MS_REC
		}
	}
	addMount(ops, m.Source, m.Destination, fstype, flags, opts.dataString(), sm.isFile, remount, opts, sm.late,
		typ == "sysfs" && o.UserNS)
	return nil
}

// planCgroup is mountCgroup's counterpart.
func planCgroup(ops *Ops, m specs.Mount, opts mountOptions, o Options) error {
	ro := opts.flags & unix.MS_RDONLY
	base := opts.flags & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RELATIME)
	none := mountOptions{}
	// A bind is always remounted, as mountCgroup does, even with no flags
	// (which clears those the host's mount had); MS_REMOUNT keeps the
	// field non-zero.
	rebind := base | ro | unix.MS_REMOUNT
	dest := filepath.Clean("/" + m.Destination)
	if o.CgroupV2 {
		if o.CgroupNS {
			addMount(ops, "cgroup2", dest, "cgroup2", base|ro, "", false, 0, none, 0, false)
		} else {
			addMount(ops, o.CgroupPaths[""], dest, "", unix.MS_BIND, "", false, rebind, none, 0, false)
		}
		return nil
	}
	addMount(ops, "tmpfs", dest, "tmpfs", base, "mode=755", false, 0, none, 0, false)
	hierarchies, err := v1Hierarchies()
	if err != nil {
		return err
	}
	for _, h := range hierarchies {
		sub := dest + "/" + h.name
		if o.CgroupNS {
			addMount(ops, "cgroup", sub, "cgroup", base|ro, h.options, false, 0, none, 0, false)
		} else if src, ok := o.CgroupPaths[h.key]; ok {
			addMount(ops, src, sub, "", unix.MS_BIND, "", false, rebind, none, 0, false)
		} else {
			ops.Add("mkdir", sub)
		}
	}
	if ro != 0 {
		ops.Add("remount", dest, u(base|ro))
	}
	return nil
}

// planDevice is makeDevice's counterpart.
func planDevice(ops *Ops, d specs.LinuxDevice, userNS bool) {
	path := filepath.Clean("/" + d.Path)
	if userNS {
		addMount(ops, path, path, "", unix.MS_BIND, "", true, 0, mountOptions{}, 0, false)
		return
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	typ := map[string]uint32{"c": unix.S_IFCHR, "u": unix.S_IFCHR, "b": unix.S_IFBLK, "p": unix.S_IFIFO}[d.Type]
	uid, gid := uint32(0), uint32(0)
	if d.UID != nil {
		uid = *d.UID
	}
	if d.GID != nil {
		gid = *d.GID
	}
	ops.Add("mknod", path, strconv.FormatUint(uint64(typ), 10), strconv.FormatUint(uint64(perm), 10),
		strconv.FormatInt(d.Major, 10), strconv.FormatInt(d.Minor, 10),
		strconv.FormatUint(uint64(uid), 10), strconv.FormatUint(uint64(gid), 10))
}
