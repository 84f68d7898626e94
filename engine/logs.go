package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "show a container's output",
		ArgsUsage: "CONTAINER",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "follow the output until the container exits"},
			&cli.StringFlag{Name: "tail", Aliases: []string{"n"}, Value: "all", Usage: "show the last `N` lines"},
			&cli.StringFlag{Name: "since", Usage: "show lines since a time (RFC 3339) or for a duration (10m)"},
			&cli.StringFlag{Name: "until", Usage: "show lines before a time or duration ago"},
			&cli.BoolFlag{Name: "timestamps", Aliases: []string{"t"}, Usage: "show timestamps"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			o := container.LogOptions{Follow: c.Bool("follow"), Timestamps: c.Bool("timestamps"), Tail: -1}
			if t := c.String("tail"); t != "all" {
				n, err := strconv.Atoi(t)
				if err != nil || n < 0 {
					return fmt.Errorf("invalid --tail %q: want a number or all", t)
				}
				o.Tail = n
			}
			var err error
			if o.Since, err = parseTime("since", c.String("since")); err != nil {
				return err
			}
			if o.Until, err = parseTime("until", c.String("until")); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				ctr, err := container.Lookup(e.store, c.Args().First())
				if err != nil {
					return err
				}
				return container.Logs(c.Context, e.store, ctr, o, os.Stdout, os.Stderr)
			})
		},
	}
}

// parseTime takes docker's forms: RFC 3339, a Unix time, or a duration ago.
func parseTime(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Unix(0, int64(secs*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("invalid --%s %q: want a time (RFC 3339) or a duration", flag, v)
}
