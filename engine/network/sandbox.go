package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
)

// Attachment asks for a container to be attached to a network.
type Attachment struct {
	// Network is the network's name; empty means the default network
	// (created if missing).
	Network string
	// Aliases are extra host names of the container on this network (for
	// Peers).
	Aliases []string
	// IP asks for this address (in the network's subnet); empty lets
	// host-local pick.
	IP string
}

// Sandbox is a container's network namespace and its attachments.
type Sandbox struct {
	ContainerID string
	// NetnsPath is the namespace to give the OCI runtime
	// (linux.namespaces: {type: network, path: NetnsPath}).
	NetnsPath string
	// IPs maps each network to the container's address on it.
	IPs map[string]string
	// Networks tells more about each attachment.
	Networks map[string]Endpoint
	// Ports are the published ports, host ports resolved.
	Ports []PortMapping
}

// Endpoint is the container's side of one attachment.
type Endpoint struct {
	Network   string
	Interface string // in the container: eth0, eth1, ...
	IP        string
	PrefixLen int
	Gateway   string // empty on internal networks
	MAC       string
	Aliases   []string
}

// Peer is a container attached to a network, for /etc/hosts.
type Peer struct {
	ContainerID string
	Name        string
	Aliases     []string
	IP          string
}

// settle is the time given to undo work after the caller's context ended.
const settle = 30 * time.Second

