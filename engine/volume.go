package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/format"
	"github.com/berth-containers/berth/engine/volume"
)

func volumeCommand() *cli.Command {
	return &cli.Command{
		Name:  "volume",
		Usage: "manage volumes",
		Subcommands: []*cli.Command{
			volumeCreateCommand(), volumeLsCommand(), volumeInspectCommand(), volumeRmCommand(),
			volumePruneCommand(), volumeExportCommand(), volumeImportCommand(),
		},
	}
}

// openVolumes opens the volumes of the configured storage root; commands
// that need the containers (who uses a volume) use withVolumeEnv.
func openVolumes(c *cli.Context) (*volume.Store, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	return openVolumeStore(cfg.Storage.Root)
}

func openVolumeStore(root string) (*volume.Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	return volume.Open(abs)
}

// withVolumeEnv opens the store and the volumes, and works out which
// containers use which volume.
func withVolumeEnv(c *cli.Context, fn func(vs *volume.Store, inUse func(string) []string) error) error {
	return withEnv(c, func(e *env) error {
		vs, err := openVolumeStore(e.cfg.Storage.Root)
		if err != nil {
			return err
		}
		inUse, err := container.VolumesInUse(e.store, vs)
		if err != nil {
			return err
		}
		return fn(vs, inUse)
	})
}

func volumeCreateCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a volume",
		ArgsUsage: "[NAME]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "driver", Aliases: []string{"d"}, Value: volume.Driver, Usage: "volume driver (only local)"},
			&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "set a `KEY=VALUE` label"},
			&cli.StringSliceFlag{Name: "opt", Aliases: []string{"o"}, Usage: "driver option `KEY=VALUE`: type, device, o (as for mount)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 1); err != nil {
				return err
			}
			if d := c.String("driver"); d != volume.Driver {
				return fmt.Errorf("volume driver %q is not supported: only %q", d, volume.Driver)
			}
			labels, err := keyValues("label", c.StringSlice("label"))
			if err != nil {
				return err
			}
			opts, err := keyValues("opt", c.StringSlice("opt"))
			if err != nil {
				return err
			}
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			v, err := vs.Create(volume.CreateOptions{Name: c.Args().First(), Labels: labels, Options: opts})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.App.Writer, v.Name)
			return err
		},
	}
}

// volumeRow is one line of `volume ls`; its fields are what --format sees.
type volumeRow struct {
	Driver     string
	Name       string
	Mountpoint string
	Scope      string
	Labels     string
	CreatedAt  string
	Links      string
	Size       string

	labels map[string]string
}

// Label is one label's value: {{.Label "KEY"}}.
func (r volumeRow) Label(key string) string { return r.labels[key] }

var volumeHeaders = map[string]string{"Name": "VOLUME NAME", "CreatedAt": "CREATED AT"}

func volumeLsCommand() *cli.Command {
	return &cli.Command{
		Name:    "ls",
		Aliases: []string{"list"},
		Usage:   "list volumes",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only volume names"},
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "filter: name=, label=, label!=, driver=, dangling="},
			&cli.StringFlag{Name: "format", Usage: "Go template, `table TEMPLATE` or json"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			list := func(vs *volume.Store, inUse func(string) []string) error {
				vols, err := vs.List(c.StringSlice("filter"), inUse)
				if err != nil {
					return err
				}
				rows := make([]volumeRow, 0, len(vols))
				for _, v := range vols {
					rows = append(rows, volumeRow{Driver: v.Driver, Name: v.Name, Mountpoint: v.Path(), Scope: "local",
						Labels: labelString(v.Labels), CreatedAt: v.CreatedAt.Local().Format(time.RFC3339),
						Links: "N/A", Size: "N/A", labels: v.Labels})
				}
				f := c.String("format")
				if c.Bool("quiet") {
					f = "{{.Name}}"
				}
				return format.List(c.App.Writer, f, "table {{.Driver}}\t{{.Name}}", volumeHeaders, rows)
			}
			// The containers are read only when the filters ask who uses what.
			for _, f := range c.StringSlice("filter") {
				if strings.HasPrefix(strings.ToLower(strings.TrimSpace(f)), "dangling=") {
					return withVolumeEnv(c, list)
				}
			}
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			return list(vs, nil)
		},
	}
}

