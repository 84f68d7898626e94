// Package progress draws layer transfers: a bar per layer on a terminal
// (mpb), one line per finished layer otherwise.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/image"
)

// Reporter is an image.Progress that must be waited for before more output.
type Reporter interface {
	image.Progress
	Wait()
}

// New returns bars when w is a terminal and plain lines otherwise (also on
// a terminal of no width, such as a pty nobody sized, where mpb draws nothing).
func New(w io.Writer) Reporter {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			return &bars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(50*time.Millisecond))}
		}
	}
	return &lines{w: w}
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

type bars struct{ p *mpb.Progress }

func (b *bars) Wait() { b.p.Wait() }

func (b *bars) Layer(digest string, size int64) image.LayerProgress {
	if size < 0 {
		size = 0
	}
	bar := b.p.AddBar(size,
		mpb.PrependDecorators(decor.Name("Copying blob "+shortDigest(digest)+" ")),
		mpb.AppendDecorators(decor.OnComplete(decor.CountersKibiByte("% .1f / % .1f"), "done")),
	)
	return &barLayer{bar: bar}
}

type barLayer struct{ bar *mpb.Bar }

func (l *barLayer) Reader(r io.Reader) io.Reader {
	if pr, err := l.bar.ProxyReader(r); err == nil {
		return pr
	}
	return r
}

func (l *barLayer) Done(status string) {
	if status == "failed" {
		l.bar.Abort(false)
		return
	}
	l.bar.SetTotal(-1, true)
	// mpb draws on its next tick; a layer done before the first tick would
	// never be drawn if the pull ended first.
	l.bar.Wait()
}

type lines struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lines) Wait() {}

func (l *lines) Layer(digest string, _ int64) image.LayerProgress {
	return &lineLayer{lines: l, digest: shortDigest(digest)}
}

type lineLayer struct {
	*lines
	digest string
}

func (l *lineLayer) Reader(r io.Reader) io.Reader { return r }

func (l *lineLayer) Done(status string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s: %s\n", l.digest, status)
}
