// Package hooks runs OCI lifecycle hooks with the container state on stdin.
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Run runs each hook in order and stops at the first failure.
func Run(name string, hooks []specs.Hook, st *specs.State) error {
	return run(name, hooks, st, false)
}

// RunAll runs every hook even when some fail, as the runtime-spec wants for
// poststart and poststop, and returns the failures joined.
func RunAll(name string, hooks []specs.Hook, st *specs.State) error {
	return run(name, hooks, st, true)
}

func run(name string, hooks []specs.Hook, st *specs.State, all bool) error {
	if len(hooks) == 0 {
		return nil
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state for %s hooks: %w", name, err)
	}
	var errs []error
	for i, h := range hooks {
		if err := runOne(h, data); err != nil {
			errs = append(errs, fmt.Errorf("%s hook #%d (%s): %w", name, i, h.Path, err))
			if !all {
				break
			}
		}
	}
	return errors.Join(errs...)
}

func runOne(h specs.Hook, state []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	}
	cmd.Env = h.Env
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// A hook's children may keep the output pipe open; do not wait for them.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err != nil {
		if out.Len() > 0 {
			return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out.Bytes()))
		}
		return err
	}
	return nil
}
