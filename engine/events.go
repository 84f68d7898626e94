package main

import (
	"fmt"
	"os/signal"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/events"
	"github.com/berth-containers/berth/engine/format"
)

func eventsCommand() *cli.Command {
	return &cli.Command{
		Name:  "events",
		Usage: "show container and image events",
		Description: "Without --since or --until, only new events are shown, as they happen, until\n" +
			"interrupted. --since shows the past events from a time on, then new ones; --until\n" +
			"stops at a time (at once when it has passed). Times are durations before now (10m),\n" +
			"Unix times or RFC 3339 dates. Events are kept in the run root: a reboot forgets them.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "since", Usage: "show events from `TIME` on"},
			&cli.StringFlag{Name: "until", Usage: "show events up to `TIME`"},
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "type=container|image, event=ACTION, container=NAME|ID, image=NAME|ID, label=KEY[=VALUE]"},
			&cli.StringFlag{Name: "format", Usage: "json, or a Go template (e.g. '{{.Action}} {{.Actor.Attributes.name}}')"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			now := time.Now()
			since, err := events.ParseTime(c.String("since"), now)
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			until, err := events.ParseTime(c.String("until"), now)
			if err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			if !since.IsZero() && !until.IsZero() && until.Before(since) {
				return fmt.Errorf("--until (%s) is before --since (%s)", c.String("until"), c.String("since"))
			}
			match, err := events.ParseFilters(c.StringSlice("filter"))
			if err != nil {
				return err
			}
			print, err := eventPrinter(c)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context, unix.SIGINT, unix.SIGTERM)
			defer stop()
			return withEnv(c, func(e *env) error {
				o := events.ReadOptions{Since: since, Until: until, Match: match, Follow: until.IsZero() || until.After(now)}
				return events.Read(ctx, e.store.RunRoot(), o, print)
			})
		},
	}
}

// eventPrinter prints an event as --format says: docker's text line by
// default, a JSON object per line with json, or the template's output.
func eventPrinter(c *cli.Context) (func(*events.Event) error, error) {
	w := c.App.Writer
	switch f := c.String("format"); f {
	case "":
		return func(e *events.Event) error {
			_, err := fmt.Fprintln(w, e.String())
			return err
		}, nil
	case "json":
		f = "{{json .}}"
		fallthrough
	default:
		t, err := format.Parse(f)
		if err != nil {
			return nil, err
		}
		return func(e *events.Event) error {
			if err := t.Execute(w, e); err != nil {
				return fmt.Errorf("format: %w", err)
			}
			_, err := fmt.Fprintln(w)
			return err
		}, nil
	}
}
