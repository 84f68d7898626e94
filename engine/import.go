package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/image"
)

func importCommand() *cli.Command {
	// Not a StringSliceFlag: that splits values at commas, and instructions
	// such as CMD ["a","b"] hold commas. -c is a flag of its own on the same
	// list, since urfave/cli refuses a flag's two forms on one command line.
	var changes stringList
	return &cli.Command{
		Name:      "import",
		Usage:     "create an image from a rootfs tarball",
		ArgsUsage: "FILE|- [REPOSITORY[:TAG]]",
		Flags: []cli.Flag{
			&cli.GenericFlag{Name: "change", Value: &changes, Usage: "apply a Dockerfile `INSTRUCTION` (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR); repeatable, short -c"},
			&cli.GenericFlag{Name: "c", Value: &changes, Hidden: true},
			&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "set the history comment to `MESSAGE`"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 2); err != nil {
				return err
			}
			src := c.Args().Get(0)
			var r io.Reader = c.App.Reader
			switch {
			case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
				return errors.New("importing from a URL is not supported: download the file and import it")
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
			return withEnv(c, func(e *env) error {
				img, err := image.Import(c.Context, e.store, r, c.Args().Get(1), changes, c.String("message"))
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(c.App.Writer, "sha256:"+img.ID)
				return err
			})
		},
	}
}

// stringList is a repeatable flag kept verbatim.
type stringList []string

func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
func (l *stringList) String() string     { return strings.Join(*l, "\n") }
