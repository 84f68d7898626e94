package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.podman.io/storage"
	"golang.org/x/sys/unix"
)

// The network tests use the subnets 10.251.N.0/24 and the bridges bntN
// (engine/network's own tests have 10.250.0.0/16 and btN), never berth's
// default network, which all test engines share on this host.

// netEngine is an engine with busybox for network tests. Runs of these
// tests (go test started twice) would fight over the bridges and subnets:
// they take turns. Containers and networks go at the end.
func netEngine(t *testing.T) *engine {
	t.Helper()
	e := newEngine(t)
	lf, err := os.OpenFile(filepath.Join(os.TempDir(), "berth-engine-nettest.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for unix.Flock(int(lf.Fd()), unix.LOCK_EX) == unix.EINTR {
	}
	t.Cleanup(func() { lf.Close() })
	withBusybox(t, e)
	t.Cleanup(func() {
		r := e.run(nil, "ps", "-a", "-q")
		if ids := strings.Fields(r.Stdout); len(ids) > 0 {
			e.run(nil, append([]string{"rm", "-f"}, ids...)...)
		}
		e.run(nil, "network", "prune", "-f")
	})
	return e
}

// createNet makes network name on 10.251.n.0/24 with the bridge bntN and
// returns the bridge's name.
func createNet(t *testing.T, e *engine, name string, n int, flags ...string) string {
	t.Helper()
	bridge := "bnt" + strconv.Itoa(n)
	args := append([]string{"network", "create", "--subnet", fmt.Sprintf("10.251.%d.0/24", n),
		"-o", "com.docker.network.bridge.name=" + bridge}, flags...)
	if out := e.ok(append(args, name)...); out != name+"\n" {
		t.Fatalf("network create printed %q", out)
	}
	return bridge
}

// wwwDir is a directory with index.html ("hello from NAME") for httpd.
func wwwDir(t *testing.T, name string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello from "+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runWeb starts busybox httpd on port 8000 serving wwwDir(name), with the
// extra run flags, and waits until it answers.
func runWeb(t *testing.T, e *engine, name string, flags ...string) {
	t.Helper()
	args := append([]string{"run", "-d", "--name", name, "-v", wwwDir(t, name) + ":/www:ro"}, flags...)
	e.ok(append(args, "busybox", "httpd", "-f", "-p", "8000", "-h", "/www")...)
	untilOK(t, e, "exec", name, "wget", "-qO-", "http://127.0.0.1:8000/index.html")
}

// fetch is wget in a new container with the run flags; busybox's own -T
// crashes (Debian's 1.35), timeout stops it instead (under a shell that
// cannot exec it: timeout execs the command, which as the container's PID 1
// would ignore SIGTERM).
func fetch(e *engine, url string, flags ...string) result {
	e.t.Helper()
	args := append(append([]string{"run", "--rm"}, flags...), "busybox", "sh", "-c", "timeout 3 wget -qO- "+url+"; exit $?")
	return e.run(nil, args...)
}

func fetchOK(t *testing.T, e *engine, url, want string, flags ...string) {
	t.Helper()
	r := fetch(e, url, flags...)
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("wget %s with %v: exit %d, %q (want %q)\nstderr: %s", url, flags, r.Code, r.Stdout, want, r.Stderr)
	}
}

func fetchFails(t *testing.T, e *engine, url string, flags ...string) {
	t.Helper()
	if r := fetch(e, url, flags...); r.Code == 0 {
		t.Errorf("wget %s with %v worked: %q", url, flags, r.Stdout)
	}
}

// httpGet fetches url from the host, retrying for a while (the DNAT rules
// are in place when run returns, the server may be slower).
func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for i := 0; i < 50; i++ {
		resp, err := client.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(body)
			}
			err = fmt.Errorf("status %d, %v", resp.StatusCode, rerr)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

func ipOn(t *testing.T, e *engine, ctr, network string) string {
	t.Helper()
	ip := strings.TrimSpace(e.ok("inspect", "-f", `{{(index .NetworkSettings.Networks "`+network+`").IPAddress}}`, ctr))
	if ip == "" {
		t.Fatalf("%s has no address on %s", ctr, network)
	}
	return ip
}

func TestNetworkPublishAndNames(t *testing.T) {
	e := netEngine(t)
	createNet(t, e, "webnet", 1, "--label", "purpose=test")
	runWeb(t, e, "web", "--network", "webnet", "--network-alias", "www.example", "-p", "127.0.0.1::8000")

	// From the host, through the published port.
	hostPort := strings.TrimSpace(e.ok("port", "web", "8000"))
	if !strings.HasPrefix(hostPort, "127.0.0.1:") {
		t.Fatalf("port web 8000: %q", hostPort)
	}
	if got := httpGet(t, "http://"+hostPort+"/index.html"); got != "hello from web\n" {
		t.Errorf("from the host: %q", got)
	}
	// From another container on the network, by name and by alias.
	fetchOK(t, e, "http://web:8000/index.html", "hello from web\n", "--network", "webnet")
	fetchOK(t, e, "http://www.example:8000/index.html", "hello from web\n", "--network", "webnet")

	// ls, inspect.
	if out := e.ok("network", "ls", "--filter", "label=purpose=test", "--format", "{{.Name}} {{.Driver}} {{.Subnet}}"); out != "webnet bridge 10.251.1.0/24\n" {
		t.Errorf("network ls --filter label: %q", out)
	}
	if out := e.ok("network", "ls", "--format", "{{.Name}}"); !strings.Contains(out, "webnet\n") || !strings.Contains(out, "berth\n") {
		t.Errorf("network ls: %q", out)
	}
	if out := e.ok("network", "ls", "--filter", "name=nosuch", "-q"); out != "" {
		t.Errorf("network ls -q --filter name=nosuch: %q", out)
	}
	id := strings.TrimSpace(e.ok("network", "ls", "-q", "--filter", "name=webnet"))
	if len(id) != 12 {
		t.Errorf("network ls -q: %q", id)
	}
	if out := e.ok("network", "inspect", "-f", "{{.Name}}", id); out != "webnet\n" {
		t.Errorf("network inspect by ID: %q", out)
	}
	var nets []struct {
		Name, Driver string
		Internal     bool
		Labels       map[string]string
		IPAM         struct {
			Config []struct{ Subnet, Gateway string }
		}
		Containers map[string]struct{ Name, IPv4Address string }
	}
	if err := json.Unmarshal([]byte(e.ok("network", "inspect", "webnet")), &nets); err != nil || len(nets) != 1 {
		t.Fatalf("network inspect: %v %v", err, nets)
	}
	n := nets[0]
	webID := strings.TrimSpace(e.ok("inspect", "-f", "{{.Id}}", "web"))
	webIP := ipOn(t, e, "web", "webnet")
	if n.Name != "webnet" || n.Driver != "bridge" || n.Internal || n.Labels["purpose"] != "test" ||
		len(n.IPAM.Config) != 1 || n.IPAM.Config[0].Subnet != "10.251.1.0/24" || n.IPAM.Config[0].Gateway != "10.251.1.1" ||
		n.Containers[webID].Name != "web" || n.Containers[webID].IPv4Address != webIP+"/24" {
		t.Errorf("network inspect: %+v (web %s at %s)", n, webID, webIP)
	}

	e.fail("already exists", "network", "create", "webnet")
	e.fail("overlaps network webnet", "network", "create", "--subnet", "10.251.1.128/25", "other")
	e.fail("reserved", "network", "create", "host")
	e.fail("not found", "network", "inspect", "nosuchnet")
	e.fail("not found", "run", "--rm", "--network", "nosuchnet", "busybox", "true")
}

func TestNetworkInternal(t *testing.T) {
	e := netEngine(t)
	createNet(t, e, "outer", 2)
	createNet(t, e, "inner", 3, "--internal")
	if out := e.ok("network", "inspect", "-f", "{{.Internal}}", "inner"); out != "true\n" {
		t.Errorf("inspect internal: %q", out)
	}
	runWeb(t, e, "web", "--network", "outer", "-p", "8000")
	port := strings.TrimSpace(e.ok("port", "web", "8000"))
	if !strings.HasPrefix(port, "0.0.0.0:") {
		t.Fatalf("port: %q", port)
	}
	hostPort := strings.TrimPrefix(port, "0.0.0.0:")
	// The host answers on its address on the outer bridge.
	gw := "10.251.2.1"
	if got := httpGet(t, "http://"+gw+":"+hostPort+"/index.html"); got != "hello from web\n" {
		t.Errorf("host to published port: %q", got)
	}
	webIP := ipOn(t, e, "web", "outer")

	if out := e.ok("run", "--rm", "--network", "inner", "busybox", "ip", "route"); strings.Contains(out, "default") || !strings.Contains(out, "10.251.3.0/24") {
		t.Errorf("routes on an internal network: %q", out)
	}
	saved := iptablesSave(t)
	if m := grepLines(saved, "bnt3"); m != "" {
		t.Errorf("rules for the internal network's bridge (masquerade, forward):\n%s", m)
	}
	if m := grepLines(saved, "10.251.3."); m != "" {
		t.Errorf("rules for the internal network's addresses:\n%s", m)
	}
	fetchFails(t, e, "http://"+gw+":"+hostPort+"/index.html", "--network", "inner")
	fetchFails(t, e, "http://"+webIP+":8000/index.html", "--network", "inner")
	if r := e.run(nil, "run", "--rm", "--network", "inner", "busybox", "ping", "-c", "1", "-W", "1", "192.0.2.1"); r.Code == 0 {
		t.Errorf("ping outside from an internal network worked: %s", r.Stdout)
	}
	// Its containers still reach each other.
	runWeb(t, e, "iweb", "--network", "inner")
	fetchOK(t, e, "http://iweb:8000/index.html", "hello from iweb\n", "--network", "inner")
	e.fail("ports cannot be published", "run", "--rm", "--network", "inner", "-p", "8000", "busybox", "true")
}

func TestNetworkIsolation(t *testing.T) {
	e := netEngine(t)
	createNet(t, e, "neta", 4)
	createNet(t, e, "netb", 5)
	runWeb(t, e, "web", "--network", "neta")
	webIP := ipOn(t, e, "web", "neta")
	fetchOK(t, e, "http://"+webIP+":8000/index.html", "hello from web\n", "--network", "neta")
	fetchFails(t, e, "http://"+webIP+":8000/index.html", "--network", "netb")
	// Names of another network are unknown.
	fetchFails(t, e, "http://web:8000/index.html", "--network", "netb")
}

func TestNetworkHostsFile(t *testing.T) {
	e := netEngine(t)
	createNet(t, e, "hostsnet", 6)
	e.ok("run", "-d", "--name", "a", "--network", "hostsnet", "--network-alias", "alpha", "busybox", "sleep", "1000")
	hosts := func() string { return e.ok("exec", "a", "cat", "/etc/hosts") }
	aIP := ipOn(t, e, "a", "hostsnet")
	if h := hosts(); !strings.Contains(h, aIP+"\ta alpha ") || !strings.Contains(h, "127.0.0.1\tlocalhost") {
		t.Errorf("a's own hosts: %q", h)
	}
	e.ok("run", "-d", "--name", "b", "--network", "hostsnet", "--network-alias", "bee", "--network-alias", "bumble", "busybox", "sleep", "1000")
	bIP := ipOn(t, e, "b", "hostsnet")
	if h := hosts(); !strings.Contains(h, bIP+"\tb bee bumble\n") {
		t.Errorf("a's hosts after b started: %q", h)
	}
	if h := e.ok("exec", "b", "cat", "/etc/hosts"); !strings.Contains(h, aIP+"\ta alpha\n") {
		t.Errorf("b's hosts: %q", h)
	}
	e.ok("exec", "a", "ping", "-c", "1", "-W", "2", "bumble")
	e.ok("stop", "-t", "0", "b")
	if h := hosts(); strings.Contains(h, "bumble") { // not "bee": a container ID may hold it
		t.Errorf("a's hosts after b stopped: %q", h)
	}
	e.ok("start", "b")
	bIP = ipOn(t, e, "b", "hostsnet")
	if h := hosts(); !strings.Contains(h, bIP+"\tb bee bumble\n") {
		t.Errorf("a's hosts after b started again: %q", h)
	}
	e.ok("rm", "-f", "b")
	if h := hosts(); strings.Contains(h, "bumble") { // not "bee": a container ID may hold it
		t.Errorf("a's hosts after b was removed: %q", h)
	}

	// Containers started at the same time all end up in each other's file.
	names := []string{"a", "p1", "p2", "p3", "p4"}
	var wg sync.WaitGroup
	for _, n := range names[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.run(nil, "run", "-d", "--name", n, "--network", "hostsnet", "busybox", "sleep", "1000"); r.Code != 0 {
				t.Errorf("run %s: %+v", n, r)
			}
		}()
	}
	wg.Wait()
	for _, n := range names {
		h := e.ok("exec", n, "cat", "/etc/hosts")
		for _, other := range names {
			if !strings.Contains(h, "\t"+other+" ") && !strings.Contains(h, "\t"+other+"\n") {
				t.Errorf("%s's hosts lacks %s: %q", n, other, h)
			}
		}
	}
}

