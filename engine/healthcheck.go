package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
)

func healthcheckCommand() *cli.Command {
	return &cli.Command{
		Name:  "healthcheck",
		Usage: "run container health checks",
		Subcommands: []*cli.Command{{
			Name:      "run",
			Usage:     "run a container's health check now: exit 0 healthy, 1 unhealthy",
			ArgsUsage: "CONTAINER",
			Action: func(c *cli.Context) error {
				if err := needArgs(c, 1, 1); err != nil {
					return err
				}
				return withEnv(c, func(e *env) error {
					ctr, err := container.Lookup(e.store, c.Args().First())
					if err != nil {
						return err
					}
					r, err := container.RunHealthcheck(c.Context, e.store, ctr)
					if err != nil {
						return err // 125, as podman's without a health check
					}
					if r.ExitCode != 0 {
						fmt.Fprintln(c.App.Writer, container.HealthUnhealthy)
						return exitError{code: 1}
					}
					return nil
				})
			},
		}},
	}
}
