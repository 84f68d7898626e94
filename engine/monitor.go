package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/monitor"
	"github.com/berth-containers/berth/engine/tracing"
)

// monitorName is the hidden command a container's monitor runs as.
const monitorName = "__monitor"

func monitorCommandDef() *cli.Command {
	return &cli.Command{
		Name:   monitorName,
		Hidden: true,
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			if h, ok, err := monitor.Resuming(); ok {
				if err != nil {
					return err
				}
				ctr, err := openMonitored(h.ID, h.Dir, h.RunDir)
				if err != nil {
					return err
				}
				return monitor.Resume(c.Context, ctr, h, monitorCleanup(c.Context, c, ctr))
			}
			// fd 3: the start report to the berth that started us; fd 4:
			// which container ("ID DIR RUNDIR UNIXNANO TRACEPARENT": when
			// the start was asked for, and its trace or "-"), sent once
			// berth has made
			// it ready (EOF: not needed after all); fd 5, when present: an
			// attached connection. The record is read from its directories,
			// the store is opened only to clean up at the end.
			sync := os.NewFile(3, "sync")
			// One read of the whole message (berth closes after it), not
			// Fscanln's read per byte.
			msg := os.NewFile(4, "container")
			data, _ := io.ReadAll(msg)
			msg.Close()
			words := strings.Fields(string(data))
			if len(words) != 5 {
				return nil
			}
			id, dir, runDir := words[0], words[1], words[2]
			nanos, err := strconv.ParseInt(words[3], 10, 64)
			if err != nil {
				return fmt.Errorf("monitor: bad start time %q", words[3])
			}
			var first *os.File
			if f := os.NewFile(5, "attach"); f != nil {
				if _, err := f.Stat(); err == nil {
					first = f
				}
			}
			ctr, err := openMonitored(id, dir, runDir)
			if err != nil {
				_, _ = sync.WriteString(err.Error())
				return err
			}
			ctx := c.Context
			if words[4] != "-" {
				ctx = tracing.WithTraceparent(ctx, words[4])
			}
			return monitor.Run(ctx, ctr, sync, first, time.Unix(0, nanos), monitorCleanup(ctx, c, ctr))
		},
	}
}

// openMonitored reads the record of the container the monitor was given.
func openMonitored(id, dir, runDir string) (*container.Container, error) {
	ctr, err := container.Open(dir, runDir)
	if err == nil && ctr.ID != id {
		err = fmt.Errorf("its record in %s is of container %s", dir, ctr.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("monitor: container %s: %w", id, err)
	}
	return ctr, nil
}

// monitorCleanup is what the monitor does after the last run: unmount the
// rootfs, or remove the container if asked.
func monitorCleanup(ctx context.Context, c *cli.Context, ctr *container.Container) func() error {
	return func() error {
		if err := container.TeardownNetwork(ctx, ctr); err != nil {
			return err
		}
		return withEnv(c, func(e *env) error {
			if ctr.AutoRemove {
				return container.Remove(ctx, e.store, ctr, false)
			}
			_, err := e.store.Unmount(ctr.ID, false)
			return err
		})
	}
}
