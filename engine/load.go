package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/image"
)

func loadCommand() *cli.Command {
	return &cli.Command{
		Name:  "load",
		Usage: "load images from a docker-archive or OCI archive",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Usage: "read `FILE` (or an OCI layout directory) instead of stdin"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "accepted for docker compatibility (berth load shows no progress)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			in := c.String("input")
			if in == "" && onTerminal(c.App.Reader) {
				return errors.New("refusing to read from a terminal, use -i or a pipe")
			}
			return withEnv(c, func(e *env) error {
				var names []string
				var err error
				if fi, serr := os.Stat(in); in != "" && serr == nil && fi.IsDir() {
					names, err = image.LoadDir(c.Context, e.store, in)
				} else if in != "" {
					f, oerr := os.Open(in)
					if oerr != nil {
						return oerr
					}
					defer f.Close()
					names, err = image.Load(c.Context, e.store, f)
				} else {
					names, err = image.Load(c.Context, e.store, c.App.Reader)
				}
				// Images loaded before a failure are reported too.
				for _, n := range names {
					label := "Loaded image: "
					if strings.HasPrefix(n, "sha256:") {
						label = "Loaded image ID: "
					}
					if _, werr := fmt.Fprintln(c.App.Writer, label+n); werr != nil && err == nil {
						err = werr
					}
				}
				return err
			})
		},
	}
}
