package network

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const testPluginDir = "/usr/lib/cni"

// chains that existed before the tests ran, per table
var chainsBefore = map[string]map[string]bool{}

// runTag makes the container IDs of one test run unique, so iptables rules
// of this run can be told from everyone else's.
var runTag = func() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

// testLock is the flock serializing runs of this package; a global so that
// no finalizer closes it.
var testLock *os.File

func TestMain(m *testing.M) {
	canRun := os.Geteuid() == 0 && haveTools()
	if canRun {
		// Runs of this package (go test ./... started twice) use the same
		// bridges and subnets: one at a time.
		lf, err := os.OpenFile(filepath.Join(os.TempDir(), "berth-engine-network-test.lock"), os.O_RDWR|os.O_CREATE, 0o600)
		if err == nil {
			for unix.Flock(int(lf.Fd()), unix.LOCK_EX) == unix.EINTR {
			}
			testLock = lf // held until the process exits
		}
		for _, t := range []string{"filter", "nat"} {
			rs, err := listTable(t)
			if err == nil {
				chainsBefore[t] = rs.chains
			}
		}
	}
	code := m.Run()
	if canRun {
		removeNewEmptyChains()
	}
	os.Exit(code)
}

func haveTools() bool {
	if _, err := exec.LookPath("iptables"); err != nil {
		return false
	}
	for _, p := range []string{"bridge", "host-local", "portmap", "firewall", "tuning"} {
		if _, err := os.Stat(filepath.Join(testPluginDir, p)); err != nil {
			return false
		}
	}
	return true
}

// needRoot skips tests that need root, the plugins and iptables.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if !haveTools() {
		t.Skip("needs iptables and the CNI plugins in " + testPluginDir)
	}
}

// removeNewEmptyChains deletes the chains this run created (CNI-FORWARD,
// CNI-HOSTPORT-*, BERTH-ISOLATION-*, ...) when nothing but jumps among them
// is left in them, and the jumps to them from the built-in chains.
func removeNewEmptyChains() {
	for _, table := range []string{"filter", "nat"} {
		rs, err := listTable(table)
		if err != nil {
			continue
		}
		newChains := map[string]bool{}
		for c := range rs.chains {
			if !chainsBefore[table][c] && !builtin(c) {
				newChains[c] = true
			}
		}
		// drop chains holding anything but jumps to other new chains
		for changed := true; changed; {
			changed = false
			for c := range newChains {
				for _, r := range rs.rules[c] {
					if !newChains[jumpTarget(r)] && !portmapStatic(c, r) {
						delete(newChains, c)
						changed = true
						break
					}
				}
			}
		}
		if len(newChains) == 0 {
			continue
		}
		for c, rules := range rs.rules {
			if newChains[c] {
				continue
			}
			for i := len(rules) - 1; i >= 0; i-- {
				if newChains[jumpTarget(rules[i])] {
					_, _ = iptables(append([]string{"-t", table, "-D", c}, rules[i]...)...)
				}
			}
		}
		for c := range newChains {
			_, _ = iptables("-t", table, "-F", c)
		}
		for c := range newChains {
			_, _ = iptables("-t", table, "-X", c)
		}
	}
}

// portmapStatic tells the fixed rules portmap puts in its shared chains.
func portmapStatic(chain string, rule []string) bool {
	t := jumpTarget(rule)
	return (chain == "CNI-HOSTPORT-MASQ" && t == "MASQUERADE") || (chain == "CNI-HOSTPORT-SETMARK" && t == "MARK")
}

func builtin(c string) bool {
	switch c {
	case "INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING":
		return true
	}
	return false
}

// testEnv is a Manager with its own directories, and what its test made on
// the host, removed by its cleanup.
type testEnv struct {
	t       *testing.T
	m       *Manager
	bridges []string
	ids     []string
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	m, err := New(filepath.Join(dir, "conf"), filepath.Join(dir, "run"), []string{testPluginDir})
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, m: m}
	t.Cleanup(e.cleanup)
	return e
}

// id is a container ID unique to this run.
func (e *testEnv) id(name string) string {
	id := "bt" + runTag + name
	e.ids = append(e.ids, id)
	return id
}

// network creates a network on a bridge no one else uses.
func (e *testEnv) network(name, bridge, subnet string, internal bool) *Network {
	e.t.Helper()
	if linkExists(bridge) {
		e.t.Fatalf("bridge %s already exists on the host: another test run?", bridge)
	}
	e.bridges = append(e.bridges, bridge)
	n, err := e.m.Create(CreateOptions{Name: name, Subnet: subnet, Bridge: bridge, Internal: internal})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *testEnv) setup(id, name string, attach []Attachment, ports []PortMapping) *Sandbox {
	e.t.Helper()
	sb, err := e.m.Setup(context.Background(), id, name, attach, ports)
	if err != nil {
		e.t.Fatal(err)
	}
	return sb
}

func (e *testEnv) cleanup() {
	ctx := context.Background()
	if recs, err := e.m.records(); err == nil {
		for _, r := range recs {
			if err := e.m.Teardown(ctx, r.ContainerID); err != nil {
				e.t.Errorf("cleanup: %v", err)
			}
		}
	}
	if nets, err := e.m.List(); err == nil {
		for _, n := range nets {
			if n.Name == e.m.DefaultName {
				continue
			}
			if err := e.m.Remove(n.Name); err != nil {
				e.t.Errorf("cleanup: %v", err)
			}
		}
	}
	for _, b := range e.bridges {
		_ = deleteLink(b)
	}
	// whatever a failed test left in iptables
	markers := append([]string(nil), e.ids...)
	markers = append(markers, e.bridges...)
	scrubIptables(markers)
	_ = os.RemoveAll(e.m.RunDir())
}

