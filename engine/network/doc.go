// Package network gives berth containers their networks: named bridge
// networks described by CNI configuration lists, and per-container network
// namespaces ("sandboxes") attached to them with the standard CNI plugins
// (bridge, host-local, portmap, tuning), the way podman's CNI backend does,
// and masquerade, forward and isolation rules of berth's own per network.
//
// # Layout
//
// A Manager works on the two directories given to New (besides the CNI
// plugin directories):
//
//	confDir/<name>.conflist       one CNI conflist per network (persistent)
//	runDir/network.lock           flock taken by every change (all berth processes)
//	runDir/netns/<containerID>    the container's network namespace, bind-mounted
//	runDir/attachments/<id>.json  the sandbox record: netns path, every attachment
//	                              with the exact CNI config, CNI_ARGS, runtimeConfig
//	                              and ADD result used, aliases, IP, published ports
//	runDir/ipam/<network>/        host-local's leases (its dataDir)
//	runDir/rules/<network>.json   marker: the network's rules are installed
//	runDir/cni-cache/             libcni's cache of ADD results (DEL's prevResult;
//	                              the record's result when it has none)
//	runDir/slirp/<shortID>.sock   a slirp4netns attachment's API socket (and .log)
//
// runDir is meant to be on a tmpfs (/run/berth/network): after a reboot no
// namespace, veth, lease or iptables rule survives, and neither do the
// records and markers. The records are all Teardown and Peers need: a network's conflist
// may change or go away while a container is attached and its teardown still
// uses the configuration its setup used.
//
// # Networks
//
// Create writes a conflist of bridge (isGateway, hairpinMode; ipMasq false)
// with host-local IPAM, then portmap and tuning; no firewall plugin. An
// internal network's bridge has isGateway false, its IPAM has no routes,
// and it has no portmap: its containers have no default route, no
// masquerade and cannot publish ports. A conflist written by an older berth
// (ipMasq on, a firewall plugin; told by "berth_created" in its args) is
// rewritten to this form when a container is next attached; conflists
// written by hand are used as they are. Labels and the creation time are kept
// in the conflist's top-level "args" under "berth_labels" and
// "berth_created", which libcni and the plugins ignore. Subnets are IPv4; an
// empty one is the first free 10.89.N.0/24 (not overlapping another network or
// an address on a host interface), an empty bridge name the first free
// berthN (N ≥ 1; berth0 belongs to the default network "berth",
// 10.77.0.0/16 (podman's podman0 has 10.88.0.0/16), which EnsureDefault
// writes on first use). Names follow
// docker's rule ([a-zA-Z0-9][a-zA-Z0-9_.-]*); "none", "host", "bridge",
// "container", "private", "ns", "slirp4netns", "pasta" and "default" are
// reserved for network modes.
//
// # Sandboxes
//
// Setup creates the container's network namespace itself (unshare in a
// locked OS thread, bind-mounted at runDir/netns/<containerID>, loopback
// up), then runs CNI ADD for each attachment in order, naming the
// interfaces eth0, eth1, ... The OCI runtime is then given NetnsPath as the
// container's network namespace path. Because the namespace is held by a
// mount, it outlives the container's processes: a container killed hard
// still has its namespace, and Teardown (CNI DEL of every attachment in
// reverse order, then unmount and remove) cleans everything. Teardown also
// works when the namespace is already gone (DEL without CNI_NETNS, then
// berth removes the lease, and the masquerade chain of an ipMasq
// configuration, that the bridge plugin cannot find without it), on
// half-made sandboxes, and a second time (a no-op). Setup undoes
// everything it did when it fails. The record is written before the
// namespace is made, before each ADD and after its result, so a crash at
// any point leaves what Repair needs to tear it down. Before
// anything is made Setup checks the networks exist, requested addresses
// (in the subnet, not taken), aliases, ports, and that no other host
// interface has an address in a network's subnet (podman's podman0 is on
// 10.88.0.0/16 too: two bridges with one subnet break each other).
//
// Plugins that would do nothing are not run, on ADD nor on DEL: portmap
// when the attachment publishes no port, tuning when it has no setting
// (each costs an exec, portmap's DEL a dozen iptables calls). A container on
// the default network costs four execs: bridge and its host-local, on ADD
// and on DEL. On DEL, a
// plugin that cannot be found is skipped (it cannot have done anything, or
// cannot undo it). DEL stops at a plugin that fails, as libcni does; the
// record stays, and the next teardown (rm, system prune) tries again.
//
// Published ports go to the portmap plugin of the first non-internal
// attachment only (one DNAT rule per port); a host port 0 is
// replaced by a free port of the host (bound and released, the way docker
// and podman pick one) and Sandbox.Ports tells the chosen ones. A host port
// already published by another sandbox or bound on the host is refused.
// Nothing keeps the port bound afterwards: a host process that binds it later
// only receives traffic the DNAT rules do not catch.
//
// # Per-network rules
//
// The bridge plugin's ipMasq makes a nat chain per container and the
// firewall plugin two filter rules: about twenty iptables execs per
// container between ADD and DEL, ~5 ms each on nf_tables. berth's conflists
// leave both off and berth installs, once per non-internal network, the
// same effect (rules.go):
//
//	nat     POSTROUTING -> BERTH-POSTROUTING
//	          -s SUBNET ! -o BRIDGE -j MASQUERADE
//	filter  FORWARD -> BERTH-ISOLATION-1 (first), BERTH-FORWARD (second)
//	          -i BRIDGE -j ACCEPT
//	          -o BRIDGE -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT
//	        BERTH-ISOLATION-1: -i BRIDGE ! -o BRIDGE -j BERTH-ISOLATION-2
//	        BERTH-ISOLATION-2: -o BRIDGE -j DROP
//
// (the rules of BERTH-FORWARD and BERTH-POSTROUTING carry the comment
// berth-network:NAME). So containers reach outside, published ports (DNAT)
// are accepted even under a FORWARD policy of DROP, and containers on
// different networks cannot reach each other, docker-style. Only what the
// conflist's plugins do not do is berth's: a hand-written conflist with
// ipMasq or the firewall plugin keeps them, and gets the isolation rules.
// Internal networks get no rules at all.
//
// Setup and Connect install the rules after ADD, then write the network's
// marker (runDir/rules/NAME.json, the rules installed); with a marker
// matching the conflist they run no iptables at all, without one (first
// container since boot, a new run directory, an edited conflist) they list
// the nat and filter tables once and add what is missing. Remove and Prune
// delete the rules (those of the marker and those of the conflist) and the
// marker; the chains stay. Repair removes the rules of networks whose
// conflist is gone and drops the other markers, so that rules flushed by a
// firewall reload come back with the next container.
//
// Measured with bench/engine.sh on 2026-11-28, `run --rm busybox true` on
// each tool's default network: berth 255 ms, podman 687 ms (0.37); with the
// per-container rules it was 616 ms against 877 (0.70).
//
// Connect and Disconnect add and remove one attachment of a set-up sandbox;
// connected networks publish no ports. Peers lists the containers attached to
// a network, with their names, aliases and addresses, for /etc/hosts.
//
// # slirp4netns
//
// SlirpNetwork ("slirp4netns") is a pseudo network without a conflist: the
// default of a rootless berth, which can make neither bridges nor iptables
// rules, and open to root by name. Its attachment runs slirp4netns (package
// slirp) on the sandbox's namespace instead of CNI ADD, publishes ports
// through its API socket, and records the process for Teardown. It has no
// peers and cannot be connected to later. A rootless berth has no other
// network: Create, and loading any other network, are refused.
//
// # Host requirements
//
// Root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), the CNI plugins in one of the
// plugin directories (New's default: podman's list), an iptables binary in
// PATH (portmap calls it too; legacy or nft, whichever "iptables" is) with
// the comment and conntrack matches.
// The bridge plugin turns on net.ipv4.ip_forward for gateway networks, and
// portmap sets net.ipv4.conf.<bridge>.route_localnet=1 so that a port
// published on all addresses or on 127.0.0.1 answers on 127.0.0.1 (its DNAT
// from loopback is masqueraded, snat being on by default); berth itself sets
// no sysctl. Only IPv4 is handled.
//
// # Locking and errors
//
// Every method is safe for concurrent use by goroutines and by berth
// processes sharing runDir: changes hold an exclusive flock on
// runDir/network.lock for their whole duration (like podman's CNI backend,
// so sandboxes are set up one at a time); List, Inspect, Peers and Sandbox
// only read files that are replaced by rename. Errors are single lines with
// context; the package never prints.
//
// The CNI plugins are run by libcni (github.com/containernetworking/cni),
// given for each invocation the list without its idle plugins (and, on DEL,
// without those that cannot be found); its result cache, which gives DEL
// its prevResult, is runDir/cni-cache.
package network
