// Package capabilities validates the capability sets of an OCI process and
// applies them to the calling OS thread just before it executes the
// container process.
//
// Capabilities are per thread: every function that changes them acts on the
// calling thread only, so the caller must hold runtime.LockOSThread from the
// first call until execve.
//
// When the process runs as a user other than root, the sequence is:
//
//	ApplyBounding(c)   // still uid 0: dropping from the bounding set needs CAP_SETPCAP
//	KeepCaps()         // the permitted set survives the coming setuid
//	setgroups, setgid, setuid
//	Apply(c)           // effective, permitted, inheritable and ambient as requested
//	execve
//
// setuid from 0 to a non-zero uid empties the effective and ambient sets even
// with KeepCaps, which is why they are set only after it. A process that
// stays root may call Apply alone. execve turns KeepCaps off again.
package capabilities

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// byName maps "CAP_SYS_ADMIN"-style names to the capabilities known to
// github.com/moby/sys/capability.
var byName = sync.OnceValue(func() map[string]capability.Cap {
	m := make(map[string]capability.Cap)
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
})

// sets resolves the five sets of c; a nil c yields five empty sets, so a
// process without a capabilities object gets none (as with runc).
type sets struct {
	bounding, effective, inheritable, permitted, ambient []capability.Cap
}

// Validate checks that every name in c is a capability the running kernel
// supports and that effective is a subset of permitted (the kernel refuses
// anything else when Apply runs, later and with a less helpful error). A nil
// c is valid.
func Validate(c *specs.LinuxCapabilities) error {
	s, err := resolve(c)
	if err != nil {
		return err
	}
	for _, e := range s.effective {
		if !slices.Contains(s.permitted, e) {
			return fmt.Errorf("effective capability %s is not in the permitted set", name(e))
		}
	}
	return nil
}

// ApplyBounding drops from the calling thread's bounding set every
// capability that c.Bounding does not list. It needs CAP_SETPCAP in the
// effective set for each capability actually dropped, so call it before
// changing uid.
func ApplyBounding(c *specs.LinuxCapabilities) error {
	s, err := resolve(c)
	if err != nil {
		return err
	}
	return dropBounding(s.bounding)
}

// KeepCaps makes the calling thread keep its permitted set when it changes
// all its uids from 0 to non-zero (PR_SET_KEEPCAPS).
func KeepCaps() error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set keep-caps: %w", err)
	}
	return nil
}

// Apply gives the calling thread exactly the capability sets of c: it drops
// what ApplyBounding drops (nothing more if that already ran), then sets the
// effective, permitted and inheritable sets, then raises the ambient set.
func Apply(c *specs.LinuxCapabilities) error {
	s, err := resolve(c)
	if err != nil {
		return err
	}
	if err := dropBounding(s.bounding); err != nil {
		return err
	}

	caps, err := capability.NewPid2(0)
	if err != nil {
		return fmt.Errorf("capabilities of current thread: %w", err)
	}
	caps.Set(capability.EFFECTIVE, s.effective...)
	caps.Set(capability.PERMITTED, s.permitted...)
	caps.Set(capability.INHERITABLE, s.inheritable...)
	if err := caps.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("set effective, permitted and inheritable capabilities: %w", err)
	}

	// Ambient capabilities are raised one by one (not via caps.Apply) so
	// that a refused one is reported rather than skipped.
	if err := capability.ResetAmbient(); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for _, a := range s.ambient {
		// `runc spec` lists ambient capabilities without inheritable ones,
		// which the kernel cannot raise; runc skips them, and so do we.
		if !raisable(s, a) {
			continue
		}
		if err := capability.SetAmbient(true, a); err != nil {
			return fmt.Errorf("raise ambient capability %s: %w", name(a), err)
		}
	}
	return nil
}

// raisable reports whether the kernel lets ambient capability a be raised.
func raisable(s sets, a capability.Cap) bool {
	return slices.Contains(s.permitted, a) && slices.Contains(s.inheritable, a)
}

// SkippedAmbient lists the ambient capabilities of c that Apply will skip
// because they are not also permitted and inheritable, for a warning.
func SkippedAmbient(c *specs.LinuxCapabilities) []string {
	s, err := resolve(c)
	if err != nil {
		return nil
	}
	var skipped []string
	for _, a := range s.ambient {
		if !raisable(s, a) {
			skipped = append(skipped, name(a))
		}
	}
	return skipped
}

func dropBounding(keep []capability.Cap) error {
	last, err := capability.LastCap()
	if err != nil {
		return err
	}
	for cp := capability.Cap(0); cp <= last; cp++ {
		if slices.Contains(keep, cp) {
			continue
		}
		// Skipping capabilities already gone lets Apply repeat the drop
		// after setuid, when CAP_SETPCAP is no longer effective.
		present, err := capability.GetBound(cp)
		if err != nil {
			return fmt.Errorf("read bounding capability %s: %w", name(cp), err)
		}
		if !present {
			continue
		}
		if err := capability.DropBound(cp); err != nil {
			return fmt.Errorf("drop bounding capability %s: %w", name(cp), err)
		}
	}
	return nil
}

func resolve(c *specs.LinuxCapabilities) (sets, error) {
	var s sets
	if c == nil {
		return s, nil
	}
	last, err := capability.LastCap()
	if err != nil {
		return s, err
	}
	for _, set := range []struct {
		name  string
		names []string
		dst   *[]capability.Cap
	}{
		{"bounding", c.Bounding, &s.bounding},
		{"effective", c.Effective, &s.effective},
		{"inheritable", c.Inheritable, &s.inheritable},
		{"permitted", c.Permitted, &s.permitted},
		{"ambient", c.Ambient, &s.ambient},
	} {
		for _, n := range set.names {
			cp, ok := byName()[n]
			if !ok {
				return s, fmt.Errorf("unknown capability %q in the %s set", n, set.name)
			}
			if cp > last {
				return s, fmt.Errorf("capability %s in the %s set is not supported by the running kernel", n, set.name)
			}
			*set.dst = append(*set.dst, cp)
		}
	}
	return s, nil
}

func name(c capability.Cap) string {
	return "CAP_" + strings.ToUpper(c.String())
}

// Masks are the five sets of a process as bit masks (bit n for capability
// n), as a process outside Go applies them: the ambient set holds only the
// capabilities Apply would raise. Last is the highest capability the
// running kernel knows.
type Masks struct {
	Bounding, Effective, Permitted, Inheritable, Ambient uint64
	Last                                                 int
}

// MasksOf resolves c (nil: every set empty) into Masks.
func MasksOf(c *specs.LinuxCapabilities) (Masks, error) {
	s, err := resolve(c)
	if err != nil {
		return Masks{}, err
	}
	last, err := capability.LastCap()
	if err != nil {
		return Masks{}, err
	}
	mask := func(caps []capability.Cap) uint64 {
		var m uint64
		for _, c := range caps {
			m |= 1 << uint(c)
		}
		return m
	}
	m := Masks{Bounding: mask(s.bounding), Effective: mask(s.effective), Permitted: mask(s.permitted),
		Inheritable: mask(s.inheritable), Last: int(last)}
	for _, a := range s.ambient {
		if raisable(s, a) {
			m.Ambient |= 1 << uint(a)
		}
	}
	return m, nil
}