// scrubIptables deletes rules mentioning any marker, and the CNI chains
// emptied by it.
func scrubIptables(markers []string) {
	for _, table := range []string{"filter", "nat"} {
		rs, err := listTable(table)
		if err != nil {
			continue
		}
		emptied := map[string]bool{}
		for c, rules := range rs.rules {
			left := len(rules)
			for i := len(rules) - 1; i >= 0; i-- {
				line := strings.Join(rules[i], " ")
				for _, mk := range markers {
					if mk != "" && (strings.Contains(line, mk) || hasWords(rules[i], "-i", mk) || hasWords(rules[i], "-o", mk)) {
						if _, err := iptables(append([]string{"-t", table, "-D", c}, rules[i]...)...); err == nil {
							left--
						}
						break
					}
				}
			}
			if left == 0 && len(rules) > 0 && strings.HasPrefix(c, "CNI-") && !strings.HasPrefix(c, "CNI-HOSTPORT") &&
				c != "CNI-FORWARD" && c != "CNI-ADMIN" {
				emptied[c] = true
			}
		}
		for c := range emptied {
			_, _ = iptables("-t", table, "-X", c)
		}
	}
}

// inNetns runs fn in a thread that has joined the namespace at path. The
// thread is never unlocked, so it dies with the goroutine.
func inNetns(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// serve starts a TCP server in the namespace that writes greeting to each
// client; it stops with the test.
func serve(t *testing.T, netns, addr, greeting string) {
	t.Helper()
	var l net.Listener
	err := inNetns(netns, func() error {
		var err error
		l, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", netns, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, greeting+"\n")
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
}

// fetch connects to addr from netns ("" is the host) and returns the
// greeting.
func fetch(netns, addr string, timeout time.Duration) (string, error) {
	var got string
	do := func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		got = strings.TrimSpace(line)
		if err != nil && got == "" {
			return err
		}
		return nil
	}
	var err error
	if netns == "" {
		err = do()
	} else {
		err = inNetns(netns, do)
	}
	return got, err
}

func mustFetch(t *testing.T, netns, addr, want string) {
	t.Helper()
	got, err := fetch(netns, addr, 3*time.Second)
	if err != nil {
		t.Fatalf("connect from %s to %s: %v", nsName(netns), addr, err)
	}
	if got != want {
		t.Fatalf("connect from %s to %s: got %q, want %q", nsName(netns), addr, got, want)
	}
}

func mustNotFetch(t *testing.T, netns, addr string) {
	t.Helper()
	if got, err := fetch(netns, addr, time.Second); err == nil {
		t.Fatalf("connect from %s to %s should fail, got %q", nsName(netns), addr, got)
	}
}

func nsName(p string) string {
	if p == "" {
		return "the host"
	}
	return filepath.Base(p)
}

// routes reads the namespace's IPv4 routing table: destination/mask pairs.
func routes(t *testing.T, netns string) []string {
	t.Helper()
	var out []string
	err := inNetns(netns, func() error {
		data, err := os.ReadFile("/proc/thread-self/net/route")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) >= 8 {
				out = append(out, f[0]+" "+f[1]+"/"+f[7])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hasDefaultRoute(rs []string) bool {
	for _, r := range rs {
		if strings.HasSuffix(r, " 00000000/00000000") {
			return true
		}
	}
	return false
}

// leftovers describes what of a container's sandbox is still on the host.
func (e *testEnv) leftovers(id string, hostVeths []string) []string {
	var left []string
	m := e.m
	if _, err := os.Lstat(m.netnsPath(id)); err == nil {
		left = append(left, "netns file "+m.netnsPath(id))
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && bytes.Contains(mi, []byte(m.netnsPath(id))) {
		left = append(left, "netns mount")
	}
	if _, err := os.Lstat(m.recordPath(id)); err == nil {
		left = append(left, "record")
	}
	for _, v := range hostVeths {
		if linkExists(v) {
			left = append(left, "veth "+v)
		}
	}
	leases, _ := filepath.Glob(filepath.Join(m.ipamDir(), "*", "*"))
	for _, l := range leases {
		b := filepath.Base(l)
		if b == "lock" || strings.HasPrefix(b, "last_reserved_ip") {
			continue
		}
		if data, err := os.ReadFile(l); err == nil && strings.HasPrefix(string(data), id) {
			left = append(left, "lease "+l)
		}
	}
	if out, err := exec.Command("iptables-save").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, id) {
				left = append(left, "iptables: "+line)
			}
		}
	}
	return left
}

func (e *testEnv) assertGone(id string, hostVeths []string) {
	e.t.Helper()
	if left := e.leftovers(id, hostVeths); len(left) > 0 {
		e.t.Fatalf("after teardown of %s:\n  %s", id, strings.Join(left, "\n  "))
	}
}

// hostVeths are the host-side interfaces the record's results name.
func (e *testEnv) hostVeths(id string) []string {
	e.t.Helper()
	rec, err := e.m.readRecord(id)
	if err != nil || rec == nil {
		e.t.Fatalf("record of %s: %v", id, err)
	}
	var out []string
	for _, a := range rec.Attachments {
		var res struct {
			Interfaces []struct {
				Name    string `json:"name"`
				Sandbox string `json:"sandbox"`
			} `json:"interfaces"`
		}
		_ = json.Unmarshal(a.Result, &res)
		for _, i := range res.Interfaces {
			if i.Sandbox == "" && strings.HasPrefix(i.Name, "veth") {
				out = append(out, i.Name)
			}
		}
	}
	if len(out) == 0 {
		e.t.Fatalf("record of %s names no veth", id)
	}
	return out
}

func errContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}

var _ = errors.New
