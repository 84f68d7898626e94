package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/build"
	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/progress"
	"github.com/berth-containers/berth/engine/rootless"
)

func buildCommand() *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "build an image from a Dockerfile",
		ArgsUsage: "CONTEXT (a directory, a tar file, or - for a tar or a Dockerfile on stdin)",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "tag", Aliases: []string{"t"}, Usage: "name the image `NAME[:TAG]`; repeatable"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the Dockerfile (`PATH`, - for stdin; default CONTEXT/Dockerfile)"},
			&cli.StringSliceFlag{Name: "build-arg", Usage: "set the build argument `KEY=VALUE` (KEY alone: from the environment)"},
			&cli.StringFlag{Name: "target", Usage: "build up to the `STAGE`"},
			&cli.BoolFlag{Name: "no-cache", Usage: "use no cached step"},
			&cli.BoolFlag{Name: "pull", Usage: "pull base images even when stored"},
			&cli.StringSliceFlag{Name: "label", Usage: "set the image label `KEY=VALUE`"},
			&cli.StringFlag{Name: "platform", Usage: "build for `OS/ARCH` (only the host's)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the image ID"},
			&cli.StringFlag{Name: "iidfile", Usage: "write the image ID to `FILE`"},
			&cli.StringFlag{Name: "network", Usage: "RUN's `NETWORK`: default, none, host or a network's name"},
			&cli.StringSliceFlag{Name: "add-host", Usage: "add `HOST:IP` to RUN's /etc/hosts"},
			&cli.StringSliceFlag{Name: "secret", Usage: "a secret for RUN --mount=type=secret: `id=ID,src=FILE`"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the root filesystem instead of storing an image: `type=local|tar,dest=PATH`"},
			&cli.StringSliceFlag{Name: "cache-from", Usage: "a registry `REPOSITORY` to take steps the store's cache misses from"},
			&cli.StringSliceFlag{Name: "cache-to", Usage: "a registry `REPOSITORY` to push every layer step to, tagged with its cache key"},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "output `TYPE`: auto, plain or quiet"},
			&cli.StringFlag{Name: "runtime", Usage: "OCI runtime `PATH` for RUN steps (default berth-runtime)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			err := withEnv(c, func(e *env) error { return runBuild(c, e) })
			if err != nil {
				// docker build's failures exit 1.
				fmt.Fprintln(c.App.ErrWriter, "Error:", err)
				return exitError{code: 1}
			}
			return nil
		},
	}
}

func runBuild(c *cli.Context, e *env) error {
	quiet := c.Bool("quiet")
	switch p := c.String("progress"); p {
	case "auto", "plain", "tty":
	case "quiet":
		quiet = true
	default:
		return fmt.Errorf("invalid --progress %q: want auto, plain or quiet", p)
	}
	o := build.Options{
		Tags: c.StringSlice("tag"), Target: c.String("target"), NoCache: c.Bool("no-cache"), Pull: c.Bool("pull"),
		Platform: c.String("platform"), Network: c.String("network"), AddHosts: c.StringSlice("add-host"),
		Registry: e.reg, Rootless: rootless.Enabled(), CacheFrom: c.StringSlice("cache-from"), CacheTo: c.StringSlice("cache-to"),
		Runtime: container.Runtime{Path: runtimePath(c), Root: filepath.Join(e.cfg.Storage.RunRoot, "runtime")},
	}
	o.NetConfDir, o.NetRunDir = networkDirs(c, e)
	var err error
	if o.BuildArgs, err = buildArgs(c.StringSlice("build-arg")); err != nil {
		return err
	}
	if o.Labels, err = keyValueMap("--label", c.StringSlice("label")); err != nil {
		return err
	}
	if o.Secrets, err = secrets(c.StringSlice("secret")); err != nil {
		return err
	}
	output, err := parseOutput(c.String("output"))
	if err != nil {
		return err
	}
	if err := openContext(c, e, &o); err != nil {
		return err
	}
	defer o.Context.Close()
	if err := build.Sweep(e.store, o.Runtime, o.NetConfDir, o.NetRunDir); err != nil {
		return err
	}
	var live *progress.Live
	if !quiet {
		o.Out = c.App.ErrWriter
		if output == nil {
			o.Out = c.App.Writer
		}
		if c.String("progress") != "plain" {
			if live = progress.NewLive(o.Out); live != nil {
				o.Out = live
			}
		}
	}
	res, err := build.Build(c.Context, e.store, o)
	if live != nil {
		live.Finish(err != nil)
	}
	if res != nil {
		for _, w := range res.Warnings {
			fmt.Fprintln(c.App.ErrWriter, "WARNING:", w)
		}
	}
	if err != nil {
		return err
	}
	id := res.Image.ID
	if output != nil {
		err := exportOutput(c, e, res, output)
		if len(o.Tags) == 0 {
			// Not asked to be kept: the image was only the way there.
			_, _ = e.store.DeleteImage(id, false)
		}
		return err
	}
	if f := c.String("iidfile"); f != "" {
		if err := os.WriteFile(f, []byte("sha256:"+id), 0o644); err != nil {
			return fmt.Errorf("--iidfile: %w", err)
		}
	}
	if quiet {
		_, err = fmt.Fprintln(c.App.Writer, "sha256:"+id)
	} else {
		_, err = fmt.Fprintln(c.App.Writer, id)
	}
	return err
}

