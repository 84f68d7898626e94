package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Chains of berth's own rules. The bridge plugin's ipMasq and the firewall
// plugin make rules per container, about twenty iptables execs between ADD
// and DEL (~5 ms each on nf_tables); berth's conflists turn both off and
// berth installs the same effect once per network instead:
//
//	nat     POSTROUTING -> BERTH-POSTROUTING
//	          -s SUBNET ! -o BRIDGE -j MASQUERADE
//	filter  FORWARD -> BERTH-ISOLATION-1 (first), BERTH-FORWARD (second)
//	          -i BRIDGE -j ACCEPT
//	          -o BRIDGE -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT
//
// The isolation chains are docker's: ISOLATION-1 sends what comes from a
// bridge and leaves by another interface to ISOLATION-2, which drops it if
// that interface is another network's bridge. They come first so that the
// accept rules never let one network reach another.
const (
	isolationChain1 = "BERTH-ISOLATION-1"
	isolationChain2 = "BERTH-ISOLATION-2"
	forwardChain    = "BERTH-FORWARD"
	masqChain       = "BERTH-POSTROUTING"
)

// netRules are the host rules of one network; the marker file of a network
// holds the ones installed.
type netRules struct {
	Network string `json:"network"`
	Bridge  string `json:"bridge"`
	// Subnet is masqueraded by berth (the bridge plugin's ipMasq is off).
	Subnet string `json:"subnet,omitempty"`
	// Forward: berth accepts the bridge's traffic in FORWARD (the
	// conflist has no firewall plugin doing it per container).
	Forward bool `json:"forward"`
}

// rulesOf are the rules a network needs; nil for internal networks (no
// route out, nothing to masquerade or isolate) and non-bridge drivers.
// Only what the conflist's plugins do not do themselves is berth's, so
// conflists written by hand keep working.
func rulesOf(d *netDef) *netRules {
	if d.Internal || d.Driver != "bridge" || validBridgeName(d.Bridge) != nil {
		return nil
	}
	r := &netRules{Network: d.Name, Bridge: d.Bridge, Forward: !d.firewall}
	if !d.ipMasq && d.subnetIP != nil {
		r.Subnet = d.subnetIP.String()
	}
	return r
}

// comment marks the rules of BERTH-FORWARD and BERTH-POSTROUTING with their
// network (no spaces: iptables -S output stays splittable by anyone).
func (r *netRules) comment() []string {
	return []string{"-m", "comment", "--comment", "berth-network:" + r.Network}
}

