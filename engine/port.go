package main

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/engine/container"
)

// portMapping is one published port: the container's port and protocol,
// and the host address it is reached at.
type portMapping struct {
	Port     int
	Proto    string
	HostIP   string
	HostPort int
}

func (m portMapping) private() string { return fmt.Sprintf("%d/%s", m.Port, m.Proto) }

func (m portMapping) public() string {
	return net.JoinHostPort(m.HostIP, strconv.Itoa(m.HostPort))
}

func portCommand() *cli.Command {
	return &cli.Command{
		Name:      "port",
		Usage:     "list a container's published ports",
		ArgsUsage: "CONTAINER [PRIVATE_PORT[/PROTO]]",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, 2); err != nil {
				return err
			}
			return withEnv(c, func(e *env) error {
				ctr, err := container.Lookup(e.store, c.Args().First())
				if err != nil {
					return err
				}
				var maps []portMapping
				for _, p := range ctr.Ports {
					m, err := parsePublish(p)
					if err != nil {
						return fmt.Errorf("container %s: %w", ctr.Name, err)
					}
					maps = append(maps, m...)
				}
				sort.SliceStable(maps, func(i, j int) bool {
					if maps[i].Port != maps[j].Port {
						return maps[i].Port < maps[j].Port
					}
					return maps[i].Proto < maps[j].Proto
				})
				if c.NArg() == 1 {
					for _, m := range maps {
						fmt.Fprintf(c.App.Writer, "%s -> %s\n", m.private(), m.public())
					}
					return nil
				}
				want := c.Args().Get(1)
				port, proto, _ := strings.Cut(want, "/")
				if proto == "" {
					proto = "tcp"
				}
				n, err := strconv.Atoi(port)
				if err != nil || n < 1 || n > 65535 {
					return fmt.Errorf("invalid port %q: want PORT[/PROTO]", want)
				}
				found := false
				for _, m := range maps {
					if m.Port == n && m.Proto == proto {
						fmt.Fprintln(c.App.Writer, m.public())
						found = true
					}
				}
				if !found {
					return fmt.Errorf("no public port '%d/%s' published for %s", n, proto, ctr.Name)
				}
				return nil
			})
		},
	}
}

// parsePublish reads a recorded -p value: [[IP:]HOST_PORT:]CONTAINER_PORT[/PROTO],
// ports or equal-length ranges ("8000-8001:80-81"). A port without a host
// port is published on one the network picks; until then it has none and
// is not listed.
func parsePublish(spec string) ([]portMapping, error) {
	rest, proto, _ := strings.Cut(spec, "/")
	if proto == "" {
		proto = "tcp"
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("published port %q: unknown protocol %q", spec, proto)
	}
	ip, hostPart, ctrPart := "0.0.0.0", "", rest
	// An IPv6 address is bracketed: [::1]:8080:80.
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]:")
		if end < 0 {
			return nil, fmt.Errorf("published port %q: bad IPv6 address", spec)
		}
		ip, rest = rest[1:end], rest[end+2:]
		var ok bool
		if hostPart, ctrPart, ok = strings.Cut(rest, ":"); !ok {
			return nil, fmt.Errorf("published port %q: want IP:HOST_PORT:CONTAINER_PORT", spec)
		}
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
		case 2:
			hostPart, ctrPart = parts[0], parts[1]
		case 3:
			ip, hostPart, ctrPart = parts[0], parts[1], parts[2]
			if ip == "" {
				ip = "0.0.0.0"
			}
		default:
			return nil, fmt.Errorf("published port %q: want [[IP:]HOST_PORT:]CONTAINER_PORT[/PROTO]", spec)
		}
	}
	if net.ParseIP(ip) == nil {
		return nil, fmt.Errorf("published port %q: invalid IP address %q", spec, ip)
	}
	ctrLo, ctrHi, err := portRange(ctrPart)
	if err != nil {
		return nil, fmt.Errorf("published port %q: %w", spec, err)
	}
	if hostPart == "" {
		return nil, nil
	}
	hostLo, hostHi, err := portRange(hostPart)
	if err != nil {
		return nil, fmt.Errorf("published port %q: %w", spec, err)
	}
	if hostHi-hostLo != ctrHi-ctrLo {
		return nil, fmt.Errorf("published port %q: the host and container ranges differ in size", spec)
	}
	var out []portMapping
	for i := 0; i <= ctrHi-ctrLo; i++ {
		out = append(out, portMapping{Port: ctrLo + i, Proto: proto, HostIP: ip, HostPort: hostLo + i})
	}
	return out, nil
}

// portRange reads "80" or "8000-8010".
func portRange(s string) (int, int, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || l < 1 || h > 65535 || l > h {
		return 0, 0, fmt.Errorf("invalid port or range %q", s)
	}
	return l, h, nil
}