// netLeftovers lists what a container's networking left on the host: veths
// on the bridge, its namespace mount, its record, leases naming it,
// iptables rules naming its ID or address.
func netLeftovers(t *testing.T, e *engine, bridge, id, ip string) []string {
	t.Helper()
	var left []string
	if out, err := exec.Command("ip", "-o", "link", "show", "master", bridge).CombinedOutput(); err == nil && strings.TrimSpace(string(out)) != "" {
		left = append(left, "veth on "+bridge+": "+strings.TrimSpace(string(out)))
	}
	netDir := filepath.Join(e.runroot, "network")
	if entries, _ := os.ReadDir(filepath.Join(netDir, "netns")); len(entries) > 0 {
		left = append(left, fmt.Sprintf("netns: %v", entries))
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if m := grepLines(string(mounts), filepath.Join(netDir, "netns", id)); m != "" {
		left = append(left, "netns mount: "+m)
	}
	if _, err := os.Stat(filepath.Join(netDir, "attachments", id+".json")); err == nil {
		left = append(left, "attachment record")
	}
	_ = filepath.Walk(filepath.Join(netDir, "ipam"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if data, _ := os.ReadFile(p); strings.Contains(string(data), id) || filepath.Base(p) == ip {
				left = append(left, "lease "+p)
			}
		}
		return nil
	})
	rules := iptablesSave(t)
	if m := grepLines(rules, id); m != "" {
		left = append(left, "iptables rules with the ID:\n"+m)
	}
	if m := grepLines(rules, " "+ip+"/32 "); ip != "" && m != "" {
		left = append(left, "iptables rules with the address:\n"+m)
	}
	return left
}

