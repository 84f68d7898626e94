package main

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/format"
	"github.com/berth-containers/berth/engine/network"
)

func networkCommand() *cli.Command {
	return &cli.Command{
		Name:  "network",
		Usage: "manage networks",
		Subcommands: []*cli.Command{
			networkCreateCommand(), networkLsCommand(), networkInspectCommand(), networkRmCommand(),
			networkPruneCommand(), networkConnectCommand(), networkDisconnectCommand(),
		},
	}
}

// bridgeNameOpt is docker's driver option naming the bridge interface.
const bridgeNameOpt = "com.docker.network.bridge.name"

// openNetworks returns the network manager of berth's configuration, without
// opening the store.
func openNetworks(c *cli.Context) (*network.Manager, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	return networkManager(c, &env{cfg: cfg})
}

func networkManager(c *cli.Context, e *env) (*network.Manager, error) {
	confDir, runDir := networkDirs(c, e)
	return network.New(confDir, runDir, nil)
}

// resolveNetwork finds a network by name or ID (prefix), as docker does;
// "bridge" and "default" name the default network.
func resolveNetwork(m *network.Manager, ref string) (*network.Network, error) {
	if ref == "bridge" || ref == "default" || ref == m.DefaultName {
		return m.EnsureDefault()
	}
	if n, err := m.Inspect(ref); err == nil {
		return n, nil
	}
	list, err := m.List()
	if err != nil {
		return nil, err
	}
	var found *network.Network
	if ref != "" && strings.Trim(ref, "0123456789abcdef") == "" {
		for _, n := range list {
			if strings.HasPrefix(n.ID, ref) {
				if found != nil {
					return nil, fmt.Errorf("network ID prefix %q is ambiguous", ref)
				}
				found = n
			}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("network %s not found", ref)
	}
	return found, nil
}

func networkCreateCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a network",
		ArgsUsage: "NAME",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "driver", Aliases: []string{"d"}, Value: "bridge", Usage: "network driver (only bridge)"},
			&cli.StringFlag{Name: "subnet", Usage: "subnet in CIDR notation (default: a free 10.89.N.0/24)"},
			&cli.StringFlag{Name: "gateway", Usage: "gateway `IP` (default: the subnet's first address)"},
			&cli.BoolFlag{Name: "internal", Usage: "no outside access: no default route, no masquerade, no published ports"},
			&cli.StringSliceFlag{Name: "label", Usage: "set a `KEY=VALUE` label"},
			&cli.StringSliceFlag{Name: "opt", Aliases: []string{"o"}, Usage: "driver option `KEY=VALUE`: " + bridgeNameOpt},
			&cli.BoolFlag{Name: "ipv6", Usage: "not supported: berth networks are IPv4"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			if d := c.String("driver"); d != "bridge" {
				return fmt.Errorf("network driver %q is not supported: only bridge", d)
			}
			if c.Bool("ipv6") {
				return errors.New("IPv6 networks are not supported")
			}
			labels, err := keyValues("label", c.StringSlice("label"))
			if err != nil {
				return err
			}
			opts, err := keyValues("opt", c.StringSlice("opt"))
			if err != nil {
				return err
			}
			o := network.CreateOptions{
				Name: c.Args().First(), Subnet: c.String("subnet"), Gateway: c.String("gateway"),
				Internal: c.Bool("internal"), Labels: labels,
			}
			for k, v := range opts {
				switch k {
				case bridgeNameOpt:
					o.Bridge = v
				default:
					return fmt.Errorf("invalid --opt %q: only %s is supported", k, bridgeNameOpt)
				}
			}
			if o.Gateway != "" && o.Subnet == "" {
				return errors.New("--gateway needs --subnet")
			}
			m, err := openNetworks(c)
			if err != nil {
				return err
			}
			n, err := m.Create(o)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.App.Writer, n.Name)
			return err
		},
	}
}

// networkRow is one line of `network ls`; its fields are what --format sees.
type networkRow struct {
	ID        string
	Name      string
	Driver    string
	Scope     string
	IPv6      bool
	Internal  bool
	Subnet    string
	Gateway   string
	Bridge    string
	Labels    string
	CreatedAt string

	labels map[string]string
}

// Label is one label's value: {{.Label "KEY"}}.
func (r networkRow) Label(key string) string { return r.labels[key] }

var networkHeaders = map[string]string{"ID": "NETWORK ID", "CreatedAt": "CREATED AT"}

