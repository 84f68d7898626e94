package main

import (
	"errors"
	"fmt"
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
			case out == "" && onTerminal(c.App.Writer):
				return errors.New("refusing to write to a terminal, use -o")
			}
			refs := c.Args().Slice()
			return withEnv(c, func(e *env) error {
				switch {
				case out == "":
					return image.Save(c.Context, e.store, refs, format, c.App.Writer)
				case format == image.OCIDir:
					return replaceAtomically(out, true, func(tmp string) error {
						return image.SaveDir(c.Context, e.store, refs, tmp)
					})
				}
				return replaceAtomically(out, false, func(tmp string) error {
					f, err := os.OpenFile(tmp, os.O_WRONLY, 0)
					if err != nil {
						return err
					}
					err = image.Save(c.Context, e.store, refs, format, f)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
					return err
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
