package api

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/containerd/console"
	mcontainer "github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/container"
)

// execSession is an exec made by create and run by start; the service
// keeps it (as dockerd does) so that inspect tells its exit code.
type execSession struct {
	id        string
	container string
	req       mcontainer.ExecCreateRequest

	mu      sync.Mutex
	started bool
	running bool
	pid     int
	code    *int
	pty     console.Console
}

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	var req mcontainer.ExecCreateRequest
	if !decode(w, r, &req) {
		return
	}
	if len(req.Cmd) == 0 || req.Cmd[0] == "" {
		writeError(w, http.StatusBadRequest, "Cmd: no command given")
		return
	}
	if err := container.Refresh(r.Context(), s.o.Store, c); err != nil {
		fail(w, err)
		return
	}
	if c.Status != container.Running {
		writeError(w, http.StatusConflict, fmt.Sprintf("container %s is not running", c.ID))
		return
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	e := &execSession{id: hex.EncodeToString(b), container: c.ID, req: req}
	s.mu.Lock()
	if s.execs == nil {
		s.execs = map[string]*execSession{}
	}
	s.execs[e.id] = e
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, mcontainer.ExecCreateResponse{ID: e.id})
}

func (s *Server) findExec(w http.ResponseWriter, r *http.Request) (*execSession, bool) {
	id := r.PathValue("id")
	s.mu.Lock()
	e := s.execs[id]
	s.mu.Unlock()
	if e == nil {
		writeError(w, http.StatusNotFound, "No such exec instance: "+id)
		return nil, false
	}
	return e, true
}

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request) {
	e, ok := s.findExec(w, r)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	priv := e.req.Privileged
	writeJSON(w, http.StatusOK, mcontainer.ExecInspectResponse{ID: e.id, Running: e.running, ExitCode: e.code, ContainerID: e.container,
		Pid: e.pid, OpenStdin: e.req.AttachStdin, OpenStdout: e.req.AttachStdout, OpenStderr: e.req.AttachStderr,
		ProcessConfig: &mcontainer.ExecProcessConfig{Tty: e.req.Tty, Entrypoint: e.req.Cmd[0], Arguments: e.req.Cmd[1:], Privileged: &priv, User: e.req.User}})
}

func (s *Server) execResize(w http.ResponseWriter, r *http.Request) {
	e, ok := s.findExec(w, r)
	if !ok {
		return
	}
	h, wd, ok := terminalSize(w, r)
	if !ok {
		return
	}
	e.mu.Lock()
	pty := e.pty
	e.mu.Unlock()
	if pty != nil {
		_ = pty.Resize(console.WinSize{Height: h, Width: wd})
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) execStart(w http.ResponseWriter, r *http.Request) {
	e, ok := s.findExec(w, r)
	if !ok {
		return
	}
	var req mcontainer.ExecStartRequest
	if !decode(w, r, &req) {
		return
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		writeError(w, http.StatusConflict, "exec "+e.id+" has already been started")
		return
	}
	e.started = true
	e.mu.Unlock()
	// Each exec runs in a helper process of its own (berth's exec, as
	// podman runs a conmon per exec): it reaps the process and what it
	// leaves, so the service never becomes those processes' subreaper.
	args := []string{"exec"}
	tty := e.req.Tty && !req.Detach
	switch {
	case req.Detach:
		args = append(args, "-d")
	case tty:
		args = append(args, "-t")
	}
	if e.req.AttachStdin && !req.Detach {
		args = append(args, "-i")
	}
	for _, kv := range e.req.Env {
		args = append(args, "-e", kv)
	}
	if e.req.User != "" {
		args = append(args, "-u", e.req.User)
	}
	if e.req.WorkingDir != "" {
		args = append(args, "-w", e.req.WorkingDir)
	}
	if e.req.Privileged {
		args = append(args, "--privileged")
	}
	cmd, err := s.o.ExecHelper(append(append(args, "--", e.container), e.req.Cmd...)...)
	if err != nil {
		fail(w, err)
		return
	}
	if req.Detach {
		out, err := cmd.CombinedOutput()
		if err != nil {
			writeError(w, http.StatusConflict, strings.TrimSpace(strings.TrimPrefix(string(out), "Error: ")))
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	var pty console.Console
	var slaveFile *os.File
	if tty {
		var slave string
		if pty, slave, err = console.NewPty(); err != nil {
			fail(w, err)
			return
		}
		defer pty.Close()
		f, err := os.OpenFile(slave, os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			fail(w, err)
			return
		}
		slaveFile = f
		cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, f
		cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true}
	}
	conn, buf, _ := hijack(w, r, tty)
	out := newStreams(buf.Writer, tty)
	var stdin io.WriteCloser
	var copied sync.WaitGroup
	if tty {
		stdin = pty
	} else {
		cmd.Stdout, cmd.Stderr = out.stdout, out.stderr
		if e.req.AttachStdin {
			if stdin, err = cmd.StdinPipe(); err != nil {
				closeConn(conn)
				return
			}
		}
	}
	err = cmd.Start()
	if slaveFile != nil {
		// Only the helper holds the terminal now: its exit ends the copy.
		slaveFile.Close()
	}
	if err != nil {
		_, _ = out.stderr.Write([]byte(err.Error() + "\n"))
		closeConn(conn)
		return
	}
	e.mu.Lock()
	e.running, e.pid, e.pty = true, cmd.Process.Pid, pty
	e.mu.Unlock()
	if tty {
		copied.Add(1)
		go func() { defer copied.Done(); _, _ = io.Copy(out.stdout, pty) }()
	}
	if stdin != nil {
		go func() {
			_, _ = io.Copy(stdin, buf)
			if !tty {
				stdin.Close()
			}
		}()
	}
	err = cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	copied.Wait()
	e.mu.Lock()
	e.running, e.code, e.pty = false, &code, nil
	e.mu.Unlock()
	_ = buf.Flush()
	closeConn(conn)
}

func closeConn(c net.Conn) {
	if c != nil {
		c.Close()
	}
}

// hijack takes over the connection for a stream, answering as dockerd.
func hijack(w http.ResponseWriter, r *http.Request, tty bool) (net.Conn, *bufio.ReadWriter, bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, bufio.NewReadWriter(bufio.NewReader(eofReader{}), bufio.NewWriter(io.Discard)), false
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return nil, bufio.NewReadWriter(bufio.NewReader(eofReader{}), bufio.NewWriter(io.Discard)), false
	}
	ctype := "application/vnd.docker.multiplexed-stream"
	if tty {
		ctype = "application/vnd.docker.raw-stream"
	}
	if r.Header.Get("Upgrade") != "" {
		fmt.Fprintf(buf, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", ctype)
	} else {
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", ctype)
	}
	_ = buf.Flush()
	return conn, buf, true
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
