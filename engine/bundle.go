package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
)

func bundleCommand() *cli.Command {
	return &cli.Command{
		Name:      "bundle",
		Usage:     "write an OCI bundle of an image that any runtime can run",
		ArgsUsage: "IMAGE DIR [COMMAND [ARG...]]",
		Flags:     createFlags(),
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, -1); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				ref := c.Args().First()
				if err := ensureImage(c, e, ref); err != nil {
					return err
				}
				o, err := createOptions(c, e, ref, c.Args().Slice()[2:])
				if err != nil {
					return err
				}
				return container.WriteBundle(c.Context, e.store, o, c.Args().Get(1))
			})
		},
	}
}
