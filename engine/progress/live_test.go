package progress

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// screen replays what Live writes with the few sequences it uses (cursor
// N lines up to column 1, erase to the end, dim/plain) and returns the
// lines left on the screen, sequences of style dropped.
func screen(out string) []string {
	var lines []string
	cur := 0
	seq := regexp.MustCompile(`^\x1b\[(\d*)([A-Za-z])`)
	for len(out) > 0 {
		if m := seq.FindStringSubmatch(out); m != nil {
			out = out[len(m[0]):]
			n, _ := strconv.Atoi(m[1])
			switch m[2] {
			case "F":
				cur = max(cur-n, 0)
			case "J":
				lines = lines[:cur]
			}
			continue
		}
		i := strings.IndexAny(out, "\n\x1b")
		if i < 0 {
			i = len(out)
		}
		text := out[:i]
		out = out[i:]
		for cur >= len(lines) {
			lines = append(lines, "")
		}
		lines[cur] += text
		if strings.HasPrefix(out, "\n") {
			out = out[1:]
			cur++
		}
	}
	return lines[:cur]
}

func TestLiveWindow(t *testing.T) {
	var buf bytes.Buffer
	l := newLive(&buf, 2, 10)
	// Output comes in pieces that are not lines.
	for _, p := range []string{"STEP 1/2: RUN make\n", "one\ntw", "o\nthree is a long line\n", "50%\r100%\n"} {
		if _, err := l.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := screen(buf.String()), []string{"STEP 1/2: RUN make", "three is ", "100%"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("while running: %q, want %q (the window's last 2 lines, cut to the width)", got, want)
	}
	if _, err := l.Write([]byte("--> 0123456789ab\n[1/2] STEP 2/2: RUN false\nno\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := screen(buf.String()), []string{"STEP 1/2: RUN make", "--> 0123456789ab", "[1/2] STEP 2/2: RUN false", "no"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("after a step: %q, want %q", got, want)
	}

	failed := buf.String()
	l.Write([]byte("partial"))
	l.Finish(true)
	if got, want := screen(buf.String()), []string{"STEP 1/2: RUN make", "--> 0123456789ab", "[1/2] STEP 2/2: RUN false", "no", "partial"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("a failed build keeps the window: %q, want %q", got, want)
	}
	if !strings.Contains(failed, "\x1b[2m") {
		t.Errorf("the window is not dimmed: %q", failed)
	}

	buf.Reset()
	l = newLive(&buf, 3, 80)
	l.Write([]byte("STEP 1/1: RUN x\nout\n"))
	l.Finish(false)
	if got := screen(buf.String()); strings.Join(got, "|") != "STEP 1/1: RUN x" {
		t.Errorf("a finished build wipes the window: %q", got)
	}
}
