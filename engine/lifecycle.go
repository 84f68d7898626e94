package main

import (
	"fmt"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
)

// eachContainer runs fn for every named container, printing each name as
// docker does, and fails at the end if any failed.
func eachContainer(c *cli.Context, fn func(*env, *container.Container) error) error {
	if err := needArgs(c, 1, -1); err != nil {
		return err
	}
	return withEnv(c, func(e *env) error {
		var errs []error
		for _, ref := range c.Args().Slice() {
			ctr, err := container.Lookup(e.store, ref)
			if err == nil {
				err = fn(e, ctr)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintln(c.App.Writer, ref)
		}
		switch len(errs) {
		case 0:
			return nil
		case 1:
			return errs[0]
		}
		for _, err := range errs[:len(errs)-1] {
			fmt.Fprintln(c.App.ErrWriter, "Error:", err)
		}
		return errs[len(errs)-1]
	})
}

func startCommand() *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "start containers",
		ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "attach", Aliases: []string{"a"}, Usage: "attach to the output and wait for the exit"},
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "attach stdin"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("attach") || c.Bool("interactive") {
				if err := needArgs(c, 1, 1); err != nil {
					return err
				}
				return withEnv(c, func(e *env) error {
					ctr, err := container.Lookup(e.store, c.Args().First())
					if err != nil {
						return err
					}
					code, err := startAttached(c, e, ctr, c.Bool("interactive") && ctr.OpenStdin, true)
					if err != nil {
						return err
					}
					return exitError{code: code}
				})
			}
			return eachContainer(c, func(e *env, ctr *container.Container) error {
				return startContainer(c, e, ctr, nil)
			})
		},
	}
}

func timeoutFlag() cli.Flag {
	return &cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: -1, Usage: "seconds to wait before killing (default: the container's stop timeout)"}
}

func stopTimeout(c *cli.Context, ctr *container.Container) time.Duration {
	if t := c.Int("time"); t >= 0 {
		return time.Duration(t) * time.Second
	}
	return time.Duration(ctr.StopTimeout) * time.Second
}

func stopCommand() *cli.Command {
	return &cli.Command{
		Name:      "stop",
		Usage:     "stop containers: the stop signal, then SIGKILL after a timeout",
		ArgsUsage: "CONTAINER...",
		Flags:     []cli.Flag{timeoutFlag()},
		Action: func(c *cli.Context) error {
			return eachContainer(c, func(e *env, ctr *container.Container) error {
				return container.Stop(c.Context, e.store, ctr, stopTimeout(c, ctr))
			})
		},
	}
}

func restartCommand() *cli.Command {
	return &cli.Command{
		Name:      "restart",
		Usage:     "stop and start containers",
		ArgsUsage: "CONTAINER...",
		Flags:     []cli.Flag{timeoutFlag()},
		Action: func(c *cli.Context) error {
			return eachContainer(c, func(e *env, ctr *container.Container) error {
				if err := container.Stop(c.Context, e.store, ctr, stopTimeout(c, ctr)); err != nil {
					return err
				}
				return startContainer(c, e, ctr, nil)
			})
		},
	}
}

func killCommand() *cli.Command {
	return &cli.Command{
		Name:      "kill",
		Usage:     "send a signal to containers",
		ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "signal", Aliases: []string{"s"}, Value: "KILL", Usage: "signal name or number"},
		},
		Action: func(c *cli.Context) error {
			sig := strings.ToUpper(c.String("signal"))
			return eachContainer(c, func(e *env, ctr *container.Container) error {
				return container.Kill(c.Context, e.store, ctr, sig)
			})
		},
	}
}

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "remove containers",
		ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill a running container first"},
			&cli.BoolFlag{Name: "volumes", Aliases: []string{"v"}, Usage: "remove anonymous volumes too"},
		},
		Action: func(c *cli.Context) error {
			return eachContainer(c, func(e *env, ctr *container.Container) error {
				return container.RemoveWithVolumes(c.Context, e.store, ctr, c.Bool("force"), c.Bool("volumes") || ctr.AutoRemove)
			})
		},
	}
}

func waitCommand() *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "wait for containers to exit and print their exit codes",
		ArgsUsage: "CONTAINER...",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, -1); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				for _, ref := range c.Args().Slice() {
					ctr, err := container.Lookup(e.store, ref)
					if err != nil {
						return err
					}
					code, err := container.WaitExit(c.Context, e.store, ctr, 0)
					if err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, code)
				}
				return nil
			})
		},
	}
}

func attachCommand() *cli.Command {
	return &cli.Command{
		Name:      "attach",
		Usage:     "attach to a running container's input and output",
		ArgsUsage: "CONTAINER",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "no-stdin", Usage: "do not attach stdin"},
			&cli.BoolFlag{Name: "sig-proxy", Value: true, Usage: "pass signals to the container"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				ctr, err := container.Find(c.Context, e.store, c.Args().First())
				if err != nil {
					return err
				}
				if ctr.Status != container.Running || !ctr.MonitorAlive() {
					return fmt.Errorf("you cannot attach to container %s: it is not running", ctr.Name)
				}
				code, err := attachTo(ctr, ctr.OpenStdin && !c.Bool("no-stdin"), c.Bool("sig-proxy"))
				if err != nil {
					return err
				}
				return exitError{code: code}
			})
		},
	}
}

func containerPruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove all stopped containers",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask (berth never asks)"},
			&cli.StringSliceFlag{Name: "filter", Usage: "filter: until=TIME|DURATION, label=K[=V], label!=K[=V]"},
		},
		Action: func(c *cli.Context) error {
			return withEnv(c, func(e *env) error {
				match, err := container.PruneFilters(c.StringSlice("filter"), time.Now())
				if err != nil {
					return err
				}
				ids, freed, err := container.Prune(c.Context, e.store, match)
				printDeleted(c, "Deleted Containers:", ids)
				fmt.Fprintln(c.App.Writer, "Total reclaimed space:", units.HumanSizeWithPrecision(float64(freed), 3))
				return err
			})
		},
	}
}
