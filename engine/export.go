package main

import (
	"io"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a container's filesystem as a tar archive",
		ArgsUsage: "CONTAINER",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` instead of stdout"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			out := c.String("output")
			if err := refuseTerminal(c, out); err != nil {
				return err
			}
			ctx, stop := interruptible(c)
			defer stop()
			return closedPipe(withEnv(c, func(e *env) error {
				ctr, err := container.Lookup(e.store, c.Args().First())
				if err != nil {
					return err
				}
				return writeArchive(c, out, func(w io.Writer) error {
					return container.Export(ctx, e.store, ctr, w)
				})
			}))
		},
	}
}
