package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/image"
	"github.com/berth-containers/berth/engine/progress"
)

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "pull an image from a registry",
		ArgsUsage: "NAME[:TAG|@DIGEST]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "platform", Usage: "pick `OS/ARCH[/VARIANT]` from a manifest list"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the image ID"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			opts := image.PullOptions{}
			if p := c.String("platform"); p != "" {
				platform, err := image.ParsePlatform(p)
				if err != nil {
					return err
				}
				opts.Platform = platform
			}
			var bars progress.Reporter
			if !c.Bool("quiet") {
				bars = progress.New(os.Stderr)
				opts.Progress = bars
			}
			return withEnv(c, func(e *env) error {
				img, err := image.Pull(c.Context, e.store, e.reg, c.Args().First(), opts)
				if bars != nil {
					bars.Wait()
				}
				if err != nil {
					return err
				}
				// As podman: the image ID on stdout, progress on stderr.
				_, err = fmt.Fprintln(c.App.Writer, img.ID)
				return err
			})
		},
	}
}
