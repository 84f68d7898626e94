package main

import (
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/format"
	"github.com/berth-containers/berth/engine/image"
)

// imageRow is one line of `images`; its fields are what --format sees.
type imageRow struct {
	ID           string
	Repository   string
	Tag          string
	Digest       string
	CreatedAt    string
	CreatedSince string
	Size         string
	Containers   int
}

var imageHeaders = map[string]string{"ID": "IMAGE ID", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT"}

func imagesCommand() *cli.Command {
	return &cli.Command{
		Name:      "images",
		Usage:     "list images",
		ArgsUsage: "[REPOSITORY[:TAG]]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all images (berth keeps no intermediate images)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only image IDs"},
			&cli.BoolFlag{Name: "digests", Usage: "show digests"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not truncate IDs"},
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "filter: dangling=, reference=, label=, before=, since="},
			&cli.StringFlag{Name: "format", Usage: "Go template, `table TEMPLATE` or json"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 1); err != nil {
				return err
			}
			filters := c.StringSlice("filter")
			if c.NArg() == 1 {
				filters = append(filters, "reference="+c.Args().First())
			}
			return withEnv(c, func(e *env) error {
				list, err := image.List(e.store, filters)
				if err != nil {
					return err
				}
				rows := imageRows(list, c.Bool("no-trunc"), c.Bool("quiet"))
				table := "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
				if c.Bool("digests") {
					table = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
				}
				f := c.String("format")
				if c.Bool("quiet") {
					f = "{{.ID}}"
				}
				return format.List(c.App.Writer, f, table, imageHeaders, rows)
			})
		},
	}
}

// imageRows makes a row per name (one <none> row for unnamed images); -q
// wants each image once.
func imageRows(list []image.Summary, noTrunc, unique bool) []imageRow {
	var rows []imageRow
	for _, s := range list {
		row := imageRow{
			ID: shortID(s.ID, noTrunc), Digest: s.Digest, Containers: s.Containers,
			CreatedAt:    s.Created.Format("2006-01-02 15:04:05 -0700 MST"),
			CreatedSince: units.HumanDuration(time.Since(s.Created)) + " ago",
			Size:         units.HumanSizeWithPrecision(float64(s.Size), 3),
		}
		if row.Digest == "" {
			row.Digest = "<none>"
		}
		names := s.Names
		if len(names) == 0 || unique {
			names = names[:min(len(names), 1)]
		}
		if len(names) == 0 {
			row.Repository, row.Tag = "<none>", "<none>"
			rows = append(rows, row)
		}
		for _, n := range names {
			row.Repository, row.Tag = image.SplitName(n)
			rows = append(rows, row)
		}
	}
	return rows
}

// shortID is docker's 12-character ID, or the full sha256:ID with --no-trunc.
func shortID(id string, noTrunc bool) string {
	id = strings.TrimPrefix(id, "sha256:")
	if noTrunc {
		return "sha256:" + id
	}
	return id[:min(len(id), 12)]
}
