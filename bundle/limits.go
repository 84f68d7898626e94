package bundle

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/libcontainer/config"
)

// rlimits applies docker-style ulimits ("nofile=1024:4096", "core=0") over
// defaults. Each name may appear once.
func rlimits(defaults []specs.POSIXRlimit, ulimits []string) ([]specs.POSIXRlimit, error) {
	out := slices.Clone(defaults)
	seen := map[string]bool{}
	for _, u := range ulimits {
		name, value, ok := strings.Cut(u, "=")
		if !ok {
			return nil, fmt.Errorf("ulimit %q: want name=soft:hard or name=limit", u)
		}
		typ := "RLIMIT_" + strings.ToUpper(name)
		if _, known := config.Rlimits[typ]; !known {
			return nil, fmt.Errorf("ulimit %q: unknown name %q (want one of %s)", u, name, ulimitNames())
		}
		if seen[typ] {
			return nil, fmt.Errorf("ulimit %q: %s given twice", u, name)
		}
		seen[typ] = true
		softStr, hardStr, hasHard := strings.Cut(value, ":")
		if !hasHard {
			hardStr = softStr
		}
		soft, err := parseLimit(softStr)
		if err != nil {
			return nil, fmt.Errorf("ulimit %q: soft limit: %w", u, err)
		}
		hard, err := parseLimit(hardStr)
		if err != nil {
			return nil, fmt.Errorf("ulimit %q: hard limit: %w", u, err)
		}
		if soft > hard {
			return nil, fmt.Errorf("ulimit %q: soft limit exceeds hard limit", u)
		}
		r := specs.POSIXRlimit{Type: typ, Soft: soft, Hard: hard}
		if i := slices.IndexFunc(out, func(x specs.POSIXRlimit) bool { return x.Type == typ }); i >= 0 {
			out[i] = r
		} else {
			out = append(out, r)
		}
	}
	return out, nil
}

// ulimitNames lists the names rlimits accepts, for errors.
func ulimitNames() string {
	var names []string
	for typ := range config.Rlimits {
		names = append(names, strings.ToLower(strings.TrimPrefix(typ, "RLIMIT_")))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// parseLimit reads a limit; -1 and "unlimited" are RLIM_INFINITY.
func parseLimit(s string) (uint64, error) {
	if s == "-1" || s == "unlimited" {
		return math.MaxUint64, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number, -1 or unlimited", s)
	}
	return n, nil
}

// The real-time signals as the C library numbers them (the kernel's first
// two are reserved for threading); docker names them the same way.
const (
	sigRTMin = 34
	sigRTMax = 64
)

// parseSignal reads a signal as docker accepts it: a number, or a name with
// or without SIG in any case, including RTMIN+n and RTMAX-n.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > sigRTMax {
			return 0, fmt.Errorf("signal %d out of range 1..%d", n, sigRTMax)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if sig, ok := rtSignal(name); ok {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// rtSignal reads SIGRTMIN, SIGRTMIN+n, SIGRTMAX and SIGRTMAX-n.
func rtSignal(name string) (unix.Signal, bool) {
	base, sign := sigRTMin, "+"
	rest, ok := strings.CutPrefix(name, "SIGRTMIN")
	if !ok {
		base, sign = sigRTMax, "-"
		if rest, ok = strings.CutPrefix(name, "SIGRTMAX"); !ok {
			return 0, false
		}
	}
	n := 0
	if rest != "" {
		digits, ok := strings.CutPrefix(rest, sign)
		v, err := strconv.Atoi(digits)
		if !ok || err != nil || v < 0 {
			return 0, false
		}
		n = v
	}
	if sign == "-" {
		n = -n
	}
	sig := base + n
	return unix.Signal(sig), sig >= sigRTMin && sig <= sigRTMax
}

// StopSignal returns the signal that stops the container described by s: its
// org.opencontainers.image.stopSignal annotation, else SIGTERM.
func StopSignal(s *specs.Spec) (unix.Signal, error) {
	name, ok := s.Annotations[AnnotationStopSignal]
	if !ok {
		return unix.SIGTERM, nil
	}
	return parseSignal(name)
}
