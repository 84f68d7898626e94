package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"

	cconsole "github.com/containerd/console"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/attach"
	"github.com/berth-containers/berth/engine/container"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "create and start a container",
		ArgsUsage: "IMAGE [COMMAND [ARG...]]",
		Flags: append(createFlags(),
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run in the background and print the container ID"},
			&cli.BoolFlag{Name: "sig-proxy", Value: true, Usage: "pass signals berth receives to the container"},
		),
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, -1); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				// The monitor starts first: its start-up overlaps create.
				var conn *attach.Conn
				var theirs *os.File
				if !c.Bool("detach") {
					var err error
					if conn, theirs, err = attachPair(); err != nil {
						return err
					}
					defer conn.Close()
				}
				m, err := spawnMonitor(c, e, theirs)
				if theirs != nil {
					theirs.Close()
				}
				if err != nil {
					return err
				}
				ctr, err := createContainer(c, e)
				if err != nil {
					m.Abort()
					return err
				}
				if err := container.Start(c.Context, e.store, ctr, m); err != nil {
					return removeAfterFailedStart(c, e, ctr, err)
				}
				if c.Bool("detach") {
					_, err = fmt.Fprintln(c.App.Writer, ctr.ID)
					return err
				}
				code, err := relay(conn, ctr.Tty, ctr.OpenStdin, c.Bool("sig-proxy"))
				if err != nil {
					return err
				}
				return exitError{code: code}
			})
		},
	}
}

// removeAfterFailedStart removes a --rm container that never ran; the
// monitor removes it otherwise.
func removeAfterFailedStart(c *cli.Context, e *env, ctr *container.Container, err error) error {
	if ctr.AutoRemove {
		_ = container.Remove(c.Context, e.store, ctr, true)
	}
	return err
}

// monitorCommand is this berth binary in monitor mode, with the global
// flags that find the same store.
func monitorCommand(c *cli.Context, e *env) (*exec.Cmd, error) {
	return selfCommand(c, e, monitorName)
}

// selfCommand is this berth binary with the global flags that find the
// same store, and args.
func selfCommand(c *cli.Context, e *env, args ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find berth's binary: %w", err)
	}
	global := []string{"--root", e.cfg.Storage.Root, "--runroot", e.cfg.Storage.RunRoot}
	if e.cfg.Storage.Driver != "" {
		global = append(global, "--storage-driver", e.cfg.Storage.Driver)
	}
	for _, o := range e.cfg.Storage.Options {
		global = append(global, "--storage-opt", o)
	}
	if p := c.String("config"); p != "" {
		global = append(global, "--config", p)
	}
	return exec.Command(self, append(global, args...)...), nil
}

// spawnMonitor starts a monitor for a container to come; attach, if not
// nil, is its first client.
func spawnMonitor(c *cli.Context, e *env, attachEnd *os.File) (*container.Monitor, error) {
	cmd, err := monitorCommand(c, e)
	if err != nil {
		return nil, err
	}
	return container.SpawnMonitor(cmd, attachEnd)
}

// startContainer starts ctr through a new monitor.
func startContainer(c *cli.Context, e *env, ctr *container.Container, attachEnd *os.File) error {
	m, err := spawnMonitor(c, e, attachEnd)
	if err != nil {
		return err
	}
	return container.Start(c.Context, e.store, ctr, m)
}

// startAttached starts ctr with this command attached from the first byte
// of output, relays until the container exits, and returns its exit code.
func startAttached(c *cli.Context, e *env, ctr *container.Container, stdin, sigProxy bool) (int, error) {
	conn, theirs, err := attachPair()
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	err = startContainer(c, e, ctr, theirs)
	theirs.Close()
	if err != nil {
		return 0, err
	}
	return relay(conn, ctr.Tty, stdin, sigProxy)
}

// attachPair is a connected pair: ours, and the end the monitor gets as
// its first client.
func attachPair() (*attach.Conn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("attach: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "attach"), os.NewFile(uintptr(fds[1]), "attach-monitor")
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("attach: %w", err)
	}
	return attach.New(conn), theirs, nil
}

// attachTo connects to a running container's monitor.
func attachTo(ctr *container.Container, stdin, sigProxy bool) (int, error) {
	conn, err := attach.Dial(ctr.AttachPath())
	if err != nil {
		return 0, fmt.Errorf("attach to %s: %w", ctr.Name, err)
	}
	defer conn.Close()
	return relay(attach.New(conn), ctr.Tty, stdin, sigProxy)
}

// relay copies between this terminal and the container until it exits.
func relay(conn *attach.Conn, tty, stdin, sigProxy bool) (int, error) {
	if tty {
		if cur, err := cconsole.ConsoleFromFile(os.Stdin); err == nil {
			if stdin {
				if err := cur.SetRaw(); err == nil {
					defer cur.Reset()
				}
			}
			sendSize := func() {
				if ws, err := cur.Size(); err == nil {
					_ = conn.WriteResize(ws.Height, ws.Width)
				}
			}
			sendSize()
			winch := make(chan os.Signal, 1)
			signal.Notify(winch, unix.SIGWINCH)
			defer signal.Stop(winch)
			go func() {
				for range winch {
					sendSize()
				}
			}()
		}
	}
	if stdin {
		go func() {
			_, _ = copyFramed(conn, os.Stdin)
			_ = conn.Write(attach.Stdin, nil)
		}()
	}
	if sigProxy && !tty {
		sigs := make(chan os.Signal, 8)
		signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
		defer signal.Stop(sigs)
		go func() {
			for s := range sigs {
				_ = conn.WriteUint32(attach.Signal, uint32(s.(unix.Signal)))
			}
		}()
	}
	for {
		kind, p, err := conn.Read()
		if err != nil {
			return 0, errors.New("lost the connection to the container's monitor")
		}
		switch kind {
		case attach.Stdout:
			_, _ = os.Stdout.Write(p)
		case attach.Stderr:
			_, _ = os.Stderr.Write(p)
		case attach.Error:
			return 0, errors.New(string(p))
		case attach.Exit:
			code, err := attach.Uint32(p)
			return int(int32(code)), err
		}
	}
}

func copyFramed(conn *attach.Conn, f *os.File) (int64, error) {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := f.Read(buf)
		if k > 0 {
			if werr := conn.Write(attach.Stdin, buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err != nil {
			return n, nil
		}
	}
}
