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
			// ID DIR RUNDIR: the record is read from its directories,
			// the store is opened only to clean up at the end.
			if err := needArgs(c, 3, 3); err != nil {
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
			ctr, err := container.Open(c.Args().Get(1), c.Args().Get(2))
			if err != nil {
				_, _ = sync.WriteString(err.Error())
				return err
			}
			// Unmount the rootfs, or remove the container if asked.
			cleanup := func() error {
				if err := container.TeardownNetwork(c.Context, ctr); err != nil {
					return err
				}
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
