package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
)

func pauseCommand() *cli.Command {
	return &cli.Command{
		Name:      "pause",
		Usage:     "freeze every process of containers",
		ArgsUsage: "CONTAINER...",
		Action: func(c *cli.Context) error {
			return eachContainer(c, func(e *env, ctr *container.Container) error {
				return container.Pause(c.Context, e.store, ctr)
			})
		},
	}
}

func unpauseCommand() *cli.Command {
	return &cli.Command{
		Name:      "unpause",
		Usage:     "thaw paused containers",
		ArgsUsage: "CONTAINER...",
		Action: func(c *cli.Context) error {
			return eachContainer(c, func(e *env, ctr *container.Container) error {
				return container.Unpause(c.Context, e.store, ctr)
			})
		},
	}
}
