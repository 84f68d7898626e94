// Package nsexec holds the C stage that puts a new process into its
// namespaces before the Go runtime starts, and the framed messages the runtime
// exchanges with that process over its sync socket.
//
// Importing the package links the constructor into the binary; it does nothing
// unless the process was started with _BERTH_SYNCFD in its environment.
package nsexec

/*
#cgo CFLAGS: -Wall -O2
#include "nsexec.h"

__attribute__((constructor)) static void berth_init(void)
{
	berth_nsexec();
}
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// InheritedNofile is RLIMIT_NOFILE as the process started, before the Go
// runtime raised its soft limit; valid in a process the C stage ran in.
func InheritedNofile() unix.Rlimit {
	return unix.Rlimit{
		Cur: uint64(C.berth_inherited_nofile.rlim_cur),
		Max: uint64(C.berth_inherited_nofile.rlim_max),
	}
}

// Message types; they match nsexec.h.
const (
	MsgBootstrap = 'B'
	MsgWantMaps  = 'U'
	MsgMapsDone  = 'u'
	MsgPid       = 'P'
	MsgError     = 'E'
	// Go-side messages between the runtime and the container process.
	MsgConfig    = 'C' // runtime -> init: the init configuration (JSON)
	MsgPlan      = 'X' // runtime -> C init stage: the plan (bootstrap entry plan=1)
	MsgHooks     = 'H' // init -> runtime: mounts done, run createRuntime hooks
	MsgHooksDone = 'h' // runtime -> init
	MsgReady     = 'R' // init -> runtime: waiting for start
	MsgSeccomp   = 'S' // init -> runtime: a seccomp listener fd follows (SCM_RIGHTS)
	MsgGo        = 'G' // runtime -> exec'd process: in its cgroup, go on
)

// Environment variables of the protocol.
const (
	EnvSyncFd = "_BERTH_SYNCFD"
	EnvStage  = "_BERTH_STAGE"
)

// Send writes one framed message.
func Send(w io.Writer, typ byte, payload []byte) error {
	buf := make([]byte, 5+len(payload))
	buf[0] = typ
	binary.LittleEndian.PutUint32(buf[1:5], uint32(len(payload)))
	copy(buf[5:], payload)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("send message %q: %w", typ, err)
	}
	return nil
}

// Recv reads one framed message.
func Recv(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[1:5])
	if n > 16<<20 {
		return 0, nil, fmt.Errorf("message %q too large (%d bytes)", hdr[0], n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("read message %q: %w", hdr[0], err)
	}
	return hdr[0], payload, nil
}
