package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// parsedList is a conflist split into its plugins, so that each invocation
// can leave out the idle ones.
type parsedList struct {
	name       string
	cniVersion string
	plugins    []map[string]any
}

func parseList(raw []byte) (*parsedList, error) {
	var cl struct {
		CNIVersion string            `json:"cniVersion"`
		Name       string            `json:"name"`
		Plugins    []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &cl); err != nil {
		return nil, fmt.Errorf("conflist: %w", err)
	}
	pl := &parsedList{name: cl.Name, cniVersion: cl.CNIVersion}
	for i, p := range cl.Plugins {
		d := json.NewDecoder(bytes.NewReader(p))
		d.UseNumber()
		var mp map[string]any
		if err := d.Decode(&mp); err != nil {
			return nil, fmt.Errorf("conflist %s: plugin %d: %w", cl.Name, i, err)
		}
		if t, _ := mp["type"].(string); t == "" || strings.ContainsAny(t, "/\x00") {
			return nil, fmt.Errorf("conflist %s: plugin %d has no valid type", cl.Name, i)
		}
		pl.plugins = append(pl.plugins, mp)
	}
	if pl.name == "" || len(pl.plugins) == 0 {
		return nil, errors.New("conflist has no name or no plugins")
	}
	return pl, nil
}

// masqueradesPerContainer tells whether the list's bridge plugin has ipMasq
// on: a masquerade chain per container (conflists of older berths, or
// written by hand).
func (pl *parsedList) masqueradesPerContainer() bool {
	for _, p := range pl.plugins {
		if on, _ := p["ipMasq"].(bool); on && p["type"] == "bridge" {
			return true
		}
	}
	return false
}

// decodeList decodes a conflist for berth to change, numbers kept as
// written, and returns its plugins too.
func decodeList(raw []byte) (map[string]any, []any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var cl map[string]any
	if err := d.Decode(&cl); err != nil {
		return nil, nil, err
	}
	plugins, _ := cl["plugins"].([]any)
	return cl, plugins, nil
}

// withDataDir returns the conflist with host-local's dataDir set to dir in
// every plugin's ipam that has none, so the leases live in the run
// directory.
func withDataDir(raw []byte, dir string) ([]byte, error) {
	cl, plugins, err := decodeList(raw)
	if err != nil {
		return nil, err
	}
	for _, p := range plugins {
		mp, _ := p.(map[string]any)
		ipam, _ := mp["ipam"].(map[string]any)
		if t, _ := ipam["type"].(string); t != "host-local" {
			continue
		}
		if _, ok := ipam["dataDir"]; !ok {
			ipam["dataDir"] = dir
		}
	}
	return json.Marshal(cl)
}

// idle tells whether a plugin would do nothing for this invocation, so
// neither its ADD nor its DEL needs to run: portmap without port mappings
// (its ADD returns the previous result at once, and there is nothing for its
// DEL to remove), and tuning without any setting. Each saves an exec and,
// for portmap's DEL, a dozen iptables calls.
func idle(plugin map[string]any, capabilityArgs map[string]any) bool {
	switch plugin["type"] {
	case "portmap":
		switch pm := capabilityArgs["portMappings"].(type) {
		case nil:
			return true
		case []PortMapping: // from Setup
			return len(pm) == 0
		case []any: // from a record
			return len(pm) == 0
		}
		return false
	case "tuning":
		for k, v := range plugin {
			switch k {
			case "type", "name", "cniVersion":
				continue
			case "capabilities":
				if caps, ok := v.(map[string]any); ok {
					for c, on := range caps {
						if b, _ := on.(bool); b && capabilityArgs[c] != nil {
							return false
						}
					}
				}
				continue
			}
			return false
		}
		return true
	}
	return false
}

// cni is libcni's executor over the plugin directories. Its result cache
// (prevResult for DEL) is in the run directory, beside berth's records.
func (m *Manager) cni() *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir(m.pluginDirs, filepath.Join(m.runDir, "cni-cache"), nil)
}

