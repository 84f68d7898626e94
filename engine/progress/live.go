package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Live shows a build's lines compactly on a terminal: the step lines stay,
// and what the running steps print is a window of its last lines, redrawn
// in place (dimmed) and wiped when a step ends. A failed build keeps the
// window, the output that tells why.
type Live struct {
	mu      sync.Mutex
	w       io.Writer
	size    int // lines in the window
	width   int // columns; longer lines are cut so none wraps
	window  []string
	partial []byte
	drawn   int // window lines on the screen now
}

// stepLine matches what berth build says of its steps (kept), as opposed
// to what RUN steps print (windowed).
var stepLine = regexp.MustCompile(`^(\[\d+/\d+\] )?(STEP \d+/\d+: |--> |COMMIT|Successfully tagged )`)

// NewLive returns a live view on w when w is a terminal with a width,
// else nil.
func NewLive(w io.Writer) *Live {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return nil
	}
	return newLive(w, 6, int(ws.Col))
}

func newLive(w io.Writer, size, width int) *Live {
	return &Live{w: w, size: size, width: width}
}

// Write takes the build's output, whole lines or not.
func (l *Live) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	var out bytes.Buffer
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		// A line redrawn with \r (a download's progress) shows its last state.
		if j := strings.LastIndexByte(strings.TrimRight(line, "\r"), '\r'); j >= 0 {
			line = line[j+1:]
		}
		l.line(&out, strings.TrimRight(line, "\r"))
	}
	if _, err := l.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (l *Live) line(out *bytes.Buffer, line string) {
	if !stepLine.MatchString(line) {
		l.window = append(l.window, line)
		if len(l.window) > l.size {
			l.window = l.window[len(l.window)-l.size:]
		}
		l.erase(out)
		l.draw(out)
		return
	}
	l.erase(out)
	fmt.Fprintf(out, "%s\n", line)
	if strings.Contains(line, "--> ") {
		l.window = nil // the step ended
	}
	l.draw(out)
}

func (l *Live) erase(out *bytes.Buffer) {
	if l.drawn > 0 {
		fmt.Fprintf(out, "\x1b[%dF\x1b[J", l.drawn)
		l.drawn = 0
	}
}

func (l *Live) draw(out *bytes.Buffer) {
	for _, s := range l.window {
		fmt.Fprintf(out, "\x1b[2m%s\x1b[0m\n", cut(s, l.width-1))
	}
	l.drawn = len(l.window)
}

// cut shortens s to n runes at most.
func cut(s string, n int) string {
	r := []rune(s)
	if n < 1 || len(r) <= n {
		return s
	}
	return string(r[:n])
}

// Finish ends the view: a failed build's window (and a last line without
// its newline) is written out plainly; a successful one's is wiped.
func (l *Live) Finish(failed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out bytes.Buffer
	l.erase(&out)
	if failed {
		if len(l.partial) > 0 {
			l.window = append(l.window, string(l.partial))
		}
		for _, s := range l.window {
			fmt.Fprintf(&out, "%s\n", s)
		}
	}
	l.window, l.partial = nil, nil
	_, _ = l.w.Write(out.Bytes())
}
