package monitor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/attach"
	"github.com/berth-containers/berth/libcontainer/console"
)

// stdio is one run's plumbing: the ends the runtime hands to the container
// (inner) and ours.
type stdio struct {
	inner                    [3]*os.File
	stdinW, stdoutR, stderrR *os.File
	consoleSocket            string
	consoleLn                *net.UnixListener
	pty                      *os.File
}

func (m *Monitor) stdio() (*stdio, error) {
	s := &stdio{}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	s.inner = [3]*os.File{null, null, null}
	if m.c.Tty {
		// The runtime sends the pty's master over this socket; it gets a
		// short private directory, the runtime needing a path it can dial.
		dir, err := os.MkdirTemp("", "berth-console-")
		if err != nil {
			null.Close()
			return nil, fmt.Errorf("console socket: %w", err)
		}
		s.consoleSocket = filepath.Join(dir, "sock")
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.consoleSocket, Net: "unix"})
		if err != nil {
			null.Close()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("console socket: %w", err)
		}
		s.consoleLn = ln
		return s, nil
	}
	if s.stdoutR, s.inner[1], err = os.Pipe(); err != nil {
		s.close()
		return nil, err
	}
	if s.stderrR, s.inner[2], err = os.Pipe(); err != nil {
		s.close()
		return nil, err
	}
	if m.c.OpenStdin {
		var r *os.File
		if r, s.stdinW, err = os.Pipe(); err != nil {
			s.close()
			return nil, err
		}
		s.inner[0] = r
		m.mu.Lock()
		m.stdin = s.stdinW
		m.mu.Unlock()
	}
	return s, nil
}

// closeInner drops our copies of the container's ends once the runtime has
// passed them on, so a pipe reads EOF when the container closes it.
func (s *stdio) closeInner() {
	seen := map[*os.File]bool{}
	for i, f := range s.inner {
		if f != nil && !seen[f] {
			seen[f] = true
			f.Close()
		}
		s.inner[i] = nil
	}
}

func (s *stdio) close() {
	s.closeInner()
	for _, f := range []*os.File{s.stdinW, s.stdoutR, s.stderrR, s.pty} {
		if f != nil {
			f.Close()
		}
	}
	if s.consoleLn != nil {
		s.consoleLn.Close()
		_ = os.RemoveAll(filepath.Dir(s.consoleSocket))
	}
}

// outputs are the container's output streams.
func (s *stdio) outputs() []*os.File {
	var fs []*os.File
	for _, f := range []*os.File{s.stdoutR, s.stderrR, s.pty} {
		if f != nil {
			fs = append(fs, f)
		}
	}
	return fs
}

// receivePty takes the pty master the runtime sent during create.
func (s *stdio) receivePty(m *Monitor) error {
	if s.consoleLn == nil {
		return nil
	}
	_ = s.consoleLn.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := s.consoleLn.AcceptUnix()
	if err != nil {
		return fmt.Errorf("receive the container's terminal: %w", err)
	}
	f, err := conn.File()
	conn.Close()
	if err != nil {
		return err
	}
	defer f.Close()
	received, err := console.Receive(f)
	if err != nil {
		return err
	}
	// In the poller, so that its reads stop at a deadline when the C loop
	// takes over.
	master, err := toPoller(received)
	if err != nil {
		return err
	}
	s.pty = master
	m.mu.Lock()
	m.pty, m.stdin = master, master
	m.mu.Unlock()
	return nil
}

// copyOutput sends the container's output to the log and to clients; the
// channel closes when every stream has ended.
func (m *Monitor) copyOutput(s *stdio) <-chan struct{} {
	var wg sync.WaitGroup
	pump := func(r io.Reader, kind attach.Kind, stream string) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				m.output(kind, stream, buf[:n])
			}
			if err != nil {
				return // EOF, or EIO from a pty whose other side closed
			}
		}
	}
	if s.pty != nil {
		wg.Add(1)
		go pump(s.pty, attach.Stdout, "stdout")
	} else {
		wg.Add(2)
		go pump(s.stdoutR, attach.Stdout, "stdout")
		go pump(s.stderrR, attach.Stderr, "stderr")
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	return done
}

func (m *Monitor) output(kind attach.Kind, stream string, p []byte) {
	if m.log != nil {
		_ = m.log.Write(stream, p)
	}
	m.broadcast(kind, p)
}

// broadcast sends a frame to every client; a client that cannot take it is dropped.
func (m *Monitor) broadcast(kind attach.Kind, p []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.clients {
		if err := c.Write(kind, p); err != nil {
			delete(m.clients, c)
		}
	}
}

func (m *Monitor) broadcastExit(code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.clients {
		_ = c.WriteUint32(attach.Exit, uint32(int32(code)))
		delete(m.clients, c)
	}
}

// accept serves the attach socket's clients until its deadline passes
// (before the C loop takes over) or it is closed.
func (m *Monitor) accept(ln *net.UnixListener) {
	m.ln = ln
	m.accepting = make(chan struct{})
	go func() {
		defer close(m.accepting)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			m.serve(conn)
		}
	}()
}

// serve adds a client and handles what it sends: stdin, resizes, signals.
func (m *Monitor) serve(conn net.Conn) {
	c := attach.New(conn)
	m.mu.Lock()
	m.clients[c] = struct{}{}
	m.mu.Unlock()
	go func() {
		defer func() {
			m.mu.Lock()
			delete(m.clients, c)
			if len(m.clients) == 0 {
				select {
				case m.idleCh <- struct{}{}:
				default:
				}
			}
			m.mu.Unlock()
			conn.Close()
		}()
		for {
			kind, p, err := c.Read()
			if err != nil {
				return
			}
			m.handle(kind, p)
		}
	}()
}

func (m *Monitor) handle(kind attach.Kind, p []byte) {
	m.mu.Lock()
	stdin, pty, pid := m.stdin, m.pty, m.pid
	m.mu.Unlock()
	switch kind {
	case attach.Stdin:
		switch {
		case stdin == nil:
		case len(p) > 0:
			_, _ = stdin.Write(p)
		case pty != nil:
			_, _ = pty.Write([]byte{4}) // end of input on a terminal: ^D
		default:
			stdin.Close()
			m.mu.Lock()
			m.stdin = nil
			m.mu.Unlock()
		}
	case attach.Resize:
		if rows, cols, err := attach.Size(p); err == nil && pty != nil {
			// Through Control, not Fd(), which would make the master
			// blocking: its reads could no longer stop at a deadline.
			if rc, err := pty.SyscallConn(); err == nil {
				_ = rc.Control(func(fd uintptr) {
					_ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
				})
			}
		}
	case attach.Signal:
		if sig, err := attach.Uint32(p); err == nil && pid > 0 {
			if err := unix.Kill(pid, unix.Signal(sig)); err != nil && !errors.Is(err, unix.ESRCH) {
				m.broadcast(attach.Error, []byte(err.Error()))
			}
		}
	}
}
