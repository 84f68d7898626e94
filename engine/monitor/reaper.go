package monitor

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// reaper hands the exits of the monitor's children to whoever waits for
// them. The monitor is a subreaper and reaps every child in one loop
// (waitInit), since wait4(-1) there would take any child's exit from a
// wait of its own; health probes wait here instead.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan int
	// exited holds exits nobody waited for yet: a process may end before
	// its starter has its pid. Entries are dropped after a minute.
	exited map[int]exit
}

type exit struct {
	code int
	at   time.Time
}

func newReaper() *reaper {
	return &reaper{waiters: map[int]chan int{}, exited: map[int]exit{}}
}

// Wait implements container.Reaper. An exit reaped before since belongs
// to an earlier process with the same pid.
func (r *reaper) Wait(ctx context.Context, pid int, since time.Time) (int, error) {
	r.mu.Lock()
	if e, ok := r.exited[pid]; ok && !e.at.Before(since) {
		delete(r.exited, pid)
		r.mu.Unlock()
		return e.code, nil
	}
	ch := make(chan int, 1)
	r.waiters[pid] = ch
	r.mu.Unlock()
	select {
	case code := <-ch:
		return code, nil
	case <-ctx.Done():
		r.mu.Lock()
		delete(r.waiters, pid)
		r.mu.Unlock()
		return 0, ctx.Err()
	}
}

// reaped delivers one child's exit.
func (r *reaper) reaped(pid, code int) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.waiters[pid]; ok {
		delete(r.waiters, pid)
		ch <- code
		return
	}
	for p, e := range r.exited {
		if now.Sub(e.at) > time.Minute {
			delete(r.exited, p)
		}
	}
	r.exited[pid] = exit{code, now}
}

// exitCode is a wait status as docker reports it (128+signal for a signal).
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
