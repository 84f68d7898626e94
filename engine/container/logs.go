package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"

	"go.podman.io/storage"
)

// LogWriter writes a container's output in the k8s-file format (podman's:
// "TIME STREAM F|P TEXT", P for a line cut short) or json-file (docker's:
// {"log":..,"stream":..,"time":..}), rotating by size.
type LogWriter struct {
	mu   sync.Mutex
	path string
	cfg  LogConfig
	f    *os.File
	size int64
}

// OpenLog opens (appending to) the log file at path.
func OpenLog(path string, cfg LogConfig) (*LogWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log: %w", err)
	}
	return &LogWriter{path: path, cfg: cfg, f: f, size: st.Size()}, nil
}

// Close closes the file.
func (l *LogWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// Write logs p from stream ("stdout" or "stderr"), a line per entry. A
// file is rotated before the line that would take it over MaxSize.
func (l *LogWriter) Write(stream string, p []byte) error {
	now := time.Now().UTC()
	var buf bytes.Buffer
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(p) > 0 {
		line := p
		partial := true
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, partial = p[:i+1], false
		}
		p = p[len(line):]
		buf.Reset()
		buf.Write(AppendLogEntry(buf.AvailableBuffer(), l.cfg.Driver, now, stream, partial, line))
		if l.cfg.MaxSize > 0 && l.size > 0 && l.size+int64(buf.Len()) > l.cfg.MaxSize {
			if err := l.rotate(); err != nil {
				return err
			}
		}
		n, err := l.f.Write(buf.Bytes())
		l.size += int64(n)
		if err != nil {
			return err
		}
	}
	return nil
}

// AppendLogEntry appends one line of a log file: line (with its newline
// unless partial) from stream at t. The monitor's C loop writes the same
// bytes (engine/monitor/loop).
func AppendLogEntry(dst []byte, driver string, t time.Time, stream string, partial bool, line []byte) []byte {
	if driver == "json-file" {
		b, _ := json.Marshal(struct {
			Log    string    `json:"log"`
			Stream string    `json:"stream"`
			Time   time.Time `json:"time"`
		}{string(line), stream, t})
		return append(append(dst, b...), '\n')
	}
	flag := " F "
	if partial {
		flag = " P "
	}
	dst = append(t.AppendFormat(dst, time.RFC3339Nano), ' ')
	dst = append(append(append(dst, stream...), flag...), bytes.TrimSuffix(line, []byte("\n"))...)
	return append(dst, '\n')
}

// rotate keeps MaxFiles files in all: path.1 is the newest old one.
func (l *LogWriter) rotate() error {
	if err := l.f.Close(); err != nil {
		return err
	}
	keep := max(l.cfg.MaxFiles, 1) - 1
	if keep == 0 {
		_ = os.Remove(l.path)
	}
	for i := keep; i >= 1; i-- {
		src := l.path
		if i > 1 {
			src = l.path + "." + strconv.Itoa(i-1)
		}
		_ = os.Rename(src, l.path+"."+strconv.Itoa(i))
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	l.f, l.size = f, 0
	return nil
}

// LogEntry is one logged line (or part of one).
type LogEntry struct {
	Time    time.Time
	Stream  string
	Partial bool
	Text    []byte // with its newline unless Partial
}

// ParseLogLine decodes one line of a log file.
func ParseLogLine(driver string, line []byte) (LogEntry, error) {
	if driver == "json-file" {
		var j struct {
			Log    string    `json:"log"`
			Stream string    `json:"stream"`
			Time   time.Time `json:"time"`
		}
		if err := json.Unmarshal(line, &j); err != nil {
			return LogEntry{}, fmt.Errorf("bad log line: %w", err)
		}
		return LogEntry{Time: j.Time, Stream: j.Stream, Text: []byte(j.Log), Partial: !bytes.HasSuffix([]byte(j.Log), []byte("\n"))}, nil
	}
	parts := bytes.SplitN(line, []byte(" "), 4)
	if len(parts) != 4 {
		return LogEntry{}, fmt.Errorf("bad log line %q", line)
	}
	t, err := time.Parse(time.RFC3339Nano, string(parts[0]))
	if err != nil {
		return LogEntry{}, fmt.Errorf("bad log line: %w", err)
	}
	e := LogEntry{Time: t, Stream: string(parts[1]), Partial: string(parts[2]) == "P", Text: parts[3]}
	if !e.Partial {
		e.Text = append(e.Text, '\n')
	}
	return e, nil
}

// LogFiles are a log's files, oldest first.
func LogFiles(path string, cfg LogConfig) []string {
	var files []string
	for i := max(cfg.MaxFiles, 1) - 1; i >= 1; i-- {
		p := path + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	return append(files, path)
}

// ReadLog calls fn for each entry of r, a log file's content, and returns
// the bytes of the complete lines it read: a last line still being written
// (no newline yet) is left for the next read.
func ReadLog(r io.Reader, driver string, fn func(LogEntry) error) (consumed int64, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return consumed, nil
		}
		if err != nil {
			return consumed, err
		}
		consumed += int64(len(line))
		e, err := ParseLogLine(driver, bytes.TrimSuffix(line, []byte("\n")))
		if err != nil {
			return consumed, err
		}
		if err := fn(e); err != nil {
			return consumed, err
		}
	}
}

