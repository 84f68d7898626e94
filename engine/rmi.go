package main

import (
	"fmt"

	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/image"
)

func rmiCommand() *cli.Command {
	return &cli.Command{
		Name:      "rmi",
		Usage:     "remove images",
		ArgsUsage: "IMAGE...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "remove an image named by ID even if it has several names"},
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove every image no container uses"},
		},
		Action: func(c *cli.Context) error {
			all := c.Bool("all")
			if all && c.NArg() > 0 {
				return fmt.Errorf("--all takes no image names")
			}
			if !all {
				if err := needArgs(c, 1, -1); err != nil {
					return err
				}
			}
			return withEnv(c, func(e *env) error {
				if all {
					ids, _, err := image.Prune(e.store, true)
					for _, id := range ids {
						fmt.Fprintln(c.App.Writer, "Deleted:", id)
					}
					return err
				}
				// As docker: go on with the others and fail at the end.
				var errs []error
				for _, ref := range c.Args().Slice() {
					r, err := image.Remove(e.store, ref, c.Bool("force"))
					if err != nil {
						errs = append(errs, err)
						continue
					}
					for _, n := range r.Untagged {
						fmt.Fprintln(c.App.Writer, "Untagged:", n)
					}
					for _, d := range r.Deleted {
						fmt.Fprintln(c.App.Writer, "Deleted:", d)
					}
				}
				switch len(errs) {
				case 0:
					return nil
				case 1:
					return errs[0]
				}
				for _, err := range errs {
					fmt.Fprintln(c.App.ErrWriter, "Error:", err)
				}
				return fmt.Errorf("%d of %d images not removed", len(errs), c.NArg())
			})
		},
	}
}

func imagePruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove unused images",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove all images no container uses, not only dangling ones"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask (berth never asks)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				ids, freed, err := image.Prune(e.store, c.Bool("all"))
				if len(ids) > 0 {
					fmt.Fprintln(c.App.Writer, "Deleted Images:")
					for _, id := range ids {
						fmt.Fprintln(c.App.Writer, "deleted:", id)
					}
				}
				fmt.Fprintln(c.App.Writer, "Total reclaimed space:", units.HumanSizeWithPrecision(float64(freed), 3))
				return err
			})
		},
	}
}
