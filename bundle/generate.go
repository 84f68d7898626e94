package bundle

import (
	"errors"
	"fmt"
	"github.com/moby/sys/capability"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/bundle/seccomp"
	"github.com/berth-containers/berth/bundle/spec"
	"github.com/berth-containers/berth/bundle/user"
	"github.com/berth-containers/berth/libcontainer/capabilities"
)

// Annotations the image-spec's conversion rules define for image fields the
// runtime spec has no place for.
const (
	AnnotationStopSignal   = "org.opencontainers.image.stopSignal"
	AnnotationExposedPorts = "org.opencontainers.image.exposedPorts"
)

const (
	defaultPath    = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	defaultShmSize = 64 << 20
	// CPUPeriod is docker's CFS period for --cpus, in microseconds.
	CPUPeriod = 100000
	// maxHostname is the kernel's HOST_NAME_MAX.
	maxHostname = 64
)

// Generate makes the runtime configuration for running img (nil: an empty
// image) from the root filesystem at rootfs with options o. The rootfs is
// read for user lookup only and written to root.path as an absolute path.
func Generate(img *v1.Image, rootfs string, o Options) (*specs.Spec, error) {
	if img == nil {
		img = &v1.Image{}
	}
	if img.OS != "" && img.OS != "linux" {
		return nil, fmt.Errorf("image is for %s, not linux", img.OS)
	}
	root, err := filepath.Abs(rootfs)
	if err != nil {
		return nil, fmt.Errorf("rootfs %s: %w", rootfs, err)
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("rootfs %s is not a directory", root)
	}
	s := spec.Default()
	// What bundles use is all in runtime-spec 1.0.2, and older runtimes
	// (crun 1.8) refuse versions they do not know; podman writes the same.
	s.Version = "1.0.2-dev"
	s.Root = &specs.Root{Path: root, Readonly: o.ReadOnly}
	s.Linux.CgroupsPath = o.CgroupsPath
	newNet, err := setNetwork(s, o.NetworkMode)
	if err != nil {
		return nil, err
	}
	if s.Hostname, err = hostname(o.Hostname, o.NetworkMode == "host"); err != nil {
		return nil, err
	}
	if s.Process, err = process(img.Config, root, s.Hostname, o); err != nil {
		return nil, err
	}
	if err := setSecurity(s, o); err != nil {
		return nil, err
	}
	if s.Mounts, err = mounts(s.Mounts, img.Config.Volumes, o); err != nil {
		return nil, err
	}
	if err := setResources(s.Linux.Resources, o); err != nil {
		return nil, err
	}
	if s.Annotations, err = annotations(img, o); err != nil {
		return nil, err
	}
	if newNet {
		// Docker's defaults for a network namespace of the container's
		// own: any user may bind low ports and send pings.
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}
		if !o.Rootless {
			s.Linux.Sysctl["net.ipv4.ping_group_range"] = "0 2147483647"
		}
	}
	return s, nil
}

// setNetwork keeps, drops or points the network namespace of s as mode says,
// and reports whether the container gets a new one.
func setNetwork(s *specs.Spec, mode string) (bool, error) {
	path, join := strings.CutPrefix(mode, "ns:")
	switch {
	case mode == "" || mode == "none":
		return true, nil
	case mode == "host":
	case join && filepath.IsAbs(path):
	default:
		return false, fmt.Errorf("network mode %q: want none, host or ns:/path", mode)
	}
	var ns []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			if !join {
				continue
			}
			n.Path = path
		}
		ns = append(ns, n)
	}
	s.Linux.Namespaces = ns
	return false, nil
}

// hostname returns the container's hostname: the option, else the host's
// with the host network (as docker does), else the default spec's.
func hostname(name string, hostNet bool) (string, error) {
	if name == "" && hostNet {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("hostname for the host network: %w", err)
		}
		name = h
	}
	if name == "" {
		return spec.Default().Hostname, nil
	}
	if len(name) > maxHostname || strings.ContainsAny(name, " \t\n\x00/") {
		return "", fmt.Errorf("hostname %q: want at most %d characters without spaces or slashes", name, maxHostname)
	}
	return name, nil
}

