package libcontainer

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/libcontainer/console"
)

// consoleConn is how a container process gets to send its pty master: the
// caller's --console-socket, or a socket pair whose other end we keep when
// the runtime itself serves a foreground terminal.
type consoleConn struct {
	theirs *os.File // passed to the container process; nil without a terminal
	ours   *os.File // our end of the pair, nil with --console-socket
}

func openConsole(socketPath string, terminal bool) (*consoleConn, error) {
	if socketPath != "" {
		conn, err := net.Dial("unix", socketPath)
		if err != nil {
			return nil, fmt.Errorf("connect to console socket %s: %w", socketPath, err)
		}
		f, err := conn.(*net.UnixConn).File()
		conn.Close()
		if err != nil {
			return nil, fmt.Errorf("console socket %s: %w", socketPath, err)
		}
		return &consoleConn{theirs: f}, nil
	}
	if !terminal {
		return &consoleConn{}, nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("create console socket pair: %w", err)
	}
	return &consoleConn{theirs: os.NewFile(uintptr(fds[1]), "console"), ours: os.NewFile(uintptr(fds[0]), "console")}, nil
}

// receive returns the pty master when we serve the terminal ourselves.
func (c *consoleConn) receive() (*os.File, error) {
	if c.ours == nil {
		return nil, nil
	}
	return console.Receive(c.ours)
}

func (c *consoleConn) Close() {
	for _, f := range []*os.File{c.theirs, c.ours} {
		if f != nil {
			f.Close()
		}
	}
}
