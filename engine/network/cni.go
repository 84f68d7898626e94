package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// invocation is one CNI operation on one network for one container: the
// runtime configuration libcni calls RuntimeConf.
type invocation struct {
	containerID    string
	netns          string // empty on DEL when the namespace is gone
	ifName         string
	args           [][2]string
	capabilityArgs map[string]any
}

// parsedList is a conflist split into its plugins, as the executor needs it.
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

// pluginConf builds the stdin configuration of one plugin of a list, as
// libcni does: the plugin's own keys, the list's name and cniVersion, the
// previous result, and runtimeConfig with the capability arguments the plugin
// declares.
func pluginConf(pl *parsedList, plugin map[string]any, prev json.RawMessage, inv *invocation) ([]byte, error) {
	c := make(map[string]any, len(plugin)+3)
	for k, v := range plugin {
		c[k] = v
	}
	c["name"] = pl.name
	c["cniVersion"] = pl.cniVersion
	if len(prev) > 0 {
		c["prevResult"] = prev
	} else {
		delete(c, "prevResult")
	}
	if caps, ok := plugin["capabilities"].(map[string]any); ok {
		rc := map[string]any{}
		for k, v := range caps {
			if on, _ := v.(bool); on {
				if arg, ok := inv.capabilityArgs[k]; ok {
					rc[k] = arg
				}
			}
		}
		if len(rc) > 0 {
			c["runtimeConfig"] = rc
		}
	}
	return json.Marshal(c)
}

// idle tells whether a plugin would do nothing for this invocation, so
// neither its ADD nor its DEL needs to run: portmap without port mappings
// (its ADD returns the previous result at once, and there is nothing for its
// DEL to remove), and tuning without any setting. Each saves an exec and,
// for portmap's DEL, a dozen iptables calls.
func idle(plugin map[string]any, inv *invocation) bool {
	switch plugin["type"] {
	case "portmap":
		switch pm := inv.capabilityArgs["portMappings"].(type) {
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
						if b, _ := on.(bool); b && inv.capabilityArgs[c] != nil {
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

// add runs ADD through the list and returns the final result (raw, in the
// list's version). On failure the returned result is the last one a plugin
// gave, for the DEL that undoes the partial ADD.
// progress, when not nil, is given each plugin's result as it comes.
func (m *Manager) add(ctx context.Context, pl *parsedList, inv *invocation, progress func(json.RawMessage)) (json.RawMessage, error) {
	var prev json.RawMessage
	for _, p := range pl.plugins {
		if idle(p, inv) {
			continue
		}
		conf, err := pluginConf(pl, p, prev, inv)
		if err != nil {
			return prev, err
		}
		out, err := m.execPlugin(ctx, "ADD", p["type"].(string), conf, inv)
		if err != nil {
			return prev, err
		}
		if len(bytes.TrimSpace(out)) == 0 {
			return prev, fmt.Errorf("plugin %s gave no result", p["type"])
		}
		prev = out
		if progress != nil {
			progress(prev)
		}
	}
	return prev, nil
}

// del runs DEL through the list in reverse order with ADD's result as
// prevResult. Unlike libcni it goes on after a plugin fails, so every plugin
// gets to clean up; it returns the errors joined. A plugin that cannot be
// found is skipped: it cannot have done anything, or cannot undo it.
func (m *Manager) del(ctx context.Context, pl *parsedList, inv *invocation, result json.RawMessage) error {
	var errs []string
	for i := len(pl.plugins) - 1; i >= 0; i-- {
		p := pl.plugins[i]
		if _, err := m.findPlugin(p["type"].(string)); err != nil || idle(p, inv) {
			continue
		}
		conf, err := pluginConf(pl, p, result, inv)
		if err == nil {
			_, err = m.execPlugin(ctx, "DEL", p["type"].(string), conf, inv)
		}
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
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

// execPlugin runs one plugin by the CNI exec protocol.
func (m *Manager) execPlugin(ctx context.Context, command, plugin string, conf []byte, inv *invocation) ([]byte, error) {
	path, err := m.findPlugin(plugin)
	if err != nil {
		return nil, err
	}
	var args []string
	for _, kv := range inv.args {
		args = append(args, kv[0]+"="+kv[1])
	}
	env := make([]string, 0, len(os.Environ())+7)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "CNI_") {
			env = append(env, e)
		}
	}
	env = append(env,
		"CNI_COMMAND="+command,
		"CNI_CONTAINERID="+inv.containerID,
		"CNI_NETNS="+inv.netns,
		"CNI_IFNAME="+inv.ifName,
		"CNI_ARGS="+strings.Join(args, ";"),
		"CNI_PATH="+strings.Join(m.pluginDirs, string(os.PathListSeparator)),
	)
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("CNI %s %s: %w", plugin, command, ctx.Err())
	}
	// The plugin's error is JSON on stdout.
	var perr types.Error
	if jerr := json.Unmarshal(stdout.Bytes(), &perr); jerr == nil && perr.Msg != "" {
		msg := perr.Msg
		if perr.Details != "" {
			msg += ": " + perr.Details
		}
		return nil, fmt.Errorf("CNI %s %s: %s", plugin, command, oneLine(msg))
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = strings.TrimSpace(stdout.String())
	}
	if msg == "" {
		msg = err.Error()
	}
	return nil, fmt.Errorf("CNI %s %s: %s", plugin, command, oneLine(msg))
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
