package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A mount destination whose parent is swapped with a symlink pointing out of
// the rootfs while the container is set up (the CVE-2021-30465 race) still
// gets its mount inside the container: resolved in the rootfs and mounted
// through the resolved handle. A mount that escaped would be on the old root
// and gone after pivot_root, so the check is that every created container
// has the tmpfs in its own mount table, and that the host has none.
func TestMountDestinationSwapRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hostDir := t.TempDir()
	s := newSpec(t, "sleep", "30")
	rootfs := copyRootfs(t, s)
	race, link := filepath.Join(rootfs, "race"), filepath.Join(rootfs, "race-link")
	if err := os.Mkdir(race, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostDir, link); err != nil {
		t.Fatal(err)
	}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/race/sub", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m,mode=0700"}})

	var stop atomic.Bool
	done := make(chan int)
	go func() {
		swaps := 0
		for !stop.Load() {
			if unix.Renameat2(unix.AT_FDCWD, race, unix.AT_FDCWD, link, unix.RENAME_EXCHANGE) == nil {
				swaps++
			}
		}
		done <- swaps
	}()
	created := 0
	for i := 0; i < 10; i++ {
		id := e.newID()
		b := e.bundle(s)
		e.track(id)
		if r := e.rt("create", "--bundle", b, id); r.code != 0 {
			continue // losing the race may fail create; it must never escape
		}
		created++
		st := e.state(id)
		info := readFile(t, "/proc/"+strconv.Itoa(st.Pid)+"/mountinfo")
		found := false
		for _, line := range strings.Split(info, "\n") {
			if strings.Contains(line, " - tmpfs ") && strings.Contains(line, "mode=700") {
				found = true
			}
		}
		if !found {
			t.Errorf("iteration %d: the /race/sub tmpfs is not in the container's mount table:\n%s", i, info)
		}
		e.mustRT("delete", "--force", id)
	}
	stop.Store(true)
	if swaps := <-done; swaps == 0 {
		t.Fatal("the swapper never swapped")
	}
	if created == 0 {
		t.Error("no create succeeded while racing")
	}
	checkNoHostMounts(t, hostDir)
	if entries, _ := os.ReadDir(hostDir); len(entries) > 0 {
		t.Errorf("host directory %s got %d entries", hostDir, len(entries))
	}
}