// Setup creates the container's network namespace and attaches it to the
// networks in order (interfaces eth0, eth1, ...), publishing ports on the
// first non-internal one. With no attachments the namespace has only its
// loopback (--network none). On failure everything done is undone.
func (m *Manager) Setup(ctx context.Context, containerID, containerName string, attach []Attachment, ports []PortMapping) (sb *Sandbox, err error) {
	if err := validID(containerID); err != nil {
		return nil, fmt.Errorf("network setup: %w", err)
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	what := containerName
	if what == "" {
		what = shortID(containerID)
	}
	wrap := func(err error) error { return fmt.Errorf("network setup of container %s: %w", what, err) }

	if r, err := m.readRecord(containerID); err != nil {
		return nil, wrap(err)
	} else if r != nil {
		return nil, wrap(errors.New("its network namespace already exists (tear it down first)"))
	}
	others, err := m.records()
	if err != nil {
		return nil, wrap(err)
	}

	// Everything is checked before anything is made.
	attach = append([]Attachment(nil), attach...)
	defs := make([]*netDef, len(attach))
	seen := map[string]bool{}
	hostNets := hostNetworks()
	for i := range attach {
		a := &attach[i]
		if a.Network == "" {
			if _, err := m.ensureDefault(); err != nil {
				return nil, wrap(err)
			}
			a.Network = m.DefaultName
		}
		if seen[a.Network] {
			return nil, wrap(fmt.Errorf("network %s is given twice", a.Network))
		}
		seen[a.Network] = true
		d, err := m.loadForUse(a.Network)
		if err != nil {
			return nil, wrap(err)
		}
		if err := checkRequestedIP(d, a.IP, others, containerID); err != nil {
			return nil, wrap(err)
		}
		if err := checkAliases(a.Aliases); err != nil {
			return nil, wrap(err)
		}
		if err := checkHostOverlap(d, hostNets); err != nil {
			return nil, wrap(err)
		}
		defs[i] = d
	}
	ports, err = validatePorts(ports)
	if err != nil {
		return nil, wrap(err)
	}
	portsOn := -1
	if len(ports) > 0 {
		for i, d := range defs {
			if !d.Internal && d.portmap {
				portsOn = i
				break
			}
		}
		if portsOn < 0 {
			return nil, wrap(errors.New("ports cannot be published: no attached network has port mapping (internal networks have none)"))
		}
		if defs[portsOn].Name == SlirpNetwork {
			if err := checkSlirpPorts(ports); err != nil {
				return nil, wrap(err)
			}
		}
		if ports, err = resolvePorts(ports, others); err != nil {
			return nil, wrap(err)
		}
	}

	rec := &record{
		Version:       1,
		ContainerID:   containerID,
		ContainerName: containerName,
		NetnsPath:     m.netnsPath(containerID),
		Created:       time.Now().UTC(),
	}
	if err := m.writeRecord(rec); err != nil {
		return nil, wrap(err)
	}
	defer func() {
		if err == nil {
			return
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settle)
		defer cancel()
		if terr := m.teardown(uctx, rec); terr != nil {
			err = fmt.Errorf("%w (and undoing it: %v)", err, terr)
		}
	}()
	if err := removeNetns(rec.NetnsPath); err != nil { // a stray one of a crash
		return nil, wrap(err)
	}
	if err := createNetns(rec.NetnsPath); err != nil {
		return nil, wrap(err)
	}
	for i, a := range attach {
		var pm []PortMapping
		if i == portsOn {
			pm = ports
		}
		if err := m.attach(ctx, rec, defs[i], a, "eth"+strconv.Itoa(i), pm); err != nil {
			return nil, wrap(err)
		}
	}
	if err := m.ensureRules(defs); err != nil {
		return nil, wrap(err)
	}
	return rec.sandbox(), nil
}

// checkRequestedIP checks a static address against the subnet and the
// other sandboxes (host-local would refuse a taken one too, later).
func checkRequestedIP(d *netDef, ip string, others []*record, containerID string) error {
	if ip == "" {
		return nil
	}
	addr := net.ParseIP(ip).To4()
	if addr == nil {
		return fmt.Errorf("network %s: %q is not an IPv4 address", d.Name, ip)
	}
	if d.subnetIP != nil {
		if !d.subnetIP.Contains(addr) || addr.Equal(d.subnetIP.IP) || addr.Equal(broadcast(d.subnetIP)) {
			return fmt.Errorf("network %s: address %s is not a host address of subnet %s", d.Name, ip, d.Subnet)
		}
		if addr.String() == d.Gateway {
			return fmt.Errorf("network %s: address %s is the gateway's", d.Name, ip)
		}
	}
	for _, r := range others {
		if r.ContainerID == containerID {
			continue
		}
		if a := r.attachment(d.Name); a != nil && (a.IP == addr.String() || a.RequestedIP == addr.String()) {
			return fmt.Errorf("network %s: address %s is taken by container %s", d.Name, ip, r.displayName())
		}
	}
	return nil
}

// checkHostOverlap refuses a network whose subnet is on another host
// interface (podman's podman0 on 10.88.0.0/16, another berth's
// configuration): the bridge plugin would add the same routes twice and
// break both.
func checkHostOverlap(d *netDef, hostNets []hostNet) error {
	if d.subnetIP == nil {
		return nil
	}
	for _, h := range hostNets {
		if h.iface != d.Bridge && netsOverlap(d.subnetIP, h.net) {
			return fmt.Errorf("network %s: subnet %s overlaps host interface %s (%s)", d.Name, d.Subnet, h.iface, h.net)
		}
	}
	return nil
}

// checkAliases refuses aliases that could not go into /etc/hosts.
func checkAliases(aliases []string) error {
	for _, a := range aliases {
		if a == "" || len(a) > 253 || strings.ContainsAny(a, " \t\r\n#/") {
			return fmt.Errorf("invalid alias %q", a)
		}
	}
	return nil
}

// resolvePorts checks host ports against other sandboxes and the host,
// and picks free ones for host port 0.
func resolvePorts(ports []PortMapping, others []*record) ([]PortMapping, error) {
	taken := func(p PortMapping) string {
		for _, r := range others {
			for _, a := range r.Attachments {
				for _, q := range a.Ports {
					if portsClash(p, q) {
						return r.displayName()
					}
				}
			}
		}
		return ""
	}
	out := append([]PortMapping(nil), ports...)
	for i, p := range out {
		if p.HostPort != 0 {
			if who := taken(p); who != "" {
				return nil, fmt.Errorf("host port %d/%s is already published by container %s", p.HostPort, p.proto(), who)
			}
			if _, err := probePort(p); err != nil {
				return nil, fmt.Errorf("host port %d/%s is not free: %w", p.HostPort, p.proto(), err)
			}
			continue
		}
		for try := 0; ; try++ {
			port, err := probePort(p)
			if err != nil {
				return nil, fmt.Errorf("port %s: %w", p, err)
			}
			q := p
			q.HostPort = port
			clash := taken(q) != ""
			for j := 0; j < i && !clash; j++ {
				clash = portsClash(q, out[j])
			}
			if !clash {
				out[i] = q
				break
			}
			if try > 100 {
				return nil, fmt.Errorf("port %s: no free host port found", p)
			}
		}
	}
	return out, nil
}

// attach runs CNI ADD of one network, keeping the record current before
// and after so that a crash leaves what Teardown needs.
func (m *Manager) attach(ctx context.Context, rec *record, d *netDef, a Attachment, ifName string, ports []PortMapping) error {
	if d.Name == SlirpNetwork {
		return m.attachSlirp(rec, a, ports)
	}
	conf, err := withDataDir(d.raw, m.ipamDir())
	if err != nil {
		return fmt.Errorf("network %s: %w", d.Name, err)
	}
	pl, err := parseList(conf)
	if err != nil {
		return fmt.Errorf("network %s: %w", d.Name, err)
	}
	ar := &attachmentRecord{
		Network: d.Name,
		IfName:  ifName,
		Aliases: append([]string(nil), a.Aliases...),
		Ports:   ports,
		State:   stateAdding,
		Config:  conf,
		Args:    [][2]string{{"IgnoreUnknown", "1"}},
	}
	if a.IP != "" {
		ar.RequestedIP = net.ParseIP(a.IP).To4().String()
		ar.Args = append(ar.Args, [2]string{"IP", ar.RequestedIP})
	}
	if len(ports) > 0 {
		ar.CapabilityArgs = map[string]any{"portMappings": ports}
	}
	rec.Attachments = append(rec.Attachments, ar)
	if err := m.writeRecord(rec); err != nil {
		return err
	}
	// On failure the record stays "adding": the DEL that undoes it gets
	// what libcni cached, if anything.
	res, err := m.add(ctx, pl, ar.runtimeConf(rec))
	if err != nil {
		return fmt.Errorf("network %s: %w", d.Name, err)
	}
	ar.Result = res
	ep, err := parseResult(pl.cniVersion, res, ifName)
	if err != nil {
		_ = m.writeRecord(rec)
		return fmt.Errorf("network %s: %w", d.Name, err)
	}
	ar.IP, ar.PrefixLen, ar.Gateway, ar.MAC = ep.ip, ep.prefixLen, ep.gateway, ep.mac
	if d.Internal {
		ar.Gateway = ""
	}
	ar.State = stateReady
	return m.writeRecord(rec)
}

// runtimeConf is the attachment's CNI invocation as libcni takes it.
func (ar *attachmentRecord) runtimeConf(rec *record) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: rec.ContainerID, NetNS: rec.NetnsPath, IfName: ar.IfName,
		Args: ar.Args, CapabilityArgs: ar.CapabilityArgs,
	}
}

