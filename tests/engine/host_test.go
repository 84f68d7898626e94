package engine

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// hostState is what the tests leave on the host that outlives every test
// engine: the default network's bridge berth0 (shared by all engines, as
// docker0 is) with berth's chains (isolation, forward accept, masquerade),
// and the runtime's parent cgroups /berth. restore removes what was not
// there before the run.
type hostState struct {
	bridge  bool
	chains  bool
	cgroups map[string]bool
}

func snapshotHost() hostState {
	h := hostState{cgroups: map[string]bool{}}
	h.bridge = exec.Command("ip", "link", "show", "berth0").Run() == nil
	out, _ := exec.Command("iptables", "-S").Output()
	h.chains = strings.Contains(string(out), "BERTH-ISOLATION-1") || strings.Contains(string(out), "BERTH-FORWARD")
	for _, d := range cgroupParents() {
		h.cgroups[d] = true
	}
	return h
}

func cgroupParents() []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth")
	return dirs
}

// berthChains are berth's iptables chains by table.
var berthChains = map[string][]string{
	"filter": {"BERTH-ISOLATION-1", "BERTH-ISOLATION-2", "BERTH-FORWARD"},
	"nat":    {"BERTH-POSTROUTING"},
}

func (h hostState) restore() {
	if !h.bridge {
		_ = exec.Command("ip", "link", "delete", "berth0").Run()
		for table := range berthChains {
			deleteRules(table, "berth0")
		}
	}
	if !h.chains {
		for table, chains := range berthChains {
			for _, c := range chains {
				deleteRules(table, "-j "+c)
			}
			for _, c := range chains {
				_ = exec.Command("iptables", "-t", table, "-F", c).Run()
				_ = exec.Command("iptables", "-t", table, "-X", c).Run()
			}
		}
	}
	for _, d := range cgroupParents() {
		if !h.cgroups[d] {
			_ = os.Remove(d) // only an empty cgroup goes
		}
	}
}

// deleteRules deletes the rules of a table that mention word.
func deleteRules(table, word string) {
	out, _ := exec.Command("iptables", "-t", table, "-S").Output()
	for _, rule := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(rule, "-A ") || !strings.Contains(rule, word) {
			continue
		}
		// berth's comments have no spaces; iptables -S quotes them.
		args := append([]string{"-t", table, "-D"}, strings.Fields(strings.ReplaceAll(rule, `"`, ""))[1:]...)
		_ = exec.Command("iptables", args...).Run()
	}
}