func iptablesSave(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	return string(out)
}

// netRules are berth's rules of a network (masquerade, forward accept,
// isolation): the lines of iptables-save naming its bridge in berth's
// chains.
func netRules(t *testing.T, bridge string) []string {
	t.Helper()
	var rules []string
	for _, l := range strings.Split(iptablesSave(t), "\n") {
		if strings.HasPrefix(l, "-A BERTH-") && strings.Contains(l, " "+bridge+" ") {
			rules = append(rules, l)
		}
	}
	return rules
}

// TestNetworkRules: a network's masquerade, forward and isolation rules are
// its own, made with its first container and removed with it; containers
// add no rules of their own (no CNI- chain, nothing naming them).
func TestNetworkRules(t *testing.T) {
	e := netEngine(t)
	bridge := createNet(t, e, "rulenet", 14)
	if r := netRules(t, bridge); len(r) != 0 {
		t.Fatalf("rules before the network's first container: %q", r)
	}
	id := strings.TrimSpace(e.ok("run", "-d", "--name", "r1", "--network", "rulenet", "busybox", "sleep", "1000"))
	ip := ipOn(t, e, "r1", "rulenet")
	want := []string{
		"-A BERTH-FORWARD -i " + bridge + " -m comment --comment \"berth-network:rulenet\" -j ACCEPT",
		"-A BERTH-FORWARD -o " + bridge + " -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment \"berth-network:rulenet\" -j ACCEPT",
		"-A BERTH-ISOLATION-1 -i " + bridge + " ! -o " + bridge + " -j BERTH-ISOLATION-2",
		"-A BERTH-ISOLATION-2 -o " + bridge + " -j DROP",
		"-A BERTH-POSTROUTING -s 10.251.14.0/24 ! -o " + bridge + " -m comment --comment \"berth-network:rulenet\" -j MASQUERADE",
	}
	rules := netRules(t, bridge)
	slices.Sort(rules)
	if !slices.Equal(rules, want) {
		t.Fatalf("rules of rulenet:\n%s\nwant:\n%s", strings.Join(rules, "\n"), strings.Join(want, "\n"))
	}
	saved := iptablesSave(t)
	if m := grepLines(saved, id); m != "" {
		t.Errorf("rules of the container itself:\n%s", m)
	}
	if m := grepLines(saved, " "+ip+"/32 "); m != "" {
		t.Errorf("rules naming the container's address:\n%s", m)
	}
	// The run directory may outlive a reboot (a run root off tmpfs), the
	// rules do not: a marker of another boot is not trusted, and the next
	// container puts the rules back.
	marker := filepath.Join(e.runroot, "network", "rules", "rulenet.json")
	data, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	stale := strings.Replace(string(data), strings.TrimSpace(string(boot)), "00000000-0000-0000-0000-000000000000", 1)
	if stale == string(data) {
		t.Fatalf("marker %s does not name this boot: %s", marker, data)
	}
	writeFiles(t, filepath.Dir(marker), map[string]string{filepath.Base(marker): stale})
	masq := []string{"-t", "nat", "-D", "BERTH-POSTROUTING", "-s", "10.251.14.0/24", "!", "-o", bridge,
		"-m", "comment", "--comment", "berth-network:rulenet", "-j", "MASQUERADE"}
	if out, err := exec.Command("iptables", masq...).CombinedOutput(); err != nil {
		t.Fatalf("iptables %s: %v: %s", strings.Join(masq, " "), err, out)
	}
	// A second container puts back what was missing, and adds nothing.
	e.ok("run", "--rm", "--network", "rulenet", "busybox", "true")
	rules = netRules(t, bridge)
	slices.Sort(rules)
	if !slices.Equal(rules, want) {
		t.Errorf("rules of rulenet after a stale marker:\n%s", strings.Join(rules, "\n"))
	}
	// The rules outlive both containers.
	e.ok("rm", "-f", "r1")
	assertNetClean(t, e, bridge, id, ip)
	if r := netRules(t, bridge); len(r) != len(want) {
		t.Errorf("rules after the containers went: %q", r)
	}
	e.ok("network", "rm", "rulenet")
	if r := netRules(t, bridge); len(r) != 0 {
		t.Errorf("rules after network rm: %q", r)
	}
}