// detach runs CNI DEL of one attachment with its stored configuration and
// cleans what DEL cannot without a namespace.
func (m *Manager) detach(ctx context.Context, rec *record, ar *attachmentRecord, haveNetns bool) error {
	if ar.Network == SlirpNetwork {
		return m.detachSlirp(rec, ar)
	}
	pl, err := parseList(ar.Config)
	if err != nil {
		return fmt.Errorf("network %s: stored configuration: %w", ar.Network, err)
	}
	rt := ar.runtimeConf(rec)
	if !haveNetns {
		rt.NetNS = ""
	}
	var errs []string
	if err := m.del(ctx, pl, rt, ar.Result); err != nil {
		errs = append(errs, err.Error())
	}
	if !haveNetns && pl.masqueradesPerContainer() {
		// the bridge plugin finds the masquerade chain's address in the
		// namespace; without one it leaves the chain
		if err := sweepMasquerade(ar.Network, rec.ContainerID); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if err := sweepLeases(m.ipamDir(), ar.Network, rec.ContainerID, ar.IfName); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("network %s: %s", ar.Network, strings.Join(errs, "; "))
	}
	return nil
}

// Teardown detaches the container from every network (CNI DEL with the
// configuration and arguments of its ADD, in reverse order) and removes its
// network namespace. It is idempotent, and works on half-made sandboxes and
// on namespaces already gone. When a DEL fails the record keeps the
// attachments still to undo, so a later Teardown or Repair tries again.
func (m *Manager) Teardown(ctx context.Context, containerID string) error {
	if err := validID(containerID); err != nil {
		return fmt.Errorf("network teardown: %w", err)
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := m.readRecord(containerID)
	if err != nil {
		return fmt.Errorf("network teardown: %w", err)
	}
	if rec == nil {
		// nothing recorded: at most a stray namespace
		if err := removeNetns(m.netnsPath(containerID)); err != nil {
			return fmt.Errorf("network teardown of container %s: %w", shortID(containerID), err)
		}
		return nil
	}
	return m.teardown(ctx, rec)
}

func (m *Manager) teardown(ctx context.Context, rec *record) error {
	haveNetns := isNetns(rec.NetnsPath)
	var errs []string
	for i := len(rec.Attachments) - 1; i >= 0; i-- {
		if err := m.detach(ctx, rec, rec.Attachments[i], haveNetns); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		rec.Attachments = append(rec.Attachments[:i], rec.Attachments[i+1:]...)
	}
	if err := removeNetns(rec.NetnsPath); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) == 0 {
		if err := m.removeRecord(rec.ContainerID); err != nil {
			errs = append(errs, err.Error())
		}
	} else if err := m.writeRecord(rec); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("network teardown of container %s: %s", rec.displayName(), strings.Join(errs, "; "))
	}
	return nil
}