func networkLsCommand() *cli.Command {
	return &cli.Command{
		Name:    "ls",
		Aliases: []string{"list"},
		Usage:   "list networks",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only network IDs"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not truncate IDs"},
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "filter: name=, id=, label=KEY[=VALUE], driver=, type=custom|builtin"},
			&cli.StringFlag{Name: "format", Usage: "Go template, `table TEMPLATE` or json"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			match, err := networkFilter(c.StringSlice("filter"))
			if err != nil {
				return err
			}
			m, err := openNetworks(c)
			if err != nil {
				return err
			}
			// The default network is always there, as docker's bridge.
			if _, err := m.EnsureDefault(); err != nil {
				return err
			}
			list, err := m.List()
			if err != nil {
				return err
			}
			var rows []networkRow
			for _, n := range list {
				if !match(m, n) {
					continue
				}
				id := n.ID
				if !c.Bool("no-trunc") {
					id = id[:min(len(id), 12)]
				}
				var labels []string
				for k, v := range n.Labels {
					labels = append(labels, k+"="+v)
				}
				sort.Strings(labels)
				rows = append(rows, networkRow{
					ID: id, Name: n.Name, Driver: n.Driver, Scope: "local", Internal: n.Internal,
					Subnet: n.Subnet, Gateway: n.Gateway, Bridge: n.Bridge, Labels: strings.Join(labels, ","),
					CreatedAt: n.Created.Format("2006-01-02 15:04:05 -0700 MST"), labels: n.Labels,
				})
			}
			f := c.String("format")
			if c.Bool("quiet") {
				f = "{{.ID}}"
			}
			return format.List(c.App.Writer, f, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", networkHeaders, rows)
		},
	}
}

// networkFilter turns --filter values into a predicate: different keys
// must all match, values of one key any (docker's rule).
func networkFilter(filters []string) (func(*network.Manager, *network.Network) bool, error) {
	by := map[string][]string{}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("invalid filter %q: want KEY=VALUE", f)
		}
		switch k {
		case "name", "id", "label", "driver", "type":
		default:
			return nil, fmt.Errorf("invalid filter %q: want name=, id=, label=, driver= or type=", f)
		}
		if k == "type" && v != "custom" && v != "builtin" {
			return nil, fmt.Errorf("invalid filter %q: type is custom or builtin", f)
		}
		by[k] = append(by[k], v)
	}
	one := func(m *network.Manager, n *network.Network, k, v string) bool {
		switch k {
		case "name":
			return strings.Contains(n.Name, v)
		case "id":
			return strings.HasPrefix(n.ID, v)
		case "driver":
			return n.Driver == v
		case "type":
			return (n.Name == m.DefaultName) == (v == "builtin")
		}
		lk, lv, hasValue := strings.Cut(v, "=")
		got, ok := n.Labels[lk]
		return ok && (!hasValue || got == lv)
	}
	return func(m *network.Manager, n *network.Network) bool {
		for k, vs := range by {
			hit := false
			for _, v := range vs {
				if one(m, n, k, v) {
					hit = true
					break
				}
			}
			if !hit {
				return false
			}
		}
		return true
	}, nil
}

// networkInspect is a network as `docker network inspect` shows it.
type networkInspect struct {
	Name       string                      `json:"Name"`
	ID         string                      `json:"Id"`
	Created    time.Time                   `json:"Created"`
	Scope      string                      `json:"Scope"`
	Driver     string                      `json:"Driver"`
	EnableIPv6 bool                        `json:"EnableIPv6"`
	IPAM       networkIPAM                 `json:"IPAM"`
	Internal   bool                        `json:"Internal"`
	Attachable bool                        `json:"Attachable"`
	Ingress    bool                        `json:"Ingress"`
	Containers map[string]networkContainer `json:"Containers"`
	Options    map[string]string           `json:"Options"`
	Labels     map[string]string           `json:"Labels"`
	ConfigFile string                      `json:"ConfigFile"`
}

type networkIPAM struct {
	Driver  string              `json:"Driver"`
	Options map[string]string   `json:"Options"`
	Config  []networkIPAMConfig `json:"Config"`
}

type networkIPAMConfig struct {
	Subnet  string `json:"Subnet,omitempty"`
	Gateway string `json:"Gateway,omitempty"`
}

type networkContainer struct {
	Name        string   `json:"Name"`
	EndpointID  string   `json:"EndpointID"`
	MacAddress  string   `json:"MacAddress"`
	IPv4Address string   `json:"IPv4Address"`
	IPv6Address string   `json:"IPv6Address"`
	Aliases     []string `json:"Aliases"`
}