// process makes the process: command, environment, working directory, user
// (looked up in rootfs) and rlimits. Capabilities are setSecurity's.
func process(cfg v1.ImageConfig, rootfs, hostname string, o Options) (*specs.Process, error) {
	args, err := command(cfg, o)
	if err != nil {
		return nil, err
	}
	cwd := cfg.WorkingDir
	if o.WorkingDir != "" {
		if !filepath.IsAbs(o.WorkingDir) {
			return nil, fmt.Errorf("working directory %q is not an absolute path", o.WorkingDir)
		}
		cwd = o.WorkingDir
	}
	// An image's relative WorkingDir is taken from /, as docker does.
	cwd = filepath.Join("/", cwd)
	userSpec := cfg.User
	if o.User != "" {
		userSpec = o.User
	}
	u, err := user.Lookup(rootfs, userSpec)
	if err != nil {
		return nil, err
	}
	env := []string{defaultPath, "HOSTNAME=" + hostname}
	if o.Terminal {
		env = append(env, "TERM=xterm")
	}
	// The runtime would set HOME=/; docker's runtimes take the passwd
	// entry's.
	env = append(env, "HOME="+u.Home)
	if env, err = mergeEnv(env, cfg.Env); err != nil {
		return nil, fmt.Errorf("image env: %w", err)
	}
	if env, err = mergeEnv(env, o.Env); err != nil {
		return nil, err
	}
	rlimits, err := rlimits(spec.Default().Process.Rlimits, o.Ulimits)
	if err != nil {
		return nil, err
	}
	return &specs.Process{
		Terminal:        o.Terminal,
		User:            specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids},
		Args:            args,
		Env:             env,
		Cwd:             cwd,
		Rlimits:         rlimits,
		NoNewPrivileges: o.NoNewPrivileges,
	}, nil
}

// command combines entrypoint and command as docker does: an Entrypoint
// option replaces the image's and drops the image's Cmd; Args replace Cmd.
func command(cfg v1.ImageConfig, o Options) ([]string, error) {
	entry, cmd := cfg.Entrypoint, cfg.Cmd
	if o.Entrypoint != nil {
		entry, cmd = *o.Entrypoint, nil
	}
	if len(o.Args) > 0 {
		cmd = o.Args
	}
	args := append(slices.Clone(entry), cmd...)
	if len(args) == 0 {
		return nil, errors.New("no command: the image has no Entrypoint or Cmd and none was given")
	}
	if args[0] == "" {
		return nil, errors.New("the command is an empty string")
	}
	if o.Init != "" {
		args = append([]string{o.Init, "--"}, args...)
	}
	return args, nil
}

// mergeEnv sets each KEY=VALUE of add in env, replacing an earlier KEY in
// place; a bare KEY removes it.
func mergeEnv(env, add []string) ([]string, error) {
	for _, e := range add {
		key, _, hasValue := strings.Cut(e, "=")
		if key == "" {
			return nil, fmt.Errorf("environment variable %q has no name", e)
		}
		i := slices.IndexFunc(env, func(x string) bool { return strings.HasPrefix(x, key+"=") })
		switch {
		case !hasValue && i >= 0:
			env = slices.Delete(env, i, i+1)
		case !hasValue:
		case i >= 0:
			env[i] = e
		default:
			env = append(env, e)
		}
	}
	return env, nil
}

// setSecurity sets capabilities, seccomp, masked and read-only paths and
// device access.
func setSecurity(s *specs.Spec, o Options) error {
	caps, err := capabilitySet(o)
	if err != nil {
		return err
	}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	if o.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	} else {
		// Docker lets containers make any device node (CAP_MKNOD is a
		// default) but not open it; the runtime adds the devices it makes.
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
			specs.LinuxDeviceCgroup{Allow: true, Type: "c", Access: "m"},
			specs.LinuxDeviceCgroup{Allow: true, Type: "b", Access: "m"})
	}
	s.Linux.Seccomp, err = seccompFor(o, caps)
	return err
}