func assertNetClean(t *testing.T, e *engine, bridge, id, ip string) {
	t.Helper()
	if left := netLeftovers(t, e, bridge, id, ip); len(left) > 0 {
		t.Errorf("network leftovers of %s:\n%s", id[:12], strings.Join(left, "\n"))
	}
}

// killHard kills a container's monitor, then its processes, with SIGKILL,
// as a crash or the OOM killer would, and waits until both are gone.
func killHard(t *testing.T, e *engine, id string) {
	t.Helper()
	pid, _ := strconv.Atoi(strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Pid}}", id)))
	mon := monitorPidOf(t, e, id)
	if pid == 0 || mon == 0 {
		t.Fatalf("container %s: pid %d, monitor %d", id[:12], pid, mon)
	}
	for _, p := range []int{mon, pid} {
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		return syscall.Kill(mon, 0) == syscall.ESRCH && syscall.Kill(pid, 0) == syscall.ESRCH
	})
}

func TestNetworkTeardown(t *testing.T) {
	e := netEngine(t)
	bridge := createNet(t, e, "tdnet", 7)
	start := func(name string) (id, ip string) {
		if e.run(nil, "network", "inspect", "tdnet").Code != 0 {
			createNet(t, e, "tdnet", 7) // system prune removed it
		}
		id = strings.TrimSpace(e.ok("run", "-d", "--name", name, "--network", "tdnet", "-p", "8000", "busybox", "sleep", "1000"))
		ip = ipOn(t, e, name, "tdnet")
		if left := netLeftovers(t, e, bridge, id, ip); len(left) == 0 {
			t.Fatalf("%s: no veth, namespace or rules found while it runs: the checks check nothing", name)
		}
		return id, ip
	}

	t.Run("rm -f", func(t *testing.T) {
		id, ip := start("t1")
		e.ok("rm", "-f", "t1")
		assertNetClean(t, e, bridge, id, ip)
	})
	t.Run("killed then rm -f", func(t *testing.T) {
		id, ip := start("t2")
		killHard(t, e, id)
		if len(netLeftovers(t, e, bridge, id, ip)) == 0 {
			t.Fatal("nothing left after the kill: nothing to clean up")
		}
		e.ok("rm", "-f", "t2")
		assertNetClean(t, e, bridge, id, ip)
		assertNoLeftovers(t, e, id)
	})
	t.Run("killed then system prune", func(t *testing.T) {
		id, ip := start("t3")
		killHard(t, e, id)
		out := e.ok("system", "prune", "-f")
		if !strings.Contains(out, "Deleted Containers:\n"+id+"\n") {
			t.Errorf("system prune: %q", out)
		}
		assertNetClean(t, e, bridge, id, ip)
		assertNoLeftovers(t, e, id)
	})
	t.Run("container gone then system prune", func(t *testing.T) {
		// The container's record goes without its network's teardown (a
		// store cleaned by hand): only system prune's repair can help.
		id, ip := start("t4")
		killHard(t, e, id)
		rt := exec.Command(filepath.Join(filepath.Dir(berthBin), "berth-runtime"), "--root", filepath.Join(e.runroot, "runtime"), "delete", "--force", id)
		if out, err := rt.CombinedOutput(); err != nil {
			t.Fatalf("runtime delete: %v: %s", err, out)
		}
		withStore(t, e, func(s storage.Store) {
			if err := s.DeleteContainer(id); err != nil {
				t.Fatal(err)
			}
		})
		if out := e.ok("ps", "-a", "-q"); out != "" {
			t.Fatalf("ps -a: %q", out)
		}
		if len(netLeftovers(t, e, bridge, id, ip)) == 0 {
			t.Fatal("nothing left: nothing to repair")
		}
		e.ok("system", "prune", "-f")
		assertNetClean(t, e, bridge, id, ip)
	})
	// The network was free again: system prune removed it.
	if out := e.ok("network", "ls", "-q", "--filter", "name=tdnet"); out != "" {
		t.Errorf("network ls after system prune: %q", out)
	}
	if _, err := os.Stat("/sys/class/net/" + bridge); err == nil {
		t.Errorf("bridge %s left after its network was removed", bridge)
	}
}

