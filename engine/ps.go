package main

import (
	"fmt"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/format"
)

// psRow is one line of `ps`; its fields are what --format sees.
type psRow struct {
	ID         string
	Image      string
	Command    string
	CreatedAt  string
	RunningFor string
	Status     string
	State      string
	Ports      string
	Names      string
	Labels     string
	Size       string
}

var psHeaders = map[string]string{"ID": "CONTAINER ID", "RunningFor": "CREATED", "CreatedAt": "CREATED AT"}

func psCommand() *cli.Command {
	return &cli.Command{
		Name:  "ps",
		Usage: "list containers",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all containers, not only running ones"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only container IDs"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not truncate output"},
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "filter: id=, name=, status=, label=, ancestor=, exited=, health=, since=, before=, network="},
			&cli.StringFlag{Name: "format", Usage: "Go template, `table TEMPLATE` or json"},
			&cli.BoolFlag{Name: "size", Aliases: []string{"s"}, Usage: "show the size of each container's layer and its image"},
			&cli.IntFlag{Name: "last", Aliases: []string{"n"}, Usage: "show the N last created containers, in any state"},
			&cli.BoolFlag{Name: "latest", Aliases: []string{"l"}, Usage: "show the last created container, in any state"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				last := c.Int("last")
				if c.Bool("latest") {
					last = 1
				}
				list, err := container.Select(c.Context, e.store, container.ListOptions{All: c.Bool("all"), Filters: c.StringSlice("filter"), Last: last})
				if err != nil {
					return err
				}
				noTrunc := c.Bool("no-trunc")
				rows := make([]psRow, 0, len(list))
				for _, ctr := range list {
					row := makePsRow(ctr, noTrunc)
					if c.Bool("size") {
						rw, rootfs, err := container.Sizes(e.store, ctr)
						if err != nil {
							return err
						}
						row.Size = fmt.Sprintf("%s (virtual %s)", units.HumanSizeWithPrecision(float64(rw), 3), units.HumanSizeWithPrecision(float64(rootfs), 3))
					}
					rows = append(rows, row)
				}
				f := c.String("format")
				if c.Bool("quiet") {
					f = "{{.ID}}"
				}
				table := "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
				if c.Bool("size") {
					table += "\t{{.Size}}"
				}
				return format.List(c.App.Writer, f, table, psHeaders, rows)
			})
		},
	}
}

func makePsRow(ctr *container.Container, noTrunc bool) psRow {
	cmd := strings.Join(append([]string{ctr.Path}, ctr.Args...), " ")
	if !noTrunc && len(cmd) > 20 {
		cmd = cmd[:19] + "…"
	}
	var labels []string
	for k, v := range ctr.Labels {
		labels = append(labels, k+"="+v)
	}
	return psRow{
		ID: containerID(ctr.ID, noTrunc), Image: ctr.Image, Command: fmt.Sprintf("%q", cmd),
		CreatedAt:  ctr.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: units.HumanDuration(time.Since(ctr.Created)) + " ago",
		Status:     ctr.StatusText(), State: ctr.Status, Names: ctr.Name,
		Ports: publishedText(ctr), Labels: strings.Join(labels, ","),
	}
}

// publishedText is docker's PORTS column: "0.0.0.0:8080->80/tcp, ...".
func publishedText(ctr *container.Container) string {
	var out []string
	for _, m := range ctr.Published {
		out = append(out, fmt.Sprintf("%s->%d/%s", public(m), m.ContainerPort, proto(m)))
	}
	return strings.Join(out, ", ")
}

// containerID is docker's 12-character container ID, or all of it with
// --no-trunc (no "sha256:", unlike image IDs).
func containerID(id string, noTrunc bool) string {
	if noTrunc {
		return id
	}
	return id[:min(len(id), 12)]
}
