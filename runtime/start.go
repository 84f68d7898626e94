package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/libcontainer"
)

var startCommand = &cli.Command{
	Name:      "start",
	Usage:     "start a created container",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, 1); err != nil {
			return err
		}
		return libcontainer.Start(c.String("root"), c.Args().First())
	},
}
