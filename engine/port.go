package main

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/network"
)

func portCommand() *cli.Command {
	return &cli.Command{
		Name:      "port",
		Usage:     "list a running container's published ports",
		ArgsUsage: "CONTAINER [PRIVATE_PORT[/PROTO]]",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 2); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				ctr, err := container.Find(c.Context, e.store, c.Args().First())
				if err != nil {
					return err
				}
				maps := append([]network.PortMapping(nil), ctr.Published...)
				sort.SliceStable(maps, func(i, j int) bool {
					if maps[i].ContainerPort != maps[j].ContainerPort {
						return maps[i].ContainerPort < maps[j].ContainerPort
					}
					return proto(maps[i]) < proto(maps[j])
				})
				if c.NArg() == 1 {
					for _, m := range maps {
						fmt.Fprintf(c.App.Writer, "%d/%s -> %s\n", m.ContainerPort, proto(m), public(m))
					}
					return nil
				}
				want := c.Args().Get(1)
				port, p, _ := strings.Cut(want, "/")
				if p == "" {
					p = "tcp"
				}
				n, err := strconv.Atoi(port)
				if err != nil || n < 1 || n > 65535 {
					return fmt.Errorf("invalid port %q: want PORT[/PROTO]", want)
				}
				found := false
				for _, m := range maps {
					if m.ContainerPort == n && proto(m) == p {
						fmt.Fprintln(c.App.Writer, public(m))
						found = true
					}
				}
				if !found {
					return fmt.Errorf("no public port '%d/%s' published for %s", n, p, ctr.Name)
				}
				return nil
			})
		},
	}
}

func proto(m network.PortMapping) string {
	if m.Protocol == "" {
		return "tcp"
	}
	return m.Protocol
}

// public is docker's HOST_IP:HOST_PORT, 0.0.0.0 for all addresses.
func public(m network.PortMapping) string {
	ip := m.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return net.JoinHostPort(ip, strconv.Itoa(m.HostPort))
}
