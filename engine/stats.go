package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"

	cconsole "github.com/containerd/console"
	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/format"
)

// statsRow is one line of `stats`; its fields are what --format sees.
type statsRow struct {
	Container string
	ID        string
	Name      string
	CPUPerc   string
	MemUsage  string
	MemPerc   string
	NetIO     string
	BlockIO   string
	PIDs      string
}

var statsHeaders = map[string]string{
	"ID": "CONTAINER ID", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
	"NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

const statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

// statsInterval is how often stats samples: docker's second.
const statsInterval = time.Second

func statsCommand() *cli.Command {
	return &cli.Command{
		Name:      "stats",
		Usage:     "show containers' resource use",
		ArgsUsage: "[CONTAINER...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all containers, not only running ones"},
			&cli.BoolFlag{Name: "no-stream", Usage: "print one sample and exit"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not truncate IDs"},
			&cli.StringFlag{Name: "format", Usage: "Go template, `table TEMPLATE` or json"},
		},
		Action: func(c *cli.Context) error {
			return withEnv(c, func(e *env) error {
				// Named containers must exist, and stay in the table.
				var named []*container.Container
				for _, ref := range c.Args().Slice() {
					ctr, err := container.Lookup(e.store, ref)
					if err != nil {
						return err
					}
					named = append(named, ctr)
				}
				pick := func() ([]*container.Container, error) {
					list := named
					if len(named) == 0 {
						all, err := container.List(e.store)
						if err != nil {
							return nil, err
						}
						list = all
					}
					var out []*container.Container
					for _, ctr := range list {
						if err := container.Refresh(c.Context, e.store, ctr); err != nil {
							if errors.Is(err, fs.ErrNotExist) {
								continue // removed meanwhile
							}
							return nil, err
						}
						if len(named) > 0 || c.Bool("all") || running(ctr) {
							out = append(out, ctr)
						}
					}
					return out, nil
				}
				tty := false
				if _, err := cconsole.ConsoleFromFile(os.Stdout); err == nil {
					tty = true
				}
				prev := map[string]*container.Stats{}
				// The first table needs two samples for CPU %.
				ctrs, err := pick()
				if err != nil {
					return err
				}
				if err := sample(ctrs, prev); err != nil {
					return err
				}
				for first := true; ; first = false {
					select {
					case <-c.Context.Done():
						return nil
					case <-time.After(statsInterval):
					}
					if ctrs, err = pick(); err != nil {
						return err
					}
					var rows []statsRow
					if rows, prev, err = statsRows(ctrs, prev, c.Bool("no-trunc")); err != nil {
						return err
					}
					var buf bytes.Buffer
					if err := format.List(&buf, c.String("format"), statsTable, statsHeaders, rows); err != nil {
						return err
					}
					if c.Bool("no-stream") {
						_, err := c.App.Writer.Write(buf.Bytes())
						return err
					}
					if tty {
						// Home and clear, as docker redraws.
						fmt.Fprint(c.App.Writer, "\033[2J\033[H")
					} else if !first {
						fmt.Fprintln(c.App.Writer)
					}
					if _, err := c.App.Writer.Write(buf.Bytes()); err != nil {
						return err
					}
				}
			})
		},
	}
}

func running(ctr *container.Container) bool {
	return ctr.Status == container.Running || ctr.Status == container.Paused
}

// sample reads the running containers' stats into into. A container that
// stopped meanwhile (its cgroup is gone) has none.
func sample(ctrs []*container.Container, into map[string]*container.Stats) error {
	for _, ctr := range ctrs {
		if !running(ctr) {
			continue
		}
		st, err := container.ReadStats(ctr, container.CgroupRoot)
		if err == nil {
			into[ctr.ID] = st
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// statsRows samples ctrs again and makes the rows, CPU % against prev; it
// returns the new samples.
func statsRows(ctrs []*container.Container, prev map[string]*container.Stats, noTrunc bool) ([]statsRow, map[string]*container.Stats, error) {
	cur := map[string]*container.Stats{}
	if err := sample(ctrs, cur); err != nil {
		return nil, nil, err
	}
	rows := make([]statsRow, 0, len(ctrs))
	for _, ctr := range ctrs {
		id := shortID(ctr.ID, noTrunc)
		st, ok := cur[ctr.ID]
		if !ok {
			// Not running (or it stopped between list and read): docker's
			// zero row.
			rows = append(rows, statsRow{Container: id, ID: id, Name: ctr.Name, CPUPerc: "0.00%",
				MemUsage: "0B / 0B", MemPerc: "0.00%", NetIO: "0B / 0B", BlockIO: "0B / 0B", PIDs: "0"})
			continue
		}
		rows = append(rows, statsRow{
			Container: id, ID: id, Name: ctr.Name,
			CPUPerc:  fmt.Sprintf("%.2f%%", st.CPUPercent(prev[ctr.ID])),
			MemUsage: units.BytesSize(float64(st.MemUsage)) + " / " + units.BytesSize(float64(st.MemLimit)),
			MemPerc:  fmt.Sprintf("%.2f%%", st.MemPercent()),
			NetIO:    units.HumanSizeWithPrecision(float64(st.NetRx), 3) + " / " + units.HumanSizeWithPrecision(float64(st.NetTx), 3),
			BlockIO:  units.HumanSizeWithPrecision(float64(st.BlockRead), 3) + " / " + units.HumanSizeWithPrecision(float64(st.BlockWrite), 3),
			PIDs:     strconv.FormatUint(st.Pids, 10),
		})
	}
	return rows, cur, nil
}
