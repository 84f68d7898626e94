package network

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-containers/berth/engine/rootless"
)

// CNIVersion is the version written into the conflists berth creates
// (Debian 12's plugins, 1.1.1, speak up to 1.0.0).
const CNIVersion = "1.0.0"

// Defaults of the default network (podman's are "podman", podman0 and the
// same subnet).
const (
	DefaultName   = "berth"
	DefaultBridge = "berth0"
	DefaultSubnet = "10.77.0.0/16"
)

// DefaultPluginDirs are searched for CNI plugins when New is given none
// (podman's list).
var DefaultPluginDirs = []string{
	"/usr/local/libexec/cni",
	"/usr/libexec/cni",
	"/usr/local/lib/cni",
	"/usr/lib/cni",
	"/opt/cni/bin",
}

// Manager manages the networks of one configuration directory and the
// sandboxes of one run directory. Its methods are safe for concurrent use.
type Manager struct {
	confDir    string
	runDir     string
	pluginDirs []string

	// DefaultName, DefaultBridge and DefaultSubnet describe the network
	// EnsureDefault creates and Remove refuses to remove; New sets them to
	// the package's Default* constants. Change them (from berth's
	// configuration) before the Manager is used.
	DefaultName, DefaultBridge, DefaultSubnet string
}

// New returns a Manager keeping conflists in confDir and its run state
// (namespaces, records, leases, lock) in runDir, creating both. pluginDirs
// are searched for CNI plugins in order; empty means DefaultPluginDirs.
func New(confDir, runDir string, pluginDirs []string) (*Manager, error) {
	if confDir == "" || runDir == "" {
		return nil, errors.New("network: configuration and run directories must be given")
	}
	var err error
	if confDir, err = filepath.Abs(confDir); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if runDir, err = filepath.Abs(runDir); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if len(pluginDirs) == 0 {
		pluginDirs = DefaultPluginDirs
	}
	m := &Manager{
		confDir:       confDir,
		runDir:        runDir,
		pluginDirs:    append([]string(nil), pluginDirs...),
		DefaultName:   defaultName(),
		DefaultBridge: DefaultBridge,
		DefaultSubnet: DefaultSubnet,
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return nil, fmt.Errorf("network: configuration directory: %w", err)
	}
	for _, d := range []string{runDir, m.netnsDir(), m.recordDir(), m.ipamDir(), m.rulesDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("network: run directory: %w", err)
		}
	}
	return m, nil
}

// ConfDir is the directory of the conflists.
func (m *Manager) ConfDir() string { return m.confDir }

// RunDir is the directory of the run state.
func (m *Manager) RunDir() string { return m.runDir }

func (m *Manager) netnsDir() string  { return filepath.Join(m.runDir, "netns") }
func (m *Manager) recordDir() string { return filepath.Join(m.runDir, "attachments") }
func (m *Manager) ipamDir() string   { return filepath.Join(m.runDir, "ipam") }
func (m *Manager) confPath(name string) string {
	return filepath.Join(m.confDir, name+".conflist")
}

// Network is a network as its conflist describes it.
type Network struct {
	Name string `json:"name"`
	// ID is the hex SHA-256 of the name (as podman's CNI backend has it).
	ID string `json:"id"`
	// Driver is the type of the conflist's first plugin ("bridge").
	Driver string `json:"driver"`
	// Bridge is the bridge interface on the host.
	Bridge   string            `json:"network_interface,omitempty"`
	Subnet   string            `json:"subnet,omitempty"`
	Gateway  string            `json:"gateway,omitempty"`
	Internal bool              `json:"internal"`
	Labels   map[string]string `json:"labels,omitempty"`
	Created  time.Time         `json:"created"`
	// ConfigFile is the conflist's path.
	ConfigFile string `json:"config_file"`
}

// CreateOptions are the settings of a new network.
type CreateOptions struct {
	Name string
	// Subnet in CIDR notation (IPv4); empty picks a free 10.89.N.0/24.
	Subnet string
	// Gateway inside Subnet; empty is the subnet's first address.
	Gateway string
	// Internal networks have no default route, no masquerade and no
	// published ports.
	Internal bool
	Labels   map[string]string
	// Bridge is the bridge's interface name; empty picks a free berthN.
	Bridge string
}

// The conflists berth writes.
type confList struct {
	CNIVersion string       `json:"cniVersion"`
	Name       string       `json:"name"`
	Plugins    []any        `json:"plugins"`
	Args       *confListArg `json:"args,omitempty"`
}

