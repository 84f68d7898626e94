package integration

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// With SCMP_ACT_NOTIFY rules the runtime hands the listener to the agent at
// listenerPath, with the container process state. This agent records what
// it got and closes the listener, so the notified syscall fails (ENOSYS).
func TestSeccompNotifyListener(t *testing.T) {
	e := newEnv(t)
	sockPath := filepath.Join(e.dir, "agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type got struct {
		state specs.ContainerProcessState
		fds   int
		err   error
	}
	ch := make(chan got, 1)
	go func() {
		conn, err := ln.AcceptUnix()
		if err != nil {
			ch <- got{err: err}
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 65536), make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			ch <- got{err: err}
			return
		}
		var g got
		g.err = json.Unmarshal(buf[:n], &g.state)
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
			if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil {
				g.fds = len(fds)
				for _, fd := range fds {
					unix.Close(fd)
				}
			}
		}
		ch <- g
	}()

	s := shell(t, "mkdir /tmp/notified 2>&1; echo rc=$?")
	s.Root.Readonly = false
	copyRootfs(t, s)
	s.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		ListenerPath:  sockPath, ListenerMetadata: "berth-test",
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
	}
	out := e.mustRun(s)
	g := <-ch
	if g.err != nil {
		t.Fatalf("agent: %v", g.err)
	}
	if g.fds != 1 || len(g.state.Fds) != 1 || g.state.Fds[0] != specs.SeccompFdName || g.state.Metadata != "berth-test" || g.state.Pid <= 0 || g.state.State.ID == "" {
		t.Errorf("agent got %d fds and state %+v", g.fds, g.state)
	}
	if !strings.Contains(out, "rc=1") {
		t.Errorf("mkdir under a notify rule whose agent closed the listener: output %q, want a failure", out)
	}
}