// openContext reads CONTEXT and -f into o: a directory with its
// Dockerfile, a tar (a file, or on stdin), or a lone Dockerfile on stdin.
func openContext(c *cli.Context, e *env, o *build.Options) error {
	arg, file := c.Args().First(), c.String("file")
	tmp := filepath.Join(e.store.GraphRoot(), "tmp")
	var err error
	switch {
	case arg == "-":
		if file == "-" {
			return errors.New("stdin cannot hold both the context and the Dockerfile")
		}
		data, isTar, err := readStdin(c.App.Reader)
		if err != nil {
			return err
		}
		if !isTar {
			o.Dockerfile, o.DockerfileName = data, "Dockerfile"
			o.Context, err = build.OpenDir(emptyDir(tmp), nil)
			return err
		}
		return tarContext(o, data, file, tmp)
	default:
		fi, err := os.Stat(arg)
		if err != nil {
			return fmt.Errorf("build context: %w", err)
		}
		if !fi.IsDir() {
			data, err := os.ReadFile(arg)
			if err != nil {
				return fmt.Errorf("build context: %w", err)
			}
			return tarContext(o, data, file, tmp)
		}
	}
	df := file
	switch {
	case df == "-":
		if o.Dockerfile, err = io.ReadAll(c.App.Reader); err != nil {
			return fmt.Errorf("read the Dockerfile from stdin: %w", err)
		}
		o.DockerfileName = "Dockerfile"
	default:
		if df == "" {
			df = filepath.Join(arg, "Dockerfile")
		}
		if o.Dockerfile, err = os.ReadFile(df); err != nil {
			return fmt.Errorf("read the Dockerfile: %w", err)
		}
		o.DockerfileName = filepath.Base(df)
	}
	// The Dockerfile's own NAME.dockerignore goes before the context's.
	var ignore []byte
	for _, p := range []string{df + ".dockerignore", filepath.Join(arg, ".dockerignore")} {
		if file == "-" && p == "-.dockerignore" {
			continue
		}
		if data, err := os.ReadFile(p); err == nil {
			ignore = data
			break
		}
	}
	o.Context, err = build.OpenDir(arg, ignore)
	return err
}

// tarContext extracts a tar context and reads its Dockerfile (and
// ignore files) from it.
func tarContext(o *build.Options, data []byte, file, tmp string) (err error) {
	o.Context, o.Dockerfile, err = build.OpenTarContext(bytes.NewReader(data), file, tmp)
	if file == "" {
		file = "Dockerfile"
	}
	o.DockerfileName = filepath.Base(file)
	return err
}

// readStdin reads stdin and tells whether it is a tar.
func readStdin(r io.Reader) ([]byte, bool, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, false, fmt.Errorf("read stdin: %w", err)
	}
	return data, build.IsTar(data), nil
}

