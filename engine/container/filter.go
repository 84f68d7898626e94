package container

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/image"
)

// ParseFilters turns docker's `ps --filter key=value` list into a
// predicate: id, name, status, label, ancestor, exited, health, since,
// before, network. As docker: filters
// with the same key are alternatives, but every label filter must match;
// different keys must all match.
func ParseFilters(s storage.Store, filters []string) (func(*Container) bool, error) {
	byKey := map[string][]func(*Container) bool{}
	for _, f := range filters {
		key, value, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("invalid filter %q: want key=value", f)
		}
		var p func(*Container) bool
		switch key {
		case "id":
			p = func(c *Container) bool { return strings.HasPrefix(c.ID, value) }
		case "name":
			// A regular expression, as docker's, matched with and without
			// the "/" docker shows names with.
			re, err := regexp.Compile(value)
			if err != nil {
				return nil, fmt.Errorf("invalid filter %q: %w", f, err)
			}
			p = func(c *Container) bool { return re.MatchString(c.Name) || re.MatchString("/"+c.Name) }
		case "status":
			p = func(c *Container) bool { return c.Status == value }
		case "label":
			p = func(c *Container) bool { return hasLabel(c.Labels, value) }
		case "ancestor":
			img, err := image.Lookup(s, value)
			if err != nil {
				return nil, fmt.Errorf("invalid filter %q: %w", f, err)
			}
			p = func(c *Container) bool { return c.ImageID == img.ID }
		case "health":
			switch value {
			case HealthStarting, HealthHealthy, HealthUnhealthy, HealthUnknown, "none":
			default:
				return nil, fmt.Errorf("invalid filter %q: health is starting, healthy, unhealthy, unknown or none", f)
			}
			p = func(c *Container) bool { return c.HealthStatus() == value }
		case "since", "before":
			// Docker's: created after (or before) the container named.
			ref, err := Lookup(s, value)
			if err != nil {
				return nil, fmt.Errorf("invalid filter %q: %w", f, err)
			}
			if key == "since" {
				p = func(c *Container) bool { return c.Created.After(ref.Created) }
			} else {
				p = func(c *Container) bool { return c.Created.Before(ref.Created) }
			}
		case "network":
			p = func(c *Container) bool { return slices.Contains(c.NetworkNames(), value) }
		case "exited":
			code, err := strconv.Atoi(value)
			if err != nil {
				return nil, fmt.Errorf("invalid filter %q: exited takes a number", f)
			}
			p = func(c *Container) bool { return c.Status == Exited && c.ExitCode == code }
		default:
			return nil, fmt.Errorf("invalid filter %q: unknown key %q", f, key)
		}
		if key == "label" {
			key = "label " + value // each its own key: all must match
		}
		byKey[key] = append(byKey[key], p)
	}
	return func(c *Container) bool {
		for _, alternatives := range byKey {
			ok := false
			for _, p := range alternatives {
				ok = ok || p(c)
			}
			if !ok {
				return false
			}
		}
		return true
	}, nil
}

// ListOptions are docker ps's selection.
type ListOptions struct {
	// All lists stopped containers too.
	All     bool
	Filters []string
	// Last, when above 0, lists the Last containers made, in any state
	// (docker ps -n, the API's limit).
	Last int
}

// Select lists the containers docker ps shows, newest first, with their
// status refreshed: running and paused ones unless All (or a status
// filter) asks for others, and only those every filter matches.
func Select(ctx context.Context, s storage.Store, o ListOptions) ([]*Container, error) {
	match, err := ParseFilters(s, o.Filters)
	if err != nil {
		return nil, err
	}
	all := o.All || o.Last > 0
	for _, f := range o.Filters {
		if strings.HasPrefix(f, "status=") {
			all = true
		}
	}
	list, err := List(s)
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, c := range list {
		if err := reconcile(ctx, s, c); err != nil {
			return nil, err
		}
		if !all && c.Status != Running && c.Status != Paused {
			continue
		}
		if match(c) {
			out = append(out, c)
		}
		if o.Last > 0 && len(out) == o.Last {
			break
		}
	}
	return out, nil
}

// hasLabel tells whether labels hold K (any value) or K=V.
func hasLabel(labels map[string]string, kv string) bool {
	k, v, hasValue := strings.Cut(kv, "=")
	got, ok := labels[k]
	return ok && (!hasValue || got == v)
}
