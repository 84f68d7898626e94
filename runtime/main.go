// Command berth-runtime is an OCI runtime with runc's command line.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/libcontainer/seccomp"

	// The namespace stage runs from this package's C constructor.
	_ "github.com/berth-containers/berth/libcontainer/nsexec"
)

// Set at build time.
var (
	version = "0.1.0-dev"
	commit  = ""
)

func defaultRoot() string {
	if os.Geteuid() != 0 {
		if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
			return filepath.Join(dir, "berth-runtime")
		}
		return filepath.Join(os.TempDir(), fmt.Sprintf("berth-runtime-%d", os.Geteuid()))
	}
	return "/run/berth-runtime"
}

func main() {
	// The container's init: the C stage has set up namespaces already.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runInit()
		return
	}
	app := newApp()
	if err := app.Run(os.Args); err != nil {
		fatal(err)
	}
}

func newApp() *cli.App {
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Printf("berth-runtime version %s\n", version)
		if commit != "" {
			fmt.Printf("commit: %s\n", commit)
		}
		fmt.Printf("spec: %s\n", specVersion)
		fmt.Printf("go: %s\n", goruntime.Version())
		fmt.Printf("libseccomp: %s\n", seccomp.LibraryVersion())
	}
	app := &cli.App{
		Name:                   "berth-runtime",
		Usage:                  "run OCI containers",
		Version:                version,
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "debug", Usage: "log debug messages"},
			&cli.StringFlag{Name: "log", Usage: "write log messages to `FILE` (default: stderr)"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
			&cli.StringFlag{Name: "root", Value: defaultRoot(), Usage: "directory for container state"},
			&cli.StringFlag{Name: "criu", Usage: "ignored, for runc compatibility"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "ignored: only the cgroupfs driver is supported"},
			&cli.StringFlag{Name: "rootless", Value: "auto", Usage: "ignored, for runc compatibility"},
		},
		Before: setupLogging,
		Commands: []*cli.Command{
			createCommand, startCommand, runCommand, stateCommand, killCommand,
			deleteCommand, listCommand, specCommand, featuresCommand, execCommand,
			psCommand, pauseCommand, resumeCommand, updateCommand, eventsCommand,
		},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	// urfave/cli's "help" subcommand (alias "h") would take a container
	// named h or help for itself: `state h` printed the help. -h stays.
	for _, c := range app.Commands {
		c.HideHelpCommand = true
	}
	return app
}

// logFile is where errors go as well as stderr, for callers such as
// containerd's shim that read the last error line of the log.
var logFile io.Writer

func setupLogging(c *cli.Context) error {
	format := c.String("log-format")
	if format != "text" && format != "json" {
		return fmt.Errorf("unknown --log-format %q (want text or json)", format)
	}
	var out io.Writer = os.Stderr
	if path := c.String("log"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("open log file %s: %w", path, err)
		}
		out = f
		logFile = f
	}
	level := slog.LevelWarn
	if c.Bool("debug") {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		// runc's (logrus) field names, which containerd parses.
		switch a.Key {
		case slog.LevelKey:
			return slog.String("level", lowerLevel(a.Value.Any().(slog.Level)))
		case slog.TimeKey:
			return slog.String("time", a.Value.Time().Format(time.RFC3339Nano))
		}
		return a
	}}
	if format == "json" {
		slog.SetDefault(slog.New(slog.NewJSONHandler(out, opts)))
	} else {
		slog.SetDefault(slog.New(slog.NewTextHandler(out, opts)))
	}
	return nil
}

func lowerLevel(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warning"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}

// exitError carries an exit code through cli's Run without printing.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func fatal(err error) {
	var ee exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	logError(err)
	fmt.Fprintln(os.Stderr, "berth-runtime:", err)
	os.Exit(1)
}

// logError writes err to the --log file, where containerd's shim reads it.
func logError(err error) {
	if logFile != nil {
		slog.Error(err.Error())
	}
}

// checkArgs checks the number of positional arguments.
func checkArgs(c *cli.Context, min, max int) error {
	n := c.NArg()
	if n < min || (max >= 0 && n > max) {
		if min == max {
			return fmt.Errorf("%s: %d argument(s) required, got %d", c.Command.Name, min, n)
		}
		return fmt.Errorf("%s: wrong number of arguments (%d)", c.Command.Name, n)
	}
	return nil
}