func labelString(labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for k, v := range labels {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// volumeInfo is docker's `volume inspect` object.
type volumeInfo struct {
	CreatedAt  string
	Driver     string
	Labels     map[string]string
	Mountpoint string
	Name       string
	Options    map[string]string
	Scope      string
}

func volumeInspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show volumes in detail",
		ArgsUsage: "VOLUME...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "Go template or json"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, -1); err != nil {
				return err
			}
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			var items []any
			var errs []error
			for _, name := range c.Args().Slice() {
				v, err := vs.Get(name)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				// Empty maps show as {}, as docker's do.
				items = append(items, volumeInfo{CreatedAt: v.CreatedAt.Local().Format(time.RFC3339), Driver: v.Driver,
					Labels: nonNil(v.Labels), Mountpoint: v.Path(), Name: v.Name, Options: nonNil(v.Options), Scope: "local"})
			}
			// As docker: what was found is printed, then the errors.
			if len(items) > 0 || len(errs) == 0 {
				if items == nil {
					items = []any{}
				}
				if err := format.Object(c.App.Writer, c.String("format"), items); err != nil {
					return err
				}
			}
			return joinErrors(c, errs, c.NArg(), "volumes not found")
		},
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// joinErrors is the end of a command that went on past failures: the one
// error, or each on stderr and a summary.
func joinErrors(c *cli.Context, errs []error, n int, what string) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	for _, err := range errs {
		fmt.Fprintln(c.App.ErrWriter, "Error:", err)
	}
	return fmt.Errorf("%d of %d %s", len(errs), n, what)
}

func volumeRmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Aliases:   []string{"remove"},
		Usage:     "remove volumes",
		ArgsUsage: "VOLUME...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "ignore missing volumes (a volume in use is never removed)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, -1); err != nil {
				return err
			}
			return withVolumeEnv(c, func(vs *volume.Store, inUse func(string) []string) error {
				var errs []error
				for _, name := range c.Args().Slice() {
					if err := vs.Remove(name, c.Bool("force"), inUse); err != nil {
						errs = append(errs, err)
						continue
					}
					fmt.Fprintln(c.App.Writer, name)
				}
				return joinErrors(c, errs, c.NArg(), "volumes not removed")
			})
		},
	}
}

func volumePruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove unused anonymous volumes (all unused ones with -a)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove all unused volumes, not only anonymous ones"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask (berth never asks)"},
			&cli.StringSliceFlag{Name: "filter", Usage: "filter: label=, label!="},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			filters := c.StringSlice("filter")
			if c.Bool("all") {
				filters = append(filters, "all=true")
			}
			return withVolumeEnv(c, func(vs *volume.Store, inUse func(string) []string) error {
				names, freed, err := vs.Prune(inUse, filters...)
				if len(names) > 0 {
					fmt.Fprintln(c.App.Writer, "Deleted Volumes:")
					for _, n := range names {
						fmt.Fprintln(c.App.Writer, n)
					}
				}
				fmt.Fprintln(c.App.Writer, "Total reclaimed space:", units.HumanSizeWithPrecision(float64(freed), 3))
				return err
			})
		},
	}
}

func volumeExportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a volume's content as a tar archive",
		ArgsUsage: "VOLUME",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` instead of stdout"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			out := c.String("output")
			if err := refuseTerminal(c, out); err != nil {
				return err
			}
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			name := c.Args().First()
			if _, err := vs.Get(name); err != nil {
				return err // before a file is made
			}
			return writeArchive(c, out, func(w io.Writer) error { return vs.Export(name, w) })
		},
	}
}

func volumeImportCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "replace a volume's content with a tar archive's (the volume is made if needed)",
		ArgsUsage: "VOLUME FILE|-",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, 2); err != nil {
				return err
			}
			name, src := c.Args().Get(0), c.Args().Get(1)
			var r io.Reader = c.App.Reader
			switch {
			case src == "-" && onTerminal(c.App.Reader):
				return errors.New("refusing to read from a terminal: pipe the tarball or name a file")
			case src != "-":
				f, err := os.Open(src)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			return vs.Import(name, r)
		},
	}
}