// forwardRules and masqRules are the rules as iptables -S prints them, so
// that listed rules compare equal.
func (r *netRules) forwardRules() [][]string {
	if !r.Forward {
		return nil
	}
	accept := append(r.comment(), "-j", "ACCEPT")
	return [][]string{
		append([]string{"-i", r.Bridge}, accept...),
		append([]string{"-o", r.Bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT"}, accept...),
	}
}

func (r *netRules) masqRules() [][]string {
	if r.Subnet == "" {
		return nil
	}
	return [][]string{append(append([]string{"-s", r.Subnet, "!", "-o", r.Bridge}, r.comment()...), "-j", "MASQUERADE")}
}

// owns tells whether a rule of berth's chains is one of this network's:
// its comment and its bridge (two configuration directories may both have
// a network of that name).
func (r *netRules) owns(rule []string) bool {
	return hasWords(rule, r.comment()...) && (hasWords(rule, "-i", r.Bridge) || hasWords(rule, "-o", r.Bridge))
}

func (m *Manager) rulesDir() string { return filepath.Join(m.runDir, "rules") }

func (m *Manager) markerPath(network string) string {
	return filepath.Join(m.rulesDir(), network+".json")
}

// readMarker returns the rules installed for a network, nil when there is
// no (readable) marker: then nothing is known and the tables are checked.
func (m *Manager) readMarker(network string) *netRules {
	data, err := os.ReadFile(m.markerPath(network))
	if err != nil {
		return nil
	}
	var mk marker
	if json.Unmarshal(data, &mk) != nil || mk.Network != network || mk.BootID != bootID() {
		return nil
	}
	return &mk.netRules
}

// marker is a marker file: the rules installed, and the boot they were
// installed in (a run directory that is not a tmpfs outlives the rules).
type marker struct {
	netRules
	BootID string `json:"boot_id"`
}

// bootID names this boot of the kernel.
func bootID() string {
	data, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(data))
}

// ensureRules makes sure the rules of these networks are installed. A
// network whose marker (in the run directory, of this boot) matches its
// rules costs a file read and no exec; otherwise
// (first container since boot, another run directory, after Repair, an
// edited conflist) the tables are listed once and what is missing is added.
func (m *Manager) ensureRules(defs []*netDef) error {
	var todo []*netRules
	for _, d := range defs {
		want := rulesOf(d)
		if want == nil {
			continue
		}
		have := m.readMarker(d.Name)
		if have != nil && *have == *want {
			continue
		}
		if have != nil { // the conflist changed: its old rules go
			if err := removeRules(have); err != nil {
				return fmt.Errorf("network %s rules: %w", d.Name, err)
			}
		}
		todo = append(todo, want)
	}
	if len(todo) == 0 {
		return nil
	}
	if err := installRules(todo); err != nil {
		return fmt.Errorf("network rules: %w", err)
	}
	for _, r := range todo {
		data, err := json.Marshal(marker{netRules: *r, BootID: bootID()})
		if err == nil {
			err = writeFileAtomic(m.markerPath(r.Network), data, 0o600)
		}
		if err != nil {
			return fmt.Errorf("network %s rules: marker: %w", r.Network, err)
		}
	}
	return nil
}

// dropRules removes a network's rules, those its marker records and want
// (the conflist's, which differ if it was edited), and its marker.
func (m *Manager) dropRules(network string, want *netRules) error {
	var drop []*netRules
	have := m.readMarker(network)
	if have != nil {
		drop = append(drop, have)
	}
	if want != nil && (have == nil || *have != *want) {
		drop = append(drop, want)
	}
	for _, r := range drop {
		if err := removeRules(r); err != nil {
			return fmt.Errorf("network %s rules: %w", network, err)
		}
	}
	if err := removeFile(m.markerPath(network)); err != nil {
		return fmt.Errorf("network %s rules: marker: %w", network, err)
	}
	return nil
}

// repairRules runs under Repair: the rules of networks whose conflist is
// gone are removed; the markers of the others are dropped, so that the next
// container checks the tables again (a firewall reload may have flushed
// them).
func (m *Manager) repairRules() error {
	entries, err := os.ReadDir(m.rulesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("network rules: %w", err)
	}
	var errs []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		// Only a deleted network loses its rules: one whose conflist
		// does not parse still has containers using them.
		if _, err := os.Stat(m.confPath(name)); errors.Is(err, fs.ErrNotExist) {
			err = m.dropRules(name, nil)
		} else {
			err = removeFile(m.markerPath(name))
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

// installRules adds what is missing of the rules, and of the chains and
// jumps they hang from, with one listing of each table. Two berths with
// different run directories (different locks) may both add a rule of a
// network they share: a harmless duplicate, and removal deletes every copy.
func installRules(rules []*netRules) error {
	filter, err := listTable("filter")
	if err != nil {
		return err
	}
	var nat *ruleset
	for _, r := range rules {
		if err := syncRules(filter, "filter", forwardChain, r, r.forwardRules()); err != nil {
			return err
		}
		if err := ensureIsolation(filter, r.Bridge); err != nil {
			return err
		}
		if r.Subnet == "" {
			continue
		}
		if nat == nil {
			if nat, err = listTable("nat"); err != nil {
				return err
			}
		}
		if err := syncRules(nat, "nat", masqChain, r, r.masqRules()); err != nil {
			return err
		}
	}
	if nat != nil {
		if err := ensureJump(nat, "nat", "POSTROUTING", masqChain, 0); err != nil {
			return err
		}
	}
	if err := ensureIsolationFirst(filter); err != nil {
		return err
	}
	return ensureJump(filter, "filter", "FORWARD", forwardChain, 2)
}

// removeRules deletes a network's rules; the chains stay, as other berth
// processes may be adding to them.
func removeRules(r *netRules) error {
	filter, err := listTable("filter")
	if err != nil {
		return err
	}
	for _, c := range []string{isolationChain1, isolationChain2} {
		for _, rule := range filter.rules[c] {
			if isIsolation1(rule, r.Bridge) || isIsolation2(rule, r.Bridge) {
				if err := deleteRule("filter", c, rule); err != nil {
					return err
				}
			}
		}
	}
	if err := syncRules(filter, "filter", forwardChain, r, nil); err != nil {
		return err
	}
	nat, err := listTable("nat")
	if err != nil {
		return err
	}
	return syncRules(nat, "nat", masqChain, r, nil)
}

// syncRules makes the rules of r in chain be want: its other rules there
// are deleted, the missing ones appended (the chain is made if needed).
func syncRules(rs *ruleset, table, chain string, r *netRules, want [][]string) error {
	var kept [][]string
	for _, rule := range rs.rules[chain] {
		if !r.owns(rule) || slices.ContainsFunc(want, func(w []string) bool { return slices.Equal(w, rule) }) {
			kept = append(kept, rule)
			continue
		}
		if err := deleteRule(table, chain, rule); err != nil {
			return err
		}
	}
	rs.rules[chain] = kept
	for _, w := range want {
		if slices.ContainsFunc(kept, func(k []string) bool { return slices.Equal(k, w) }) {
			continue
		}
		if err := ensureChain(rs, table, chain); err != nil {
			return err
		}
		if _, err := iptables(append([]string{"-t", table, "-A", chain}, w...)...); err != nil {
			return err
		}
		rs.rules[chain] = append(rs.rules[chain], w)
	}
	return nil
}

func ensureChain(rs *ruleset, table, chain string) error {
	if rs.chains[chain] {
		return nil
	}
	if _, err := iptables("-t", table, "-N", chain); err != nil && !strings.Contains(err.Error(), "exists") {
		return err
	}
	rs.chains[chain] = true
	return nil
}

// ensureJump makes sure from jumps to chain (made if needed), inserting
// the jump at position pos (1-based), or appending it when pos is 0.
func ensureJump(rs *ruleset, table, from, chain string, pos int) error {
	for _, r := range rs.rules[from] {
		if len(r) == 2 && jumpTarget(r) == chain {
			return nil
		}
	}
	if err := ensureChain(rs, table, chain); err != nil {
		return err
	}
	jump := []string{"-j", chain}
	if pos == 0 {
		if _, err := iptables("-t", table, "-A", from, "-j", chain); err != nil {
			return err
		}
		rs.rules[from] = append(rs.rules[from], jump)
		return nil
	}
	pos = min(pos, len(rs.rules[from])+1) // iptables refuses a position past the end
	if _, err := iptables("-t", table, "-I", from, strconv.Itoa(pos), "-j", chain); err != nil {
		return err
	}
	rs.rules[from] = slices.Insert(rs.rules[from], pos-1, jump)
	return nil
}

func isIsolation1(rule []string, bridge string) bool {
	return hasWords(rule, "-i", bridge, "!", "-o", bridge) && jumpTarget(rule) == isolationChain2
}

func isIsolation2(rule []string, bridge string) bool {
	return hasWords(rule, "-o", bridge) && jumpTarget(rule) == "DROP"
}

// ensureIsolation adds a bridge's pair of isolation rules where missing.
func ensureIsolation(rs *ruleset, bridge string) error {
	pair := []struct {
		chain string
		match func([]string, string) bool
		rule  []string
	}{
		{isolationChain1, isIsolation1, []string{"-i", bridge, "!", "-o", bridge, "-j", isolationChain2}},
		{isolationChain2, isIsolation2, []string{"-o", bridge, "-j", "DROP"}},
	}
	// Both chains first: the first chain's rule jumps to the second.
	for _, p := range pair {
		if err := ensureChain(rs, "filter", p.chain); err != nil {
			return err
		}
	}
	for _, p := range pair {
		if slices.ContainsFunc(rs.rules[p.chain], func(r []string) bool { return p.match(r, bridge) }) {
			continue
		}
		if _, err := iptables(append([]string{"-t", "filter", "-A", p.chain}, p.rule...)...); err != nil {
			return err
		}
		rs.rules[p.chain] = append(rs.rules[p.chain], p.rule)
	}
	return nil
}

// ensureIsolationFirst makes FORWARD's first rule the jump to
// BERTH-ISOLATION-1 (the firewall plugin of hand-written conflists inserts
// its CNI-FORWARD jump first when it is missing).
func ensureIsolationFirst(rs *ruleset) error {
	fwd := rs.rules["FORWARD"]
	if len(fwd) > 0 && len(fwd[0]) == 2 && jumpTarget(fwd[0]) == isolationChain1 {
		return nil
	}
	var kept [][]string
	for _, r := range fwd {
		if len(r) == 2 && jumpTarget(r) == isolationChain1 {
			if err := deleteRule("filter", "FORWARD", r); err != nil {
				return err
			}
			continue
		}
		kept = append(kept, r)
	}
	rs.rules["FORWARD"] = kept
	return ensureJump(rs, "filter", "FORWARD", isolationChain1, 1)
}
