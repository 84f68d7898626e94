package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/libcontainer"
	"github.com/berth-containers/berth/libcontainer/signals"
)

var killCommand = &cli.Command{
	Name:      "kill",
	Usage:     "send a signal to a container's init (default SIGTERM)",
	ArgsUsage: "<container-id> [signal]",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "signal every process of the container"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, 2); err != nil {
			return err
		}
		name := "SIGTERM"
		if c.NArg() == 2 {
			name = c.Args().Get(1)
		}
		sig, err := signals.Parse(name)
		if err != nil {
			return err
		}
		return libcontainer.Kill(c.String("root"), c.Args().First(), sig, c.Bool("all"))
	},
}
