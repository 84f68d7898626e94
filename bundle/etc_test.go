package bundle

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestFilterResolv(t *testing.T) {
	host := "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nnameserver fe80::1%eth0\nsearch example.org\noptions edns0\n"
	out, n := filterResolv([]byte(host), nil)
	want := "# generated\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nsearch example.org\noptions edns0\n"
	if string(out) != want || n != 2 {
		t.Errorf("filtered (%d nameservers):\n%s\nwant:\n%s", n, out, want)
	}
	out, n = filterResolv([]byte(host), []string{"9.9.9.9"})
	want = "# generated\nsearch example.org\noptions edns0\nnameserver 9.9.9.9\n"
	if string(out) != want || n != 1 {
		t.Errorf("with DNS (%d nameservers):\n%s\nwant:\n%s", n, out, want)
	}
	if _, n := filterResolv([]byte("nameserver 127.0.0.1\n"), nil); n != 0 {
		t.Errorf("only loopback: %d nameservers left", n)
	}
}

func TestHostsFile(t *testing.T) {
	out, err := hostsFile("box", false, []string{"db:10.1.2.3", "v6:2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "127.0.1.1\tbox", "10.1.2.3\tdb", "2001:db8::1\tv6"} {
		if !slices.Contains(strings.Split(string(out), "\n"), line) {
			t.Errorf("hosts lacks %q:\n%s", line, out)
		}
	}
	for _, bad := range []string{"db", "db:not-an-ip", ":10.0.0.1", "a b:10.0.0.1"} {
		if _, err := hostsFile("box", false, []string{bad}); err == nil {
			t.Errorf("extra host %q accepted", bad)
		}
	}
	host, err := os.ReadFile(hostHosts)
	if err != nil {
		t.Skip("no host /etc/hosts")
	}
	out, err = hostsFile("box", true, nil)
	if err != nil || !strings.HasPrefix(string(out), string(host)) || strings.Contains(string(out), "127.0.1.1\tbox") {
		t.Errorf("host network hosts file:\n%s\nerr %v", out, err)
	}
}

func TestAddEtcFiles(t *testing.T) {
	img := image(v1.ImageConfig{Cmd: []string{"sh"}})
	s := generate(t, img, Options{Hostname: "box", ReadOnly: true, Binds: []string{t.TempDir() + ":/etc/resolv.conf"}})
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := AddEtcFiles(dir, s, EtcOptions{ExtraHosts: []string{"db:10.1.2.3"}}); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "hostname")); err != nil || string(data) != "box\n" {
		t.Errorf("hostname file %q, %v", data, err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "hosts")); err != nil || !strings.Contains(string(data), "10.1.2.3\tdb\n") {
		t.Errorf("hosts file %q, %v", data, err)
	}
	for _, dest := range []string{"/etc/hostname", "/etc/hosts"} {
		m := mountAt(s, dest)
		if m == nil || m.Type != "bind" || m.Source != filepath.Join(dir, filepath.Base(dest)) || !slices.Equal(m.Options, []string{"rbind", "rprivate", "ro"}) {
			t.Errorf("mount on %s: %+v", dest, m)
		}
	}
	// The user's own mount of /etc/resolv.conf stays the only one.
	if m := mountAt(s, "/etc/resolv.conf"); m.Type != "bind" || strings.HasPrefix(m.Source, dir) {
		t.Errorf("resolv.conf mount replaced: %+v", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "resolv.conf")); err == nil {
		t.Error("resolv.conf written although the user mounts one")
	}

	s = generate(t, img, Options{})
	if err := AddEtcFiles(dir, s, EtcOptions{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "resolv.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			if ip, err := netip.ParseAddr(f[1]); err == nil && ip.IsLoopback() {
				t.Errorf("loopback nameserver in a container's resolv.conf: %s", line)
			}
		}
	}
	if m := mountAt(s, "/etc/resolv.conf"); m == nil || slices.Contains(m.Options, "ro") {
		t.Errorf("resolv.conf mount of a writable rootfs: %+v", m)
	}
	if err := AddEtcFiles(dir, s, EtcOptions{DNS: []string{"dns.example"}}); err == nil {
		t.Error("a DNS server name was accepted")
	}
}

func TestWriteBundle(t *testing.T) {
	s := generate(t, image(v1.ImageConfig{Cmd: []string{"sh"}, WorkingDir: "/srv/app"}), Options{})
	// A symlink on the way resolves inside the rootfs, not on the host.
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(s.Root.Path, outside), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(s.Root.Path, "srv")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "b")
	if err := WriteBundle(dir, s); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(s.Root.Path, outside, "app")); err != nil || !fi.IsDir() {
		t.Errorf("working directory not made inside the rootfs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "app")); err == nil {
		t.Error("working directory made on the host through a symlink")
	}
	fi, err := os.Stat(filepath.Join(dir, "config.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json: %v %v", fi, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back specs.Spec
	if err := json.Unmarshal(data, &back); err != nil || back.Process.Cwd != "/srv/app" || back.Root.Path != s.Root.Path {
		t.Errorf("config.json read back: %v %+v", err, back.Process)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("bundle holds %d entries, want config.json alone", len(entries))
	}
}
