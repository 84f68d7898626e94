package main

import (
	"errors"
	"os"

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
			if out == "" && onTerminal(c.App.Writer) {
				return errors.New("refusing to write a tar archive to a terminal: use -o or redirect")
			}
			ctx, stop := interruptible(c)
			defer stop()
			return closedPipe(withEnv(c, func(e *env) error {
				ctr, err := container.Lookup(e.store, c.Args().First())
				if err != nil {
					return err
				}
				if out == "" {
					return container.Export(ctx, e.store, ctr, c.App.Writer)
				}
				// A failed export leaves no partial file.
				return replaceAtomically(out, false, func(tmp string) error {
					f, err := os.OpenFile(tmp, os.O_WRONLY, 0)
					if err != nil {
						return err
					}
					_ = f.Chmod(0o644) // not the temporary file's 0600
					err = container.Export(ctx, e.store, ctr, f)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
					return err
				})
			}))
		},
	}
}
