package api

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/attach"
	"github.com/berth-containers/berth/engine/container"
)

// streams write a container's output as docker's attach and logs do:
// raw with a terminal, else each write framed with its stream number.
type streams struct {
	stdout, stderr io.Writer
}

type muxWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte // 0: raw
}

func (m muxWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stream != 0 {
		var hdr [8]byte
		hdr[0] = m.stream
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
		if _, err := m.w.Write(hdr[:]); err != nil {
			return 0, err
		}
	}
	n, err := m.w.Write(p)
	if f, ok := m.w.(http.Flusher); ok {
		f.Flush()
	}
	if bw, ok := m.w.(*bufio.Writer); ok && err == nil {
		err = bw.Flush()
	}
	return n, err
}

func newStreams(w io.Writer, tty bool) streams {
	mu := &sync.Mutex{}
	if tty {
		return streams{stdout: muxWriter{mu: mu, w: w}, stderr: muxWriter{mu: mu, w: w}}
	}
	return streams{stdout: muxWriter{mu: mu, w: w, stream: 1}, stderr: muxWriter{mu: mu, w: w, stream: 2}}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// session is one hijacked attach: the client's connection and what it
// asked for.
type session struct {
	conn                  net.Conn
	buf                   *bufio.ReadWriter
	stdin, stdout, stderr bool
	tty                   bool
}

// pendingAttach is a session made before its container's start: the start
// gives the new monitor one end of a socket pair and relays the other. It
// is registered before the client hears that its attach succeeded (the
// client starts the container then), and ready closes once sess is set,
// or left nil when the attach failed.
type pendingAttach struct {
	ready  chan struct{}
	sess   *session
	ours   *os.File
	theirs *os.File
}

// whenReady runs f once the attach has its session (nil if it failed).
func (p *pendingAttach) whenReady(f func(*session)) {
	go func() {
		<-p.ready
		f(p.sess)
	}()
}

func (p *pendingAttach) monitorEnd() *os.File {
	if p == nil {
		return nil
	}
	return p.theirs
}

func (p *pendingAttach) run() {
	if p == nil {
		return
	}
	p.whenReady(func(sess *session) {
		if sess == nil {
			p.ours.Close()
			return
		}
		relaySession(sess, attach.New(p.ours), p.ours)
	})
}

func (p *pendingAttach) abort() {
	if p == nil {
		return
	}
	p.whenReady(func(sess *session) {
		p.ours.Close()
		if sess != nil {
			sess.conn.Close()
		}
	})
}

func (s *Server) takePending(id string) *pendingAttach {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	delete(s.pending, id)
	return p
}

func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	stream, logs := boolParam(r, "stream"), boolParam(r, "logs")
	if !stream && !logs {
		writeError(w, http.StatusBadRequest, "attach needs stream=1 or logs=1")
		return
	}
	if err := container.Refresh(r.Context(), s.o.Store, c); err != nil {
		fail(w, err)
		return
	}
	var conn net.Conn
	switch {
	case !stream: // logs=1 alone: the output so far, then the end
	case c.Status == container.Running || c.Status == container.Paused:
		var err error
		if conn, err = attach.Dial(c.AttachPath()); err != nil {
			fail(w, fmt.Errorf("attach to %s: %w", c.Name, err))
			return
		}
	case c.Status != container.Created:
		writeError(w, http.StatusConflict, fmt.Sprintf("You cannot attach to a stopped container, start it first: %s", c.Name))
		return
	}
	var p *pendingAttach
	if stream && conn == nil {
		var err error
		if p, err = s.addPending(c.ID); err != nil {
			fail(w, err)
			return
		}
	}
	client, buf, ok := hijack(w, r, c.Tty)
	if !ok {
		if conn != nil {
			conn.Close()
		}
		s.dropPending(c.ID, p)
		return
	}
	sess := &session{conn: client, buf: buf, stdin: boolParam(r, "stdin"), stdout: boolParam(r, "stdout"), stderr: boolParam(r, "stderr"), tty: c.Tty}
	if logs {
		// After the monitor's connection is made, so that nothing is lost
		// in between (what comes meanwhile may come twice).
		s.writeLogs(r, c, sess)
	}
	switch {
	case !stream:
		client.Close()
	case conn != nil:
		go relaySession(sess, attach.New(conn), conn)
	default:
		p.sess = sess
		close(p.ready)
	}
}

// addPending registers a new pending attach for container id, replacing
// (and ending) an earlier one.
func (s *Server) addPending(id string) (*pendingAttach, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("attach: socket pair: %w", err)
	}
	p := &pendingAttach{ready: make(chan struct{}), ours: os.NewFile(uintptr(fds[0]), "attach"),
		theirs: os.NewFile(uintptr(fds[1]), "attach-monitor")}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.pending[id]; old != nil {
		old.abort()
		old.theirs.Close()
	}
	s.pending[id] = p
	return p, nil
}

// dropPending ends p, whose attach failed. Still registered, it is closed
// here; taken by a start (or replaced), it is closed by whoever took it,
// once ready says there is no session.
func (s *Server) dropPending(id string, p *pendingAttach) {
	if p == nil {
		return
	}
	s.mu.Lock()
	if s.pending[id] == p {
		delete(s.pending, id)
		p.theirs.Close()
		p.ours.Close()
	}
	s.mu.Unlock()
	close(p.ready)
}

// writeLogs sends a session the container's logged output so far.
func (s *Server) writeLogs(r *http.Request, c *container.Container, sess *session) {
	out := newStreams(sess.buf.Writer, sess.tty)
	var so, se io.Writer = discard{}, discard{}
	if sess.stdout {
		so = out.stdout
	}
	if sess.stderr {
		se = out.stderr
	}
	if err := container.Logs(r.Context(), s.o.Store, c, container.LogOptions{Tail: -1}, so, se); err != nil {
		_, _ = out.stderr.Write([]byte(err.Error() + "\n"))
	}
}

// relaySession copies between a hijacked client and the monitor until the
// container exits or either side goes away.
func relaySession(sess *session, mon *attach.Conn, closer io.Closer) {
	defer closer.Close()
	defer sess.conn.Close()
	if sess.stdin {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := sess.buf.Read(buf)
				if n > 0 {
					if mon.Write(attach.Stdin, buf[:n]) != nil {
						return
					}
				}
				if err != nil {
					_ = mon.Write(attach.Stdin, nil)
					return
				}
			}
		}()
	}
	out := newStreams(sess.buf.Writer, sess.tty)
	for {
		kind, p, err := mon.Read()
		if err != nil {
			return
		}
		switch kind {
		case attach.Stdout:
			if sess.stdout {
				if _, err := out.stdout.Write(p); err != nil {
					return
				}
			}
		case attach.Stderr:
			if sess.stderr {
				if _, err := out.stderr.Write(p); err != nil {
					return
				}
			}
		case attach.Error:
			_, _ = out.stderr.Write(append(p, '\n'))
			return
		case attach.Exit:
			return
		}
	}
}

// resize sets a running container's terminal size through its monitor.
func resize(c *container.Container, rows, cols uint16) error {
	conn, err := attach.Dial(c.AttachPath())
	if err != nil {
		return fmt.Errorf("resize %s: %w", c.Name, err)
	}
	defer conn.Close()
	return attach.New(conn).WriteResize(rows, cols)
}
