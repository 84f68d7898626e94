package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/image"
)

func tagCommand() *cli.Command {
	return &cli.Command{
		Name:      "tag",
		Usage:     "give an image more names",
		ArgsUsage: "IMAGE TARGET...",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, -1); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				return image.Tag(e.store, c.Args().First(), c.Args().Tail())
			})
		},
	}
}