func TestNetworkConnect(t *testing.T) {
	e := netEngine(t)
	createNet(t, e, "front", 8)
	createNet(t, e, "back", 9)
	runWeb(t, e, "web", "--network", "front")
	e.ok("run", "-d", "--name", "client", "--network", "back", "busybox", "sleep", "1000")
	get := func(url string) result {
		return e.run(nil, "exec", "client", "timeout", "3", "wget", "-qO-", url)
	}
	if r := get("http://web:8000/index.html"); r.Code == 0 {
		t.Fatalf("client reached web before connect: %q", r.Stdout)
	}

	e.ok("network", "connect", "--alias", "webby", "back", "web")
	webIP := ipOn(t, e, "web", "back")
	for _, host := range []string{"web", "webby", webIP} {
		if r := get("http://" + host + ":8000/index.html"); r.Stdout != "hello from web\n" {
			t.Errorf("after connect, %s: %+v", host, r)
		}
	}
	e.fail("already connected", "network", "connect", "back", "web")
	e.fail("has active endpoints", "network", "rm", "back")
	e.fail("has active endpoints", "network", "rm", "front")
	if out := e.ok("network", "inspect", "-f", "{{range .Containers}}[{{.Name}}]{{end}}", "back"); len(out) != len("[client][web]\n") ||
		!strings.Contains(out, "[client]") || !strings.Contains(out, "[web]") {
		t.Errorf("containers of back: %q", out)
	}

	// A restart keeps the connection (with its alias).
	e.ok("restart", "-t", "0", "web")
	untilOK(t, e, "exec", "web", "wget", "-qO-", "http://127.0.0.1:8000/index.html")
	if r := get("http://webby:8000/index.html"); r.Stdout != "hello from web\n" {
		t.Errorf("after restart: %+v", r)
	}
	webIP = ipOn(t, e, "web", "back")

	e.ok("network", "disconnect", "back", "web")
	if r := get("http://" + webIP + ":8000/index.html"); r.Code == 0 {
		t.Errorf("reached web after disconnect: %q", r.Stdout)
	}
	if h := e.ok("exec", "client", "cat", "/etc/hosts"); strings.Contains(h, "webby") {
		t.Errorf("client's hosts after disconnect: %q", h)
	}
	if out := e.ok("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "web"); out != "front \n" {
		t.Errorf("web's networks after disconnect: %q", out)
	}
	e.fail("is not connected to network back", "network", "disconnect", "back", "web")
	// A restart keeps the disconnection too.
	e.ok("restart", "-t", "0", "web")
	if out := e.ok("exec", "web", "ip", "-o", "-4", "addr"); strings.Contains(out, "10.251.9.") || !strings.Contains(out, "10.251.8.") {
		t.Errorf("web's addresses after disconnect and restart: %q", out)
	}

	// A fixed address on connect.
	e.ok("network", "connect", "--ip", "10.251.9.77", "back", "web")
	if out := e.ok("exec", "web", "ip", "-o", "-4", "addr"); !strings.Contains(out, "10.251.9.77/24") {
		t.Errorf("connect --ip: %q", out)
	}
	e.fail("taken", "run", "--rm", "--network", "back", "--ip", "10.251.9.77", "busybox", "true")
	e.ok("network", "disconnect", "back", "web")

	// Prune removes networks nobody uses, only those.
	createNet(t, e, "unused", 10)
	if out := e.ok("network", "prune", "-f"); out != "Deleted Networks:\nunused\n\n" {
		t.Errorf("network prune: %q", out)
	}
	if out := e.ok("network", "ls", "--format", "{{.Name}}"); out != "back\nberth\nfront\n" {
		t.Errorf("networks after prune: %q", out)
	}
	e.ok("rm", "-f", "client")
	if out := e.ok("network", "rm", "back"); out != "back\n" {
		t.Errorf("network rm: %q", out)
	}
	e.fail("pre-defined network", "network", "rm", "bridge")
}

