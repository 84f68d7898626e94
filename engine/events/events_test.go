package events

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, dir string, o ReadOptions) []string {
	t.Helper()
	var got []string
	err := Read(context.Background(), dir, o, func(e *Event) error {
		got = append(got, e.Action+" "+e.Actor.Attributes["name"])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestAppendRead(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	Container(dir, "create", "abc", "busybox", "web")
	Container(dir, "kill", "abc", "busybox", "web", "signal", "SIGTERM")
	mid := time.Now()
	Image(dir, "untag", "sha256:1") // no names: nothing
	Image(dir, "tag", "sha256:1", "a:1", "b:1")
	got := readAll(t, dir, ReadOptions{Since: start})
	if strings.Join(got, "|") != "create web|kill web|tag a:1|tag b:1" {
		t.Errorf("read: %q", got)
	}
	if got := readAll(t, dir, ReadOptions{Since: start, Until: mid}); len(got) != 2 {
		t.Errorf("until: %q", got)
	}
	if got := readAll(t, dir, ReadOptions{Since: mid}); len(got) != 2 {
		t.Errorf("since: %q", got)
	}
	// Without bounds only new events: none without Follow.
	if got := readAll(t, dir, ReadOptions{}); len(got) != 0 {
		t.Errorf("no bounds, no follow: %q", got)
	}
	match, err := ParseFilters([]string{"type=container", "event=kill"})
	if err != nil {
		t.Fatal(err)
	}
	var sig string
	_ = Read(context.Background(), dir, ReadOptions{Since: start, Match: match}, func(e *Event) error {
		sig = e.Actor.Attributes["signal"]
		return nil
	})
	if sig != "15" {
		t.Errorf("kill's signal: %q", sig)
	}
}

func TestFollowRotation(t *testing.T) {
	dir := t.TempDir()
	old := maxLogSize
	maxLogSize = 1200 // a few events a file
	defer func() { maxLogSize = old }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan string, 100)
	go func() {
		_ = Read(ctx, dir, ReadOptions{Follow: true, Poll: 2 * time.Millisecond}, func(e *Event) error {
			got <- e.Actor.ID
			return nil
		})
		close(got)
	}()
	time.Sleep(50 * time.Millisecond) // the follower is at the end (no log yet)
	for i := 0; i < 20; i++ {
		Container(dir, "start", string(rune('a'+i)), "img", "n")
		time.Sleep(10 * time.Millisecond)
	}
	var ids []string
	for len(ids) < 20 {
		select {
		case id := <-got:
			ids = append(ids, id)
		case <-ctx.Done():
			t.Fatalf("followed %d events: %q", len(ids), ids)
		}
	}
	if strings.Join(ids, "") != "abcdefghijklmnopqrst" {
		t.Errorf("followed across rotations: %q", ids)
	}
	if _, err := os.Stat(filepath.Join(dir, oldName)); err != nil {
		t.Errorf("no rotation: %v", err)
	}
	cancel()
}

func TestPartialLine(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	Container(dir, "create", "x", "img", "n")
	f, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"Type":"container","Action":"cut`) // a writer killed mid-line
	f.Close()
	if got := readAll(t, dir, ReadOptions{Since: start}); len(got) != 1 {
		t.Errorf("with a cut line: %q", got)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 28, 14, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"10m":                            now.Add(-10 * time.Minute),
		"1795874400":                     time.Unix(1795874400, 0),
		"1795874400.000000123":           time.Unix(1795874400, 123),
		"2026-11-28T14:00:00Z":           now,
		"2026-11-28T15:00:00+01:00":      now,
		"2026-11-28T14:00:00.5Z":         now.Add(500 * time.Millisecond),
		"2026-11-28T14:00:00.123456789Z": now.Add(123456789),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if got, err := ParseTime("2026-11-28", now); err != nil || got.Year() != 2026 || got.Day() != 28 {
		t.Errorf("date only: %v %v", got, err)
	}
	for _, bad := range []string{"yesterday", "2026-13-45", "1e9"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q) did not fail", bad)
		}
	}
}

func TestFilters(t *testing.T) {
	ev := func(typ, action, id string, attrs map[string]string) *Event {
		return &Event{Type: typ, Action: action, Actor: Actor{ID: id, Attributes: attrs}}
	}
	ctr := ev(TypeContainer, "exec_start: sh", "abcdef", map[string]string{"name": "web", "image": "busybox", "team": "a"})
	img := ev(TypeImage, "tag", "sha256:0123456789", map[string]string{"name": "localhost/busybox:latest"})
	for _, tc := range []struct {
		filters  []string
		ctr, img bool
	}{
		{nil, true, true},
		{[]string{"type=image"}, false, true},
		{[]string{"event=exec_start"}, true, false},
		{[]string{"event=tag", "event=exec_start"}, true, true},
		{[]string{"container=web"}, true, false},
		{[]string{"container=abc"}, true, false},
		{[]string{"image=busybox"}, true, true},
		{[]string{"image=docker.io/library/busybox:latest"}, true, true},
		{[]string{"image=sha256:0123"}, false, true},
		{[]string{"label=team=a"}, true, false},
		{[]string{"label=team", "type=image"}, false, false},
	} {
		m, err := ParseFilters(tc.filters)
		if err != nil {
			t.Fatal(err)
		}
		if m(ctr) != tc.ctr || m(img) != tc.img {
			t.Errorf("%v: container %v image %v", tc.filters, m(ctr), m(img))
		}
	}
	for _, bad := range [][]string{{"nokey"}, {"bogus=1"}, {"type=volume"}, {"event="}} {
		if _, err := ParseFilters(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
