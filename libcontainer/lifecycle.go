package libcontainer

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/libcontainer/cgroups"
	"github.com/berth-containers/berth/libcontainer/config"
	"github.com/berth-containers/berth/libcontainer/hooks"
	"github.com/berth-containers/berth/libcontainer/rootfs"
	"github.com/berth-containers/berth/libcontainer/state"
)

// ErrNotRunning is what kill reports for a container with no live process;
// podman matches on the text.
var ErrNotRunning = errors.New("container not running")

// Status returns the container's state and status; a paused container is
// one whose cgroup is frozen.
func Status(d *state.Dir) (*state.State, string, error) {
	st, err := d.Load()
	if err != nil {
		return nil, "", err
	}
	status := d.Status(st)
	if status == state.Running && len(st.CgroupPaths) > 0 {
		if cg, err := cgroups.Load(st.CgroupPaths); err == nil {
			if frozen, _ := cg.Frozen(); frozen {
				status = state.Paused
			}
		}
	}
	return st, status, nil
}

// withContainer opens and locks a container and hands fn its state and
// status; st is nil while the container is being created.
func withContainer(root, id string, fn func(d *state.Dir, st *state.State, status string) error) error {
	d, err := state.Open(root, id)
	if err != nil {
		return err
	}
	defer d.Unlock()
	st, status, err := Status(d)
	if err != nil {
		return err
	}
	return fn(d, st, status)
}

// Inspect returns a container's state and status, under its lock.
func Inspect(root, id string) (st *state.State, status string, err error) {
	err = withContainer(root, id, func(_ *state.Dir, s *state.State, stat string) error {
		st, status = s, stat
		return nil
	})
	return st, status, err
}

// Start releases a created container's init process to exec the user
// program, then runs the poststart hooks.
func Start(root, id string) error {
	return withContainer(root, id, func(d *state.Dir, st *state.State, status string) error {
		if status != state.Created {
			return fmt.Errorf("cannot start container %s: it is %s, not created", id, status)
		}
		return start(d, st)
	})
}

func start(d *state.Dir, st *state.State) error {
	if err := releaseInit(d, st); err != nil {
		return err
	}
	slog.Debug("container init released from the exec fifo", "id", st.ID, "pid", st.Pid)
	if st.Spec.Hooks != nil {
		if err := hooks.RunAll("poststart", st.Spec.Hooks.Poststart, st.OCI(state.Running)); err != nil {
			// The runtime-spec has a failed poststart hook logged, not fatal.
			slog.Warn("poststart hook failed", "id", st.ID, "error", err)
		}
	}
	return nil
}

// releaseInit opens the exec FIFO, which lets init's blocked open finish, and
// reads its byte. Init may die instead: then the open would block for ever,
// so the open runs aside while the process is watched.
func releaseInit(d *state.Dir, st *state.State) error {
	type result struct{ err error }
	done := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(d.FifoPath(), os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{fmt.Errorf("open exec fifo: %w", err)}
			return
		}
		defer f.Close()
		data, err := io.ReadAll(f)
		if err == nil && len(data) == 0 {
			err = errors.New("container init exited before start")
		}
		done <- result{err}
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-done:
			if r.err != nil {
				return r.err
			}
			return os.Remove(d.FifoPath())
		case <-tick.C:
			if !st.Alive() {
				// Unblock the opener with a writer of our own, then report.
				if w, err := os.OpenFile(d.FifoPath(), os.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
					w.Close()
				}
				// The init may have been released and already ended (a
				// quick command): the byte it wrote says so.
				if r := <-done; r.err == nil {
					return os.Remove(d.FifoPath())
				}
				return errors.New("container init exited before start")
			}
		}
	}
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup.
func Kill(root, id string, sig unix.Signal, all bool) error {
	return withContainer(root, id, func(_ *state.Dir, st *state.State, status string) error {
		return kill(st, status, sig, all)
	})
}

func kill(st *state.State, status string, sig unix.Signal, all bool) error {
	if all && status == state.Stopped {
		return nil // as runc: no process is left to signal
	}
	if status == state.Stopped || status == state.Creating {
		return ErrNotRunning
	}
	if all {
		cg, err := cgroups.Load(st.CgroupPaths)
		if err != nil {
			return err
		}
		return signalAll(cg, sig)
	}
	if err := unix.Kill(st.Pid, sig); err != nil {
		if err == unix.ESRCH {
			return ErrNotRunning
		}
		return fmt.Errorf("send %v to container %s: %w", sig, st.ID, err)
	}
	return nil
}

// signalAll signals every process in the cgroup; a frozen cgroup is thawed
// after a SIGKILL, which a frozen process would not act on.
func signalAll(cg *cgroups.Manager, sig unix.Signal) error {
	pids, err := cg.Pids()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
			return fmt.Errorf("send %v to pid %d: %w", sig, pid, err)
		}
	}
	if sig == unix.SIGKILL && len(pids) > 0 {
		if frozen, _ := cg.Frozen(); frozen {
			return cg.Thaw()
		}
	}
	return nil
}