type confListArg struct {
	Labels  map[string]string `json:"berth_labels,omitempty"`
	Created string            `json:"berth_created,omitempty"`
}

type bridgePlugin struct {
	Type        string     `json:"type"`
	Bridge      string     `json:"bridge"`
	IsGateway   bool       `json:"isGateway"`
	IPMasq      bool       `json:"ipMasq"`
	HairpinMode bool       `json:"hairpinMode"`
	IPAM        ipamConfig `json:"ipam"`
}

type ipamConfig struct {
	Type    string        `json:"type"`
	Routes  []ipamRoute   `json:"routes,omitempty"`
	Ranges  [][]ipamRange `json:"ranges,omitempty"`
	Subnet  string        `json:"subnet,omitempty"`  // old single-range form, read only
	Gateway string        `json:"gateway,omitempty"` // old single-range form, read only
}

type ipamRoute struct {
	Dst string `json:"dst"`
}

type ipamRange struct {
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway,omitempty"`
}

// netDef is a loaded conflist.
type netDef struct {
	*Network
	raw      []byte
	portmap  bool // has a plugin declaring the portMappings capability
	ipMasq   bool // the bridge plugin masquerades, per container
	firewall bool // has the firewall plugin (accept rules per container)
	// outdated: written by a berth that left masquerade and forward
	// rules to the plugins (see loadForUse)
	outdated bool
	subnetIP *net.IPNet
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

var reservedNames = map[string]bool{
	"none": true, "host": true, "bridge": true, "container": true, "private": true,
	"ns": true, "slirp4netns": true, "pasta": true, "default": true,
}

func validName(name string) error {
	if name == "" {
		return errors.New("network name must not be empty")
	}
	if len(name) > 200 || !nameRE.MatchString(name) {
		return fmt.Errorf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 200 characters) is allowed", name)
	}
	if reservedNames[name] {
		return fmt.Errorf("network name %q is reserved", name)
	}
	return nil
}

func validBridgeName(name string) error {
	if len(name) == 0 || len(name) > 15 || strings.ContainsAny(name, "/: \t\n") || name == "." || name == ".." {
		return fmt.Errorf("invalid bridge name %q: an interface name has 1 to 15 characters and no '/', ':' or spaces", name)
	}
	return nil
}

func networkID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// loadNet reads and parses <confDir>/<name>.conflist.
// ErrNotFound is returned (wrapped) for a network that does not exist.
var ErrNotFound = errors.New("not found")

func (m *Manager) loadNet(name string) (*netDef, error) {
	switch {
	case name == SlirpNetwork:
		return slirpDef(), nil
	case rootless.Enabled():
		return nil, errRootlessCNI(name)
	}
	if err := validName(name); err != nil && name != m.DefaultName {
		return nil, err
	}
	path := m.confPath(name)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("network %s %w", name, ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("network %s: %w", name, err)
	}
	nd, err := parseConfList(raw, path)
	if err != nil {
		return nil, err
	}
	if nd.Name != name {
		return nil, fmt.Errorf("network %s: %s names network %q", name, path, nd.Name)
	}
	return nd, nil
}