// Connect attaches a set-up sandbox to one more network, on the next free
// ethN. containerName, when not empty, updates the name Peers reports.
// No ports are published on it.
func (m *Manager) Connect(ctx context.Context, containerID, containerName string, a Attachment) (err error) {
	if err := validID(containerID); err != nil {
		return fmt.Errorf("network connect: %w", err)
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if a.Network == "" {
		if _, err := m.ensureDefault(); err != nil {
			return fmt.Errorf("network connect: %w", err)
		}
		a.Network = m.DefaultName
	}
	rec, err := m.readRecord(containerID)
	if err != nil {
		return fmt.Errorf("network connect: %w", err)
	}
	if rec == nil {
		return fmt.Errorf("connect container %s to network %s: it has no network namespace (not running?)", shortID(containerID), a.Network)
	}
	if containerName != "" {
		rec.ContainerName = containerName
	}
	wrap := func(err error) error {
		return fmt.Errorf("connect container %s to network %s: %w", rec.displayName(), a.Network, err)
	}
	if rec.attachment(a.Network) != nil {
		return wrap(errors.New("already connected"))
	}
	if !isNetns(rec.NetnsPath) {
		return wrap(fmt.Errorf("its network namespace %s is gone", rec.NetnsPath))
	}
	if a.Network == SlirpNetwork {
		return wrap(errors.New("slirp4netns is given to a container when it starts, not connected later"))
	}
	d, err := m.loadForUse(a.Network)
	if err != nil {
		return wrap(err)
	}
	others, err := m.records()
	if err != nil {
		return wrap(err)
	}
	if err := checkRequestedIP(d, a.IP, others, containerID); err != nil {
		return wrap(err)
	}
	if err := checkAliases(a.Aliases); err != nil {
		return wrap(err)
	}
	if err := checkHostOverlap(d, hostNetworks()); err != nil {
		return wrap(err)
	}
	used := map[string]bool{}
	for _, x := range rec.Attachments {
		used[x.IfName] = true
	}
	ifName := ""
	for i := 0; ifName == ""; i++ {
		if n := "eth" + strconv.Itoa(i); !used[n] {
			ifName = n
		}
	}
	if err := m.attach(ctx, rec, d, a, ifName, nil); err != nil {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settle)
		defer cancel()
		ar := rec.Attachments[len(rec.Attachments)-1]
		if ar.Network != a.Network { // failed before ADD
			return wrap(err)
		}
		if derr := m.detach(uctx, rec, ar, true); derr != nil {
			return wrap(fmt.Errorf("%w (and undoing it: %v)", err, derr))
		}
		rec.Attachments = rec.Attachments[:len(rec.Attachments)-1]
		if werr := m.writeRecord(rec); werr != nil {
			return wrap(fmt.Errorf("%w (and undoing it: %v)", err, werr))
		}
		return wrap(err)
	}
	if err := m.ensureRules([]*netDef{d}); err != nil {
		return wrap(err)
	}
	return nil
}

