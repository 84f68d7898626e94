// Command berth is a daemonless container engine: images in
// containers/storage, containers run through an OCI runtime.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"go.opentelemetry.io/otel/trace"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/reexec"

	"github.com/berth-containers/berth/engine/config"
	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/registry"
	"github.com/berth-containers/berth/engine/rootless"
	// The constructor that joins a rootless user's namespaces.
	_ "github.com/berth-containers/berth/engine/rootless/join"
	// The constructor that is an idle container monitor (monitor.Resume).
	_ "github.com/berth-containers/berth/engine/monitor/loop"
	"github.com/berth-containers/berth/engine/store"
	"github.com/berth-containers/berth/engine/tracing"
)

// Set at build time.
var (
	version = "0.1.0-dev"
	commit  = ""
)

// Docker's exit codes for failures of the engine itself.
const exitEngine = 125

func main() {
	// containers/storage re-executes this binary to extract layers in a
	// chroot; a rootless berth to hold its user's namespaces.
	reexec.Register(rootless.PauseCommand, rootless.Pause)
	if reexec.Init() {
		return
	}
	if !helpOrVersion(os.Args[1:]) {
		if err := rootless.Enter(); err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(exitEngine)
		}
	}
	app := newApp()
	if err := app.Run(interspersed(app, os.Args)); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "Error:", err)
		// 126 and 127 when the command cannot be run or is not found.
		var se *container.StartError
		if errors.As(err, &se) {
			os.Exit(se.Code)
		}
		os.Exit(exitEngine)
	}
}

// helpOrVersion tells whether berth is asked only for its help or version,
// which need no namespace (and no subordinate ids) of a rootless user.
func helpOrVersion(args []string) bool {
	if len(args) == 0 {
		return true
	}
	switch args[0] {
	case "-h", "--help", "help", "-v", "--version", "version":
		return true
	}
	return false
}

// exitError ends berth with a code and no message of its own.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newApp() *cli.App {
	app := &cli.App{
		Name:                   "berth",
		Usage:                  "run containers without a daemon",
		Version:                version,
		UseShortOptionHandling: true,
		// "-e A=1,2" is one value, as in docker.
		DisableSliceFlagSeparator: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "configuration `FILE` (default " + config.DefaultPath() + ")"},
			&cli.StringFlag{Name: "root", Usage: "storage root directory"},
			&cli.StringFlag{Name: "runroot", Usage: "storage state directory"},
			&cli.StringFlag{Name: "storage-driver", Usage: "storage driver (overlay, vfs)"},
			&cli.StringSliceFlag{Name: "storage-opt", Usage: "storage driver option"},
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "log messages at or above `LEVEL` (debug, info, warn, error)"},
		},
		Before:         before,
		After:          after,
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: append(append(imageCommands(), containerCommands()...),
			&cli.Command{Name: "image", Usage: "manage images", Subcommands: imageSubcommands()},
			&cli.Command{Name: "system", Usage: "manage berth", Subcommands: []*cli.Command{systemDfCommand(), systemPruneCommand(), systemServiceCommand(), systemMetricsCommand()}},
			volumeCommand(),
			networkCommand(),
			builderCommand(),
			healthcheckCommand(),
		),
	}
	noHelpCommands(app.Commands)
	return app
}

// noHelpCommands drops urfave/cli's "help" (alias "h") subcommand from
// commands that have no others: it made `berth inspect h` show the help
// instead of inspecting the container named h. -h and `berth help CMD`
// stay.
func noHelpCommands(cmds []*cli.Command) {
	for _, c := range cmds {
		if len(c.Subcommands) == 0 {
			c.HideHelpCommand = true
		}
		noHelpCommands(c.Subcommands)
	}
}

// imageCommands are the top-level image commands (docker's short forms).
func imageCommands() []*cli.Command {
	return []*cli.Command{
		pullCommand(), pushCommand(), imagesCommand(), inspectCommand(""), historyCommand(),
		tagCommand(), rmiCommand(), saveCommand(), loadCommand(), importCommand(),
		loginCommand(), logoutCommand(), buildCommand(),
	}
}

// containerCommands are the top-level container commands.
func containerCommands() []*cli.Command {
	return []*cli.Command{
		createCommand(), runCommand(), startCommand(), stopCommand(), restartCommand(), killCommand(),
		rmCommand(), psCommand(), logsCommand(), waitCommand(), attachCommand(), monitorCommandDef(),
		bundleCommand(),
		execCommand(), topCommand(), statsCommand(), portCommand(), pauseCommand(), unpauseCommand(), updateCommand(), renameCommand(),
		cpCommand(), diffCommand(), commitCommand(), exportCommand(), eventsCommand(),
		{Name: "container", Usage: "manage containers", Subcommands: containerSubcommands()},
	}
}

