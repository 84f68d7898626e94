package main

import (
	"time"

	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/format"
	"github.com/berth-containers/berth/engine/image"
)

// historyRow is one line of `history`; its fields are what --format sees.
type historyRow struct {
	ID           string
	CreatedAt    string
	CreatedSince string
	CreatedBy    string
	Size         string
	Comment      string
}

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "show how an image was built",
		ArgsUsage: "IMAGE",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "human", Aliases: []string{"H"}, Value: true, Usage: "sizes and dates in human form"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not truncate output"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only IDs"},
			&cli.StringFlag{Name: "format", Usage: "Go template, `table TEMPLATE` or json"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				img, err := image.Lookup(e.store, c.Args().First())
				if err != nil {
					return err
				}
				entries, err := image.History(e.store, img)
				if err != nil {
					return err
				}
				noTrunc, human := c.Bool("no-trunc"), c.Bool("human")
				rows := make([]historyRow, 0, len(entries))
				for _, h := range entries {
					row := historyRow{ID: h.ID, CreatedBy: h.CreatedBy, Comment: h.Comment,
						CreatedAt: h.Created.Format(time.RFC3339), CreatedSince: h.Created.Format(time.RFC3339),
						Size: units.HumanSizeWithPrecision(float64(h.Size), 3)}
					if h.ID != "<missing>" {
						row.ID = shortID(h.ID, noTrunc)
					}
					if human {
						row.CreatedSince = units.HumanDuration(time.Since(h.Created)) + " ago"
					} else {
						row.Size = units.BytesSize(float64(h.Size))
					}
					if !noTrunc && len(row.CreatedBy) > 45 {
						row.CreatedBy = row.CreatedBy[:44] + "…"
					}
					rows = append(rows, row)
				}
				f := c.String("format")
				if c.Bool("quiet") {
					f = "{{.ID}}"
				}
				return format.List(c.App.Writer, f,
					"table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
					map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedBy": "CREATED BY", "CreatedAt": "CREATED AT"}, rows)
			})
		},
	}
}
