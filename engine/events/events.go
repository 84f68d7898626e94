// Package events is berth's event log, what `docker events` shows: the
// lifecycle commands and the monitor append one JSON line per event to
// <runroot>/events.log, and `berth events` reads it, following it for new
// events as docker's daemon streams them. There is no daemon to keep events
// in memory, so the log is the only record; it lives on the run root (a
// tmpfs), is rotated once it grows past a few megabytes, and is gone after a
// reboot, as docker's are after a daemon restart.
package events

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Types of events.
const (
	TypeContainer = "container"
	TypeImage     = "image"
)

// Files in the run root.
const (
	logName  = "events.log"
	oldName  = "events.log.1" // the log before the last rotation
	lockName = "events.lock"
)

// maxLogSize is the size past which the log is rotated: the current log
// becomes events.log.1 (replacing the one before) and a new one starts.
var maxLogSize int64 = 4 << 20

// Actor is what an event is about: a container's or image's ID and
// attributes (name, image, exitCode, signal...).
type Actor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}

// Event is docker's events.Message, as `docker events --format json` prints
// it, and as each line of the log holds it.
type Event struct {
	// Status, ID and From are docker's older fields, kept for templates
	// written against them.
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`

	Type     string `json:"Type"`
	Action   string `json:"Action"`
	Actor    Actor  `json:"Actor"`
	Scope    string `json:"scope"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
}

// When is the event's time.
func (e *Event) When() time.Time { return time.Unix(0, e.TimeNano) }

// String is docker's text line for the event:
// "2026-11-28T14:00:00.000000000Z container start ID (image=busybox, name=web)".
func (e *Event) String() string {
	var b strings.Builder
	b.WriteString(e.When().Format("2006-01-02T15:04:05.000000000Z07:00"))
	b.WriteString(" " + e.Type + " " + e.Action + " " + e.Actor.ID)
	if len(e.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(e.Actor.Attributes))
		for k := range e.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i == 0 {
				b.WriteString(" (")
			} else {
				b.WriteString(", ")
			}
			b.WriteString(k + "=" + e.Actor.Attributes[k])
		}
		b.WriteString(")")
	}
	return b.String()
}

