package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/libcontainer"
	"github.com/berth-containers/berth/libcontainer/state"
)

var listCommand = &cli.Command{
	Name:  "list",
	Usage: "list containers",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only ids"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, 0); err != nil {
			return err
		}
		root := c.String("root")
		ids, err := state.List(root)
		if err != nil {
			return err
		}
		var all []*containerState
		for _, id := range ids {
			st, status, err := libcontainer.Status(state.View(root, id))
			if err != nil {
				continue // deleted meanwhile
			}
			all = append(all, describe(id, st, status))
		}
		if c.Bool("quiet") {
			for _, cs := range all {
				fmt.Println(cs.ID)
			}
			return nil
		}
		switch c.String("format") {
		case "json":
			if all == nil {
				all = []*containerState{}
			}
			return json.NewEncoder(os.Stdout).Encode(all)
		case "table":
			w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
			fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
			for _, cs := range all {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", cs.ID, cs.Pid, cs.Status, cs.Bundle,
					cs.Created.Format(time.RFC3339Nano), cs.Owner)
			}
			return w.Flush()
		}
		return fmt.Errorf("invalid --format %q (want table or json)", c.String("format"))
	},
}
