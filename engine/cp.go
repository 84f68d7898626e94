package main

import (
	"context"
	"errors"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/container"
)

func cpCommand() *cli.Command {
	return &cli.Command{
		Name:  "cp",
		Usage: "copy files between a container and the host",
		ArgsUsage: "CONTAINER:SRC_PATH DEST_PATH|-\n" +
			"   berth cp [command options] SRC_PATH|- CONTAINER:DEST_PATH",
		Description: "Paths in a container are relative to its root and never lead out of it, not even\n" +
			"through a symbolic link. A directory SRC_PATH is copied into an existing directory\n" +
			"DEST_PATH, or becomes DEST_PATH when it does not exist; SRC_PATH/. copies a\n" +
			"directory's contents. \"-\" reads a tar archive from stdin (extracted in the directory\n" +
			"DEST_PATH) or writes one to stdout. Works on running and stopped containers.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "archive", Aliases: []string{"a"}, Usage: "keep the owners (uid:gid) of what is copied"},
			&cli.BoolFlag{Name: "follow-link", Aliases: []string{"L"}, Usage: "copy what a symbolic link SRC_PATH points to"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing (berth prints nothing anyway)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, 2); err != nil {
				return err
			}
			src, dst := c.Args().Get(0), c.Args().Get(1)
			srcCtr, srcPath := splitCpArg(src)
			dstCtr, dstPath := splitCpArg(dst)
			switch {
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr == "" && dstCtr == "":
				return errors.New("must specify at least one container source (CONTAINER:PATH)")
			case (srcCtr != "" && srcPath == "") || (dstCtr != "" && dstPath == ""):
				return errors.New("a path in the container is required: CONTAINER:PATH")
			case src == "-" && onTerminal(c.App.Reader):
				return errors.New("refusing to read a tar archive from a terminal: pipe it")
			}
			o := container.CopyOptions{Archive: c.Bool("archive"), FollowLink: c.Bool("follow-link")}
			// The rootfs is mounted for the copy: an interruption or a closed
			// output ends the copy with an error, and the rootfs is unmounted.
			ctx, stop := interruptible(c)
			defer stop()
			return closedPipe(withEnv(c, func(e *env) error {
				name := srcCtr
				if name == "" {
					name = dstCtr
				}
				ctr, err := container.Lookup(e.store, name)
				if err != nil {
					return err
				}
				if srcCtr != "" {
					return container.CopyFrom(ctx, e.store, ctr, srcPath, dstPath, c.App.Writer, o)
				}
				return container.CopyTo(ctx, e.store, ctr, srcPath, dstPath, c.App.Reader, o)
			}))
		},
	}
}

// splitCpArg splits CONTAINER:PATH as docker does: an absolute path, or
// one whose part before the colon holds a "/" ("./a:b"), is the host's.
func splitCpArg(arg string) (ctr, path string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	name, p, ok := strings.Cut(arg, ":")
	if !ok || strings.Contains(name, "/") || name == "" {
		return "", arg
	}
	return name, p
}

// closedPipe ends berth quietly when its output was closed (`| head`), with
// the status a shell shows for a process killed by SIGPIPE.
func closedPipe(err error) error {
	if errors.Is(err, unix.EPIPE) {
		return exitError{code: 128 + int(unix.SIGPIPE)}
	}
	return err
}

// interruptible is the command's context, ended by SIGINT, SIGTERM or
// SIGHUP instead of the process; a write to a closed pipe fails instead
// of killing it. Commands that mount a rootfs use it to unmount it.
func interruptible(c *cli.Context) (context.Context, context.CancelFunc) {
	signal.Ignore(unix.SIGPIPE)
	return signal.NotifyContext(c.Context, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
}