// LogOptions select what Logs shows.
type LogOptions struct {
	Follow, Timestamps bool
	// Tail is the number of last lines to show; negative shows all.
	Tail         int
	Since, Until time.Time
}

// Logs writes the container's logged output to stdout and stderr by
// stream; with Follow it goes on until the container has exited.
func Logs(ctx context.Context, s storage.Store, c *Container, o LogOptions, stdout, stderr io.Writer) error {
	if c.Log.Driver == "none" {
		return fmt.Errorf("container %s keeps no log (--log-driver none)", c.Name)
	}
	out := &logPrinter{o: o, stdout: stdout, stderr: stderr}
	files := LogFiles(c.LogPath(), c.Log)
	var entries []LogEntry // the last Tail ones, when Tail is set
	emit := func(e LogEntry) error {
		if (!o.Since.IsZero() && e.Time.Before(o.Since)) || (!o.Until.IsZero() && e.Time.After(o.Until)) {
			return nil
		}
		if o.Tail < 0 {
			return out.print(e)
		}
		entries = append(entries, e)
		if len(entries) > o.Tail {
			entries = entries[1:]
		}
		return nil
	}
	var offset int64
	for i, path := range files {
		n, err := readLogFile(path, 0, c.Log.Driver, emit)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if i == len(files)-1 {
			offset = n
		}
	}
	for _, e := range entries {
		if err := out.print(e); err != nil {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	o.Tail = -1
	for {
		running := Refresh(ctx, s, c) == nil && (c.Status == Running || c.Status == Paused || c.MonitorAlive())
		path := c.LogPath()
		if st, err := os.Stat(path); err == nil && st.Size() < offset {
			offset = 0 // rotated
		}
		n, err := readLogFile(path, offset, c.Log.Driver, out.print)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		offset += n
		if !running && n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readLogFile reads complete lines of a log file from offset and returns
// how many bytes they took.
func readLogFile(path string, offset int64, driver string, fn func(LogEntry) error) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	return ReadLog(f, driver, fn)
}

type logPrinter struct {
	o              LogOptions
	stdout, stderr io.Writer
	midLine        map[string]bool // a stream's last entry was partial
}

func (p *logPrinter) print(e LogEntry) error {
	w := p.stdout
	if e.Stream == "stderr" {
		w = p.stderr
	}
	if p.midLine == nil {
		p.midLine = map[string]bool{}
	}
	if p.o.Timestamps && !p.midLine[e.Stream] {
		if _, err := io.WriteString(w, e.Time.Format(time.RFC3339Nano)+" "); err != nil {
			return err
		}
	}
	p.midLine[e.Stream] = e.Partial
	_, err := w.Write(e.Text)
	return err
}
