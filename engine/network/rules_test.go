package network

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ruleCounts counts the rules of r in the tables: berth's forward and
// masquerade rules (exactly as wanted), isolation rules of its bridge.
func ruleCounts(t *testing.T, r *netRules) (forward, masq, isolation int) {
	t.Helper()
	filter, err := listTable("filter")
	if err != nil {
		t.Fatal(err)
	}
	nat, err := listTable("nat")
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range filter.rules[forwardChain] {
		if r.owns(rule) {
			forward++
		}
	}
	for _, rule := range nat.rules[masqChain] {
		if r.owns(rule) {
			masq++
		}
	}
	for _, rule := range filter.rules[isolationChain1] {
		if isIsolation1(rule, r.Bridge) {
			isolation++
		}
	}
	for _, rule := range filter.rules[isolationChain2] {
		if isIsolation2(rule, r.Bridge) {
			isolation++
		}
	}
	return forward, masq, isolation
}

// assertRules checks the network's rules are installed once each, and
// reached: FORWARD jumps to the isolation chain first, then to berth's.
func assertRules(t *testing.T, r *netRules) {
	t.Helper()
	if f, m, i := ruleCounts(t, r); f != 2 || m != 1 || i != 2 {
		t.Fatalf("rules of %s: %d forward (want 2), %d masquerade (want 1), %d isolation (want 2)", r.Network, f, m, i)
	}
	filter, _ := listTable("filter")
	nat, _ := listTable("nat")
	fwd := filter.rules["FORWARD"]
	if len(fwd) < 2 || jumpTarget(fwd[0]) != isolationChain1 || !slices.ContainsFunc(fwd, func(r []string) bool { return jumpTarget(r) == forwardChain }) {
		t.Fatalf("FORWARD does not jump to %s first, then %s: %v", isolationChain1, forwardChain, fwd)
	}
	if !slices.ContainsFunc(nat.rules["POSTROUTING"], func(r []string) bool { return jumpTarget(r) == masqChain }) {
		t.Fatalf("POSTROUTING does not jump to %s", masqChain)
	}
}

func assertNoRules(t *testing.T, r *netRules) {
	t.Helper()
	if f, m, i := ruleCounts(t, r); f+m+i != 0 {
		t.Fatalf("rules of %s left: %d forward, %d masquerade, %d isolation", r.Network, f, m, i)
	}
}

// iptablesLines are the lines of iptables-save holding any of words.
func iptablesLines(t *testing.T, words ...string) []string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if slices.ContainsFunc(words, func(w string) bool { return strings.Contains(l, w) }) {
			lines = append(lines, l)
		}
	}
	return lines
}

