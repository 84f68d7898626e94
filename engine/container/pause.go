package container

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.podman.io/storage"
)

// Pause freezes every process of a running container (`runtime pause`).
func Pause(ctx context.Context, s storage.Store, c *Container) error {
	if err := Refresh(ctx, s, c); err != nil {
		return err
	}
	// Under the lock: the monitor cannot record an exit in between, and a
	// paused status is never written over an exited one.
	return c.Update(func(st *State) error {
		switch st.Status {
		case Running:
		case Paused:
			return fmt.Errorf("container %s is already paused", c.Name)
		default:
			return fmt.Errorf("container %s is not running", c.Name)
		}
		if _, err := c.Runtime().Run(ctx, "pause", c.ID); err != nil {
			if errors.Is(err, ErrNoRuntimeContainer) {
				return fmt.Errorf("container %s is not running", c.Name)
			}
			return fmt.Errorf("pause %s: %w", c.Name, err)
		}
		st.Status = Paused
		return nil
	})
}

// Unpause thaws a paused container (`runtime resume`).
func Unpause(ctx context.Context, s storage.Store, c *Container) error {
	if err := Refresh(ctx, s, c); err != nil {
		return err
	}
	return c.Update(func(st *State) error {
		if st.Status != Paused {
			return fmt.Errorf("container %s is not paused", c.Name)
		}
		if _, err := c.Runtime().Run(ctx, "resume", c.ID); err != nil {
			if errors.Is(err, ErrNoRuntimeContainer) {
				return fmt.Errorf("container %s is not running", c.Name)
			}
			return fmt.Errorf("unpause %s: %w", c.Name, err)
		}
		st.Status = Running
		return nil
	})
}

// thawKilled resumes a paused container that was just sent SIGKILL: a
// frozen process (the cgroup v1 freezer) dies only once thawed. Docker
// does the same. Other signals wait for unpause.
func thawKilled(ctx context.Context, c *Container, signal string) {
	switch strings.TrimPrefix(strings.ToUpper(signal), "SIG") {
	case "KILL", "9":
	default:
		return
	}
	if c.Status == Paused {
		_, _ = c.Runtime().Run(ctx, "resume", c.ID)
	}
}
