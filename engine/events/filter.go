package events

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseFilters turns docker's `events --filter key=value` list into a
// predicate. Keys: type (container, image), event (the action), container
// (name or ID prefix), image (a container's image, or an image's ID or
// name), label (key or key=value among the attributes). Filters with the
// same key are alternatives; different keys must all match.
func ParseFilters(filters []string) (func(*Event) bool, error) {
	byKey := map[string][]func(*Event) bool{}
	for _, f := range filters {
		key, value, ok := strings.Cut(f, "=")
		if !ok || value == "" {
			return nil, fmt.Errorf("invalid filter %q: want key=value", f)
		}
		var p func(*Event) bool
		switch key {
		case "type":
			if value != TypeContainer && value != TypeImage {
				return nil, fmt.Errorf("invalid filter %q: type is container or image", f)
			}
			p = func(e *Event) bool { return e.Type == value }
		case "event", "status":
			p = func(e *Event) bool {
				action, _, _ := strings.Cut(e.Action, ":")
				return e.Action == value || action == value
			}
		case "container":
			p = func(e *Event) bool {
				return e.Type == TypeContainer &&
					(e.Actor.Attributes["name"] == strings.TrimPrefix(value, "/") || strings.HasPrefix(e.Actor.ID, value))
			}
		case "image":
			want := normalImage(value)
			p = func(e *Event) bool {
				switch e.Type {
				case TypeContainer:
					return normalImage(e.Actor.Attributes["image"]) == want
				case TypeImage:
					id := strings.TrimPrefix(e.Actor.ID, "sha256:")
					v := strings.TrimPrefix(value, "sha256:")
					return normalImage(e.Actor.ID) == want || normalImage(e.Actor.Attributes["name"]) == want ||
						(len(v) >= 3 && strings.HasPrefix(id, v))
				}
				return false
			}
		case "label":
			k, v, hasValue := strings.Cut(value, "=")
			p = func(e *Event) bool {
				got, ok := e.Actor.Attributes[k]
				return ok && (!hasValue || got == v)
			}
		default:
			return nil, fmt.Errorf("invalid filter %q: unknown key %q (want type, event, container, image or label)", f, key)
		}
		byKey[key] = append(byKey[key], p)
	}
	return func(e *Event) bool {
		for _, alternatives := range byKey {
			ok := false
			for _, p := range alternatives {
				if p(e) {
					ok = true
					break
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}, nil
}

// normalImage drops what docker fills in, so that "busybox",
// "busybox:latest", "docker.io/library/busybox:latest" and
// "localhost/busybox:latest" are one name.
func normalImage(n string) string {
	for _, p := range []string{"docker.io/library/", "docker.io/", "localhost/"} {
		n = strings.TrimPrefix(n, p)
	}
	if i := strings.LastIndex(n, ":"); i <= strings.LastIndex(n, "/") && !strings.Contains(n, "@") {
		n += ":latest"
	}
	return n
}

// ParseTime reads a --since or --until value as docker does: a duration
// before now ("10m", "1h30m"), a Unix time in seconds with an optional
// fraction ("1700000000.5"), or an RFC 3339 date and time, complete or
// shortened ("2026-11-28T14:00:00Z", "2026-11-28T14:00", "2026-11-28"; the
// local time zone when none is given).
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "eE") {
		sec, frac := math.Modf(f)
		// The fraction from the text, not the float: nanoseconds survive.
		nsec := int64(math.Round(frac * 1e9))
		if _, fs, ok := strings.Cut(s, "."); ok {
			fs = (fs + "000000000")[:9]
			if n, err := strconv.ParseInt(fs, 10, 64); err == nil {
				nsec = n
			}
		}
		return time.Unix(int64(sec), nsec), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04Z07:00", "2006-01-02Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q: want a duration (10m), a Unix time or an RFC 3339 date", s)
}
