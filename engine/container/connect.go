package container

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/berth-containers/berth/engine/network"
)

// Connect attaches a container to one more network, as docker network
// connect: at once when it runs (the network manager's Connect), and in
// its record, so that every later start attaches it too. The /etc/hosts of
// the network's containers are rewritten. Only containers on networks
// (not --network none, host or container:) can be connected.
func Connect(ctx context.Context, c *Container, a network.Attachment) error {
	if c.NetRunDir == "" {
		return fmt.Errorf("container %s has network mode %s: it cannot be connected to a network", c.Name, c.Network)
	}
	m, err := c.networkManager()
	if err != nil {
		return err
	}
	if a.Network == "" || a.Network == m.DefaultName {
		if _, err := m.EnsureDefault(); err != nil {
			return err
		}
		a.Network = m.DefaultName
	} else if _, err := m.Inspect(a.Network); err != nil {
		return err
	}
	connected := false
	err = c.changeNetworks(func(cfg *Config, running bool) error {
		for _, x := range cfg.Networks {
			if netName(m, x.Network) == a.Network {
				return fmt.Errorf("container %s is already connected to network %s", c.Name, a.Network)
			}
		}
		if running {
			if err := m.Connect(ctx, c.ID, cfg.Name, a); err != nil {
				return err
			}
			connected = true
		}
		cfg.Networks = append(cfg.Networks, a)
		return nil
	}, func() {
		if connected {
			_ = m.Disconnect(context.WithoutCancel(ctx), c.ID, a.Network)
		}
	})
	if err != nil {
		return err
	}
	return refreshHosts(m, c, []string{a.Network})
}

// Disconnect detaches a container from a network, at once when it runs
// and in its record.
func Disconnect(ctx context.Context, c *Container, name string) error {
	if c.NetRunDir == "" {
		return fmt.Errorf("container %s has network mode %s: it is not connected to network %s", c.Name, c.Network, name)
	}
	m, err := c.networkManager()
	if err != nil {
		return err
	}
	name = netName(m, name)
	err = c.changeNetworks(func(cfg *Config, running bool) error {
		i := -1
		for j, x := range cfg.Networks {
			if netName(m, x.Network) == name {
				i = j
			}
		}
		attached := false
		if running {
			if sb, err := m.Sandbox(c.ID); err != nil {
				return err
			} else if sb != nil {
				_, attached = sb.Networks[name]
			}
		}
		if i < 0 && !attached {
			return fmt.Errorf("container %s is not connected to network %s", c.Name, name)
		}
		if attached {
			if err := m.Disconnect(ctx, c.ID, name); err != nil {
				return err
			}
		}
		if i >= 0 {
			cfg.Networks = append(cfg.Networks[:i:i], cfg.Networks[i+1:]...)
		}
		return nil
	}, nil)
	if err != nil {
		return err
	}
	return refreshHosts(m, c, []string{name})
}

// netName is the network an attachment names ("" is the default network).
func netName(m *network.Manager, name string) string {
	if name == "" {
		return m.DefaultName
	}
	return name
}

// changeNetworks runs fn under the container's lock with its configuration
// as on disk and whether it runs (its network namespace is set up), then
// writes the configuration, and the state's addresses and ports as the
// sandbox now has them. undo is called when fn succeeded but the
// configuration could not be written.
func (c *Container) changeNetworks(fn func(cfg *Config, running bool) error, undo func()) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	var cfg Config
	if err := readJSON(filepath.Join(c.Dir, configFile), &cfg); err != nil {
		return err
	}
	if err := c.Reload(); err != nil {
		return err
	}
	m, err := c.networkManager()
	if err != nil {
		return err
	}
	sb, err := m.Sandbox(c.ID)
	if err != nil {
		return err
	}
	// A sandbox is there while the container runs (and between the runs
	// of its restart policy); one a dead monitor left was torn down by
	// Refresh, which callers run first.
	running := sb != nil
	if err := fn(&cfg, running); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(c.Dir, configFile), &cfg); err != nil {
		if undo != nil {
			undo()
		}
		return fmt.Errorf("update container %s: %w", c.Name, err)
	}
	c.Config = cfg
	if sb, err := m.Sandbox(c.ID); err == nil && sb != nil && running {
		c.IPs, c.Published = sb.IPs, sb.Ports
		if err := writeJSON(filepath.Join(c.Dir, stateFile), &c.State); err != nil {
			return fmt.Errorf("update container %s: %w", c.Name, err)
		}
	}
	return nil
}