func parseConfList(raw []byte, path string) (*netDef, error) {
	var cl struct {
		CNIVersion string            `json:"cniVersion"`
		Name       string            `json:"name"`
		Plugins    []json.RawMessage `json:"plugins"`
		Args       confListArg       `json:"args"`
	}
	if err := json.Unmarshal(raw, &cl); err != nil {
		return nil, fmt.Errorf("conflist %s: %w", path, err)
	}
	if cl.Name == "" || len(cl.Plugins) == 0 {
		return nil, fmt.Errorf("conflist %s: no name or no plugins", path)
	}
	n := &Network{
		Name:       cl.Name,
		ID:         networkID(cl.Name),
		Labels:     cl.Args.Labels,
		ConfigFile: path,
	}
	if t, err := time.Parse(time.RFC3339Nano, cl.Args.Created); err == nil {
		n.Created = t
	} else if fi, err := os.Stat(path); err == nil {
		n.Created = fi.ModTime()
	}
	nd := &netDef{Network: n, raw: raw}
	for i, p := range cl.Plugins {
		var head struct {
			Type         string          `json:"type"`
			Capabilities map[string]bool `json:"capabilities"`
		}
		if err := json.Unmarshal(p, &head); err != nil || head.Type == "" {
			return nil, fmt.Errorf("conflist %s: plugin %d has no type", path, i)
		}
		if i == 0 {
			n.Driver = head.Type
		}
		if head.Capabilities["portMappings"] {
			nd.portmap = true
		}
		if head.Type == "firewall" {
			nd.firewall = true
		}
		if head.Type != "bridge" || n.Bridge != "" {
			continue
		}
		var b bridgePlugin
		if err := json.Unmarshal(p, &b); err != nil {
			return nil, fmt.Errorf("conflist %s: bridge plugin: %w", path, err)
		}
		n.Bridge = b.Bridge
		if n.Bridge == "" {
			n.Bridge = "cni0" // the bridge plugin's default
		}
		n.Internal = !b.IsGateway
		nd.ipMasq = b.IPMasq
		if len(b.IPAM.Ranges) > 0 && len(b.IPAM.Ranges[0]) > 0 {
			n.Subnet, n.Gateway = b.IPAM.Ranges[0][0].Subnet, b.IPAM.Ranges[0][0].Gateway
		} else {
			n.Subnet, n.Gateway = b.IPAM.Subnet, b.IPAM.Gateway
		}
		if n.Subnet != "" {
			if _, sn, err := net.ParseCIDR(n.Subnet); err == nil {
				nd.subnetIP = sn
				if n.Gateway == "" {
					n.Gateway = nthIP(sn, 1).String()
				}
			}
		}
	}
	nd.outdated = cl.Args.Created != "" && (nd.ipMasq || nd.firewall)
	return nd, nil
}

// loadForUse loads a network a container is being attached to (the lock
// held). A conflist written by an older berth (the bridge plugin's ipMasq
// on, the firewall plugin: about twenty iptables execs per container) is
// first rewritten to today's form, berth's per-network rules taking over:
// the containers attached meanwhile keep the configuration recorded at
// their setup, which their teardown uses.
func (m *Manager) loadForUse(name string) (*netDef, error) {
	d, err := m.loadNet(name)
	if err != nil || !d.outdated {
		return d, err
	}
	raw, err := upgradeConf(d.raw)
	if err != nil {
		return nil, fmt.Errorf("network %s: upgrade %s: %w", name, d.ConfigFile, err)
	}
	if err := writeFileAtomic(d.ConfigFile, raw, 0o644); err != nil {
		return nil, fmt.Errorf("network %s: upgrade: %w", name, err)
	}
	return m.loadNet(name)
}

// upgradeConf turns off the bridge plugin's ipMasq and drops the firewall
// plugin of a conflist, keeping everything else.
func upgradeConf(raw []byte) ([]byte, error) {
	cl, plugins, err := decodeList(raw)
	if err != nil {
		return nil, err
	}
	var kept []any
	for _, p := range plugins {
		mp, _ := p.(map[string]any)
		switch mp["type"] {
		case "firewall":
			continue
		case "bridge":
			mp["ipMasq"] = false
		}
		kept = append(kept, p)
	}
	cl["plugins"] = kept
	out, err := json.MarshalIndent(cl, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// List returns the networks of the configuration directory, by name.
// Files that are not readable conflists are left out (Inspect tells why).
func (m *Manager) List() ([]*Network, error) {
	if rootless.Enabled() {
		return []*Network{slirpDef().Network}, nil
	}
	defs, err := m.listDefs()
	if err != nil {
		return nil, err
	}
	out := make([]*Network, len(defs))
	for i, d := range defs {
		out[i] = d.Network
	}
	return out, nil
}

func (m *Manager) listDefs() ([]*netDef, error) {
	entries, err := os.ReadDir(m.confDir)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var defs []*netDef
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".conflist")
		if !ok || e.IsDir() {
			continue
		}
		d, err := m.loadNet(name)
		if err != nil {
			continue
		}
		defs = append(defs, d)
	}
	sort.Slice(defs, func(i, j int) bool { return defs[i].Name < defs[j].Name })
	return defs, nil
}

// Inspect returns the network called name.
func (m *Manager) Inspect(name string) (*Network, error) {
	d, err := m.loadNet(name)
	if err != nil {
		return nil, err
	}
	return d.Network, nil
}

// Create writes a new network's conflist. The bridge itself appears when
// the first container is attached.
func (m *Manager) Create(o CreateOptions) (*Network, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return m.create(o, false)
}

