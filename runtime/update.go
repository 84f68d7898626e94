package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/libcontainer"
)

var updateCommand = &cli.Command{
	Name:      "update",
	Usage:     "change the resource limits of a container",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "resources", Aliases: []string{"r"}, Usage: "LinuxResources JSON file, or - for stdin"},
		&cli.StringFlag{Name: "blkio-weight", Usage: "block IO weight (10-1000)"},
		&cli.StringFlag{Name: "cpu-period", Usage: "CPU CFS period in microseconds"},
		&cli.StringFlag{Name: "cpu-quota", Usage: "CPU CFS quota in microseconds"},
		&cli.StringFlag{Name: "cpu-share", Usage: "CPU shares (relative weight)"},
		&cli.StringFlag{Name: "cpu-rt-period", Usage: "CPU realtime period in microseconds"},
		&cli.StringFlag{Name: "cpu-rt-runtime", Usage: "CPU realtime runtime in microseconds"},
		&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs to use"},
		&cli.StringFlag{Name: "cpuset-mems", Usage: "memory nodes to use"},
		&cli.StringFlag{Name: "memory", Usage: "memory limit (bytes, or with k/m/g suffix)"},
		&cli.StringFlag{Name: "memory-reservation", Usage: "memory soft limit"},
		&cli.StringFlag{Name: "memory-swap", Usage: "memory plus swap limit, -1 for unlimited"},
		&cli.StringFlag{Name: "kernel-memory", Usage: "ignored: kernel memory limits are gone from the kernel"},
		&cli.StringFlag{Name: "kernel-memory-tcp", Usage: "ignored: kernel memory limits are gone from the kernel"},
		&cli.IntFlag{Name: "pids-limit", Usage: "maximum number of processes"},
		&cli.StringFlag{Name: "l3-cache-schema", Usage: "Intel RDT: not supported"},
		&cli.StringFlag{Name: "mem-bw-schema", Usage: "Intel RDT: not supported"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, 1); err != nil {
			return err
		}
		if c.IsSet("l3-cache-schema") || c.IsSet("mem-bw-schema") {
			return fmt.Errorf("update: Intel RDT is not supported on this host")
		}
		var fromFile *specs.LinuxResources
		if path := c.String("resources"); path != "" {
			r, err := readResources(path)
			if err != nil {
				return err
			}
			fromFile = r
		}
		return libcontainer.Update(c.String("root"), c.Args().First(), func(r *specs.LinuxResources) error {
			if fromFile != nil {
				mergeResources(r, fromFile)
			}
			return applyUpdateFlags(c, r)
		})
	},
}

func readResources(path string) (*specs.LinuxResources, error) {
	var in io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open resources file: %w", err)
		}
		defer f.Close()
		in = f
	}
	var r specs.LinuxResources
	if err := json.NewDecoder(in).Decode(&r); err != nil {
		return nil, fmt.Errorf("parse resources %s: %w", path, err)
	}
	return &r, nil
}

// mergeResources overlays the set parts of src on dst, as runc update -r does.
func mergeResources(dst, src *specs.LinuxResources) {
	if src.Memory != nil {
		dst.Memory = src.Memory
	}
	if src.CPU != nil {
		dst.CPU = src.CPU
	}
	if src.Pids != nil {
		dst.Pids = src.Pids
	}
	if src.BlockIO != nil {
		dst.BlockIO = src.BlockIO
	}
	if src.HugepageLimits != nil {
		dst.HugepageLimits = src.HugepageLimits
	}
	if src.Unified != nil {
		dst.Unified = src.Unified
	}
}

// parseBytes reads 1024, 512k, 32m, 1g (powers of 1024), and -1.
func parseBytes(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	mult := int64(1)
	lower := strings.ToLower(strings.TrimSuffix(strings.ToLower(s), "b"))
	switch {
	case strings.HasSuffix(lower, "k"):
		mult, lower = 1<<10, strings.TrimSuffix(lower, "k")
	case strings.HasSuffix(lower, "m"):
		mult, lower = 1<<20, strings.TrimSuffix(lower, "m")
	case strings.HasSuffix(lower, "g"):
		mult, lower = 1<<30, strings.TrimSuffix(lower, "g")
	}
	n, err := strconv.ParseInt(lower, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}

func applyUpdateFlags(c *cli.Context, r *specs.LinuxResources) error {
	mem := func() *specs.LinuxMemory {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		return r.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	blkio := func(v uint64) {
		w := uint16(v)
		if r.BlockIO == nil {
			r.BlockIO = &specs.LinuxBlockIO{}
		}
		r.BlockIO.Weight = &w
	}
	for _, err := range []error{
		setIf(c, "memory", parseBytes, func(v int64) { mem().Limit = &v }),
		setIf(c, "memory-reservation", parseBytes, func(v int64) { mem().Reservation = &v }),
		setIf(c, "memory-swap", parseBytes, func(v int64) { mem().Swap = &v }),
		setIf(c, "cpu-share", parseUint, func(v uint64) { cpu().Shares = &v }),
		setIf(c, "cpu-period", parseUint, func(v uint64) { cpu().Period = &v }),
		setIf(c, "cpu-rt-period", parseUint, func(v uint64) { cpu().RealtimePeriod = &v }),
		setIf(c, "blkio-weight", parseUint, blkio),
		setIf(c, "cpu-quota", parseInt, func(v int64) { cpu().Quota = &v }),
		setIf(c, "cpu-rt-runtime", parseInt, func(v int64) { cpu().RealtimeRuntime = &v }),
	} {
		if err != nil {
			return err
		}
	}
	if c.IsSet("cpuset-cpus") {
		cpu().Cpus = c.String("cpuset-cpus")
	}
	if c.IsSet("cpuset-mems") {
		cpu().Mems = c.String("cpuset-mems")
	}
	if c.IsSet("pids-limit") {
		limit := int64(c.Int("pids-limit"))
		r.Pids = &specs.LinuxPids{Limit: &limit}
	}
	return nil
}

func parseUint(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }

func parseInt(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }

// setIf parses flag name, when given, and hands the value to set.
func setIf[T any](c *cli.Context, name string, parse func(string) (T, error), set func(T)) error {
	if !c.IsSet(name) {
		return nil
	}
	v, err := parse(c.String(name))
	if err != nil {
		return fmt.Errorf("--%s: invalid value %q", name, c.String(name))
	}
	set(v)
	return nil
}
