package libcontainer

import (
	"fmt"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/libcontainer/console"
)

// Run creates and starts a container. Detached, it returns at once;
// otherwise it forwards signals to the container's init, waits for it, and
// deletes the container unless keep is set. It returns the exit code the
// shell would show: the status, or 128 plus the signal that killed init.
func Run(o CreateOptions, detach, keep bool) (int, error) {
	var sigs chan os.Signal
	if !detach {
		// Catch signals from the start, so none is lost while creating.
		sigs = make(chan os.Signal, 32)
		signal.Notify(sigs)
		defer signal.Stop(sigs)
	}
	o.ForegroundTTY = !detach && o.ConsoleSocket == ""
	c, err := Create(o)
	if err != nil {
		return -1, err
	}
	var outDone <-chan struct{}
	if c.Console != nil {
		defer c.Console.Close()
		var restore func()
		restore, outDone = console.Attach(c.Console)
		defer restore()
	}
	if err := Start(o.Root, o.ID); err != nil {
		Delete(o.Root, o.ID, true)
		return -1, err
	}
	if detach {
		return 0, nil
	}
	code, err := waitForward(c.State.Pid, sigs)
	if err != nil {
		return -1, err
	}
	if outDone != nil {
		// Drain the last output; a process that outlived init may hold the pty open.
		select {
		case <-outDone:
		case <-time.After(time.Second):
		}
	}
	if !keep {
		if err := Delete(o.Root, o.ID, true); err != nil {
			return code, err
		}
	}
	return code, nil
}

// waitForward waits for init, our child through CLONE_PARENT, passing on
// every signal but SIGCHLD (and SIGURG, which the Go runtime uses itself).
func waitForward(pid int, sigs chan os.Signal) (int, error) {
	exited := make(chan unix.WaitStatus, 1)
	errc := make(chan error, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				errc <- fmt.Errorf("wait for container init %d: %w", pid, err)
				return
			}
			exited <- ws
			return
		}
	}()
	for {
		select {
		case ws := <-exited:
			if ws.Signaled() {
				return 128 + int(ws.Signal()), nil
			}
			return ws.ExitStatus(), nil
		case err := <-errc:
			return -1, err
		case s := <-sigs:
			sig := s.(unix.Signal)
			if sig == unix.SIGCHLD || sig == unix.SIGURG {
				continue
			}
			unix.Kill(pid, sig)
		}
	}
}
