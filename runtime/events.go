package main

import (
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/libcontainer"
	"github.com/berth-containers/berth/libcontainer/cgroups"
	"github.com/berth-containers/berth/libcontainer/state"
)

// event is runc's events line: {"type":"stats"|"oom","id":...,"data":...}.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

var eventsCommand = &cli.Command{
	Name:      "events",
	Usage:     "print container statistics and OOM events as JSON lines",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "stats", Usage: "print statistics once and exit"},
		&cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "interval between statistics"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, 1); err != nil {
			return err
		}
		root, id := c.String("root"), c.Args().First()
		enc := json.NewEncoder(os.Stdout)
		emitStats := func() error {
			st, err := libcontainer.Stats(root, id)
			if err != nil {
				return err
			}
			return enc.Encode(event{Type: "stats", ID: id, Data: convertStats(st)})
		}
		if c.Bool("stats") {
			return emitStats()
		}
		if c.Duration("interval") <= 0 {
			return errors.New("events: --interval must be positive")
		}
		ooms, err := libcontainer.OOMKills(root, id)
		if err != nil {
			return err
		}
		statsTick := time.NewTicker(c.Duration("interval"))
		defer statsTick.Stop()
		// OOM kills are found by polling the kill counter, often enough to
		// report them promptly and cheaply.
		oomTick := time.NewTicker(200 * time.Millisecond)
		defer oomTick.Stop()
		// checkOOM reports new OOM kills, and whether the container stopped:
		// the stream ends with it, after its last OOM kill.
		checkOOM := func() (bool, error) {
			n, err := libcontainer.OOMKills(root, id)
			if err != nil {
				return false, err
			}
			if n > ooms {
				enc.Encode(event{Type: "oom", ID: id})
				ooms = n
			}
			_, status, err := libcontainer.Inspect(root, id)
			return status == state.Stopped, err
		}
		for {
			select {
			case <-statsTick.C:
				if err := emitStats(); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
					return err
				}
			case <-oomTick.C:
			}
			if stopped, err := checkOOM(); stopped || err != nil {
				return err
			}
		}
	},
}

// stats is the subset of runc's events statistics that callers read.
type stats struct {
	CPU struct {
		Usage struct {
			Total  uint64   `json:"total"`
			Percpu []uint64 `json:"percpu,omitempty"`
			Kernel uint64   `json:"kernel"`
			User   uint64   `json:"user"`
		} `json:"usage"`
		Throttling struct {
			Periods          uint64 `json:"periods,omitempty"`
			ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
			ThrottledTime    uint64 `json:"throttledTime,omitempty"`
		} `json:"throttling"`
	} `json:"cpu"`
	Memory struct {
		Cache uint64            `json:"cache,omitempty"`
		Usage memoryEntry       `json:"usage"`
		Swap  memoryEntry       `json:"swap"`
		Raw   map[string]uint64 `json:"raw,omitempty"`
	} `json:"memory"`
	Pids struct {
		Current uint64 `json:"current,omitempty"`
		Limit   uint64 `json:"limit,omitempty"`
	} `json:"pids"`
	Hugetlb map[string]hugetlb `json:"hugetlb,omitempty"`
}

type memoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

type hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

func convertStats(in *cgroups.Stats) *stats {
	var s stats
	cu := in.CpuStats.CpuUsage
	s.CPU.Usage.Total, s.CPU.Usage.Percpu = cu.TotalUsage, cu.PercpuUsage
	s.CPU.Usage.Kernel, s.CPU.Usage.User = cu.UsageInKernelmode, cu.UsageInUsermode
	th := in.CpuStats.ThrottlingData
	s.CPU.Throttling.Periods, s.CPU.Throttling.ThrottledPeriods, s.CPU.Throttling.ThrottledTime = th.Periods, th.ThrottledPeriods, th.ThrottledTime
	m := in.MemoryStats
	s.Memory.Cache, s.Memory.Raw = m.Cache, m.Stats
	s.Memory.Usage = memoryEntry{Limit: m.Usage.Limit, Usage: m.Usage.Usage, Max: m.Usage.MaxUsage, Failcnt: m.Usage.Failcnt}
	s.Memory.Swap = memoryEntry{Limit: m.SwapUsage.Limit, Usage: m.SwapUsage.Usage, Max: m.SwapUsage.MaxUsage, Failcnt: m.SwapUsage.Failcnt}
	s.Pids.Current, s.Pids.Limit = in.PidsStats.Current, in.PidsStats.Limit
	if len(in.HugetlbStats) > 0 {
		s.Hugetlb = map[string]hugetlb{}
		for size, h := range in.HugetlbStats {
			s.Hugetlb[size] = hugetlb{Usage: h.Usage, Max: h.MaxUsage, Failcnt: h.Failcnt}
		}
	}
	return &s
}
