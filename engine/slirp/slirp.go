// Package slirp gives a rootless container's network namespace a way out
// with slirp4netns: a user-mode TCP/IP stack that sits in the host's network
// namespace and talks to a tap device in the container's, needing no
// privilege on the host. Published ports are host sockets of slirp4netns,
// added through its API socket.
//
// slirp4netns --configure gives the namespace tap0 with Address, a default
// route through Gateway, and a DNS forwarder at DNS. Host loopback is not
// reachable from the container (--disable-host-loopback), as in podman.
package slirp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/libcontainer/state"
)

// The addresses slirp4netns --configure gives the namespace.
const (
	Subnet    = "10.0.2.0/24"
	PrefixLen = 24
	Address   = "10.0.2.100"
	Gateway   = "10.0.2.2"
	DNS       = "10.0.2.3"
	// Device is the tap device in the namespace.
	Device = "tap0"
)

// readyTimeout bounds the wait for slirp4netns to configure the namespace.
const readyTimeout = 10 * time.Second

// Process is a running slirp4netns, as recorded for its teardown.
type Process struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	// APISocket is where it takes port forwarding requests.
	APISocket string `json:"api_socket"`
}

// Start runs slirp4netns for the network namespace bind-mounted at netns,
// with its API socket at base.sock and its log at base.log, and returns once
// tap0 is configured.
// The process is in a session of its own and outlives the caller; Stop
// ends it.
func Start(netns, base string) (*Process, error) {
	bin, err := exec.LookPath("slirp4netns")
	if err != nil {
		return nil, fmt.Errorf("slirp4netns is needed for a rootless container's network: %w", err)
	}
	sock := base + ".sock"
	if len(sock) >= len(unix.RawSockaddrUnix{}.Path) {
		return nil, fmt.Errorf("slirp4netns API socket path %s is too long", sock)
	}
	logPath := base + ".log"
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("slirp4netns log: %w", err)
	}
	defer logf.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("slirp4netns ready pipe: %w", err)
	}
	defer readyR.Close()
	cmd := exec.Command(bin, "--configure", "--mtu=65520", "--disable-host-loopback",
		"--enable-sandbox", "--enable-seccomp", "--ready-fd=3", "--api-socket", sock,
		"--netns-type=path", netns, Device)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	os.Remove(sock)
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return nil, fmt.Errorf("start slirp4netns: %w", err)
	}
	p := &Process{PID: cmd.Process.Pid, APISocket: sock}
	p.Start, _, _ = state.ProcessStart(p.PID)
	// Reaped by init once the caller has exited; meanwhile a zombie at most.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		_, err := readyR.Read(b)
		ready <- err
	}()
	select {
	case err = <-ready:
		if err == io.EOF {
			err = errors.New("exited before it was ready")
		}
	case err = <-exited:
		if err == nil {
			err = errors.New("exited")
		}
	case <-time.After(readyTimeout):
		err = fmt.Errorf("not ready after %s", readyTimeout)
	}
	if err != nil {
		err = fmt.Errorf("slirp4netns for %s: %w%s", netns, err, firstError(logPath))
		p.Stop()
		return nil, err
	}
	return p, nil
}

// firstError is ": " and the first line slirp4netns logged, warnings left
// out, if any: the cause (later lines are its parent's "child failed").
func firstError(path string) string {
	data, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "WARNING:") {
			return ": " + l
		}
	}
	return ""
}

// Find returns the slirp4netns serving the namespace netns, started with
// base (for a process whose pid was never recorded: a crash right after
// Start); one that is not running is returned too, so that Stop removes
// its files.
func Find(netns, base string) *Process {
	p := &Process{APISocket: base + ".sock"}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		if err != nil || len(args) < 3 || filepath.Base(args[0]) != "slirp4netns" ||
			args[len(args)-2] != netns || !slices.Contains(args, p.APISocket) {
			continue
		}
		if start, _, err := state.ProcessStart(pid); err == nil {
			p.PID, p.Start = pid, start
		}
		break
	}
	return p
}

// Alive reports whether the recorded slirp4netns still runs.
func (p *Process) Alive() bool { return state.Alive(p.PID, p.Start) }

// Stop ends slirp4netns (a no-op when it has ended) and removes its socket
// and log.
func (p *Process) Stop() error {
	defer os.Remove(strings.TrimSuffix(p.APISocket, ".sock") + ".log")
	defer os.Remove(p.APISocket)
	if !p.Alive() {
		return nil
	}
	if err := unix.Kill(p.PID, unix.SIGTERM); err != nil && err != unix.ESRCH {
		return fmt.Errorf("stop slirp4netns %d: %w", p.PID, err)
	}
	for i := 0; i < 100 && p.Alive(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if p.Alive() {
		unix.Kill(p.PID, unix.SIGKILL)
	}
	return nil
}

// Forward publishes guestPort of the container on hostIP:hostPort of the
// host ("" or "0.0.0.0": all addresses); proto is tcp or udp.
func (p *Process) Forward(proto, hostIP string, hostPort, guestPort int) error {
	if hostIP == "" {
		hostIP = "0.0.0.0"
	}
	req := map[string]any{"execute": "add_hostfwd", "arguments": map[string]any{
		"proto": proto, "host_addr": hostIP, "host_port": hostPort,
		"guest_addr": Address, "guest_port": guestPort,
	}}
	var reply struct {
		Error *struct {
			Desc string `json:"desc"`
		} `json:"error"`
	}
	if err := p.call(req, &reply); err != nil {
		return fmt.Errorf("publish %s:%d/%s: %w", hostIP, hostPort, proto, err)
	}
	if reply.Error != nil {
		return fmt.Errorf("publish %s:%d/%s: slirp4netns: %s", hostIP, hostPort, proto, reply.Error.Desc)
	}
	return nil
}

// call sends one request on the API socket and reads its reply; slirp4netns
// answers and closes the connection.
func (p *Process) call(req, reply any) error {
	conn, err := net.DialTimeout("unix", p.APISocket, 5*time.Second)
	if err != nil {
		return fmt.Errorf("slirp4netns API: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return fmt.Errorf("slirp4netns API: %w", err)
	}
	// The request ends where the writing side is shut.
	conn.(*net.UnixConn).CloseWrite()
	if err := json.NewDecoder(conn).Decode(reply); err != nil {
		return fmt.Errorf("slirp4netns API reply: %w", err)
	}
	return nil
}