// containerSubcommands are `berth container ...`.
func containerSubcommands() []*cli.Command {
	return []*cli.Command{
		createCommand(), runCommand(), startCommand(), stopCommand(), restartCommand(), killCommand(),
		rmCommand(), renamed(psCommand(), "ls", "list"), logsCommand(), waitCommand(), attachCommand(),
		inspectCommand("container"), containerPruneCommand(),
		execCommand(), topCommand(), statsCommand(), portCommand(), pauseCommand(), unpauseCommand(), updateCommand(), renameCommand(),
		cpCommand(), diffCommand(), commitCommand(), exportCommand(),
	}
}

// imageSubcommands are `berth image ...`, the long forms.
func imageSubcommands() []*cli.Command {
	return []*cli.Command{
		renamed(imagesCommand(), "ls", "list"), pullCommand(), pushCommand(), inspectCommand("image"),
		historyCommand(), tagCommand(), renamed(rmiCommand(), "rm"), imagePruneCommand(),
		saveCommand(), loadCommand(), importCommand(), buildCommand(),
	}
}

func renamed(c *cli.Command, name string, aliases ...string) *cli.Command {
	c.Name, c.Aliases = name, aliases
	return c
}

// endTrace ends the command's span and exports the trace (a no-op
// without an OTLP endpoint).
var endTrace = func() {}

// before sets up logging and, when an OTLP endpoint is set, a trace with
// one root span for the command ("berth run"); the monitor continues the
// trace of the start that hands it its container instead, and the API
// service makes a trace per request.
func before(c *cli.Context) error {
	if err := setupLogging(c); err != nil {
		return err
	}
	if !tracing.Enabled() {
		return nil
	}
	ctx, shutdown := tracing.Setup(c.Context, "berth")
	endTrace = shutdown
	if args := c.Args().Slice(); len(args) > 0 && args[0] != monitorName && !(len(args) > 1 && args[0] == "system" && args[1] == "service") {
		var span trace.Span
		ctx, span = tracing.Start(ctx, "berth "+c.Args().First())
		endTrace = func() { span.End(); shutdown() }
	}
	c.Context = ctx
	return nil
}

func after(*cli.Context) error {
	endTrace()
	return nil
}

func setupLogging(c *cli.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return fmt.Errorf("invalid --log-level %q", c.String("log-level"))
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	// containers/storage logs through logrus; only warnings by default.
	logrus.SetLevel(logrus.WarnLevel)
	if level <= slog.LevelDebug {
		logrus.SetLevel(logrus.DebugLevel)
	}
	return nil
}

// env is what most commands work with: configuration, store, registries.
type env struct {
	cfg   *config.Config
	store storage.Store
	reg   *registry.Client
}

// loadConfig reads the configuration file and applies the global flags.
func loadConfig(c *cli.Context) (*config.Config, error) {
	path, required := c.String("config"), true
	if path == "" {
		path, required = config.DefaultPath(), false
	}
	cfg, err := config.Load(path, required)
	if err != nil {
		return nil, err
	}
	if v := c.String("root"); v != "" {
		cfg.Storage.Root = v
	}
	if v := c.String("runroot"); v != "" {
		cfg.Storage.RunRoot = v
	}
	if v := c.String("storage-driver"); v != "" {
		cfg.Storage.Driver = v
	}
	if v := c.StringSlice("storage-opt"); len(v) > 0 {
		cfg.Storage.Options = v
	}
	return cfg, nil
}

// withEnv opens the store for fn and releases it afterwards.
func withEnv(c *cli.Context, fn func(*env) error) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	s, err := store.Open(cfg.Storage)
	if err != nil {
		return err
	}
	// No Shutdown: it would unmount the driver's home only to have the
	// next command mount it again, and make other processes reload.
	return fn(&env{cfg: cfg, store: s, reg: registry.New(cfg)})
}

// needArgs checks the number of positional arguments (max < 0: no limit).
func needArgs(c *cli.Context, min, max int) error {
	n := c.NArg()
	switch {
	case n < min && min == max:
		return fmt.Errorf("%q requires exactly %d argument(s)", c.Command.FullName(), min)
	case n < min:
		return fmt.Errorf("%q requires at least %d argument(s)", c.Command.FullName(), min)
	case max >= 0 && n > max:
		return fmt.Errorf("%q accepts at most %d argument(s)", c.Command.FullName(), max)
	}
	return nil
}
