package main

import (
	"encoding/json"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/libcontainer"
)

var featuresCommand = &cli.Command{
	Name:  "features",
	Usage: "print the runtime-spec features document",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, 0); err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "    ")
		return enc.Encode(libcontainer.Features())
	},
}
