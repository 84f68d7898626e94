package network

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func iptables(args ...string) ([]byte, error) {
	cmd := exec.Command("iptables", append([]string{"-w"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := oneLine(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return out, fmt.Errorf("iptables %s: %s", strings.Join(args, " "), msg)
	}
	return out, nil
}

// ruleset is `iptables -S` of one table: chains and their rules, each rule
// as its words after "-A CHAIN".
type ruleset struct {
	chains map[string]bool
	rules  map[string][][]string
}

func listTable(table string) (*ruleset, error) {
	out, err := iptables("-t", table, "-S")
	if err != nil {
		return nil, err
	}
	rs := &ruleset{chains: map[string]bool{}, rules: map[string][][]string{}}
	for _, line := range strings.Split(string(out), "\n") {
		f := splitRule(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "-P", "-N":
			rs.chains[f[1]] = true
		case "-A":
			rs.rules[f[1]] = append(rs.rules[f[1]], f[2:])
		}
	}
	return rs, nil
}

// splitRule splits a line of iptables -S into words, undoing its quoting.
func splitRule(line string) []string {
	var words []string
	var cur strings.Builder
	in, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			quoted = !quoted
			in = true
		case !quoted && (c == ' ' || c == '\t'):
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

func hasWords(rule []string, seq ...string) bool {
outer:
	for i := 0; i+len(seq) <= len(rule); i++ {
		for j := range seq {
			if rule[i+j] != seq[j] {
				continue outer
			}
		}
		return true
	}
	return false
}

func jumpTarget(rule []string) string {
	for i := 0; i+1 < len(rule); i++ {
		if rule[i] == "-j" || rule[i] == "-g" {
			return rule[i+1]
		}
	}
	return ""
}

// deleteRule deletes a rule by its specification as iptables -S printed
// it (not by number: other programs may change the chain meanwhile). A rule
// already gone is fine.
func deleteRule(table, chain string, rule []string) error {
	_, err := iptables(append([]string{"-t", table, "-D", chain}, rule...)...)
	if err != nil && (strings.Contains(err.Error(), "does a matching rule exist") || strings.Contains(err.Error(), "No chain/target/match") || strings.Contains(err.Error(), "does not exist")) {
		return nil
	}
	return err
}

// sweepMasquerade removes the bridge plugin's masquerade chain of one
// attachment (POSTROUTING rule with comment `name: "NET" id: "ID"` jumping
// to a CNI-… chain), which its DEL leaves behind when it gets no namespace.
func sweepMasquerade(network, containerID string) error {
	rs, err := listTable("nat")
	if err != nil {
		return err
	}
	comment := fmt.Sprintf("name: %q id: %q", network, containerID)
	var chains []string
	for _, r := range rs.rules["POSTROUTING"] {
		t := jumpTarget(r)
		if !hasWords(r, "--comment", comment) || !strings.HasPrefix(t, "CNI-") {
			continue
		}
		if err := deleteRule("nat", "POSTROUTING", r); err != nil {
			return err
		}
		chains = append(chains, t)
	}
	for _, c := range chains {
		if !rs.chains[c] {
			continue
		}
		if _, err := iptables("-t", "nat", "-F", c); err != nil {
			return err
		}
		if _, err := iptables("-t", "nat", "-X", c); err != nil {
			return err
		}
	}
	return nil
}

// sweepLeases removes host-local leases of one attachment that its DEL
// left (lease files hold "ID\r\nIFNAME").
func sweepLeases(dataDir, network, containerID, ifName string) error {
	dir := filepath.Join(dataDir, network)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if n == "lock" || strings.HasPrefix(n, "last_reserved_ip") || e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.ReplaceAll(string(data), "\r", ""), "\n")
		if strings.TrimSpace(lines[0]) != containerID {
			continue
		}
		if len(lines) > 1 && strings.TrimSpace(lines[1]) != "" && strings.TrimSpace(lines[1]) != ifName {
			continue
		}
		if err := removeFile(filepath.Join(dir, n)); err != nil {
			return err
		}
	}
	return nil
}
