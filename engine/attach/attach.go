// Package attach is the protocol between a container's monitor and the berth
// commands attached to it (run, start -a, attach): framed messages over a
// unix socket, so output streams, stdin, terminal resizes, signals and the
// exit code share one connection.
package attach

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
)

// Kind is the type of a frame.
type Kind byte

// Frames from a client to the monitor.
const (
	// Stdin carries input; an empty Stdin frame closes the container's stdin.
	Stdin Kind = iota
	// Resize carries rows and columns (two uint16, big endian).
	Resize
	// Signal carries a signal number (uint32) for the container's process.
	Signal
)

// Frames from the monitor to clients.
const (
	Stdout Kind = iota + 16
	Stderr
	// Exit carries the container's exit code (int32) and ends the session.
	Exit
	// Error carries a message from the monitor: the container could not start.
	Error
)

// maxFrame bounds what a peer may make us allocate.
const maxFrame = 1 << 20

// Conn reads and writes frames; writes are safe from several goroutines.
type Conn struct {
	rw io.ReadWriter
	mu sync.Mutex
}

// New frames the stream rw.
func New(rw io.ReadWriter) *Conn { return &Conn{rw: rw} }

// Write sends one frame.
func (c *Conn) Write(k Kind, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("attach: frame of %d bytes is too large", len(payload))
	}
	var hdr [5]byte
	hdr[0] = byte(k)
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.rw.Write(hdr[:]); err != nil {
		return err
	}
	_, err := c.rw.Write(payload)
	return err
}

// Read receives one frame.
func (c *Conn) Read() (Kind, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c.rw, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, errors.New("attach: frame too large")
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.rw, buf); err != nil {
		return 0, nil, err
	}
	return Kind(hdr[0]), buf, nil
}

// WriteUint32 sends a frame holding one number (Signal, Exit).
func (c *Conn) WriteUint32(k Kind, v uint32) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return c.Write(k, b[:])
}

// WriteResize sends the terminal size.
func (c *Conn) WriteResize(rows, cols uint16) error {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:], rows)
	binary.BigEndian.PutUint16(b[2:], cols)
	return c.Write(Resize, b[:])
}

// Uint32 decodes a Signal or Exit payload.
func Uint32(p []byte) (uint32, error) {
	if len(p) != 4 {
		return 0, errors.New("attach: bad number frame")
	}
	return binary.BigEndian.Uint32(p), nil
}

// Size decodes a Resize payload.
func Size(p []byte) (rows, cols uint16, err error) {
	if len(p) != 4 {
		return 0, 0, errors.New("attach: bad resize frame")
	}
	return binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:]), nil
}

// StreamWriter writes data as frames of one kind (an io.Writer for output).
type StreamWriter struct {
	Conn *Conn
	Kind Kind
}

func (w StreamWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += maxFrame {
		end := min(off+maxFrame, len(p))
		if err := w.Conn.Write(w.Kind, p[off:end]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

// Unix socket paths are limited to 107 bytes, and a store's run directory
// may be deeper than that: sockets are bound and dialled through
// /proc/self/fd/N/NAME, N being the opened directory, which is always short.
func shortPath(path string) (string, *os.File, error) {
	if len(path) < 100 {
		return path, nil, nil
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path)), dir, nil
}

// Listen listens on the unix socket at path, replacing a stale one.
func Listen(path string) (net.Listener, error) {
	_ = os.Remove(path)
	short, dir, err := shortPath(path)
	if err != nil {
		return nil, err
	}
	if dir != nil {
		defer dir.Close()
	}
	return net.Listen("unix", short)
}

// Dial connects to the unix socket at path.
func Dial(path string) (net.Conn, error) {
	short, dir, err := shortPath(path)
	if err != nil {
		return nil, err
	}
	if dir != nil {
		defer dir.Close()
	}
	return net.Dial("unix", short)
}

// Close closes the underlying connection.
func (c *Conn) Close() error {
	if cl, ok := c.rw.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}
