package bundle

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// propagations are the bind propagation modes a Binds entry may give.
var propagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

// mounts returns the default mounts adjusted for o, followed by the user's
// tmpfs, bind and image-volume mounts, parents before children. A user mount
// on a default mount's destination replaces it, as in docker.
func mounts(defaults []specs.Mount, volumes map[string]struct{}, o Options) ([]specs.Mount, error) {
	var user []specs.Mount
	for _, t := range o.Tmpfs {
		m, err := tmpfsMount(t)
		if err != nil {
			return nil, err
		}
		user = append(user, m)
	}
	for _, b := range o.Binds {
		m, err := bindMount(b)
		if err != nil {
			return nil, err
		}
		user = append(user, m)
	}
	seen := map[string]bool{}
	for _, m := range user {
		if seen[m.Destination] {
			return nil, fmt.Errorf("two mounts on %s", m.Destination)
		}
		seen[m.Destination] = true
	}
	switch o.ImageVolumes {
	case "", "ignore":
	case "tmpfs":
		for _, v := range slices.Sorted(maps.Keys(volumes)) {
			dest := filepath.Join("/", v)
			if !seen[dest] {
				seen[dest] = true
				user = append(user, specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}})
			}
		}
	default:
		return nil, fmt.Errorf("image volumes mode %q: want ignore or tmpfs", o.ImageVolumes)
	}
	slices.SortStableFunc(user, func(a, b specs.Mount) int { return depth(a.Destination) - depth(b.Destination) })

	shm := o.ShmSize
	if shm < 0 {
		return nil, fmt.Errorf("shm size %d is negative", shm)
	}
	if shm == 0 {
		shm = defaultShmSize
	}
	var out []specs.Mount
	for _, m := range defaults {
		if seen[m.Destination] || (o.Rootless && m.Destination == "/sys/fs/cgroup") {
			continue
		}
		switch m.Destination {
		case "/dev/shm":
			m.Options = []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shm, 10)}
		case "/sys", "/sys/fs/cgroup":
			if o.Privileged {
				m.Options = slices.DeleteFunc(m.Options, func(opt string) bool { return opt == "ro" })
			}
		}
		out = append(out, m)
	}
	return append(out, user...), nil
}

func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

// destination checks a container path of a user mount.
func destination(p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%q is not an absolute path", p)
	}
	p = filepath.Clean(p)
	if p == "/" {
		return "", errors.New("cannot mount over /")
	}
	return p, nil
}

// tmpfsMount parses "/path[:opt,opt]" with docker's defaults first, so that
// an option like exec can undo one of them.
func tmpfsMount(t string) (specs.Mount, error) {
	dest, opts, _ := strings.Cut(t, ":")
	dest, err := destination(dest)
	if err != nil {
		return specs.Mount{}, fmt.Errorf("tmpfs %q: %w", t, err)
	}
	options := []string{"nosuid", "nodev", "noexec"}
	if opts != "" {
		options = append(options, strings.Split(opts, ",")...)
	}
	return specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: options}, nil
}

// bindMount parses "/host:/container[:opt,opt]". The host path must exist:
// docker's -v would create it, but a typo then fails quietly.
func bindMount(b string) (specs.Mount, error) {
	parts := strings.Split(b, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return specs.Mount{}, fmt.Errorf("bind %q: want /host:/container[:options]", b)
	}
	src := parts[0]
	if !filepath.IsAbs(src) {
		return specs.Mount{}, fmt.Errorf("bind %q: host path %q is not absolute", b, src)
	}
	if _, err := os.Stat(src); err != nil {
		return specs.Mount{}, fmt.Errorf("bind %q: %w", b, err)
	}
	dest, err := destination(parts[1])
	if err != nil {
		return specs.Mount{}, fmt.Errorf("bind %q: %w", b, err)
	}
	options := []string{"rbind"}
	propagation, ro := "rprivate", false
	if len(parts) == 3 {
		for _, opt := range strings.Split(parts[2], ",") {
			switch {
			case opt == "ro":
				ro = true
			case opt == "rw":
				ro = false
			case slices.Contains(propagations, opt):
				propagation = opt
			default:
				return specs.Mount{}, fmt.Errorf("bind %q: unknown option %q (want ro, rw or a propagation mode)", b, opt)
			}
		}
	}
	options = append(options, propagation)
	if ro {
		options = append(options, "ro")
	}
	return specs.Mount{Destination: dest, Type: "bind", Source: filepath.Clean(src), Options: options}, nil
}
