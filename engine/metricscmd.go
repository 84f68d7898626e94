package main

import (
	"fmt"
	"net"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/api"
	"github.com/berth-containers/berth/engine/metrics"
)

func systemMetricsCommand() *cli.Command {
	return &cli.Command{
		Name:  "metrics",
		Usage: "serve Prometheus metrics of the containers and the engine on /metrics",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:9323", Usage: "`ADDR` (host:port) to listen on, as dockerd's metrics-addr"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				l, err := net.Listen("tcp", c.String("listen"))
				if err != nil {
					return fmt.Errorf("invalid --listen %q: %w", c.String("listen"), err)
				}
				defer l.Close()
				ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
				defer stop()
				return api.Serve(ctx, l, metrics.Mux(e.store), 0)
			})
		},
	}
}