// Rules are per network: installed with its first container, none per
// container, kept while the network exists, gone with it; none for an
// internal network.
func TestPerNetworkRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network("rules24", "bnt24", "10.250.24.0/24", false)
	e.network("int25", "bnt25", "10.250.25.0/24", true)
	want := &netRules{Network: "rules24", Bridge: "bnt24", Subnet: "10.250.24.0/24", Forward: true}
	internal := &netRules{Network: "int25", Bridge: "bnt25", Subnet: "10.250.25.0/24", Forward: true}

	a, b := e.id("a24"), e.id("b24")
	sbA := e.setup(a, "a", []Attachment{{Network: "rules24"}, {Network: "int25"}}, nil)
	e.setup(b, "b", []Attachment{{Network: "rules24"}}, nil)
	assertRules(t, want)
	assertNoRules(t, internal)
	if got := e.m.readMarker("rules24"); got == nil || *got != *want {
		t.Fatalf("marker of rules24: %+v, want %+v", got, want)
	}
	if e.m.readMarker("int25") != nil {
		t.Fatal("internal network has a rules marker")
	}
	if l := iptablesLines(t, a, b, " "+sbA.IPs["rules24"]+"/32 ", " "+sbA.IPs["int25"]+"/32 ", "bnt25"); len(l) > 0 {
		t.Fatalf("per-container or internal network rules:\n%s", strings.Join(l, "\n"))
	}
	if !hasDefaultRoute(routes(t, sbA.NetnsPath)) {
		t.Fatal("no default route through rules24")
	}

	// Sandboxes set up before libcni kept its result cache: DEL gets the
	// ADD result the record kept, so the firewall plugin finds its rules.
	if err := os.RemoveAll(filepath.Join(e.m.RunDir(), "cni-cache")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a, b} {
		if err := e.m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	assertRules(t, want) // the network's, not its containers'

	// a flushed firewall is repaired: Repair drops the markers, the next
	// Setup checks the tables again
	masq := want.masqRules()[0]
	if err := deleteRule("nat", masqChain, masq); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Repair(ctx, func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if e.m.readMarker("rules24") != nil {
		t.Fatal("Repair kept the marker")
	}
	e.setup(e.id("c24"), "c", []Attachment{{Network: "rules24"}}, nil)
	assertRules(t, want)

	errContains(t, e.m.Remove("rules24"), "in use")
	if err := e.m.Teardown(ctx, e.id("c24")); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Remove("rules24"); err != nil {
		t.Fatal(err)
	}
	assertNoRules(t, want)
	if _, err := os.Stat(e.m.markerPath("rules24")); err == nil {
		t.Fatal("Remove left the marker")
	}
}

// Conflists of older berths (bridge ipMasq, firewall plugin) are brought up
// to date at their next use; containers set up with them are torn down with
// their recorded configuration. Hand-written conflists are used as they are.
func TestOutdatedConflist(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.bridges = append(e.bridges, "bnt26")
	const old = `{"cniVersion":"1.0.0","name":"old26","plugins":[
	  {"type":"bridge","bridge":"bnt26","isGateway":true,"ipMasq":true,"hairpinMode":true,
	   "ipam":{"type":"host-local","ranges":[[{"subnet":"10.250.26.0/24","gateway":"10.250.26.1"}]],"routes":[{"dst":"0.0.0.0/0"}]}},
	  {"type":"portmap","capabilities":{"portMappings":true}},
	  {"type":"firewall","backend":"iptables"},
	  {"type":"tuning"}]`
	path := filepath.Join(e.m.ConfDir(), "old26.conflist")
	write := func(data string) {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// written by hand: kept, the plugins' per-container rules made
	write(old + "}")
	a := e.id("a26")
	sbA := e.setup(a, "a", []Attachment{{Network: "old26"}}, nil)
	ipA := " " + sbA.IPs["old26"] + "/32 "
	if data, _ := os.ReadFile(path); string(data) != old+"}" {
		t.Fatalf("hand-written conflist rewritten:\n%s", data)
	}
	if l := iptablesLines(t, a); len(l) == 0 {
		t.Fatal("no per-container masquerade chain with ipMasq on")
	}
	if l := iptablesLines(t, ipA); len(l) == 0 {
		t.Fatal("no firewall plugin rules")
	}

	// written by an older berth: upgraded at the next setup
	write(old + `,"args":{"berth_created":"2026-01-01T00:00:00Z","berth_labels":{"k":"v"}}}`)
	b := e.id("b26")
	sbB := e.setup(b, "b", []Attachment{{Network: "old26"}}, nil)
	d, err := e.m.loadNet("old26")
	if err != nil {
		t.Fatal(err)
	}
	if d.ipMasq || d.firewall || d.outdated || !d.portmap || d.Labels["k"] != "v" || d.Subnet != "10.250.26.0/24" {
		t.Fatalf("upgraded conflist: %+v\n%s", d, d.raw)
	}
	var cl map[string]any
	if err := json.Unmarshal(d.raw, &cl); err != nil || len(cl["plugins"].([]any)) != 3 {
		t.Fatalf("upgraded conflist: %v\n%s", err, d.raw)
	}
	assertRules(t, &netRules{Network: "old26", Bridge: "bnt26", Subnet: "10.250.26.0/24", Forward: true})
	if l := iptablesLines(t, b, " "+sbB.IPs["old26"]+"/32 "); len(l) > 0 {
		t.Fatalf("per-container rules after the upgrade:\n%s", strings.Join(l, "\n"))
	}

	// Sandboxes set up before libcni kept its result cache: DEL gets the
	// ADD result the record kept, so the firewall plugin finds its rules.
	if err := os.RemoveAll(filepath.Join(e.m.RunDir(), "cni-cache")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a, b} {
		if err := e.m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if l := iptablesLines(t, a, ipA); len(l) > 0 {
		t.Fatalf("teardown with the recorded configuration left:\n%s", strings.Join(l, "\n"))
	}
	if err := e.m.Remove("old26"); err != nil {
		t.Fatal(err)
	}
	assertNoRules(t, &netRules{Network: "old26", Bridge: "bnt26", Subnet: "10.250.26.0/24", Forward: true})
}
