package network

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-containers/berth/engine/rootless"
	"github.com/berth-containers/berth/engine/slirp"
)

// SlirpNetwork is the network of containers that reach out through
// slirp4netns (package slirp): the default network of a rootless berth,
// which cannot make bridges or iptables rules, and open to root too as
// --network slirp4netns, as in podman. It has no conflist and no peers:
// each container has a user-mode stack of its own, all with one address.
const SlirpNetwork = "slirp4netns"

// IsSlirp tells whether an attachment to the network name (empty: the
// default network) goes through slirp4netns for this user.
func IsSlirp(name string) bool {
	return name == SlirpNetwork || (name == "" && rootless.Enabled())
}

// defaultName is the default network: SlirpNetwork for a rootless berth.
func defaultName() string {
	if rootless.Enabled() {
		return SlirpNetwork
	}
	return DefaultName
}

// slirpDef is the pseudo definition of SlirpNetwork.
func slirpDef() *netDef {
	return &netDef{
		Network: &Network{Name: SlirpNetwork, ID: networkID(SlirpNetwork), Driver: SlirpNetwork,
			Subnet: slirp.Subnet, Gateway: slirp.Gateway},
		portmap: true,
	}
}

// errRootlessCNI refuses a CNI network to a rootless berth.
func errRootlessCNI(name string) error {
	return fmt.Errorf("network %s: a rootless berth has only the %s network (CNI bridge networks need root)", name, SlirpNetwork)
}

func (m *Manager) slirpBase(containerID string) string {
	return filepath.Join(m.runDir, "slirp", shortID(containerID))
}

// attachSlirp starts slirp4netns for the sandbox's namespace and publishes
// the ports through it. The record names the attachment before the process
// starts, so a crash in between still leaves Teardown what it needs.
func (m *Manager) attachSlirp(rec *record, a Attachment, ports []PortMapping) error {
	if a.IP != "" {
		return fmt.Errorf("network %s: --ip is not supported: every container has %s", SlirpNetwork, slirp.Address)
	}
	ar := &attachmentRecord{Network: SlirpNetwork, IfName: slirp.Device, Aliases: a.Aliases, Ports: ports, State: stateAdding}
	rec.Attachments = append(rec.Attachments, ar)
	if err := m.writeRecord(rec); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(m.slirpBase(rec.ContainerID)), 0o700); err != nil {
		return fmt.Errorf("network %s: %w", SlirpNetwork, err)
	}
	p, err := slirp.Start(rec.NetnsPath, m.slirpBase(rec.ContainerID))
	if err != nil {
		return err
	}
	ar.Slirp = p
	for _, pm := range ports {
		if err := p.Forward(pm.Protocol, pm.HostIP, pm.HostPort, pm.ContainerPort); err != nil {
			return fmt.Errorf("network %s: %w", SlirpNetwork, err)
		}
	}
	ar.IP, ar.PrefixLen, ar.Gateway, ar.State = slirp.Address, slirp.PrefixLen, slirp.Gateway, stateReady
	return m.writeRecord(rec)
}

// detachSlirp ends the container's slirp4netns: the recorded one, or, after
// a crash before it was recorded, the one serving the namespace.
func (m *Manager) detachSlirp(rec *record, ar *attachmentRecord) error {
	p := ar.Slirp
	if p == nil {
		p = slirp.Find(rec.NetnsPath, m.slirpBase(rec.ContainerID))
	}
	if err := p.Stop(); err != nil {
		return fmt.Errorf("network %s: %w", SlirpNetwork, err)
	}
	return nil
}

// checkSlirpPorts refuses, before anything is made, ports slirp4netns
// cannot publish: not tcp or udp, or below the lowest port the user may
// bind (a host port 0 is picked above it).
func checkSlirpPorts(ports []PortMapping) error {
	low := lowestUserPort()
	for _, p := range ports {
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return fmt.Errorf("network %s: port %s: slirp4netns publishes tcp and udp only", SlirpNetwork, p)
		}
		if p.HostPort != 0 && p.HostPort < low {
			return fmt.Errorf("network %s: port %s: host ports below %d (net.ipv4.ip_unprivileged_port_start) need root", SlirpNetwork, p, low)
		}
	}
	return nil
}

// lowestUserPort is the lowest host port slirp4netns may bind: any for root,
// net.ipv4.ip_unprivileged_port_start for a rootless user.
func lowestUserPort() int {
	if !rootless.Enabled() {
		return 0
	}
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 1024
	}
	return n
}
