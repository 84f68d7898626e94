package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
)

func topCommand() *cli.Command {
	return &cli.Command{
		Name:      "top",
		Usage:     "show the processes of a container",
		ArgsUsage: "CONTAINER [ps OPTIONS]",
		// Everything after the container is ps's.
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			if c.NArg() >= 1 && (c.Args().First() == "--help" || c.Args().First() == "-h") {
				return cli.ShowSubcommandHelp(c)
			}
			if err := needArgs(c, 1, -1); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				ctr, err := container.Lookup(e.store, c.Args().First())
				if err != nil {
					return err
				}
				procs, err := container.Top(c.Context, e.store, ctr, c.Args().Tail())
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(c.App.Writer, 20, 1, 3, ' ', 0)
				fmt.Fprintln(w, strings.Join(procs.Titles, "\t"))
				for _, p := range procs.Processes {
					fmt.Fprintln(w, strings.Join(p, "\t"))
				}
				return w.Flush()
			})
		},
	}
}