func TestNetworkModes(t *testing.T) {
	e := netEngine(t)
	bridge := createNet(t, e, "modes", 11)
	runWeb(t, e, "web", "--network", "modes")

	// --ip
	if out := e.ok("run", "--rm", "--network", "modes", "--ip", "10.251.11.50", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"); !strings.Contains(out, "10.251.11.50/24") {
		t.Errorf("--ip: %q", out)
	}
	e.fail("not a host address of subnet", "run", "--rm", "--network", "modes", "--ip", "10.99.0.5", "busybox", "true")

	// -P publishes the image's EXPOSE.
	e.ok("create", "--name", "base", "busybox", "true")
	e.ok("commit", "--change", "EXPOSE 8000", "base", "webimg")
	e.ok("rm", "base")
	e.ok("run", "-d", "--name", "pweb", "--network", "modes", "-P", "-v", wwwDir(t, "pweb")+":/www:ro", "webimg", "httpd", "-f", "-p", "8000", "-h", "/www")
	port := strings.TrimSpace(e.ok("port", "pweb", "8000"))
	if !strings.HasPrefix(port, "0.0.0.0:") {
		t.Fatalf("port pweb 8000: %q", port)
	}
	if got := httpGet(t, "http://127.0.0.1:"+strings.TrimPrefix(port, "0.0.0.0:")+"/index.html"); got != "hello from pweb\n" {
		t.Errorf("-P: %q", got)
	}

	// --network host sees the host's interfaces (the bridge among them).
	if out := e.ok("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link"); !strings.Contains(out, ": "+bridge+":") {
		t.Errorf("--network host: %q", out)
	}
	if out := e.ok("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"); strings.Contains(out, "eth0") || !strings.Contains(out, "lo:") {
		t.Errorf("--network none: %q", out)
	}
	// --network container:web shares web's namespace.
	if out := e.ok("run", "--rm", "--network", "container:web", "busybox", "wget", "-qO-", "http://localhost:8000/index.html"); out != "hello from web\n" {
		t.Errorf("--network container:web: %q", out)
	}
	e.ok("run", "-d", "--name", "none", "--network", "none", "busybox", "sleep", "1000")
	e.fail("cannot be connected", "network", "connect", "modes", "none")
}

