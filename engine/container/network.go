package container

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/network"
)

// NetworkOptions say how a container is networked: a mode (none, host,
// container:NAME) or attachments to bridge networks with published ports.
type NetworkOptions struct {
	// Attachments to networks; empty with no Mode means the default network.
	Attachments []network.Attachment
	// Mode is "none", "host" or "container:NAME|ID"; empty for networks.
	Mode string
	// Ports are docker's -p specs.
	Ports []string
	// ConfDir and RunDir are the network manager's directories.
	ConfDir, RunDir string
}

// networkMode turns the options into the bundle's NetworkMode, checking the
// networks exist and the ports parse, so create fails early.
func networkMode(ctx context.Context, lookup func(string) (*Container, error), id string, o *NetworkOptions) (string, error) {
	switch {
	case o.Mode == "none" || o.Mode == "host":
		if len(o.Ports) > 0 {
			return "", fmt.Errorf("ports cannot be published with --network %s", o.Mode)
		}
		return o.Mode, nil
	case strings.HasPrefix(o.Mode, "container:"):
		other, err := lookup(strings.TrimPrefix(o.Mode, "container:"))
		if err != nil {
			return "", fmt.Errorf("--network %s: %w", o.Mode, err)
		}
		if other.NetRunDir != "" {
			return "ns:" + filepath.Join(other.NetRunDir, "netns", other.ID), nil
		}
		if other.Status != Running || other.Pid == 0 {
			return "", fmt.Errorf("--network %s: the container is not running", o.Mode)
		}
		return fmt.Sprintf("ns:/proc/%d/ns/net", other.Pid), nil
	case o.Mode != "":
		return "", fmt.Errorf("invalid network mode %q", o.Mode)
	}
	m, err := network.New(o.ConfDir, o.RunDir, nil)
	if err != nil {
		return "", err
	}
	if len(o.Attachments) == 0 {
		o.Attachments = []network.Attachment{{}}
	}
	for _, a := range o.Attachments {
		if a.Network != "" {
			if _, err := m.Inspect(a.Network); err != nil {
				return "", err
			}
		}
	}
	for _, p := range o.Ports {
		if _, err := network.ParsePort(p); err != nil {
			return "", err
		}
	}
	return "ns:" + m.NetnsPath(id), nil
}

func (c *Container) networkManager() (*network.Manager, error) {
	return network.New(c.NetConfDir, c.NetRunDir, nil)
}

// setupNetwork makes the container's network namespace and attachments
// before its monitor starts, records its addresses and ports, and writes
// the /etc/hosts of it and its peers.
func setupNetwork(ctx context.Context, c *Container) error {
	// NetRunDir, not Networks: a container disconnected from all its
	// networks still has its own namespace (with only a loopback).
	if c.NetRunDir == "" {
		return nil
	}
	m, err := c.networkManager()
	if err != nil {
		return err
	}
	var ports []network.PortMapping
	for _, p := range c.Ports {
		if len(c.Networks) == 0 {
			break // disconnected from all: nothing to publish on
		}
		pm, err := network.ParsePort(p)
		if err != nil {
			return err
		}
		ports = append(ports, pm...)
	}
	// What a crash left (a monitor killed hard) goes first.
	if sb, _ := m.Sandbox(c.ID); sb != nil {
		_ = m.Teardown(ctx, c.ID)
	}
	sb, err := m.Setup(ctx, c.ID, c.Name, c.Networks, ports)
	if err != nil {
		return err
	}
	if err := c.Update(func(st *State) error {
		st.IPs, st.Published = sb.IPs, sb.Ports
		return nil
	}); err != nil {
		_ = m.Teardown(ctx, c.ID)
		return err
	}
	return refreshHosts(m, c, networksOf(sb))
}

// teardownNetwork undoes setupNetwork; it is safe to call again.
func teardownNetwork(ctx context.Context, c *Container) error {
	if c.NetRunDir == "" {
		return nil
	}
	m, err := c.networkManager()
	if err != nil {
		return err
	}
	sb, err := m.Sandbox(c.ID)
	if err != nil || sb == nil {
		return err
	}
	if err := m.Teardown(ctx, c.ID); err != nil {
		return err
	}
	if err := c.Update(func(st *State) error {
		st.IPs, st.Published = nil, nil
		return nil
	}); err != nil {
		return err
	}
	return refreshHosts(m, c, networksOf(sb))
}

func networksOf(sb *network.Sandbox) []string {
	var names []string
	for n := range sb.Networks {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// hostsBase is the hosts file as create wrote it; network entries are
// added after it.
const hostsBase = "hosts.base"

// refreshHosts rewrites /etc/hosts of every container on the networks and
// of c itself: each lists the containers of all its own (non-default)
// networks by name and alias, as docker's user networks resolve them. The
// file is rewritten in place, since the containers have it bind-mounted.
// Rewrites are serialized (a lock file beside the network manager's
// state): two containers starting at once must not have the one that read
// the peers first write last.
func refreshHosts(m *network.Manager, c *Container, networks []string) error {
	lf, err := os.OpenFile(filepath.Join(m.RunDir(), "hosts.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("update /etc/hosts: %w", err)
	}
	defer lf.Close()
	for {
		err = unix.Flock(int(lf.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("update /etc/hosts: %w", err)
	}
	cache := map[string][]network.Peer{}
	peers := func(n string) ([]network.Peer, error) {
		if ps, ok := cache[n]; ok {
			return ps, nil
		}
		ps, err := m.Peers(n)
		cache[n] = ps
		return ps, err
	}
	// c's own file too: it may have left the networks (disconnect, stop).
	ids := map[string]bool{c.ID: true}
	for _, n := range networks {
		if n == m.DefaultName {
			continue // the default network resolves no names, as docker's bridge
		}
		ps, err := peers(n)
		if err != nil {
			return err
		}
		for _, p := range ps {
			ids[p.ContainerID] = true
		}
	}
	for id := range ids {
		dir := filepath.Join(filepath.Dir(filepath.Dir(c.Dir)), id, filepath.Base(c.Dir))
		base, err := os.ReadFile(filepath.Join(dir, hostsBase))
		if err != nil {
			continue // not a berth container any more, or without its own hosts
		}
		var b bytes.Buffer
		b.Write(base)
		seen := map[string]bool{}
		// Every network the container is on now, not only the ones that
		// changed: the file is written whole.
		sb, err := m.Sandbox(id)
		if err != nil {
			return err
		}
		var own []string
		if sb != nil {
			own = networksOf(sb)
		}
		for _, n := range own {
			if n == m.DefaultName {
				continue
			}
			ps, err := peers(n)
			if err != nil {
				return err
			}
			for _, p := range ps {
				line := p.IP + "\t" + strings.Join(append([]string{p.Name}, p.Aliases...), " ")
				if p.ContainerID == id {
					line += " " + id[:12]
				}
				if !seen[line] {
					seen[line] = true
					b.WriteString(line + "\n")
				}
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "hosts"), b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("update /etc/hosts of container %s: %w", id[:12], err)
		}
	}
	return nil
}

// NetworkNames are the networks the container is on ("none" or "host"
// for those modes), as the network filter of ps matches them.
func (c *Container) NetworkNames() []string {
	if len(c.Networks) == 0 {
		return []string{c.Network}
	}
	names := make([]string, 0, len(c.Networks))
	for _, a := range c.Networks {
		name := a.Network
		if name == "" {
			name = network.DefaultName
		}
		names = append(names, name)
	}
	return names
}
