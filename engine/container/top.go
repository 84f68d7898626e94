package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"go.podman.io/storage"
)

// Pids lists the host pids of a running (or paused) container's processes,
// as the runtime knows them (`runtime ps --format json`).
func Pids(ctx context.Context, s storage.Store, c *Container) ([]int, error) {
	if err := Refresh(ctx, s, c); err != nil {
		return nil, err
	}
	if c.Status != Running && c.Status != Paused {
		return nil, fmt.Errorf("container %s is not running", c.Name)
	}
	out, err := c.Runtime().Run(ctx, "ps", "--format", "json", c.ID)
	if errors.Is(err, ErrNoRuntimeContainer) {
		return nil, fmt.Errorf("container %s is not running", c.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("list the processes of %s: %w", c.Name, err)
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, fmt.Errorf("list the processes of %s: runtime ps: %w", c.Name, err)
	}
	return pids, nil
}

// TopDefault is the ps format of `top` without options: docker's "-ef"
// columns.
var TopDefault = []string{"-o", "user,pid,ppid,c,stime,tty,time,cmd"}

// Processes is a ps table: its column titles and a row per process.
type Processes struct {
	Titles    []string
	Processes [][]string
}

// Top runs the host's ps with psArgs (TopDefault when empty) for the
// container's processes and keeps their rows, as dockerd does.
func Top(ctx context.Context, s storage.Store, c *Container, psArgs []string) (*Processes, error) {
	pids, err := Pids(ctx, s, c)
	if err != nil {
		return nil, err
	}
	args := slices.Clone(psArgs)
	if len(args) == 0 {
		args = slices.Clone(TopDefault)
		if len(pids) > 0 {
			list := make([]string, len(pids))
			for i, p := range pids {
				list[i] = strconv.Itoa(p)
			}
			args = append(args, "-p", strings.Join(list, ","))
		}
	}
	cmd := exec.CommandContext(ctx, "ps", args...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	// ps fails when no process matches -p: the header is still there.
	if err != nil && !(len(psArgs) == 0 && bytes.Count(out, []byte("\n")) == 1) {
		return nil, fmt.Errorf("top %s: ps %s: %s", c.Name, strings.Join(args, " "), Message(errOut.String(), err))
	}
	return parsePs(out, pids)
}

// parsePs splits ps output into columns (the last one, the command, keeps
// its spaces) and keeps the rows whose PID is in pids.
func parsePs(out []byte, pids []int) (*Processes, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	if !sc.Scan() {
		return nil, errors.New("ps printed nothing")
	}
	p := &Processes{Titles: strings.Fields(sc.Text())}
	col := slices.Index(p.Titles, "PID")
	if col < 0 {
		return nil, errors.New("ps output has no PID column")
	}
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) <= col {
			continue
		}
		pid, err := strconv.Atoi(fields[col])
		if err != nil || !slices.Contains(pids, pid) {
			continue
		}
		if n := len(p.Titles); len(fields) > n {
			fields = append(fields[:n-1], strings.Join(fields[n-1:], " "))
		}
		p.Processes = append(p.Processes, fields)
	}
	return p, sc.Err()
}