func TestSystemPrune(t *testing.T) {
	e := netEngine(t)
	createNet(t, e, "kept", 12)
	createNet(t, e, "dropped", 13)
	e.ok("run", "-d", "--name", "running", "--network", "kept", "busybox", "sleep", "1000")
	stopped := strings.TrimSpace(e.ok("create", "--name", "stopped", "--network", "dropped", "busybox", "true"))
	e.ok("commit", "stopped", "unused:latest")
	out := e.ok("system", "prune", "-f")
	want := "Deleted Containers:\n" + stopped + "\n\nDeleted Networks:\ndropped\n\n"
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "Total reclaimed space:") || strings.Contains(out, "Deleted Images") {
		t.Errorf("system prune: %q, want it to start with %q and delete no image", out, want)
	}
	if out := e.ok("ps", "-a", "--format", "{{.Names}}"); out != "running\n" {
		t.Errorf("containers after prune: %q", out)
	}
	if out := e.ok("network", "ls", "--format", "{{.Name}}"); out != "berth\nkept\n" {
		t.Errorf("networks after prune: %q", out)
	}
	// -a: images no container uses.
	out = e.ok("system", "prune", "-a", "-f")
	if !strings.Contains(out, "Deleted Images:\ndeleted: sha256:") {
		t.Errorf("system prune -a: %q", out)
	}
	if out := e.ok("images", "--format", "{{.Repository}}"); !strings.Contains(out, "busybox") || strings.Contains(out, "unused") {
		t.Errorf("images after prune -a: %q", out)
	}
	e.ok("rm", "-f", "running")
	e.ok("volume", "create", "named")
	if out := e.ok("system", "prune", "-f", "--volumes"); strings.Contains(out, "named") {
		t.Errorf("system prune --volumes removed a named volume: %q", out)
	}
}
