package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/format"
	"github.com/berth-containers/berth/engine/image"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show details of images",
		ArgsUsage: "IMAGE...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "Go template or json"},
			&cli.StringFlag{Name: "type", Value: "image", Usage: "object type (image)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, -1); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				var items []any
				for _, ref := range c.Args().Slice() {
					img, err := image.Lookup(e.store, ref)
					if err != nil {
						return err
					}
					in, err := image.InspectImage(e.store, img)
					if err != nil {
						return err
					}
					items = append(items, in)
				}
				return format.Object(c.App.Writer, c.String("format"), items)
			})
		},
	}
}
