package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/monitor"
)

// monitorName is the hidden command a container's monitor runs as.
const monitorName = "__monitor"

func monitorCommandDef() *cli.Command {
	return &cli.Command{
		Name:   monitorName,
		Hidden: true,
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			// fd 3: the start report to the berth that started us; fd 4,
			// when present: its attached connection.
			sync := os.NewFile(3, "sync")
			var first *os.File
			if f := os.NewFile(4, "attach"); f != nil {
				if _, err := f.Stat(); err == nil {
					first = f
				}
			}
			var ctr *container.Container
			err := withEnv(c, func(e *env) error {
				var err error
				ctr, err = container.Lookup(e.store, c.Args().First())
				return err
			})
			if err != nil {
				_, _ = sync.WriteString(err.Error())
				return err
			}
			// Unmount the rootfs, or remove the container if asked.
			cleanup := func() error {
				return withEnv(c, func(e *env) error {
					if ctr.AutoRemove {
						return container.Remove(c.Context, e.store, ctr, false)
					}
					_, err := e.store.Unmount(ctr.ID, false)
					return err
				})
			}
			return monitor.Run(c.Context, ctr, sync, first, cleanup)
		},
	}
}
