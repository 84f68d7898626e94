package network

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// PortMapping publishes a container port on the host. Its JSON form is the
// portmap plugin's.
type PortMapping struct {
	// HostIP is the host address to publish on; empty means all.
	HostIP string `json:"hostIP,omitempty"`
	// HostPort 0 asks for a free port, chosen by Setup.
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"` // tcp (default), udp or sctp
}

func (p PortMapping) String() string {
	host := strconv.Itoa(p.HostPort)
	if p.HostIP != "" {
		host = net.JoinHostPort(p.HostIP, host)
	}
	return fmt.Sprintf("%s->%d/%s", host, p.ContainerPort, p.proto())
}

func (p PortMapping) proto() string {
	if p.Protocol == "" {
		return "tcp"
	}
	return p.Protocol
}

// ParsePort parses one docker -p value: [[HOSTIP:]HOSTPORT:]CONTAINERPORT[/PROTO],
// where ports may be ranges (8080-8081:80-81, equal lengths) and an empty
// or missing host port asks for a free one ("80", "127.0.0.1::80").
// HOSTIP may be an IPv6 address in brackets.
func ParsePort(spec string) ([]PortMapping, error) {
	bad := func(format string, a ...any) ([]PortMapping, error) {
		return nil, fmt.Errorf("invalid port spec %q: %s", spec, fmt.Sprintf(format, a...))
	}
	rest, proto := spec, "tcp"
	if i := strings.LastIndex(spec, "/"); i >= 0 {
		rest, proto = spec[:i], strings.ToLower(spec[i+1:])
		switch proto {
		case "tcp", "udp", "sctp":
		default:
			return bad("protocol %q is not tcp, udp or sctp", spec[i+1:])
		}
	}
	var hostIP, hostPart, contPart string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]:")
		if end < 0 {
			return bad("unterminated [IPv6 address]")
		}
		hostIP = rest[1:end]
		parts := strings.Split(rest[end+2:], ":")
		if len(parts) != 2 {
			return bad("expected [IP]:HOSTPORT:CONTAINERPORT")
		}
		hostPart, contPart = parts[0], parts[1]
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			contPart = parts[0]
		case 2:
			hostPart, contPart = parts[0], parts[1]
		case 3:
			hostIP, hostPart, contPart = parts[0], parts[1], parts[2]
			if hostIP == "" {
				return bad("empty host IP")
			}
		default:
			return bad("too many colons (an IPv6 host address goes in brackets)")
		}
	}
	if hostIP != "" {
		ip := net.ParseIP(hostIP)
		if ip == nil {
			return bad("%q is not an IP address", hostIP)
		}
		hostIP = ip.String()
	}
	if contPart == "" {
		return bad("no container port")
	}
	cLo, cHi, err := parsePortRange(contPart)
	if err != nil {
		return bad("container port: %v", err)
	}
	hLo, hHi := 0, 0
	if hostPart != "" {
		if hLo, hHi, err = parsePortRange(hostPart); err != nil {
			return bad("host port: %v", err)
		}
		if hHi-hLo != cHi-cLo {
			return bad("host range %s and container range %s differ in length", hostPart, contPart)
		}
	}
	var out []PortMapping
	for i := 0; i <= cHi-cLo; i++ {
		pm := PortMapping{HostIP: hostIP, ContainerPort: cLo + i, Protocol: proto}
		if hLo != 0 {
			pm.HostPort = hLo + i
		}
		out = append(out, pm)
	}
	return out, nil
}

func parsePortRange(s string) (int, int, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	l, err := parsePortNumber(lo)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return l, l, nil
	}
	h, err := parsePortNumber(hi)
	if err != nil {
		return 0, 0, err
	}
	if h < l {
		return 0, 0, fmt.Errorf("range %s ends before it starts", s)
	}
	return l, h, nil
}

func parsePortNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return n, nil
}

// validatePorts normalizes mappings given to Setup.
func validatePorts(ports []PortMapping) ([]PortMapping, error) {
	out := make([]PortMapping, len(ports))
	for i, p := range ports {
		p.Protocol = strings.ToLower(p.Protocol)
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		switch p.Protocol {
		case "tcp", "udp", "sctp":
		default:
			return nil, fmt.Errorf("port %s: protocol is not tcp, udp or sctp", p)
		}
		if p.ContainerPort < 1 || p.ContainerPort > 65535 || p.HostPort < 0 || p.HostPort > 65535 {
			return nil, fmt.Errorf("port %s: port numbers are 1-65535", p)
		}
		if p.HostIP != "" {
			ip := net.ParseIP(p.HostIP)
			if ip == nil {
				return nil, fmt.Errorf("port %s: bad host IP", p)
			}
			if ip.To4() == nil {
				return nil, fmt.Errorf("port %s: IPv6 host addresses are not supported", p)
			}
			if ip.IsUnspecified() {
				p.HostIP = ""
			} else {
				p.HostIP = ip.To4().String()
			}
		}
		out[i] = p
	}
	// the same host port twice in one request
	for i := range out {
		for j := 0; j < i; j++ {
			if out[i].HostPort != 0 && portsClash(out[i], out[j]) {
				return nil, fmt.Errorf("port %s: host port %d/%s is given twice", out[i], out[i].HostPort, out[i].Protocol)
			}
		}
	}
	return out, nil
}

// portsClash tells whether two mappings want the same host socket.
func portsClash(a, b PortMapping) bool {
	return a.HostPort == b.HostPort && a.proto() == b.proto() &&
		(a.HostIP == "" || b.HostIP == "" || a.HostIP == b.HostIP)
}

// probePort tells whether the host port can be bound now (port 0: returns a
// free one). SCTP is not probed.
func probePort(p PortMapping) (int, error) {
	addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
	if p.HostIP == "" {
		addr = net.JoinHostPort("0.0.0.0", strconv.Itoa(p.HostPort))
	}
	switch p.proto() {
	case "tcp":
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		return port, nil
	case "udp":
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return 0, err
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		return port, nil
	}
	if p.HostPort == 0 {
		return 0, fmt.Errorf("a free %s port cannot be chosen: give one", p.proto())
	}
	return p.HostPort, nil
}
