package bundle

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/libcontainer/config"
)

// Host files the container's /etc files start from. When every nameserver
// of the host's resolv.conf is a loopback address (a local stub resolver such
// as systemd-resolved's, unreachable from another network namespace), the
// stub's list of upstream servers is used instead, as docker does.
const (
	hostHosts        = "/etc/hosts"
	hostResolvConf   = "/etc/resolv.conf"
	resolvedUpstream = "/run/systemd/resolve/resolv.conf"
)

// EtcOptions are the docker-style inputs to the files AddEtcFiles writes.
type EtcOptions struct {
	// ExtraHosts are "name:address" lines for /etc/hosts (docker's
	// --add-host).
	ExtraHosts []string
	// DNS lists nameservers for /etc/resolv.conf instead of the host's.
	DNS []string
}

// defaultHosts are the lines of a container's own /etc/hosts before its name.
const defaultHosts = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::	ip6-localnet
ff00::	ip6-mcastprefix
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
`

// AddEtcFiles writes hostname, hosts and resolv.conf into dir and adds bind
// mounts of them on /etc/hostname, /etc/hosts and /etc/resolv.conf to s, as
// podman does with its per-container directory; a destination s already
// mounts is left alone. The mounts are read-only when the rootfs is.
//
// With the host's network (no network namespace in s), hosts and resolv.conf
// are the host's. Otherwise hosts names localhost and the container's
// hostname (on 127.0.1.1, there being no other address yet), and resolv.conf
// is the host's without loopback nameservers, which the container could not
// reach; if none remain, it has no nameserver at all.
func AddEtcFiles(dir string, s *specs.Spec, o EtcOptions) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("bundle directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create bundle directory: %w", err)
	}
	hostNet := !config.HasNamespace(s, specs.NetworkNamespace)
	hosts, err := hostsFile(s.Hostname, hostNet, o.ExtraHosts)
	if err != nil {
		return err
	}
	resolv, err := resolvFile(hostNet, o.DNS)
	if err != nil {
		return err
	}
	files := []struct {
		dest, name string
		data       []byte
	}{
		{"/etc/hostname", "hostname", []byte(s.Hostname + "\n")},
		{"/etc/hosts", "hosts", hosts},
		{"/etc/resolv.conf", "resolv.conf", resolv},
	}
	for _, f := range files {
		if slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return filepath.Clean(m.Destination) == f.dest }) {
			continue
		}
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, f.data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", f.dest, err)
		}
		opts := []string{"rbind", "rprivate"}
		if s.Root != nil && s.Root.Readonly {
			opts = append(opts, "ro")
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: f.dest, Type: "bind", Source: path, Options: opts})
	}
	return nil
}

// hostsFile makes /etc/hosts: the host's with the host network, else the
// defaults and the hostname; then the extra hosts.
func hostsFile(hostname string, hostNet bool, extra []string) ([]byte, error) {
	var b bytes.Buffer
	if hostNet {
		data, err := readHostFile(hostHosts)
		if err != nil {
			return nil, err
		}
		b.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
	} else {
		b.WriteString(defaultHosts)
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", hostname)
	}
	for _, e := range extra {
		name, addr, ok := strings.Cut(e, ":")
		ip, err := netip.ParseAddr(addr)
		if !ok || err != nil || name == "" || strings.ContainsAny(name, " \t\n") {
			return nil, fmt.Errorf("extra host %q: want name:address", e)
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	return b.Bytes(), nil
}

// resolvFile makes /etc/resolv.conf from the host's.
func resolvFile(hostNet bool, dns []string) ([]byte, error) {
	for _, d := range dns {
		if _, err := netip.ParseAddr(d); err != nil {
			return nil, fmt.Errorf("dns server %q is not an IP address", d)
		}
	}
	data, err := readHostFile(hostResolvConf)
	if err != nil {
		return nil, err
	}
	if hostNet && len(dns) == 0 {
		return data, nil
	}
	out, n := filterResolv(data, dns)
	if n == 0 && !hostNet {
		upstream, err := readHostFile(resolvedUpstream)
		if err != nil {
			return nil, err
		}
		if alt, m := filterResolv(upstream, nil); m > 0 {
			return alt, nil
		}
	}
	return out, nil
}

// filterResolv keeps the lines of a resolv.conf but its loopback nameservers
// (all its nameservers when dns is given, which then follow), and counts the
// nameservers left.
func filterResolv(data []byte, dns []string) ([]byte, int) {
	var b bytes.Buffer
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			ip, err := netip.ParseAddr(f[1])
			if len(dns) > 0 || (err == nil && ip.IsLoopback()) {
				continue
			}
			n++
		}
		b.WriteString(line + "\n")
	}
	for _, d := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", d)
		n++
	}
	return b.Bytes(), n
}

// readHostFile reads a host file; a missing one is empty.
func readHostFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read host %s: %w", path, err)
	}
	return data, nil
}