// activeList is the list as libcni runs it for one invocation: without
// the plugins that would do nothing (idle) and, on DEL, without those that
// cannot be found (they cannot have done anything, or cannot undo it). It
// is nil when no plugin is left.
func (m *Manager) activeList(pl *parsedList, rt *libcni.RuntimeConf, del bool) (*libcni.NetworkConfigList, error) {
	var plugins []map[string]any
	for _, p := range pl.plugins {
		if idle(p, rt.CapabilityArgs) {
			continue
		}
		if _, err := m.findPlugin(p["type"].(string)); err != nil {
			if del {
				continue
			}
			return nil, err // before any plugin has run
		}
		plugins = append(plugins, p)
	}
	if len(plugins) == 0 {
		return nil, nil
	}
	raw, err := json.Marshal(map[string]any{"cniVersion": pl.cniVersion, "name": pl.name, "plugins": plugins})
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromBytes(raw)
}

// add runs ADD through the list and returns the final result (raw, in the
// list's version).
func (m *Manager) add(ctx context.Context, pl *parsedList, rt *libcni.RuntimeConf) (json.RawMessage, error) {
	list, err := m.activeList(pl, rt, false)
	if err != nil || list == nil {
		return nil, err
	}
	res, err := m.cni().AddNetworkList(ctx, list, rt)
	if err != nil {
		return nil, cniError("ADD", err)
	}
	return json.Marshal(res)
}

// del runs DEL through the list in reverse order. Every plugin gets the
// ADD result as prevResult: libcni's cached one, or else prev, the one the
// record kept (a sandbox set up before libcni kept its cache).
func (m *Manager) del(ctx context.Context, pl *parsedList, rt *libcni.RuntimeConf, prev json.RawMessage) error {
	if len(prev) > 0 {
		for _, p := range pl.plugins {
			p["prevResult"] = prev
		}
	}
	list, err := m.activeList(pl, rt, true)
	if err != nil || list == nil {
		return err
	}
	if err := m.cni().DelNetworkList(ctx, list, rt); err != nil {
		return cniError("DEL", err)
	}
	return nil
}

func cniError(command string, err error) error {
	return fmt.Errorf("CNI %s: %s", command, oneLine(err.Error()))
}

func (m *Manager) findPlugin(name string) (string, error) {
	for _, d := range m.pluginDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("CNI plugin %s not found in %s", name, strings.Join(m.pluginDirs, ":"))
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", "")
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// endpoint is what an ADD result tells about the container's side.
type endpoint struct {
	ip        string
	prefixLen int
	gateway   string
	mac       string
}

func parseResult(cniVersion string, raw json.RawMessage, ifName string) (endpoint, error) {
	var ep endpoint
	if len(raw) == 0 {
		return ep, errors.New("empty CNI result")
	}
	if cniVersion == "" {
		cniVersion = CNIVersion
	}
	res, err := version.NewResult(cniVersion, raw)
	if err != nil {
		return ep, fmt.Errorf("CNI result: %w", err)
	}
	r, err := types100.GetResult(res)
	if err != nil {
		return ep, fmt.Errorf("CNI result: %w", err)
	}
	ours := func(idx *int) bool {
		if idx == nil || *idx < 0 || *idx >= len(r.Interfaces) {
			return true // no interface named: take it
		}
		ifc := r.Interfaces[*idx]
		return ifc.Sandbox != "" && (ifc.Name == ifName || ifName == "")
	}
	for _, ipc := range r.IPs {
		if ipc.Address.IP.To4() == nil || !ours(ipc.Interface) {
			continue
		}
		ep.ip = ipc.Address.IP.String()
		ep.prefixLen, _ = ipc.Address.Mask.Size()
		if ipc.Gateway != nil {
			ep.gateway = ipc.Gateway.String()
		}
		if ipc.Interface != nil && *ipc.Interface >= 0 && *ipc.Interface < len(r.Interfaces) {
			ep.mac = r.Interfaces[*ipc.Interface].Mac
		}
		break
	}
	if ep.mac == "" {
		for _, ifc := range r.Interfaces {
			if ifc.Sandbox != "" && ifc.Name == ifName {
				ep.mac = ifc.Mac
			}
		}
	}
	if ep.ip == "" {
		return ep, errors.New("CNI result has no IPv4 address for the container")
	}
	if net.ParseIP(ep.ip) == nil {
		return ep, fmt.Errorf("CNI result: bad address %q", ep.ip)
	}
	return ep, nil
}