// emptyDir is an empty context for a Dockerfile read from stdin.
func emptyDir(tmp string) string {
	dir := filepath.Join(tmp, "empty-context")
	_ = os.MkdirAll(dir, 0o700)
	return dir
}

// buildArgs reads --build-arg: KEY=VALUE, or KEY for the environment's.
func buildArgs(list []string) (map[string]string, error) {
	args := map[string]string{}
	for _, a := range list {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid --build-arg %q: want KEY=VALUE", a)
		}
		if !ok {
			if v, ok = os.LookupEnv(k); !ok {
				continue // docker: an unset variable is no arg
			}
		}
		args[k] = v
	}
	return args, nil
}

func keyValueMap(flag string, list []string) (map[string]string, error) {
	m := map[string]string{}
	for _, a := range list {
		k, v, _ := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid %s %q: want KEY=VALUE", flag, a)
		}
		m[k] = v
	}
	return m, nil
}

// secrets reads --secret id=ID,src=FILE (or source=FILE).
func secrets(list []string) (map[string]string, error) {
	m := map[string]string{}
	for _, s := range list {
		var id, src string
		for _, f := range strings.Split(s, ",") {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "id":
				id = v
			case "src", "source":
				src = v
			case "type":
			default:
				return nil, fmt.Errorf("invalid --secret %q: unknown field %q", s, k)
			}
		}
		if id == "" || src == "" {
			return nil, fmt.Errorf("invalid --secret %q: want id=ID,src=FILE", s)
		}
		if _, err := os.Stat(src); err != nil {
			return nil, fmt.Errorf("--secret %s: %w", id, err)
		}
		m[id] = src
	}
	return m, nil
}

type outputSpec struct{ kind, dest string }

// exportOutput writes the built root filesystem where --output says.
func exportOutput(c *cli.Context, e *env, res *build.Result, o *outputSpec) error {
	w := c.App.Writer
	if o.kind == "tar" && o.dest != "-" {
		f, err := os.Create(o.dest)
		if err != nil {
			return fmt.Errorf("--output dest: %w", err)
		}
		defer f.Close()
		w = f
	}
	return build.ExportRootfs(e.store, res.Image, o.kind, o.dest, w)
}

// parseOutput reads --output type=local|tar,dest=PATH (a bare PATH is a
// local directory, as docker).
func parseOutput(s string) (*outputSpec, error) {
	if s == "" {
		return nil, nil
	}
	if !strings.Contains(s, "=") {
		return &outputSpec{kind: "local", dest: s}, nil
	}
	o := &outputSpec{}
	for _, f := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "type":
			o.kind = v
		case "dest":
			o.dest = v
		default:
			return nil, fmt.Errorf("invalid --output %q: unknown field %q", s, k)
		}
	}
	switch {
	case o.kind != "local" && o.kind != "tar":
		return nil, fmt.Errorf("invalid --output %q: type must be local or tar", s)
	case o.dest == "" || o.kind == "local" && o.dest == "-":
		return nil, fmt.Errorf("invalid --output %q: dest is required", s)
	}
	return o, nil
}

func builderCommand() *cli.Command {
	return &cli.Command{
		Name:  "builder",
		Usage: "manage the build cache",
		Subcommands: []*cli.Command{{
			Name:  "prune",
			Usage: "remove the build cache",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "all of it (always: berth keeps no other)"},
				&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask (berth never asks)"},
			},
			Action: func(c *cli.Context) error {
				if err := needArgs(c, 0, 0); err != nil {
					return err
				}
				return withEnv(c, func(e *env) error {
					confDir, runDir := networkDirs(c, e)
					rt := container.Runtime{Path: runtimePath(c), Root: filepath.Join(e.cfg.Storage.RunRoot, "runtime")}
					if err := build.Sweep(e.store, rt, confDir, runDir); err != nil {
						return err
					}
					n, freed, err := build.Prune(e.store)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(c.App.Writer, "Deleted %d cached layers\nTotal reclaimed space: %s\n", n, units.HumanSizeWithPrecision(float64(freed), 3))
					return err
				})
			},
		}},
	}
}
