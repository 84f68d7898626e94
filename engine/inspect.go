package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/format"
	"github.com/berth-containers/berth/engine/image"
)

// inspectCommand is `inspect` (containers, then images), or `image
// inspect` / `container inspect` when only names one type.
func inspectCommand(only string) *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show details of containers or images",
		ArgsUsage: "CONTAINER|IMAGE...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "Go template or json"},
			&cli.StringFlag{Name: "type", Usage: "only this type of object: container or image"},
			&cli.BoolFlag{Name: "size", Aliases: []string{"s"}, Usage: "show a container's SizeRw and SizeRootFs"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, -1); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				typ := c.String("type")
				if only != "" {
					typ = only
				}
				if typ != "" && typ != "image" && typ != "container" {
					return fmt.Errorf("invalid --type %q: want container or image", typ)
				}
				var items []any
				for _, ref := range c.Args().Slice() {
					item, err := inspectOne(c, e, ref, typ)
					if err != nil {
						return err
					}
					items = append(items, item)
				}
				return format.Object(c.App.Writer, c.String("format"), items)
			})
		},
	}
}

// inspectOne finds a container, then an image, as docker does.
func inspectOne(c *cli.Context, e *env, ref, typ string) (any, error) {
	if typ != "image" {
		ctr, err := container.Lookup(e.store, ref)
		if err == nil {
			if err := container.Refresh(c.Context, e.store, ctr); err != nil {
				return nil, err
			}
			in := container.InspectContainer(ctr, e.store.GraphDriverName())
			if c.Bool("size") {
				rw, rootfs, err := container.Sizes(e.store, ctr)
				if err != nil {
					return nil, err
				}
				in.SizeRw, in.SizeRootFs = &rw, &rootfs
			}
			return in, nil
		}
		if typ == "container" || !errors.Is(err, container.ErrNotFound) {
			return nil, err
		}
	}
	img, err := image.Lookup(e.store, ref)
	if err != nil {
		if typ == "" && errors.Is(err, image.ErrNotFound) {
			return nil, fmt.Errorf("no such object: %s", ref)
		}
		return nil, err
	}
	return image.InspectImage(e.store, img)
}
