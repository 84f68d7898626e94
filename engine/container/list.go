package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/docker/go-units"
	"go.podman.io/storage"
	"golang.org/x/sync/errgroup"
)

// List returns berth's containers, newest first. Storage containers
// without berth's record are skipped: being created, made by other tools,
// or left by a berth killed during create, which are removed here.
func List(s storage.Store) ([]*Container, error) {
	scs, err := s.Containers()
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	// Loading is system calls, two files per container: done on every CPU.
	loaded := make([]*Container, len(scs))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range scs {
		g.Go(func() error {
			c, err := load(s, &scs[i])
			if errors.Is(err, fs.ErrNotExist) {
				if abandoned(scs[i].Metadata) {
					_, _ = s.Unmount(scs[i].ID, true)
					_ = s.DeleteContainer(scs[i].ID)
				}
				return nil
			}
			loaded[i] = c
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]*Container, 0, len(scs))
	for _, c := range loaded {
		if c != nil {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Lookup finds a container by name, ID or unique ID prefix.
func Lookup(s storage.Store, ref string) (*Container, error) {
	ref = strings.TrimPrefix(ref, "/") // docker shows names as "/name"
	if sc, err := s.Container(ref); err == nil {
		c, err := load(s, sc)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
		}
		return c, err
	}
	all, err := List(s)
	if err != nil {
		return nil, err
	}
	var found *Container
	for _, c := range all {
		if strings.HasPrefix(c.ID, ref) {
			if found != nil {
				return nil, fmt.Errorf("container ID prefix %q is ambiguous", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	return found, nil
}

// Find looks a container up and makes its state truthful (Refresh), as
// every command that reports or acts on its status needs.
func Find(ctx context.Context, s storage.Store, ref string) (*Container, error) {
	c, err := Lookup(s, ref)
	if err != nil {
		return nil, err
	}
	if err := Refresh(ctx, s, c); err != nil {
		return nil, err
	}
	return c, nil
}

// healthText is what docker's STATUS says of the health.
func (c *Container) healthText() string {
	switch s := c.HealthStatus(); s {
	case "none":
		return ""
	case HealthStarting, HealthUnknown:
		return " (health: " + s + ")"
	default:
		return " (" + s + ")"
	}
}

// HealthStatus is the health as ps --filter health= names it: none
// without a health check.
func (c *Container) HealthStatus() string {
	if c.Healthcheck == nil || c.Health == nil {
		return "none"
	}
	return c.Health.Status
}

// StatusText is docker's STATUS column: "Up 5 minutes", "Exited (0) 2
// seconds ago".
func (c *Container) StatusText() string {
	switch c.Status {
	case Running:
		return "Up " + units.HumanDuration(time.Since(c.StartedAt)) + c.healthText()
	case Paused:
		return "Up " + units.HumanDuration(time.Since(c.StartedAt)) + " (Paused)"
	case Exited:
		return fmt.Sprintf("Exited (%d) %s ago", c.ExitCode, units.HumanDuration(time.Since(c.FinishedAt)))
	}
	return "Created"
}
