// Package console moves a container's pty master between processes and
// connects it to the caller's terminal for a foreground `run`.
package console

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	cconsole "github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// Send passes the pty master over a connected unix socket with SCM_RIGHTS,
// its name as the message, as the runtime-tools console protocol has it.
func Send(sockFd int, master *os.File, name string) error {
	rights := unix.UnixRights(int(master.Fd()))
	if err := unix.Sendmsg(sockFd, []byte(name), rights, nil, 0); err != nil {
		return fmt.Errorf("send pty master to console socket: %w", err)
	}
	return nil
}

// Receive reads one pty master sent with Send.
func Receive(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("receive pty master: no descriptor in message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, errors.New("receive pty master: no descriptor in message")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

// Attach connects master to the caller's stdin and stdout: stdin goes raw
// when it is a terminal, and the pty follows its size. The returned function
// restores the terminal; output copying ends when the container closes the pty.
func Attach(master *os.File) (restore func(), outDone <-chan struct{}) {
	restore = func() {}
	// The caller's terminal already turns \n into \r\n (SetRaw keeps OPOST):
	// the container's pty must not do it as well.
	cconsole.ClearONLCR(master.Fd())
	if cur, err := cconsole.ConsoleFromFile(os.Stdin); err == nil {
		if err := cur.SetRaw(); err == nil {
			restore = func() { cur.Reset() }
		}
		resize := func() {
			if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
				unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
			}
		}
		resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		go func() {
			for range winch {
				resize()
			}
		}()
	}
	go io.Copy(master, os.Stdin)
	done := make(chan struct{})
	go func() {
		io.Copy(os.Stdout, master)
		close(done)
	}()
	return restore, done
}
