package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Runtime calls an OCI runtime (berth-runtime, runc, crun) by its command
// line, the only way berth talks to it.
type Runtime struct {
	// Path is the runtime binary.
	Path string
	// Root is its --root: berth's containers apart from others'.
	Root string
}

// Command makes a runtime command with berth's --root.
func (r Runtime) Command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, r.Path, append([]string{"--root", r.Root}, args...)...)
}

// RuntimeError is a failed runtime command with what it said.
type RuntimeError struct {
	Args    []string
	Message string
}

func (e *RuntimeError) Error() string {
	return fmt.Sprintf("%s %s: %s", "runtime", e.Args[0], e.Message)
}

// Run runs a runtime command and returns its stdout; a failure carries the
// runtime's own error message.
func (r Runtime) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := r.Command(ctx, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		msg := Message(errOut.String(), err)
		// runc and berth-runtime say "does not exist", crun "not found".
		if strings.Contains(msg, "does not exist") || strings.Contains(msg, "not found") && !strings.Contains(msg, "executable") {
			return nil, fmt.Errorf("%w: %s", ErrNoRuntimeContainer, msg)
		}
		return nil, &RuntimeError{Args: args, Message: msg}
	}
	return out.Bytes(), nil
}

// Message picks the error out of a runtime's stderr: runc and crun log
// through logrus (`level=error msg="..."`), berth-runtime prints a line.
func Message(stderr string, err error) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" {
			continue
		}
		if j := strings.Index(l, `msg="`); j >= 0 {
			msg := l[j+5:]
			if k := strings.LastIndex(msg, `"`); k >= 0 {
				msg = msg[:k]
			}
			return strings.ReplaceAll(msg, `\"`, `"`)
		}
		return l
	}
	if err != nil {
		return err.Error()
	}
	return "failed"
}

// LastRuntimeError reads a runtime's `--log-format json` log for the last
// error it logged.
func LastRuntimeError(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var e struct{ Level, Msg string }
		if json.Unmarshal([]byte(lines[i]), &e) == nil && e.Level == "error" && e.Msg != "" {
			return e.Msg
		}
	}
	return ""
}

// RuntimeState is what `runtime state` says of a container.
type RuntimeState struct {
	Status string `json:"status"`
	Pid    int    `json:"pid"`
}

// ErrNoRuntimeContainer says the runtime does not know the container.
var ErrNoRuntimeContainer = errors.New("runtime has no such container")

// State asks the runtime about a container.
func (r Runtime) State(ctx context.Context, id string) (*RuntimeState, error) {
	out, err := r.Run(ctx, "state", id)
	if err != nil {
		return nil, err
	}
	var st RuntimeState
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("runtime state %s: %w", id, err)
	}
	return &st, nil
}

// Kill sends a signal to the container's init.
func (r Runtime) Kill(ctx context.Context, id, signal string) error {
	_, err := r.Run(ctx, "kill", id, signal)
	return err
}

// Delete removes the runtime's container, killing it first with force.
func (r Runtime) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	_, err := r.Run(ctx, append(args, id)...)
	return err
}