// Append adds e to the log in runRoot, stamped with the time now. Writers
// take a lock, so lines never interleave and the log is in time order.
func Append(runRoot string, e Event) error {
	if runRoot == "" {
		return errors.New("events: no run root")
	}
	if err := os.MkdirAll(runRoot, 0o700); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(runRoot, lockName), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("events: lock: %w", err)
	}
	path := filepath.Join(runRoot, logName)
	if fi, err := os.Stat(path); err == nil && fi.Size() >= maxLogSize {
		if err := os.Rename(path, filepath.Join(runRoot, oldName)); err != nil {
			return fmt.Errorf("events: rotate: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	defer f.Close()
	now := time.Now()
	e.Time, e.TimeNano = now.Unix(), now.UnixNano()
	if e.Scope == "" {
		e.Scope = "local"
	}
	line, err := json.Marshal(&e)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return nil
}

// StartLatency is the start event's attribute with the seconds from the
// start's request to the container running.
const StartLatency = "startLatency"

// Container logs a container event, as the lifecycle does: attrs are
// key, value pairs beside the image and the name. A failure is only
// logged: no container operation fails for its event.
func Container(runRoot, action, id, image, name string, attrs ...string) {
	a := map[string]string{"image": image, "name": name}
	for i := 0; i+1 < len(attrs); i += 2 {
		a[attrs[i]] = attrs[i+1]
	}
	if sig, ok := a["signal"]; ok {
		a["signal"] = signalNumber(sig)
	}
	e := Event{
		Status: action, ID: id, From: image,
		Type: TypeContainer, Action: action, Actor: Actor{ID: id, Attributes: a},
	}
	if err := Append(runRoot, e); err != nil {
		slog.Warn("event not logged", "type", TypeContainer, "action", action, "id", id, "err", err)
	}
}

// PulledBytes is the pull event's attribute with the size of the layers
// fetched.
const PulledBytes = "bytes"

// Image logs an image event for each of names (one event without a name
// when there are none), as docker logs one untag per tag. A failure is only
// logged.
func Image(runRoot, action, id string, names ...string) {
	ImageAttrs(runRoot, action, id, nil, names...)
}

// ImageAttrs is Image with attributes beside the name.
func ImageAttrs(runRoot, action, id string, attrs map[string]string, names ...string) {
	if len(names) == 0 {
		if action == "untag" {
			return // an image without names has no tag to lose
		}
		names = []string{""}
	}
	for _, n := range names {
		a := maps.Clone(attrs)
		if a == nil {
			a = map[string]string{}
		}
		if n != "" {
			a["name"] = n
		}
		e := Event{Status: action, ID: id, Type: TypeImage, Action: action, Actor: Actor{ID: id, Attributes: a}}
		if err := Append(runRoot, e); err != nil {
			slog.Warn("event not logged", "type", TypeImage, "action", action, "id", id, "err", err)
		}
	}
}

// RunRootOf is the store's run root of a container's run directory
// (<runroot>/<driver>-containers/<id>/userdata), for the monitor, which
// has the container but not the store.
func RunRootOf(containerRunDir string) string {
	return filepath.Dir(filepath.Dir(filepath.Dir(containerRunDir)))
}

// ReadOptions say which events Read passes on.
type ReadOptions struct {
	// Since and Until bound the events' times; zero is no bound. With both
	// zero only events that happen after Read starts are passed, as docker
	// does; with either, the log is read from its start.
	Since, Until time.Time
	// Follow waits for new events at the end of the log, until ctx ends
	// or the time passes Until.
	Follow bool
	// Match, when not nil, picks events.
	Match func(*Event) bool
	// Poll is how often a follower looks for new events (default 100ms).
	Poll time.Duration
	// Ready, when not nil, is called once the log is open where reading
	// starts: an event appended after it returns is not missed.
	Ready func()
}

// Read calls fn for every event of the log in runRoot that o picks, in
// order.
func Read(ctx context.Context, runRoot string, o ReadOptions, fn func(*Event) error) error {
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	r := &reader{o: o, fn: fn}
	path := filepath.Join(runRoot, logName)
	onlyNew := o.Since.IsZero() && o.Until.IsZero()
	if !onlyNew {
		// The rotated log first, if it still holds events we want.
		if f, err := os.Open(filepath.Join(runRoot, oldName)); err == nil {
			stop, err := r.drain(f)
			f.Close()
			if err != nil || stop {
				return err
			}
			r.partial = nil
		}
	}
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f = nil
	case err != nil:
		return fmt.Errorf("events: %w", err)
	case onlyNew:
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return fmt.Errorf("events: %w", err)
		}
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	if o.Ready != nil {
		o.Ready()
	}
	for {
		if f != nil {
			stop, err := r.drain(f)
			if err != nil || stop {
				return err
			}
		}
		if !o.Follow || (!o.Until.IsZero() && time.Now().After(o.Until)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Poll):
		}
		// A rotated log: finish the old file, then go on with the new one
		// from its start.
		next, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("events: %w", err)
		}
		if f != nil && sameFile(f, next) {
			next.Close()
			continue
		}
		if f != nil {
			stop, err := r.drain(f)
			f.Close()
			if err != nil || stop {
				next.Close()
				f = nil
				return err
			}
		}
		f, r.partial = next, nil
	}
}

func sameFile(a, b *os.File) bool {
	ai, err1 := a.Stat()
	bi, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(ai, bi)
}

type reader struct {
	o       ReadOptions
	fn      func(*Event) error
	partial []byte // a line read before its end was written
}

// drain passes on the events of f up to its end; stop says an event past
// Until was seen (the log is in time order, so none after it can match).
func (r *reader) drain(f *os.File) (stop bool, err error) {
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		chunk, err := br.ReadBytes('\n')
		r.partial = append(r.partial, chunk...)
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("events: %w", err)
		}
		line := bytes.TrimSpace(r.partial)
		r.partial = r.partial[:0]
		if len(line) == 0 {
			continue
		}
		var e Event
		if json.Unmarshal(line, &e) != nil {
			continue // a line cut short by a crash
		}
		t := e.When()
		if !r.o.Since.IsZero() && t.Before(r.o.Since) {
			continue
		}
		if !r.o.Until.IsZero() && t.After(r.o.Until) {
			return true, nil
		}
		if r.o.Match != nil && !r.o.Match(&e) {
			continue
		}
		if err := r.fn(&e); err != nil {
			return true, err
		}
	}
}

// signalNumber is a signal as docker shows it in events: its number.
func signalNumber(s string) string {
	if _, err := strconv.Atoi(s); err == nil {
		return s
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if n := unix.SignalNum(name); n != 0 {
		return strconv.Itoa(int(n))
	}
	return s
}