func inspectNetwork(m *network.Manager, n *network.Network) (*networkInspect, error) {
	out := &networkInspect{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver, Internal: n.Internal,
		IPAM:       networkIPAM{Driver: "host-local", Options: map[string]string{}, Config: []networkIPAMConfig{}},
		Containers: map[string]networkContainer{}, Options: map[string]string{}, Labels: n.Labels,
		ConfigFile: n.ConfigFile,
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.Bridge != "" {
		out.Options[bridgeNameOpt] = n.Bridge
	}
	if n.Subnet != "" {
		out.IPAM.Config = append(out.IPAM.Config, networkIPAMConfig{Subnet: n.Subnet, Gateway: n.Gateway})
	}
	peers, err := m.Peers(n.Name)
	if err != nil {
		return nil, err
	}
	for _, p := range peers {
		nc := networkContainer{Name: p.Name, IPv4Address: p.IP, Aliases: p.Aliases}
		if nc.Aliases == nil {
			nc.Aliases = []string{}
		}
		if sb, err := m.Sandbox(p.ContainerID); err == nil && sb != nil {
			if ep, ok := sb.Networks[n.Name]; ok {
				nc.MacAddress = ep.MAC
				nc.EndpointID = ep.Interface
				if ep.PrefixLen > 0 {
					nc.IPv4Address += "/" + strconv.Itoa(ep.PrefixLen)
				}
			}
		}
		out.Containers[p.ContainerID] = nc
	}
	return out, nil
}

func networkInspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show details of networks",
		ArgsUsage: "NETWORK...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "Go template or json"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, -1); err != nil {
				return err
			}
			m, err := openNetworks(c)
			if err != nil {
				return err
			}
			var items []any
			for _, ref := range c.Args().Slice() {
				n, err := resolveNetwork(m, ref)
				if err != nil {
					return err
				}
				ni, err := inspectNetwork(m, n)
				if err != nil {
					return err
				}
				items = append(items, ni)
			}
			return format.Object(c.App.Writer, c.String("format"), items)
		},
	}
}

func networkRmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Aliases:   []string{"remove"},
		Usage:     "remove networks",
		ArgsUsage: "NETWORK...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "ignore missing networks"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, -1); err != nil {
				return err
			}
			m, err := openNetworks(c)
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range c.Args().Slice() {
				if err := removeNetwork(m, ref); err != nil {
					if c.Bool("force") && strings.HasSuffix(err.Error(), " not found") {
						continue
					}
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(c.App.Writer, ref)
			}
			return joinErrors(c, errs, c.NArg(), "networks not removed")
		},
	}
}

func removeNetwork(m *network.Manager, ref string) error {
	n, err := resolveNetwork(m, ref)
	if err != nil {
		return err
	}
	if n.Name == m.DefaultName {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed", n.Name)
	}
	peers, err := m.Peers(n.Name)
	if err != nil {
		return err
	}
	if len(peers) > 0 {
		names := make([]string, len(peers))
		for i, p := range peers {
			names[i] = p.Name
		}
		return fmt.Errorf("error while removing network: network %s has active endpoints (%s)", n.Name, strings.Join(names, ", "))
	}
	return m.Remove(n.Name)
}

func networkPruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove all networks no container is attached to",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask (berth never asks)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			m, err := openNetworks(c)
			if err != nil {
				return err
			}
			names, err := m.Prune()
			printDeleted(c, "Deleted Networks:", names)
			return err
		},
	}
}

// printDeleted prints a section of a prune's report, when it has lines.
func printDeleted(c *cli.Context, title string, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(c.App.Writer, title)
	for _, l := range lines {
		fmt.Fprintln(c.App.Writer, l)
	}
	fmt.Fprintln(c.App.Writer)
}

func networkConnectCommand() *cli.Command {
	return &cli.Command{
		Name:      "connect",
		Usage:     "connect a container to a network",
		ArgsUsage: "NETWORK CONTAINER",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "alias", Usage: "another name of the container on the network"},
			&cli.StringFlag{Name: "ip", Usage: "IPv4 `ADDRESS` on the network"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, 2); err != nil {
				return err
			}
			if ip := c.String("ip"); ip != "" && net.ParseIP(ip).To4() == nil {
				return fmt.Errorf("invalid --ip %q: an IPv4 address is needed", ip)
			}
			return withEnv(c, func(e *env) error {
				m, err := networkManager(c, e)
				if err != nil {
					return err
				}
				n, err := resolveNetwork(m, c.Args().Get(0))
				if err != nil {
					return err
				}
				ctr, err := container.Find(c.Context, e.store, c.Args().Get(1))
				if err != nil {
					return err
				}
				return container.Connect(c.Context, ctr, network.Attachment{
					Network: n.Name, Aliases: c.StringSlice("alias"), IP: c.String("ip"),
				})
			})
		},
	}
}

func networkDisconnectCommand() *cli.Command {
	return &cli.Command{
		Name:      "disconnect",
		Usage:     "disconnect a container from a network",
		ArgsUsage: "NETWORK CONTAINER",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "accepted for docker's sake"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, 2); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				m, err := networkManager(c, e)
				if err != nil {
					return err
				}
				name := c.Args().Get(0)
				// A network already removed can still be left.
				if n, err := resolveNetwork(m, name); err == nil {
					name = n.Name
				}
				ctr, err := container.Find(c.Context, e.store, c.Args().Get(1))
				if err != nil {
					return err
				}
				return container.Disconnect(c.Context, ctr, name)
			})
		},
	}
}