// Delete removes a stopped container; with force it kills a live one first,
// and a container that does not exist is no error.
// A container that is not stopped is left as it is without force, as the
// runtime-spec requires.
func Delete(root, id string, force bool) error {
	d, err := state.Open(root, id)
	if err != nil {
		if force && errors.Is(err, state.ErrNotExist) {
			// As runc: containerd's shim always follows delete with delete --force.
			return nil
		}
		return err
	}
	defer d.Unlock()
	st, status, err := Status(d)
	if err != nil {
		return err
	}
	if st == nil {
		// Its create was killed (the lock is ours, so it is not running).
		return removeAborted(d)
	}
	if status != state.Stopped && !force {
		return fmt.Errorf("cannot delete container %s that is not stopped: %s", id, status)
	}
	var cg *cgroups.Manager
	if len(st.CgroupPaths) > 0 {
		if cg, err = cgroups.Load(st.CgroupPaths); err != nil {
			return fmt.Errorf("delete container %s: %w", id, err)
		}
	}
	if status != state.Stopped {
		// Killing through the cgroup also thaws a paused container.
		if cg != nil {
			if err := signalAll(cg, unix.SIGKILL); err != nil {
				return err
			}
		}
		if err := killInit(st); err != nil {
			return err
		}
	}
	if st.Spec != nil && !config.HasNamespace(st.Spec, specs.MountNamespace) {
		if err := rootfs.Unmount(st.Rootfs); err != nil {
			return fmt.Errorf("delete container %s: %w", id, err)
		}
	}
	if cg != nil {
		// Without a pid namespace of its own, processes may outlive init.
		if err := emptyAndDestroy(cg); err != nil {
			return fmt.Errorf("delete container %s: %w", id, err)
		}
	}
	if err := d.Remove(); err != nil {
		return err
	}
	slog.Debug("container deleted", "id", id, "cgroup", cg != nil)
	if st.Spec != nil && st.Spec.Hooks != nil {
		if err := hooks.RunAll("poststop", st.Spec.Hooks.Poststop, st.OCI(state.Stopped)); err != nil {
			slog.Warn("poststop hook failed", "id", st.ID, "error", err)
		}
	}
	return nil
}

// removeAborted removes what a create that was killed before it wrote the
// state had made, as it recorded in its pending file: the processes in
// its cgroup and the cgroup, the rootfs mount, the state directory.
func removeAborted(d *state.Dir) error {
	p, err := d.LoadPending()
	if err != nil {
		return fmt.Errorf("delete container %s: %w", d.ID, err)
	}
	if p != nil && p.HostRootfs != "" {
		if err := rootfs.Unmount(p.HostRootfs); err != nil {
			return fmt.Errorf("delete container %s: %w", d.ID, err)
		}
	}
	// Killed before its cgroup was made, or while making it: what exists.
	made := map[string]string{}
	if p != nil {
		for key, path := range p.CgroupPaths {
			if _, err := os.Stat(path); err == nil {
				made[key] = path
			}
		}
	}
	if len(made) > 0 {
		cg, err := cgroups.Load(made)
		if err == nil {
			err = emptyAndDestroy(cg)
		}
		if err != nil {
			return fmt.Errorf("delete container %s: %w", d.ID, err)
		}
	}
	return d.Remove()
}

// emptyAndDestroy kills every process of the container's cgroup, waits
// until it is empty, and removes it.
func emptyAndDestroy(cg *cgroups.Manager) error {
	if err := killAll(cg); err != nil {
		return err
	}
	return cg.Destroy()
}

// killInit kills the container's init and waits until it has exited.
func killInit(st *state.State) error {
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		if err == unix.ESRCH {
			return nil
		}
		return fmt.Errorf("open pidfd of %d: %w", st.Pid, err)
	}
	defer unix.Close(pidfd)
	// The pidfd now pins the process: if it is still ours, it stays ours.
	if !st.Alive() {
		return nil
	}
	if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
		return fmt.Errorf("kill init %d: %w", st.Pid, err)
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 10000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for init %d: %w", st.Pid, err)
		}
		if n == 0 {
			return fmt.Errorf("init %d did not die within 10s of SIGKILL", st.Pid)
		}
		return nil
	}
}

// killAll kills what is left in the cgroup and waits briefly for it to
// leave, so that removing the cgroup does not fail with EBUSY.
func killAll(cg *cgroups.Manager) error {
	if err := signalAll(cg, unix.SIGKILL); err != nil {
		return err
	}
	for i := 0; i < 500; i++ {
		if pids, err := cg.Pids(); err != nil || len(pids) == 0 {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return errors.New("processes of the container are still in its cgroup after SIGKILL")
}
