package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/image"
)

func saveCommand() *cli.Command {
	return &cli.Command{
		Name:      "save",
		Usage:     "save images to an archive",
		ArgsUsage: "IMAGE...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (the directory for oci-dir) instead of stdout"},
			&cli.StringFlag{Name: "format", Value: image.DockerArchive, Usage: "archive `FORMAT`: docker-archive, oci-archive or oci-dir"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, -1); err != nil {
				return err
			}
			format, out := c.String("format"), c.String("output")
			switch {
			case format == image.OCIDir && out == "":
				return errors.New("--format oci-dir needs -o DIRECTORY")
			}
			if err := refuseTerminal(c, out); err != nil {
				return err
			}
			refs := c.Args().Slice()
			return withEnv(c, func(e *env) error {
				if format == image.OCIDir {
					return replaceAtomically(out, true, func(tmp string) error {
						return image.SaveDir(c.Context, e.store, refs, tmp)
					})
				}
				return writeArchive(c, out, func(w io.Writer) error {
					return image.Save(c.Context, e.store, refs, format, w)
				})
			})
		},
	}
}

// replaceAtomically has write fill a new temporary file (or directory)
// beside path and renames it to path when write succeeds, so that a failed
// save leaves neither a partial archive nor a temporary file behind.
func replaceAtomically(path string, dir bool, write func(tmp string) error) error {
	parent, pattern := filepath.Dir(path), filepath.Base(path)+".tmp*"
	var tmp string
	if dir {
		d, err := os.MkdirTemp(parent, pattern)
		if err != nil {
			return err
		}
		tmp = d
	} else {
		f, err := os.CreateTemp(parent, pattern)
		if err != nil {
			return err
		}
		tmp = f.Name()
		f.Close()
	}
	err := write(tmp)
	if err == nil && dir {
		err = os.Chmod(tmp, 0o755) // MkdirTemp's 0700 would hide the layout from other users
	}
	if err == nil {
		if err = os.Rename(tmp, path); err != nil {
			err = fmt.Errorf("save to %s: %w", path, err)
		}
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
	}
	return err
}

// onTerminal reports whether stdin or stdout (c.App's) is a terminal.
func onTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && isTerminal(f)
}

// refuseTerminal refuses to write an archive to stdout when it is a terminal.
func refuseTerminal(c *cli.Context, out string) error {
	if out == "" && onTerminal(c.App.Writer) {
		return errors.New("refusing to write a tar archive to a terminal: use -o or redirect")
	}
	return nil
}

// writeArchive has write produce an archive on stdout, or, with -o, in a
// file (mode 0644) that appears only once it is complete.
func writeArchive(c *cli.Context, out string, write func(io.Writer) error) error {
	if out == "" {
		return write(c.App.Writer)
	}
	return replaceAtomically(out, false, func(tmp string) error {
		f, err := os.OpenFile(tmp, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_ = f.Chmod(0o644) // not the temporary file's 0600
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
}
