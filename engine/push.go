package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/image"
	"github.com/berth-containers/berth/engine/progress"
)

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "push an image to a registry",
		ArgsUsage: "IMAGE [DESTINATION]",
		Description: "Pushes IMAGE to DESTINATION, by default to the name IMAGE has\n" +
			"(docker's `berth push NAME:TAG`). Prints the manifest digest.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress; print only the manifest digest"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 2); err != nil {
				return err
			}
			opts := image.PushOptions{}
			var bars progress.Reporter
			if !c.Bool("quiet") {
				bars = progress.New(os.Stderr)
				opts.Progress = bars
			}
			return withEnv(c, func(e *env) error {
				pushed, err := image.Push(c.Context, e.store, e.reg, c.Args().Get(0), c.Args().Get(1), opts)
				if bars != nil {
					bars.Wait()
				}
				if err != nil {
					return err
				}
				if c.Bool("quiet") {
					_, err = fmt.Fprintln(c.App.Writer, pushed.Digest)
					return err
				}
				// docker's last line.
				_, err = fmt.Fprintf(c.App.Writer, "%s: digest: %s size: %d\n", pushed.Ref.Identifier(), pushed.Digest, pushed.Size)
				return err
			})
		},
	}
}
