package main

import (
	"fmt"

	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
)

func updateCommand() *cli.Command {
	return &cli.Command{
		Name:      "update",
		Usage:     "change the resource limits and restart policy of containers",
		ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "memory", Aliases: []string{"m"}, Usage: "memory limit (e.g. 512m)"},
			&cli.StringFlag{Name: "memory-reservation", Usage: "memory soft limit"},
			&cli.StringFlag{Name: "memory-swap", Usage: "memory plus swap limit, -1 for unlimited swap"},
			&cli.Float64Flag{Name: "cpus", Usage: "CPU quota in CPUs"},
			&cli.Uint64Flag{Name: "cpu-shares", Aliases: []string{"c"}, Usage: "CPU shares (relative weight)"},
			&cli.Int64Flag{Name: "cpu-quota", Usage: "CFS quota in microseconds per period"},
			&cli.Uint64Flag{Name: "cpu-period", Usage: "CFS period in microseconds"},
			&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs to run on (0-3, 0,1)"},
			&cli.StringFlag{Name: "cpuset-mems", Usage: "memory nodes to use"},
			&cli.Int64Flag{Name: "pids-limit", Usage: "maximum number of processes, -1 for no limit"},
			&cli.UintFlag{Name: "blkio-weight", Usage: "block I/O weight (10 to 1000)"},
			&cli.StringFlag{Name: "restart", Usage: "restart policy: no, on-failure[:N], always, unless-stopped"},
		},
		Action: func(c *cli.Context) error {
			l, err := updateLimits(c)
			if err != nil {
				return err
			}
			return eachContainer(c, func(e *env, ctr *container.Container) error {
				return container.UpdateLimits(c.Context, e.store, ctr, l)
			})
		},
	}
}

// updateLimits reads update's flags.
func updateLimits(c *cli.Context) (container.Limits, error) {
	l := container.Limits{
		CPUs: c.Float64("cpus"), CPUShares: c.Uint64("cpu-shares"), CPUQuota: c.Int64("cpu-quota"),
		CPUPeriod: c.Uint64("cpu-period"), CpusetCpus: c.String("cpuset-cpus"), CpusetMems: c.String("cpuset-mems"),
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"memory", &l.Memory}, {"memory-reservation", &l.MemoryReservation}, {"memory-swap", &l.MemorySwap}} {
		v := c.String(f.name)
		switch {
		case v == "":
		case v == "-1" && f.name == "memory-swap":
			*f.dst = -1
		default:
			n, err := units.RAMInBytes(v)
			if err != nil || n < 0 {
				return l, fmt.Errorf("invalid --%s %q: want a size such as 512m", f.name, v)
			}
			*f.dst = n
		}
	}
	if c.IsSet("pids-limit") {
		n := c.Int64("pids-limit")
		l.PidsLimit = &n
	}
	w := c.Uint("blkio-weight")
	if w > 1000 {
		return l, fmt.Errorf("invalid --blkio-weight %d: want 10 to 1000", w)
	}
	l.BlkioWeight = uint16(w)
	if v := c.String("restart"); v != "" {
		p, err := restartPolicy(v)
		if err != nil {
			return l, err
		}
		l.Restart = &p
	}
	return l, nil
}
