package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/events"
	"github.com/berth-containers/berth/engine/image"
)

func commitCommand() *cli.Command {
	// Verbatim values, as import's: instructions such as CMD ["a","b"] hold commas.
	var changes stringList
	return &cli.Command{
		Name:      "commit",
		Usage:     "create an image from a container's changes",
		ArgsUsage: "CONTAINER [REPOSITORY[:TAG]]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "commit `MESSAGE` (the history comment)"},
			&cli.StringFlag{Name: "author", Aliases: []string{"a"}, Usage: "`AUTHOR` (\"Name <email>\")"},
			&cli.GenericFlag{Name: "change", Value: &changes, Usage: "apply a Dockerfile `INSTRUCTION` (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR); repeatable, short -c"},
			&cli.GenericFlag{Name: "c", Value: &changes, Hidden: true},
			&cli.BoolFlag{Name: "pause", Aliases: []string{"p"}, Value: true, Usage: "pause a running container while committing"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 2); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				ctr, err := container.Find(c.Context, e.store, c.Args().First())
				if err != nil {
					return err
				}
				if c.Bool("pause") && ctr.Status == container.Running {
					// A consistent snapshot: nothing writes while the layer is read.
					if err := container.Pause(c.Context, e.store, ctr); err != nil {
						fmt.Fprintf(c.App.ErrWriter, "WARNING: cannot pause %s, committing it running: %v\n", ctr.Name, err)
					} else {
						defer func() { _ = container.Unpause(c.Context, e.store, ctr) }()
					}
				}
				o := image.CommitOptions{
					Ref: c.Args().Get(1), Author: c.String("author"), Message: c.String("message"), Changes: changes,
					ContainerID: ctr.ID, EntrypointSet: ctr.Entrypoint != nil, Entrypoint: ctr.Entrypoint, Cmd: ctr.Cmd,
					Env: ctr.Env, WorkingDir: ctr.WorkingDir, User: ctr.User, Labels: ctr.Labels,
					CreatedBy: strings.TrimSpace(ctr.Path + " " + strings.Join(ctr.Args, " ")),
				}
				img, err := image.Commit(c.Context, e.store, ctr.ImageID, ctr.LayerID, o)
				if err != nil {
					return err
				}
				events.Container(e.store.RunRoot(), "commit", ctr.ID, ctr.Image, ctr.Name, "comment", o.Message, "imageID", "sha256:"+img.ID)
				_, err = fmt.Fprintln(c.App.Writer, "sha256:"+img.ID)
				return err
			})
		},
	}
}
