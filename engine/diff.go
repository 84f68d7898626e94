package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
)

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "list the files a container changed (C), added (A) or deleted (D)",
		ArgsUsage: "CONTAINER",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				ctr, err := container.Lookup(e.store, c.Args().First())
				if err != nil {
					return err
				}
				list, err := container.Changes(e.store, ctr)
				if err != nil {
					return err
				}
				for _, ch := range list {
					fmt.Fprintln(c.App.Writer, ch.Letter(), ch.Path)
				}
				return nil
			})
		},
	}
}
