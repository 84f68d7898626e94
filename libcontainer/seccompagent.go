package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// forwardListener receives the seccomp listener descriptor that the
// container process sent after MsgSeccomp and passes it on to the seccomp
// agent at linux.seccomp.listenerPath, with the container process state, as
// the runtime-spec describes.
func forwardListener(sock *os.File, s *specs.Spec, st *specs.State) error {
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fmt.Errorf("receive seccomp listener: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return errors.New("receive seccomp listener: no descriptor")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return errors.New("receive seccomp listener: no descriptor")
	}
	defer unix.Close(fds[0])
	path := s.Linux.Seccomp.ListenerPath
	if path == "" {
		return errors.New("linux.seccomp has SCMP_ACT_NOTIFY rules but no listenerPath")
	}
	data, err := json.Marshal(specs.ContainerProcessState{
		Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: st.Pid,
		Metadata: s.Linux.Seccomp.ListenerMetadata, State: *st,
	})
	if err != nil {
		return fmt.Errorf("encode container process state: %w", err)
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("connect to seccomp agent %s: %w", path, err)
	}
	defer conn.Close()
	if _, _, err := conn.(*net.UnixConn).WriteMsgUnix(data, unix.UnixRights(fds[0]), nil); err != nil {
		return fmt.Errorf("send seccomp listener to agent %s: %w", path, err)
	}
	return nil
}