// Disconnect detaches a sandbox from one network (ports published through
// it go with it).
func (m *Manager) Disconnect(ctx context.Context, containerID, network string) error {
	if err := validID(containerID); err != nil {
		return fmt.Errorf("network disconnect: %w", err)
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := m.readRecord(containerID)
	if err != nil {
		return fmt.Errorf("network disconnect: %w", err)
	}
	if rec == nil || rec.attachment(network) == nil {
		return fmt.Errorf("container %s is not connected to network %s", shortID(containerID), network)
	}
	for i, ar := range rec.Attachments {
		if ar.Network != network {
			continue
		}
		if err := m.detach(ctx, rec, ar, isNetns(rec.NetnsPath)); err != nil {
			return fmt.Errorf("disconnect container %s from network %s: %w", rec.displayName(), network, err)
		}
		rec.Attachments = append(rec.Attachments[:i], rec.Attachments[i+1:]...)
		break
	}
	if err := m.writeRecord(rec); err != nil {
		return fmt.Errorf("disconnect container %s from network %s: %w", rec.displayName(), network, err)
	}
	return nil
}

func (r *record) sandbox() *Sandbox {
	sb := &Sandbox{
		ContainerID: r.ContainerID,
		NetnsPath:   r.NetnsPath,
		IPs:         map[string]string{},
		Networks:    map[string]Endpoint{},
	}
	for _, a := range r.Attachments {
		if a.State != stateReady {
			continue
		}
		sb.IPs[a.Network] = a.IP
		sb.Networks[a.Network] = Endpoint{
			Network: a.Network, Interface: a.IfName, IP: a.IP, PrefixLen: a.PrefixLen,
			Gateway: a.Gateway, MAC: a.MAC, Aliases: append([]string(nil), a.Aliases...),
		}
		sb.Ports = append(sb.Ports, a.Ports...)
	}
	return sb
}

// Sandbox returns a container's sandbox as recorded; nil, nil when it has
// none.
func (m *Manager) Sandbox(containerID string) (*Sandbox, error) {
	if err := validID(containerID); err != nil {
		return nil, err
	}
	rec, err := m.readRecord(containerID)
	if err != nil || rec == nil {
		return nil, err
	}
	return rec.sandbox(), nil
}

// Peers lists the containers attached to a network (set up completely),
// by name then ID.
func (m *Manager) Peers(network string) ([]Peer, error) {
	if network == SlirpNetwork {
		return nil, nil // one address for all: no names to give
	}
	recs, err := m.records()
	if err != nil {
		return nil, err
	}
	var peers []Peer
	for _, r := range recs {
		a := r.attachment(network)
		if a == nil || a.State != stateReady || a.IP == "" {
			continue
		}
		peers = append(peers, Peer{
			ContainerID: r.ContainerID,
			Name:        r.ContainerName,
			Aliases:     append([]string(nil), a.Aliases...),
			IP:          a.IP,
		})
	}
	sort.Slice(peers, func(i, j int) bool {
		if peers[i].Name != peers[j].Name {
			return peers[i].Name < peers[j].Name
		}
		return peers[i].ContainerID < peers[j].ContainerID
	})
	return peers, nil
}

// Repair cleans what a crash left: it tears down the sandboxes of
// containers alive says are gone, removes namespaces no record owns, the
// rules of networks whose conflist is gone, and leftover temporary files;
// the rules of the other networks are checked again at their next use.
// alive is called with the network lock held: it must not call back into
// the Manager.
func (m *Manager) Repair(ctx context.Context, alive func(containerID string) bool) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	var errs []string
	recs, err := m.records()
	if err != nil {
		return fmt.Errorf("network repair: %w", err)
	}
	owned := map[string]bool{}
	for _, r := range recs {
		owned[r.ContainerID] = true
		if alive(r.ContainerID) {
			continue
		}
		if err := m.teardown(ctx, r); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if entries, err := os.ReadDir(m.netnsDir()); err == nil {
		for _, e := range entries {
			if owned[e.Name()] || alive(e.Name()) {
				continue
			}
			if err := removeNetns(m.netnsPath(e.Name())); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if err := m.repairRules(); err != nil {
		errs = append(errs, err.Error())
	}
	for _, dir := range []string{m.recordDir(), m.confDir, m.rulesDir()} {
		if entries, err := os.ReadDir(dir); err == nil {
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp") {
					_ = os.Remove(dir + "/" + e.Name())
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("network repair: %s", strings.Join(errs, "; "))
	}
	return nil
}
