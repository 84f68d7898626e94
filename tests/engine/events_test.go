package engine

import (
	"bufio"
	"encoding/json"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// eventsUntil polls `berth events` (up to now, so it returns) until its
// output has a line containing want, for at most 10 s.
func eventsUntil(t *testing.T, e *engine, want string, args ...string) string {
	t.Helper()
	var out string
	for i := 0; i < 100; i++ {
		now := strconv.FormatFloat(float64(time.Now().UnixNano())/1e9, 'f', 9, 64)
		out = e.ok(append([]string{"events", "--until", now}, args...)...)
		if strings.Contains(out, want) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("berth events %s: no %q in\n%s", strings.Join(args, " "), want, out)
	return ""
}

func unixArg(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 9, 64)
}

func TestEvents(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	start := time.Now()
	time.Sleep(10 * time.Millisecond)

	// run --rm: create, start, die with the exit code, destroy, in order.
	if r := e.run(nil, "run", "--rm", "--name", "ev", "busybox", "sh", "-c", "exit 3"); r.Code != 3 {
		t.Fatalf("run: %+v", r)
	}
	out := eventsUntil(t, e, "destroy", "--since", unixArg(start), "--filter", "container=ev",
		"--format", `{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes "exitCode"}}`)
	if want := "container create ev \ncontainer start ev \ncontainer die ev 3\ncontainer destroy ev \n"; out != want {
		t.Errorf("events of run --rm:\n%s\nwant:\n%s", out, want)
	}
	// Docker's text line.
	text := e.ok("events", "--since", unixArg(start), "--until", unixArg(time.Now()), "--filter", "event=create")
	line := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) container create [0-9a-f]{64} \(image=busybox, name=ev\)\n$`)
	if !line.MatchString(text) {
		t.Errorf("text format: %q", text)
	}
	// JSON, as docker's events.Message.
	var m struct {
		Status, ID, From, Type, Action string
		Actor                          struct {
			ID         string
			Attributes map[string]string
		}
		Time     int64 `json:"time"`
		TimeNano int64 `json:"timeNano"`
	}
	js := e.ok("events", "--since", unixArg(start), "--until", unixArg(time.Now()), "--filter", "event=die", "--format", "json")
	if err := json.Unmarshal([]byte(js), &m); err != nil || m.Type != "container" || m.Action != "die" || m.Status != "die" ||
		len(m.Actor.ID) != 64 || m.Actor.Attributes["exitCode"] != "3" || m.From != "busybox" || m.TimeNano/1e9 != m.Time || m.TimeNano < start.UnixNano() {
		t.Errorf("json: %v %+v\n%s", err, m, js)
	}

	// kill: kill (with the signal's number), die 137; rm: destroy.
	mid := time.Now()
	e.ok("run", "-d", "--name", "k", "busybox", "sleep", "1000")
	e.ok("kill", "k")
	e.ok("wait", "k")
	e.ok("rm", "k")
	out = eventsUntil(t, e, "destroy", "--since", unixArg(mid), "--filter", "container=k", "--format", `{{.Action}} {{index .Actor.Attributes "signal"}}{{index .Actor.Attributes "exitCode"}}`)
	if want := "create \nstart \nkill 9\ndie 137\ndestroy \n"; out != want {
		t.Errorf("events of kill and rm:\n%s\nwant:\n%s", out, want)
	}

	// Image events, and the type filter.
	e.ok("tag", "busybox", "evtag:1")
	e.ok("rmi", "evtag:1")
	out = eventsUntil(t, e, "untag", "--since", unixArg(mid), "--filter", "type=image", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	if want := "image tag localhost/evtag:1\nimage untag localhost/evtag:1\n"; out != want && out != "image tag docker.io/library/evtag:1\nimage untag docker.io/library/evtag:1\n" {
		t.Errorf("image events:\n%s", out)
	}
	// Filters of one key are alternatives, of different keys all apply.
	out = e.ok("events", "--since", unixArg(start), "--until", unixArg(time.Now()), "--filter", "event=create", "--filter", "event=destroy",
		"--filter", "container=ev", "--format", "{{.Action}}")
	if out != "create\ndestroy\n" {
		t.Errorf("event=create|destroy, container=ev: %q", out)
	}
	if out := e.ok("events", "--since", unixArg(start), "--until", unixArg(time.Now()), "--filter", "image=busybox", "--filter", "event=start", "--format", "{{.Actor.Attributes.name}}"); out != "ev\nk\n" {
		t.Errorf("image=busybox event=start: %q", out)
	}
	// --since and --until bound the times.
	if out := e.ok("events", "--since", unixArg(start), "--until", unixArg(mid), "--format", "{{.Actor.Attributes.name}}"); strings.Contains(out, "k\n") || !strings.Contains(out, "ev\n") {
		t.Errorf("--until before k: %q", out)
	}
	if out := e.ok("events", "--since", unixArg(mid), "--until", unixArg(time.Now()), "--format", "{{.Actor.Attributes.name}}"); strings.Contains(out, "ev\n") || !strings.Contains(out, "k\n") {
		t.Errorf("--since after ev: %q", out)
	}
	if out := e.ok("events", "--since", "1h", "--until", unixArg(start), "--format", "{{.Action}}"); out != "" {
		t.Errorf("events before the first: %q", out)
	}
	// An --until ahead: events until then, then the command ends by itself.
	began := time.Now()
	until := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	if out := e.ok("events", "--since", unixArg(start), "--until", until, "--filter", "event=die", "--format", "{{.Action}}"); out != "die\ndie\n" {
		t.Errorf("--until ahead: %q", out)
	}
	if d := time.Since(began); d < time.Second || d > 10*time.Second {
		t.Errorf("--until 1.5 s ahead returned after %v", d)
	}

	e.fail("invalid filter", "events", "--filter", "bogus=1")
	e.fail("invalid filter", "events", "--filter", "type=volume-ish")
	e.fail("invalid time", "events", "--since", "yesterday-ish")
	e.fail("is before --since", "events", "--since", "1m", "--until", "2h")
}

func TestEventsFollow(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	// Without --since and --until: only new events, as they happen.
	e.ok("tag", "busybox", "before:1")
	cmd := e.cmd("events", "--filter", "type=image", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The follower may start reading after a first tag: tag until it shows one.
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	var got []string
	for seen := false; !seen; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("events ended: %q", got)
			}
			got = append(got, l)
			if strings.HasPrefix(l, "tag ") && strings.Contains(l, "after:1") {
				seen = true
			}
		case <-tick.C:
			e.ok("tag", "busybox", "after:1")
		case <-deadline:
			t.Fatalf("the follower printed no new event: %q", got)
		}
	}
	for _, l := range got {
		if strings.Contains(l, "before:1") {
			t.Errorf("a follower without --since printed a past event: %q", l)
		}
	}
	// A container's life reaches a follower with --since too.
	since := unixArg(time.Now())
	f := e.cmd("events", "--since", since, "--filter", "container=fol", "--format", "{{.Action}}")
	out, err := f.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		f.Process.Kill()
		f.Wait()
	}()
	if r := e.run(nil, "run", "--rm", "--name", "fol", "busybox", "true"); r.Code != 0 {
		t.Fatalf("run: %+v", r)
	}
	done := make(chan string, 1)
	go func() {
		var all []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			all = append(all, sc.Text())
			if sc.Text() == "destroy" {
				break
			}
		}
		done <- strings.Join(all, " ")
		io.Copy(io.Discard, out)
	}()
	select {
	case s := <-done:
		if s != "create start die destroy" {
			t.Errorf("followed: %q", s)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the follower printed no destroy")
	}
}
