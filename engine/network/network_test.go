package network

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/tests/testutil"
)

// Bridges and subnets of these tests: bnt<N> and 10.250.<N>.0/24, one N per
// test, so they collide with nothing else on the host.

func TestParsePort(t *testing.T) {
	good := map[string][]PortMapping{
		"80":                {{ContainerPort: 80, Protocol: "tcp"}},
		"8080:80":           {{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		"8080:80/udp":       {{HostPort: 8080, ContainerPort: 80, Protocol: "udp"}},
		"8080:80/SCTP":      {{HostPort: 8080, ContainerPort: 80, Protocol: "sctp"}},
		"127.0.0.1:8080:80": {{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		"127.0.0.1::80":     {{HostIP: "127.0.0.1", ContainerPort: 80, Protocol: "tcp"}},
		":80":               {{ContainerPort: 80, Protocol: "tcp"}},
		"[::1]:8080:80":     {{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		"8080-8081:80-81/udp": {
			{HostPort: 8080, ContainerPort: 80, Protocol: "udp"},
			{HostPort: 8081, ContainerPort: 81, Protocol: "udp"},
		},
		"80-81": {{ContainerPort: 80, Protocol: "tcp"}, {ContainerPort: 81, Protocol: "tcp"}},
	}
	for spec, want := range good {
		got, err := ParsePort(spec)
		if err != nil {
			t.Errorf("ParsePort(%q): %v", spec, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ParsePort(%q) = %v, want %v", spec, got, want)
		}
	}
	bad := []string{"", "abc", "0", "65536", "80/icmp", "8080:", "a:80", "1.2.3:80:80", "1:2:3:4",
		"8080-8082:80-81", "81-80", ":8080:80", "[::1:80:80", "-1:80", "8080:80/"}
	for _, spec := range bad {
		_, err := ParsePort(spec)
		if err == nil {
			t.Errorf("ParsePort(%q) should fail", spec)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", spec)) {
			t.Errorf("ParsePort(%q): error %q does not name the spec", spec, err)
		}
	}
}

func TestNetworkCreateListInspectRemove(t *testing.T) {
	e := newEnv(t)
	m := e.m
	a := e.network("alpha", "bnt1", "10.250.1.0/24", false)
	if a.Bridge != "bnt1" || a.Subnet != "10.250.1.0/24" || a.Gateway != "10.250.1.1" || a.Internal || a.Driver != "bridge" {
		t.Fatalf("alpha: %+v", a)
	}
	b, err := m.Create(CreateOptions{Name: "beta", Subnet: "10.250.2.0/24", Gateway: "10.250.2.254", Internal: true,
		Labels: map[string]string{"app": "web", "tier": "db"}, Bridge: "bnt2"})
	if err != nil {
		t.Fatal(err)
	}
	e.bridges = append(e.bridges, "bnt2")
	if !b.Internal || b.Gateway != "10.250.2.254" || b.Labels["app"] != "web" {
		t.Fatalf("beta: %+v", b)
	}

	// the conflists are what podman writes, berth's labels in args
	var cl map[string]any
	data, err := os.ReadFile(filepath.Join(m.ConfDir(), "beta.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cl); err != nil {
		t.Fatal(err)
	}
	if cl["cniVersion"] != "1.0.0" {
		t.Errorf("cniVersion %v", cl["cniVersion"])
	}
	plugins := cl["plugins"].([]any)
	var types []string
	for _, p := range plugins {
		types = append(types, p.(map[string]any)["type"].(string))
	}
	if strings.Join(types, ",") != "bridge,tuning" {
		t.Errorf("internal network plugins %v", types)
	}
	br := plugins[0].(map[string]any)
	if br["isGateway"] != false || br["ipMasq"] != false || br["ipam"].(map[string]any)["routes"] != nil {
		t.Errorf("internal bridge plugin %v", br)
	}
	if cl["args"].(map[string]any)["berth_labels"].(map[string]any)["tier"] != "db" {
		t.Errorf("labels not in args.berth_labels: %v", cl["args"])
	}
	data, _ = os.ReadFile(filepath.Join(m.ConfDir(), "alpha.conflist"))
	for _, want := range []string{`"portmap"`, `"portMappings": true`, `"isGateway": true`, `"ipMasq": false`, `"hairpinMode": true`, `"0.0.0.0/0"`, `"tuning"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("alpha conflist lacks %s:\n%s", want, data)
		}
	}
	if strings.Contains(string(data), `"firewall"`) { // berth's forward rules are per network
		t.Errorf("alpha conflist has the firewall plugin:\n%s", data)
	}

	// refused: duplicates, overlaps, bad names
	_, err = m.Create(CreateOptions{Name: "alpha", Subnet: "10.250.3.0/24", Bridge: "bnt3"})
	errContains(t, err, "network alpha already exists")
	_, err = m.Create(CreateOptions{Name: "gamma", Subnet: "10.250.1.128/25", Bridge: "bnt3"})
	errContains(t, err, "overlaps network alpha", "10.250.1.0/24")
	_, err = m.Create(CreateOptions{Name: "gamma", Subnet: "10.250.0.0/16", Bridge: "bnt3"})
	errContains(t, err, "overlaps network")
	_, err = m.Create(CreateOptions{Name: "gamma", Subnet: "10.250.3.0/24", Bridge: "bnt1"})
	errContains(t, err, "bridge bnt1 is already used by network alpha")
	_, err = m.Create(CreateOptions{Name: "gamma", Subnet: "10.250.3.0/24", Gateway: "10.250.4.1", Bridge: "bnt3"})
	errContains(t, err, "gateway 10.250.4.1")
	_, err = m.Create(CreateOptions{Name: "gamma", Subnet: "nonsense"})
	errContains(t, err, `invalid subnet "nonsense"`)
	_, err = m.Create(CreateOptions{Name: "bad/name"})
	errContains(t, err, `invalid network name "bad/name"`)
	_, err = m.Create(CreateOptions{Name: "host"})
	errContains(t, err, `"host" is reserved`)
	_, err = m.Create(CreateOptions{Name: "gamma", Bridge: "this-name-is-too-long"})
	errContains(t, err, "invalid bridge name")
	if hn := hostNetworks(); len(hn) > 0 {
		_, err = m.Create(CreateOptions{Name: "gamma", Subnet: hn[0].net.String(), Bridge: "bnt3"})
		errContains(t, err, "overlaps host interface "+hn[0].iface)
	}

	// picked: a free 10.89.N.0/24 and berthN (only the conflist is made)
	auto1, err := m.Create(CreateOptions{Name: "auto1"})
	if err != nil {
		t.Fatal(err)
	}
	auto2, err := m.Create(CreateOptions{Name: "auto2"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(auto1.Subnet, "10.89.") || !strings.HasSuffix(auto1.Subnet, ".0/24") || auto1.Subnet == auto2.Subnet {
		t.Errorf("auto subnets %s %s", auto1.Subnet, auto2.Subnet)
	}
	if !strings.HasPrefix(auto1.Bridge, "berth") || auto1.Bridge == auto2.Bridge || auto1.Bridge == "berth0" {
		t.Errorf("auto bridges %s %s", auto1.Bridge, auto2.Bridge)
	}

	// default network
	m.DefaultBridge, m.DefaultSubnet = "bnt4", "10.250.4.0/24"
	e.bridges = append(e.bridges, "bnt4")
	def, err := m.EnsureDefault()
	if err != nil {
		t.Fatal(err)
	}
	if def.Name != "berth" || def.Bridge != "bnt4" || def.Internal {
		t.Fatalf("default: %+v", def)
	}
	if again, err := m.EnsureDefault(); err != nil || again.Created != def.Created {
		t.Fatalf("EnsureDefault again: %v %+v", err, again)
	}
	errContains(t, m.Remove("berth"), "default network berth cannot be removed")

	nets, err := m.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nets {
		names = append(names, n.Name)
	}
	if strings.Join(names, ",") != "alpha,auto1,auto2,berth,beta" {
		t.Fatalf("List: %v", names)
	}
	got, err := m.Inspect("beta")
	if err != nil || got.ID != networkID("beta") || len(got.ID) != 64 || got.Labels["tier"] != "db" || got.Created.IsZero() {
		t.Fatalf("Inspect beta: %v %+v", err, got)
	}
	_, err = m.Inspect("nope")
	errContains(t, err, "network nope not found")

	if err := m.Remove("alpha"); err != nil {
		t.Fatal(err)
	}
	errContains(t, m.Remove("alpha"), "network alpha not found")
	pruned, err := m.Prune()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(pruned)
	if strings.Join(pruned, ",") != "auto1,auto2,beta" {
		t.Fatalf("Prune: %v", pruned)
	}
	nets, _ = m.List()
	if len(nets) != 1 || nets[0].Name != "berth" {
		t.Fatalf("after prune: %v", nets)
	}
}

func TestTwoContainersOneNetwork(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network("net11", "bnt11", "10.250.11.0/24", false)
	idA, idB := e.id("a11"), e.id("b11")
	a := e.setup(idA, "web", []Attachment{{Network: "net11", Aliases: []string{"www"}}}, nil)
	b := e.setup(idB, "db", []Attachment{{Network: "net11", Aliases: []string{"database", "pg"}, IP: "10.250.11.50"}}, nil)
	if b.IPs["net11"] != "10.250.11.50" {
		t.Fatalf("static IP: %v", b.IPs)
	}
	ipA := a.IPs["net11"]
	if !strings.HasPrefix(ipA, "10.250.11.") || ipA == "10.250.11.1" {
		t.Fatalf("A's IP %q", ipA)
	}
	ep := a.Networks["net11"]
	if ep.Interface != "eth0" || ep.PrefixLen != 24 || ep.Gateway != "10.250.11.1" || ep.MAC == "" {
		t.Fatalf("A's endpoint %+v", ep)
	}
	if a.NetnsPath != filepath.Join(e.m.RunDir(), "netns", idA) || !isNetns(a.NetnsPath) {
		t.Fatalf("netns %s", a.NetnsPath)
	}
	if !hasDefaultRoute(routes(t, a.NetnsPath)) {
		t.Fatalf("A has no default route: %v", routes(t, a.NetnsPath))
	}

	serve(t, b.NetnsPath, ":8000", "hello from db")
	serve(t, a.NetnsPath, "127.0.0.1:8001", "loopback of web")
	mustFetch(t, a.NetnsPath, "10.250.11.50:8000", "hello from db")
	mustFetch(t, a.NetnsPath, "127.0.0.1:8001", "loopback of web") // lo is up
	mustFetch(t, "", "10.250.11.50:8000", "hello from db")         // the host reaches it through the gateway

	peers, err := e.m.Peers("net11")
	if err != nil {
		t.Fatal(err)
	}
	want := []Peer{
		{ContainerID: idB, Name: "db", Aliases: []string{"database", "pg"}, IP: "10.250.11.50"},
		{ContainerID: idA, Name: "web", Aliases: []string{"www"}, IP: ipA},
	}
	if fmt.Sprint(peers) != fmt.Sprint(want) {
		t.Fatalf("Peers: %+v\nwant %+v", peers, want)
	}
	if sb, err := e.m.Sandbox(idA); err != nil || sb.IPs["net11"] != ipA {
		t.Fatalf("Sandbox: %v %+v", err, sb)
	}

	// the record has what teardown needs
	var rec map[string]any
	data, _ := os.ReadFile(filepath.Join(e.m.RunDir(), "attachments", idB+".json"))
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	att := rec["attachments"].([]any)[0].(map[string]any)
	for _, k := range []string{"network", "interface", "aliases", "ip", "cni_config", "cni_args", "cni_result"} {
		if att[k] == nil {
			t.Errorf("record lacks %s: %s", k, data)
		}
	}
	if rec["container_name"] != "db" || !strings.Contains(string(data), e.m.ipamDir()) {
		t.Errorf("record: %s", data)
	}
	if _, err := os.Stat(filepath.Join(e.m.ipamDir(), "net11", "10.250.11.50")); err != nil {
		t.Errorf("lease under runDir: %v", err)
	}

	// twice, a taken address, the network in use
	_, err = e.m.Setup(ctx, idA, "web", []Attachment{{Network: "net11"}}, nil)
	errContains(t, err, "already exists")
	_, err = e.m.Setup(ctx, e.id("c11"), "other", []Attachment{{Network: "net11", IP: "10.250.11.50"}}, nil)
	errContains(t, err, "address 10.250.11.50 is taken by container db")
	_, err = e.m.Setup(ctx, e.id("c11"), "other", []Attachment{{Network: "net11", IP: "10.250.99.5"}}, nil)
	errContains(t, err, "not a host address of subnet 10.250.11.0/24")
	errContains(t, e.m.Remove("net11"), "network net11 is in use by container(s) db, web")

	vethA, vethB := e.hostVeths(idA), e.hostVeths(idB)
	for _, v := range append(vethA, vethB...) {
		if !linkExists(v) {
			t.Fatalf("veth %s missing", v)
		}
	}
	for _, id := range []string{idA, idB} {
		if err := e.m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	e.assertGone(idA, vethA)
	e.assertGone(idB, vethB)
	if brif, _ := os.ReadDir("/sys/class/net/bnt11/brif"); len(brif) != 0 {
		t.Fatalf("ports left on bnt11: %v", brif)
	}
	if err := e.m.Teardown(ctx, idA); err != nil {
		t.Fatalf("second teardown: %v", err)
	}
	if p, _ := e.m.Peers("net11"); len(p) != 0 {
		t.Fatalf("peers after teardown: %v", p)
	}
	if err := e.m.Remove("net11"); err != nil {
		t.Fatal(err)
	}
	if linkExists("bnt11") {
		t.Fatal("Remove left bridge bnt11")
	}
	if rs, _ := listTable("filter"); rs != nil {
		for _, c := range []string{isolationChain1, isolationChain2} {
			for _, r := range rs.rules[c] {
				if hasWords(r, "-o", "bnt11") || hasWords(r, "-i", "bnt11") {
					t.Fatalf("Remove left isolation rule %v", r)
				}
			}
		}
	}
}

func TestInternalNetwork(t *testing.T) {
	e := newEnv(t)
	e.network("int12", "bnt12", "10.250.12.0/24", true)
	a := e.setup(e.id("a12"), "a", []Attachment{{Network: "int12"}}, nil)
	b := e.setup(e.id("b12"), "b", []Attachment{{Network: "int12"}}, nil)
	rs := routes(t, a.NetnsPath)
	if hasDefaultRoute(rs) {
		t.Fatalf("internal network gave a default route: %v", rs)
	}
	if len(rs) == 0 {
		t.Fatal("no subnet route either")
	}
	if a.Networks["int12"].Gateway != "" {
		t.Errorf("internal gateway %q", a.Networks["int12"].Gateway)
	}
	// the containers reach each other, not the host's bridge address
	serve(t, b.NetnsPath, ":8000", "b")
	mustFetch(t, a.NetnsPath, b.IPs["int12"]+":8000", "b")
	if ifc, err := net.InterfaceByName("bnt12"); err == nil {
		if addrs, _ := ifc.Addrs(); len(addrs) != 0 {
			for _, ad := range addrs {
				if ipn, ok := ad.(*net.IPNet); ok && ipn.IP.To4() != nil {
					t.Errorf("internal bridge has address %v", ad)
				}
			}
		}
	}
	if out, _ := exec.Command("iptables-save", "-t", "nat").Output(); strings.Contains(string(out), a.ContainerID) {
		t.Errorf("internal network has NAT rules:\n%s", out)
	}
	_, err := e.m.Setup(context.Background(), e.id("c12"), "c", []Attachment{{Network: "int12"}}, []PortMapping{{HostPort: 18080, ContainerPort: 80}})
	errContains(t, err, "ports cannot be published")
}

func TestNetworksAreIsolated(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network("one13", "bnt13", "10.250.13.0/24", false)
	e.network("two14", "bnt14", "10.250.14.0/24", false)
	a := e.setup(e.id("a13"), "a", []Attachment{{Network: "one13"}}, nil)
	b := e.setup(e.id("b13"), "b", []Attachment{{Network: "one13"}}, nil)
	c := e.setup(e.id("c14"), "c", []Attachment{{Network: "two14"}}, nil)
	serve(t, a.NetnsPath, ":8000", "a")
	serve(t, b.NetnsPath, ":8000", "b")
	serve(t, c.NetnsPath, ":8000", "c")
	ipA, ipB, ipC := a.IPs["one13"], b.IPs["one13"], c.IPs["two14"]

	mustFetch(t, a.NetnsPath, ipB+":8000", "b")
	mustNotFetch(t, a.NetnsPath, ipC+":8000")
	mustNotFetch(t, c.NetnsPath, ipA+":8000")
	mustFetch(t, "", ipC+":8000", "c") // the host reaches both

	// connected to both, A reaches C on C's network
	if err := e.m.Connect(ctx, a.ContainerID, "a", Attachment{Network: "two14", Aliases: []string{"a-two"}}); err != nil {
		t.Fatal(err)
	}
	errContains(t, e.m.Connect(ctx, a.ContainerID, "a", Attachment{Network: "two14"}), "already connected")
	errContains(t, e.m.Connect(ctx, e.id("nosuch"), "x", Attachment{Network: "two14"}), "has no network namespace")
	sb, _ := e.m.Sandbox(a.ContainerID)
	if sb.Networks["two14"].Interface != "eth1" {
		t.Fatalf("connected endpoint %+v", sb.Networks["two14"])
	}
	mustFetch(t, a.NetnsPath, ipC+":8000", "c")
	peers, _ := e.m.Peers("two14")
	if len(peers) != 2 || peers[0].Name != "a" || peers[0].Aliases[0] != "a-two" {
		t.Fatalf("peers of two14: %+v", peers)
	}
	if err := e.m.Disconnect(ctx, a.ContainerID, "two14"); err != nil {
		t.Fatal(err)
	}
	errContains(t, e.m.Disconnect(ctx, a.ContainerID, "two14"), "is not connected to network two14")
	mustNotFetch(t, a.NetnsPath, ipC+":8000")
	mustFetch(t, a.NetnsPath, ipB+":8000", "b")
	if out, _ := exec.Command("iptables-save").Output(); strings.Contains(string(out), sb.Networks["two14"].IP+"/") {
		t.Errorf("disconnect left rules for %s", sb.Networks["two14"].IP)
	}
	if _, err := os.Stat(filepath.Join(e.m.ipamDir(), "two14", sb.Networks["two14"].IP)); err == nil {
		t.Error("disconnect left the lease")
	}
}

func TestPublishedPort(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network("pub15", "bnt15", "10.250.15.0/24", false)
	hp1 := testutil.FreePort(t)
	id := e.id("a15")
	sb := e.setup(id, "web", []Attachment{{Network: "pub15"}}, []PortMapping{
		{HostIP: "127.0.0.1", HostPort: hp1, ContainerPort: 80},
		{ContainerPort: 81}, // a free host port, all addresses
		{HostPort: 0, ContainerPort: 82, Protocol: "udp"},
	})
	if len(sb.Ports) != 3 || sb.Ports[0].HostPort != hp1 || sb.Ports[1].HostPort == 0 || sb.Ports[2].HostPort == 0 {
		t.Fatalf("ports %+v", sb.Ports)
	}
	hp2 := sb.Ports[1].HostPort
	serve(t, sb.NetnsPath, ":80", "eighty")
	serve(t, sb.NetnsPath, ":81", "eighty-one")
	mustFetch(t, "", "127.0.0.1:"+strconv.Itoa(hp1), "eighty")
	mustFetch(t, "", "127.0.0.1:"+strconv.Itoa(hp2), "eighty-one")
	if data, _ := os.ReadFile("/proc/sys/net/ipv4/conf/bnt15/route_localnet"); strings.TrimSpace(string(data)) != "1" {
		t.Errorf("route_localnet on bnt15 is %q", data)
	}
	if out, _ := exec.Command("iptables-save", "-t", "nat").Output(); !strings.Contains(string(out), id) {
		t.Errorf("no portmap rules naming the container")
	}

	// the host port cannot be published twice, nor a bound one
	_, err := e.m.Setup(ctx, e.id("b15"), "web2", []Attachment{{Network: "pub15"}}, []PortMapping{{HostPort: hp1, ContainerPort: 80}})
	errContains(t, err, fmt.Sprintf("host port %d/tcp is already published by container web", hp1))
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	_, err = e.m.Setup(ctx, e.id("b15"), "web2", []Attachment{{Network: "pub15"}}, []PortMapping{{HostIP: "127.0.0.1", HostPort: busy, ContainerPort: 80}})
	errContains(t, err, fmt.Sprintf("host port %d/tcp is not free", busy))
	if _, err := os.Stat(e.m.netnsPath(e.id("b15"))); err == nil {
		t.Fatal("refused setup left a namespace")
	}

	veths := e.hostVeths(id)
	if err := e.m.Teardown(ctx, id); err != nil {
		t.Fatal(err)
	}
	e.assertGone(id, veths)
	mustNotFetch(t, "", "127.0.0.1:"+strconv.Itoa(hp1))
}

func TestTeardownAfterNamespaceGone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network("gone16", "bnt16", "10.250.16.0/24", false)

	// 1: the namespace unmounted and removed (its veth went with it)
	id1 := e.id("a16")
	sb1 := e.setup(id1, "a", []Attachment{{Network: "gone16"}}, []PortMapping{{HostPort: testutil.FreePort(t), ContainerPort: 80}})
	veths1 := e.hostVeths(id1)
	if err := unix.Unmount(sb1.NetnsPath, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sb1.NetnsPath); err != nil {
		t.Fatal(err)
	}
	// 2: unmounted, the mount point left as a plain file
	id2 := e.id("b16")
	sb2 := e.setup(id2, "b", []Attachment{{Network: "gone16"}}, nil)
	veths2 := e.hostVeths(id2)
	if err := unix.Unmount(sb2.NetnsPath, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	// 3: a process in the namespace killed hard
	id3 := e.id("c16")
	sb3 := e.setup(id3, "c", []Attachment{{Network: "gone16"}}, nil)
	veths3 := e.hostVeths(id3)
	cmd := exec.Command("nsenter", "--net="+sb3.NetnsPath, "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	for i, c := range []struct {
		id    string
		veths []string
	}{{id1, veths1}, {id2, veths2}, {id3, veths3}} {
		if err := e.m.Teardown(ctx, c.id); err != nil {
			t.Fatalf("case %d: %v", i+1, err)
		}
		e.assertGone(c.id, c.veths)
		if err := e.m.Teardown(ctx, c.id); err != nil {
			t.Fatalf("case %d, again: %v", i+1, err)
		}
	}
}

func TestRepair(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network("rep17", "bnt17", "10.250.17.0/24", false)
	live, dead, half := e.id("live17"), e.id("dead17"), e.id("half17")
	sbLive := e.setup(live, "live", []Attachment{{Network: "rep17"}}, nil)
	e.setup(dead, "dead", []Attachment{{Network: "rep17"}}, []PortMapping{{ContainerPort: 80}})
	deadVeths := e.hostVeths(dead)

	// a crash in the middle of ADD: the record still says "adding"
	e.setup(half, "half", []Attachment{{Network: "rep17"}}, nil)
	halfVeths := e.hostVeths(half)
	rec, _ := e.m.readRecord(half)
	rec.Attachments[0].State = stateAdding
	if err := e.m.writeRecord(rec); err != nil {
		t.Fatal(err)
	}
	// a crash right after the namespace was made, and a stray namespace
	early, stray := e.id("early17"), e.id("stray17")
	if err := e.m.writeRecord(&record{Version: 1, ContainerID: early, NetnsPath: e.m.netnsPath(early)}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{early, stray} {
		if err := createNetns(e.m.netnsPath(id)); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.WriteFile(filepath.Join(e.m.recordDir(), ".x.json.tmp123"), nil, 0o600)

	var mu sync.Mutex
	var asked []string
	alive := func(id string) bool {
		mu.Lock()
		asked = append(asked, id)
		mu.Unlock()
		return id == live
	}
	if err := e.m.Repair(ctx, alive); err != nil {
		t.Fatal(err)
	}
	e.assertGone(dead, deadVeths)
	e.assertGone(half, halfVeths)
	e.assertGone(early, nil)
	e.assertGone(stray, nil)
	if !isNetns(sbLive.NetnsPath) {
		t.Fatal("Repair tore down a live container")
	}
	if _, err := os.Stat(filepath.Join(e.m.recordDir(), ".x.json.tmp123")); err == nil {
		t.Error("temporary file left")
	}
	peers, _ := e.m.Peers("rep17")
	if len(peers) != 1 || peers[0].ContainerID != live {
		t.Fatalf("peers after repair: %+v", peers)
	}
	if err := e.m.Repair(ctx, alive); err != nil {
		t.Fatalf("second repair: %v", err)
	}
}

func TestSetupFailureLeavesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.network("ok18", "bnt18", "10.250.18.0/24", false)
	id := e.id("a18")

	_, err := e.m.Setup(ctx, id, "a", []Attachment{{Network: "ok18"}, {Network: "nosuchnet"}}, nil)
	errContains(t, err, "network nosuchnet not found")
	e.assertGone(id, nil)
	_, err = e.m.Setup(ctx, id, "a", []Attachment{{Network: "ok18"}, {Network: "ok18"}}, nil)
	errContains(t, err, "network ok18 is given twice")
	_, err = e.m.Setup(ctx, "bad/id", "a", []Attachment{{Network: "ok18"}}, nil)
	errContains(t, err, "invalid container ID")

	// a network whose chain fails after the bridge plugin did its work
	broken := `{"cniVersion":"1.0.0","name":"broken19","plugins":[
	  {"type":"bridge","bridge":"bnt19","isGateway":true,"ipMasq":true,
	   "ipam":{"type":"host-local","ranges":[[{"subnet":"10.250.19.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}},
	  {"type":"firewall","backend":"iptables"},
	  {"type":"berth-no-such-plugin"}]}`
	e.bridges = append(e.bridges, "bnt19")
	if err := os.WriteFile(filepath.Join(e.m.ConfDir(), "broken19.conflist"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = e.m.Setup(ctx, id, "a", []Attachment{{Network: "ok18"}, {Network: "broken19"}}, []PortMapping{{ContainerPort: 80}})
	errContains(t, err, "network broken19", "berth-no-such-plugin not found")
	e.assertGone(id, nil)
	if brif, _ := os.ReadDir("/sys/class/net/bnt18/brif"); len(brif) != 0 {
		t.Fatalf("veth left on bnt18: %v", brif)
	}
	if brif, _ := os.ReadDir("/sys/class/net/bnt19/brif"); len(brif) != 0 {
		t.Fatalf("veth left on bnt19: %v", brif)
	}

	// a cancelled context undoes too
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = e.m.Setup(cctx, id, "a", []Attachment{{Network: "ok18"}}, nil)
	errContains(t, err, "context canceled")
	e.assertGone(id, nil)

	// and the network still works afterwards
	sb := e.setup(id, "a", []Attachment{{Network: "ok18"}}, nil)
	if sb.IPs["ok18"] == "" {
		t.Fatal("no IP")
	}
}

// A network whose subnet another bridge has (podman's, another berth
// configuration's) is refused before anything is made.
func TestSubnetTakenOnHost(t *testing.T) {
	e1, e2 := newEnv(t), newEnv(t)
	e1.network("first22", "bnt22", "10.250.22.0/24", false)
	e2.network("second23", "bnt23", "10.250.22.0/24", false)
	e1.setup(e1.id("a22"), "a", []Attachment{{Network: "first22"}}, nil)
	id := e2.id("b23")
	_, err := e2.m.Setup(context.Background(), id, "b", []Attachment{{Network: "second23"}}, nil)
	errContains(t, err, "subnet 10.250.22.0/24 overlaps host interface bnt22")
	e2.assertGone(id, nil)
	if linkExists("bnt23") {
		t.Fatal("bridge bnt23 made")
	}
}

func TestConcurrentSetup(t *testing.T) {
	e := newEnv(t)
	e.network("par21", "bnt21", "10.250.21.0/24", false)
	const n = 8
	var wg sync.WaitGroup
	ips := make([]string, n)
	errs := make([]error, n)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.id("p21x" + strconv.Itoa(i))
	}
	// two Managers on the same directories stand for two berth processes
	m2, err := New(e.m.ConfDir(), e.m.RunDir(), []string{testPluginDir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m := e.m
			if i%2 == 1 {
				m = m2
			}
			sb, err := m.Setup(context.Background(), ids[i], "p"+strconv.Itoa(i), []Attachment{{Network: "par21"}}, nil)
			if err == nil {
				ips[i] = sb.IPs["par21"]
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range ips {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[ips[i]] {
			t.Fatalf("address %s given twice", ips[i])
		}
		seen[ips[i]] = true
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = e.m.Teardown(context.Background(), ids[i])
		}(i)
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		e.assertGone(ids[i], nil)
	}
}

// TestSetupTeardownTiming measures Setup+Teardown on the default network
// (moved to a bridge and subnet of its own).
func TestSetupTeardownTiming(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.m.DefaultBridge, e.m.DefaultSubnet = "bnt20", "10.250.20.0/24"
	e.bridges = append(e.bridges, "bnt20")
	if linkExists("bnt20") {
		t.Fatal("bnt20 exists")
	}
	run := func(name string, ports []PortMapping) (time.Duration, time.Duration) {
		id := e.id(name)
		t0 := time.Now()
		if _, err := e.m.Setup(ctx, id, name, []Attachment{{}}, ports); err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		if err := e.m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
		return t1.Sub(t0), time.Since(t1)
	}
	s, d := run("warm20", nil) // creates the bridge, the shared chains
	t.Logf("first Setup (creates bridge berth default on bnt20) %v, Teardown %v", s.Round(time.Millisecond), d.Round(time.Millisecond))
	const n = 10
	for _, withPorts := range []bool{false, true} {
		var sum, sumS, sumD, best time.Duration
		for i := 0; i < n; i++ {
			var ports []PortMapping
			if withPorts {
				ports = []PortMapping{{ContainerPort: 80}}
			}
			s, d := run(fmt.Sprintf("t20p%vi%d", withPorts, i), ports)
			sumS += s
			sumD += d
			sum += s + d
			if best == 0 || s+d < best {
				best = s + d
			}
		}
		t.Logf("default network, ports=%v: Setup+Teardown mean %v (Setup %v, Teardown %v), best %v over %d runs",
			withPorts, (sum / n).Round(time.Millisecond), (sumS / n).Round(time.Millisecond), (sumD / n).Round(time.Millisecond),
			best.Round(time.Millisecond), n)
	}
	// no plugins: the namespace alone (--network none)
	id := e.id("none20")
	t0 := time.Now()
	if _, err := e.m.Setup(ctx, id, "none", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Teardown(ctx, id); err != nil {
		t.Fatal(err)
	}
	t.Logf("no networks (namespace only): Setup+Teardown %v", time.Since(t0).Round(time.Microsecond))
}
