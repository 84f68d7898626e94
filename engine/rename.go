package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
)

func renameCommand() *cli.Command {
	return &cli.Command{
		Name:      "rename",
		Usage:     "rename a container",
		ArgsUsage: "CONTAINER NEW_NAME",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, 2); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				ctr, err := container.Lookup(e.store, c.Args().First())
				if err != nil {
					return err
				}
				return container.Rename(e.store, ctr, c.Args().Get(1))
			})
		},
	}
}
