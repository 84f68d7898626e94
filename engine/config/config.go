// Package config reads berth's configuration file (TOML) and fills in the
// defaults for root and rootless users.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/berth-containers/berth/engine/rootless"
)

// Config is berth.conf.
type Config struct {
	Storage    Storage    `toml:"storage"`
	Registries []Registry `toml:"registry"`
}

// Storage says where and how images and containers are kept.
type Storage struct {
	// Driver is a containers/storage graph driver; empty tries overlay, then vfs.
	Driver  string   `toml:"driver"`
	Root    string   `toml:"root"`
	RunRoot string   `toml:"runroot"`
	Options []string `toml:"options"`
}

// Registry holds per-registry settings, matched by host[:port] (Location).
type Registry struct {
	Location string `toml:"location"`
	// Insecure allows plain HTTP and unverified TLS.
	Insecure bool `toml:"insecure"`
	// Mirrors are tried in order before Location when pulling.
	Mirrors []string `toml:"mirrors"`
}

// DefaultPath is the configuration file for the current user:
// /etc/berth/berth.conf for root, $XDG_CONFIG_HOME/berth/berth.conf otherwise.
func DefaultPath() string {
	if !rootless.Enabled() {
		return "/etc/berth/berth.conf"
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "berth", "berth.conf")
}

// Defaults are the settings without a configuration file.
func Defaults() *Config {
	c := &Config{}
	if !rootless.Enabled() {
		c.Storage.Root = "/var/lib/berth"
		c.Storage.RunRoot = "/run/berth"
		return c
	}
	data := os.Getenv("XDG_DATA_HOME")
	if data == "" {
		home, _ := os.UserHomeDir()
		data = filepath.Join(home, ".local", "share")
	}
	c.Storage.Root = filepath.Join(data, "berth", "storage")
	c.Storage.RunRoot = filepath.Join(rootless.RunDir(), "berth")
	return c
}

// Load reads path over the defaults. A missing file is not an error unless
// required (the user named it explicitly).
func Load(path string, required bool) (*Config, error) {
	c := Defaults()
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !required {
			return c, nil
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if keys := md.Undecoded(); len(keys) > 0 {
		return nil, fmt.Errorf("config %s: unknown key %q", path, keys[0].String())
	}
	for _, r := range c.Registries {
		if r.Location == "" || strings.Contains(r.Location, "/") {
			return nil, fmt.Errorf("config %s: registry location %q must be host[:port]", path, r.Location)
		}
	}
	return c, nil
}

// Registry returns the settings for host, or zero settings.
func (c *Config) Registry(host string) Registry {
	for _, r := range c.Registries {
		if r.Location == host {
			return r
		}
	}
	return Registry{Location: host}
}
