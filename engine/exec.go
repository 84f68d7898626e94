package main

import (
	"io"
	"os"
	"os/signal"
	"time"

	cconsole "github.com/containerd/console"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/container"
)

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command in a running container",
		ArgsUsage: "CONTAINER COMMAND [ARG...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run the command in the background"},
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "pass stdin to the command"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set `KEY=VALUE` (KEY alone: from berth's environment)"},
			&cli.StringSliceFlag{Name: "env-file", Usage: "read environment variables from `FILE`"},
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "`USER[:GROUP]` to run as"},
			&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory in the container"},
			&cli.BoolFlag{Name: "privileged", Usage: "give the command every capability"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, -1); err != nil {
				return err
			}
			vars, err := environment(c.StringSlice("env-file"), c.StringSlice("env"))
			if err != nil {
				return err
			}
			cfg := container.ExecConfig{
				Cmd: c.Args().Tail(), Env: vars, User: c.String("user"), WorkingDir: c.String("workdir"),
				Tty: c.Bool("tty"), Privileged: c.Bool("privileged"), Detach: c.Bool("detach"),
			}
			return withEnv(c, func(e *env) error {
				ctr, err := container.Lookup(e.store, c.Args().First())
				if err != nil {
					return err
				}
				stdio := container.ExecStdio{Stdout: os.Stdout, Stderr: os.Stderr}
				if c.Bool("interactive") {
					stdio.Stdin = os.Stdin
				}
				// Signals are the process's; those that come while it
				// starts are passed on once it runs.
				sigs := make(chan os.Signal, 8)
				if !cfg.Detach {
					signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
					defer signal.Stop(sigs)
				}
				p, err := container.Exec(c.Context, e.store, ctr, cfg, stdio)
				if err != nil || cfg.Detach {
					return err
				}
				go func() {
					for s := range sigs {
						_ = p.Signal(s.(unix.Signal))
					}
				}()
				var outDone <-chan struct{}
				if p.Pty != nil {
					defer p.Pty.Close()
					var restore func()
					restore, outDone = relayPty(p.Pty, c.Bool("interactive"))
					defer restore()
				}
				code, err := p.Wait()
				if err != nil {
					return err
				}
				if outDone != nil {
					// The pty reads EIO once every holder of its slave is gone.
					select {
					case <-outDone:
					case <-time.After(time.Second):
					}
				}
				if code != 0 {
					return exitError{code: code}
				}
				return nil
			})
		},
	}
}

// relayPty connects the process's terminal to berth's: stdin (with -i) in
// raw mode when it is a terminal, the size following berth's terminal. The
// channel closes when the output ends.
func relayPty(master *os.File, stdin bool) (restore func(), outDone <-chan struct{}) {
	restore = func() {}
	var size *os.File
	for _, f := range []*os.File{os.Stdin, os.Stdout} {
		if _, err := cconsole.ConsoleFromFile(f); err == nil {
			size = f
			break
		}
	}
	if size != nil {
		if cur, err := cconsole.ConsoleFromFile(os.Stdin); err == nil && stdin {
			if err := cur.SetRaw(); err == nil {
				restore = func() { _ = cur.Reset() }
			}
		}
		resize := func() {
			if ws, err := unix.IoctlGetWinsize(int(size.Fd()), unix.TIOCGWINSZ); err == nil {
				_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
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
		prev := restore
		restore = func() { signal.Stop(winch); prev() }
	}
	if stdin {
		go func() { _, _ = io.Copy(master, os.Stdin) }()
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(os.Stdout, master)
		close(done)
	}()
	return restore, done
}
