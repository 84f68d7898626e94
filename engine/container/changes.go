package container

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/events"
)

// Change is a path that differs between a container's writable layer and
// its image, as `docker diff` reports it.
type Change struct {
	Path string
	// Kind is docker's: 0 changed, 1 added, 2 deleted.
	Kind int
}

// Letter is `docker diff`'s mark for the kind: C, A or D.
func (c Change) Letter() string { return [...]string{"C", "A", "D"}[c.Kind] }

// Changes lists what c changed in its root file system.
func Changes(s storage.Store, c *Container) ([]Change, error) {
	list, err := s.Changes("", c.LayerID)
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", c.Name, err)
	}
	out := make([]Change, len(list))
	for i, ch := range list {
		out[i] = Change{Path: ch.Path, Kind: int(ch.Kind)}
	}
	return out, nil
}

// Prune removes the containers that are not running (exited or created),
// returning their IDs and the bytes their layers held. It goes on past a
// container it cannot remove and reports the errors together.
func Prune(ctx context.Context, s storage.Store, match func(*Container) bool) (ids []string, freed int64, err error) {
	all, err := List(s)
	if err != nil {
		return nil, 0, err
	}
	var errs []error
	for _, c := range all {
		// Refresh also cleans up after a monitor that was killed.
		if err := Refresh(ctx, s, c); err != nil {
			errs = append(errs, err)
			continue
		}
		if c.Status != Exited && c.Status != Created || c.Restarting || match != nil && !match(c) {
			continue
		}
		size, _ := s.ContainerSize(c.ID) // only reported
		if err := Remove(ctx, s, c, false); err != nil {
			errs = append(errs, err)
			continue
		}
		ids = append(ids, c.ID)
		freed += max(size, 0)
	}
	return ids, freed, errors.Join(errs...)
}

// PruneFilters reads docker's prune filters: until (made before a time or
// a duration ago), label=K[=V] and label!=K[=V]; every one must match.
func PruneFilters(filters []string, now time.Time) (func(*Container) bool, error) {
	var preds []func(*Container) bool
	for _, f := range filters {
		key, value, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("invalid filter %q: want key=value", f)
		}
		switch key {
		case "until":
			t, err := events.ParseTime(value, now)
			if err != nil {
				return nil, fmt.Errorf("invalid filter %q: %w", f, err)
			}
			preds = append(preds, func(c *Container) bool { return c.Created.Before(t) })
		case "label", "label!":
			want := key == "label"
			preds = append(preds, func(c *Container) bool { return hasLabel(c.Labels, value) == want })
		default:
			return nil, fmt.Errorf("invalid filter %q: prune takes until, label and label!", f)
		}
	}
	return func(c *Container) bool {
		for _, p := range preds {
			if !p(c) {
				return false
			}
		}
		return true
	}, nil
}