// capabilitySet applies CapAdd and CapDrop to docker's defaults with docker's
// rules: ALL in CapAdd means every capability but those dropped; ALL in
// CapDrop means only those added; otherwise drops come before adds.
func capabilitySet(o Options) ([]string, error) {
	all := capabilities.Names()
	if o.Privileged {
		return PrivilegedCapabilities(), nil
	}
	add, err := capNames(o.CapAdd, all)
	if err != nil {
		return nil, fmt.Errorf("cap-add: %w", err)
	}
	drop, err := capNames(o.CapDrop, all)
	if err != nil {
		return nil, fmt.Errorf("cap-drop: %w", err)
	}
	var caps []string
	switch {
	case slices.Contains(add, "ALL"):
		caps = slices.DeleteFunc(slices.Clone(all), func(c string) bool { return slices.Contains(drop, c) })
	case slices.Contains(drop, "ALL"):
		caps = add
	default:
		for _, c := range spec.DefaultCapabilities {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		caps = append(caps, add...)
	}
	var out []string
	for _, c := range caps {
		if c != "ALL" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// capNames normalizes docker-style names ("sys_admin", "CAP_SYS_ADMIN",
// "all") and refuses those the kernel does not have.
func capNames(names, known []string) ([]string, error) {
	var out []string
	for _, n := range names {
		c := strings.ToUpper(n)
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if c != "ALL" && !slices.Contains(known, c) {
			return nil, fmt.Errorf("unknown capability %q", n)
		}
		out = append(out, c)
	}
	return out, nil
}

// seccompFor returns the seccomp section for a container with caps.
func seccompFor(o Options, caps []string) (*specs.LinuxSeccomp, error) {
	var p *seccomp.Profile
	var err error
	switch {
	case o.SeccompProfile == "unconfined", o.SeccompProfile == "" && o.Privileged:
		return nil, nil
	case o.SeccompProfile == "":
		if runtime.GOARCH != "amd64" && runtime.GOARCH != "386" {
			return nil, fmt.Errorf("the default seccomp profile covers x86 only, not %s: give a profile or \"unconfined\"", runtime.GOARCH)
		}
		p, err = seccomp.Default()
	default:
		p, err = seccomp.Load(o.SeccompProfile)
	}
	if err != nil {
		return nil, err
	}
	return p.Resolve(caps), nil
}

// setResources sets the memory, CPU and pids limits on r.
func setResources(r *specs.LinuxResources, o Options) error {
	if o.Memory < 0 {
		return fmt.Errorf("memory limit %d is negative", o.Memory)
	}
	if o.Memory > 0 {
		r.Memory = &specs.LinuxMemory{Limit: &o.Memory}
	}
	if o.CPUs != 0 {
		quota, period, err := CPUQuota(o.CPUs)
		if err != nil {
			return err
		}
		r.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if o.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: &o.PidsLimit}
	}
	return nil
}

// CPUQuota is docker's --cpus as a CFS quota and period.
func CPUQuota(cpus float64) (quota int64, period uint64, err error) {
	if cpus < 0 {
		return 0, 0, fmt.Errorf("cpus %g is negative", cpus)
	}
	quota, period = int64(cpus*CPUPeriod), uint64(CPUPeriod)
	// The kernel's minimum quota is 1 ms.
	if quota < 1000 {
		return 0, 0, fmt.Errorf("cpus %g is below the minimum of 0.01", cpus)
	}
	return quota, period, nil
}

// annotations follow the image-spec's conversion rules: annotations implied
// by the image's fields, then its labels over them; then the options' labels,
// stop signal and annotations.
func annotations(img *v1.Image, o Options) (map[string]string, error) {
	a := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			a[k] = v
		}
	}
	set("org.opencontainers.image.os", img.OS)
	set("org.opencontainers.image.architecture", img.Architecture)
	set("org.opencontainers.image.variant", img.Variant)
	set("org.opencontainers.image.os.version", img.OSVersion)
	set("org.opencontainers.image.os.features", strings.Join(img.OSFeatures, ","))
	set("org.opencontainers.image.author", img.Author)
	if img.Created != nil {
		set("org.opencontainers.image.created", img.Created.Format(time.RFC3339))
	}
	set(AnnotationStopSignal, img.Config.StopSignal)
	set(AnnotationExposedPorts, strings.Join(slices.Sorted(maps.Keys(img.Config.ExposedPorts)), ","))
	maps.Copy(a, img.Config.Labels)
	maps.Copy(a, o.Labels)
	set(AnnotationStopSignal, o.StopSignal)
	maps.Copy(a, o.Annotations)
	if sig, ok := a[AnnotationStopSignal]; ok {
		if _, err := parseSignal(sig); err != nil {
			return nil, fmt.Errorf("stop signal: %w", err)
		}
	}
	if len(a) == 0 {
		return nil, nil
	}
	return a, nil
}

// PrivilegedCapabilities are what a privileged process gets: every
// capability in our own bounding set, which a runtime we start can grant
// (all of them on a host; fewer when berth runs in a container denied some,
// where asking for all would fail), as podman does.
func PrivilegedCapabilities() []string {
	var out []string
	caps, _ := capability.ListSupported()
	for _, c := range caps {
		if ok, err := capability.GetBound(c); err == nil && ok {
			out = append(out, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	slices.Sort(out)
	return out
}
