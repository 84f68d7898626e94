package main

import (
	"fmt"

	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/format"
	"github.com/berth-containers/berth/engine/image"
)

// dfRow is one line of `system df`.
type dfRow struct {
	Type        string
	TotalCount  int
	Active      int
	Size        string
	Reclaimable string
}

func systemDfCommand() *cli.Command {
	return &cli.Command{
		Name:  "df",
		Usage: "show disk usage",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Usage: "Go template, `table TEMPLATE` or json"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				usage, err := image.DiskUsage(e.store)
				if err != nil {
					return err
				}
				rows := make([]dfRow, 0, len(usage))
				for _, u := range usage {
					rec := units.HumanSizeWithPrecision(float64(u.Reclaimable), 3)
					if u.Size > 0 {
						rec += fmt.Sprintf(" (%d%%)", u.Reclaimable*100/u.Size)
					}
					rows = append(rows, dfRow{Type: u.Type, TotalCount: u.Total, Active: u.Active,
						Size: units.HumanSizeWithPrecision(float64(u.Size), 3), Reclaimable: rec})
				}
				return format.List(c.App.Writer, c.String("format"),
					"table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
					map[string]string{"TotalCount": "TOTAL"}, rows)
			})
		},
	}
}