// EnsureDefault returns the default network, writing its conflist first if
// it does not exist.
func (m *Manager) EnsureDefault() (*Network, error) {
	if d, err := m.loadNet(m.DefaultName); err == nil {
		return d.Network, nil
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return m.ensureDefault()
}

func (m *Manager) ensureDefault() (*Network, error) {
	if d, err := m.loadNet(m.DefaultName); err == nil {
		return d.Network, nil
	} else if _, statErr := os.Stat(m.confPath(m.DefaultName)); statErr == nil {
		return nil, fmt.Errorf("default network: %w", err)
	}
	n, err := m.create(CreateOptions{Name: m.DefaultName, Subnet: m.DefaultSubnet, Bridge: m.DefaultBridge}, true)
	if err != nil {
		return nil, fmt.Errorf("default network: %w", err)
	}
	return n, nil
}

func (m *Manager) create(o CreateOptions, isDefault bool) (*Network, error) {
	if rootless.Enabled() {
		return nil, errRootlessCNI(o.Name)
	}
	if !isDefault {
		if err := validName(o.Name); err != nil {
			return nil, err
		}
		if o.Name == m.DefaultName {
			return nil, fmt.Errorf("network name %q is the default network's", o.Name)
		}
	}
	if _, err := os.Stat(m.confPath(o.Name)); err == nil {
		return nil, fmt.Errorf("network %s already exists", o.Name)
	}
	defs, err := m.listDefs()
	if err != nil {
		return nil, err
	}
	hostNets := hostNetworks()

	// bridge
	usedBridges := map[string]string{}
	for _, d := range defs {
		usedBridges[d.Bridge] = d.Name
	}
	if o.Bridge != "" {
		if err := validBridgeName(o.Bridge); err != nil {
			return nil, err
		}
		if other, ok := usedBridges[o.Bridge]; ok {
			return nil, fmt.Errorf("bridge %s is already used by network %s", o.Bridge, other)
		}
		if linkExists(o.Bridge) && !isBridge(o.Bridge) {
			return nil, fmt.Errorf("bridge %s: a host interface of that name exists and is not a bridge", o.Bridge)
		}
	} else {
		for i := 1; ; i++ {
			b := "berth" + strconv.Itoa(i)
			if _, used := usedBridges[b]; !used && !linkExists(b) && b != m.DefaultBridge {
				o.Bridge = b
				break
			}
			if i > 9999 {
				return nil, errors.New("no free bridge name berthN")
			}
		}
	}

	// subnet
	var subnet *net.IPNet
	overlap := func(sn *net.IPNet) error {
		for _, d := range defs {
			if d.subnetIP != nil && netsOverlap(sn, d.subnetIP) {
				return fmt.Errorf("subnet %s overlaps network %s (%s)", sn, d.Name, d.Subnet)
			}
		}
		for _, h := range hostNets {
			if h.iface != o.Bridge && netsOverlap(sn, h.net) {
				return fmt.Errorf("subnet %s overlaps host interface %s (%s)", sn, h.iface, h.net)
			}
		}
		return nil
	}
	if o.Subnet != "" {
		ip, sn, err := net.ParseCIDR(o.Subnet)
		if err != nil || ip.To4() == nil {
			return nil, fmt.Errorf("invalid subnet %q: an IPv4 CIDR like 10.89.1.0/24 is needed", o.Subnet)
		}
		if ones, _ := sn.Mask.Size(); ones > 30 {
			return nil, fmt.Errorf("subnet %s is too small: at most /30", sn)
		}
		if err := overlap(sn); err != nil {
			return nil, err
		}
		subnet = sn
	} else {
		for i := 0; i < 256 && subnet == nil; i++ {
			_, sn, _ := net.ParseCIDR(fmt.Sprintf("10.89.%d.0/24", i))
			if overlap(sn) == nil {
				subnet = sn
			}
		}
		if subnet == nil {
			return nil, errors.New("no free subnet left in 10.89.0.0/16: give one")
		}
	}

	// gateway
	gw := nthIP(subnet, 1)
	if o.Gateway != "" {
		gw = net.ParseIP(o.Gateway).To4()
		if gw == nil {
			return nil, fmt.Errorf("invalid gateway %q", o.Gateway)
		}
		if !subnet.Contains(gw) || gw.Equal(subnet.IP) || gw.Equal(broadcast(subnet)) {
			return nil, fmt.Errorf("gateway %s is not a host address of subnet %s", gw, subnet)
		}
	}

	created := time.Now().UTC()
	br := bridgePlugin{
		// masquerade is berth's, once per network (rules.go)
		Type: "bridge", Bridge: o.Bridge, IsGateway: !o.Internal, IPMasq: false, HairpinMode: true,
		IPAM: ipamConfig{
			Type:   "host-local",
			Ranges: [][]ipamRange{{{Subnet: subnet.String(), Gateway: gw.String()}}},
		},
	}
	plugins := []any{&br}
	if !o.Internal {
		br.IPAM.Routes = []ipamRoute{{Dst: "0.0.0.0/0"}}
		plugins = append(plugins, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	}
	// no firewall plugin: berth's forward rules are per network
	plugins = append(plugins, map[string]any{"type": "tuning"})
	cl := confList{
		CNIVersion: CNIVersion,
		Name:       o.Name,
		Plugins:    plugins,
		Args:       &confListArg{Labels: o.Labels, Created: created.Format(time.RFC3339Nano)},
	}
	data, err := json.MarshalIndent(cl, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("create network %s: %w", o.Name, err)
	}
	path := m.confPath(o.Name)
	if err := writeFileAtomic(path, append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("create network %s: %w", o.Name, err)
	}
	nd, err := parseConfList(data, path)
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("create network %s: %w", o.Name, err)
	}
	return nd.Network, nil
}

// Remove deletes a network: its conflist, its bridge, its leases and its
// rules (masquerade, forward, isolation). It is refused for the default
// network and while containers are attached.
func (m *Manager) Remove(name string) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return m.remove(name)
}

