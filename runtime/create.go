package main

import (
	"os"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/libcontainer"
)

var createFlags = []cli.Flag{
	&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "path to the bundle"},
	&cli.StringFlag{Name: "console-socket", Usage: "unix socket to receive the pty master on"},
	&cli.StringFlag{Name: "pid-file", Usage: "write the init process id to this file"},
	&cli.BoolFlag{Name: "no-pivot", Usage: "use chroot instead of pivot_root"},
	&cli.BoolFlag{Name: "no-new-keyring", Usage: "keep the caller's session keyring"},
	&cli.IntFlag{Name: "preserve-fds", Usage: "pass N extra descriptors (from 3) to the container"},
}

var createCommand = &cli.Command{
	Name:      "create",
	Usage:     "create a container",
	ArgsUsage: "<container-id>",
	Flags:     createFlags,
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, 1); err != nil {
			return err
		}
		_, err := libcontainer.Create(createOptions(c))
		return err
	},
}

func createOptions(c *cli.Context) libcontainer.CreateOptions {
	return libcontainer.CreateOptions{
		Root:          c.String("root"),
		ID:            c.Args().First(),
		Bundle:        c.String("bundle"),
		PidFile:       c.String("pid-file"),
		ConsoleSocket: c.String("console-socket"),
		NoPivot:       c.Bool("no-pivot"),
		NoNewKeyring:  c.Bool("no-new-keyring"),
		PreserveFds:   c.Int("preserve-fds"),
		ListenFds:     listenFds(),
	}
}

// listenFds is the number of socket-activation descriptors systemd passed
// to this process, if they are meant for it.
func listenFds() int {
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return 0
	}
	if pid := os.Getenv("LISTEN_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return n
}