func (m *Manager) remove(name string) error {
	if name == m.DefaultName {
		return fmt.Errorf("the default network %s cannot be removed", name)
	}
	d, err := m.loadNet(name)
	if err != nil {
		if _, statErr := os.Stat(m.confPath(name)); statErr != nil || validName(name) != nil {
			return err
		}
		// an unreadable conflist can still go
		return removeFile(m.confPath(name))
	}
	users, err := m.users(name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("network %s is in use by container(s) %s", name, strings.Join(users, ", "))
	}
	if err := removeFile(m.confPath(name)); err != nil {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	var errs []string
	if err := m.dropRules(name, rulesOf(d)); err != nil {
		errs = append(errs, err.Error())
	}
	if d.Driver == "bridge" && validBridgeName(d.Bridge) == nil {
		if err := deleteLink(d.Bridge); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if err := os.RemoveAll(filepath.Join(m.ipamDir(), name)); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove network %s: conflist removed, but: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// Prune removes every network but the default one that no container is
// attached to, and returns their names.
func (m *Manager) Prune() ([]string, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	defs, err := m.listDefs()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []string
	for _, d := range defs {
		if d.Name == m.DefaultName {
			continue
		}
		users, err := m.users(d.Name)
		if err != nil {
			return removed, err
		}
		if len(users) > 0 {
			continue
		}
		if err := m.remove(d.Name); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		removed = append(removed, d.Name)
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("prune networks: %s", strings.Join(errs, "; "))
	}
	return removed, nil
}

// users are the names (or short IDs) of the containers attached to network.
func (m *Manager) users(network string) ([]string, error) {
	recs, err := m.records()
	if err != nil {
		return nil, err
	}
	var users []string
	for _, r := range recs {
		for _, a := range r.Attachments {
			if a.Network == network {
				users = append(users, r.displayName())
				break
			}
		}
	}
	sort.Strings(users)
	return users, nil
}

// host interface networks, for overlap checks
type hostNet struct {
	iface string
	net   *net.IPNet
}

func hostNetworks() []hostNet {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []hostNet
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil || ipn.IP.IsLoopback() {
				continue
			}
			out = append(out, hostNet{iface: ifc.Name, net: &net.IPNet{IP: ipn.IP.Mask(ipn.Mask), Mask: ipn.Mask}})
		}
	}
	return out
}

func netsOverlap(a, b *net.IPNet) bool {
	return a.Contains(b.IP) || b.Contains(a.IP)
}

// nthIP is the n-th address of the subnet (0 is the network address).
func nthIP(sn *net.IPNet, n uint32) net.IP {
	ip := sn.IP.To4()
	v := uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
	v += n
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4()
}

func broadcast(sn *net.IPNet) net.IP {
	ip := sn.IP.To4()
	out := make(net.IP, 4)
	for i := range out {
		out[i] = ip[i] | ^sn.Mask[i]
	}
	return out
}

func linkExists(name string) bool {
	_, err := os.Lstat(filepath.Join("/sys/class/net", name))
	return err == nil
}

func isBridge(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name, "bridge"))
	return err == nil
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
