package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestInitExeReadonly checks that the runtime binary a created container's
// init runs from is on a read-only mount, so a process of the container
// cannot rewrite it through /proc/<pid>/exe.
func TestInitExeReadonly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.create(newSpec(t, "true"))
	exe := "/proc/" + strconv.Itoa(e.state(id).Pid) + "/exe"
	var st unix.Statfs_t
	if err := unix.Statfs(exe, &st); err != nil {
		t.Fatalf("statfs %s: %v", exe, err)
	}
	if st.Flags&unix.ST_RDONLY == 0 {
		t.Errorf("%s is on a writable mount (statfs flags %#x)", exe, st.Flags)
	}
	if f, err := os.OpenFile(exe, os.O_WRONLY, 0); err == nil {
		f.Close()
		t.Errorf("%s opened for writing", exe)
	}
}

// TestOnlyStdioInherited starts the runtime with an extra inherited file:
// the container must not see it unless --preserve-fds passes it.
func TestOnlyStdioInherited(t *testing.T) {
	t.Parallel()
	extra := func(t *testing.T) *os.File {
		path := filepath.Join(t.TempDir(), "extra")
		writeFile(t, path, "preserved content\n", 0o644)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	t.Run("not preserved", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		r := e.runWith(cmdOpts{extraFiles: []*os.File{extra(t)}}, newSpec(t, "ls", "/proc/self/fd"))
		// 3 is ls's own handle of the directory it lists.
		if r.code != 0 || strings.Join(lines(r.stdout), " ") != "0 1 2 3" {
			t.Errorf("descriptors open in the container: %s", r)
		}
	})
	t.Run("preserved", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		r := e.runWith(cmdOpts{extraFiles: []*os.File{extra(t)}}, shell(t, "ls /proc/self/fd; cat <&3"), "--preserve-fds", "1")
		// 4 is ls's handle now.
		if r.code != 0 || r.stdout != "0\n1\n2\n3\n4\npreserved content\n" {
			t.Errorf("with --preserve-fds 1: %s", r)
		}
	})
}

// TestCwdStaysInside tries working directories that would lead outside the
// rootfs through a descriptor or dot-dots. Each container must either fail
// or run inside its rootfs.
func TestCwdStaysInside(t *testing.T) {
	t.Parallel()
	hostDir := t.TempDir()
	marker := "host-marker-" + idSalt
	writeFile(t, filepath.Join(hostDir, marker), "", 0o644)
	cases := []struct {
		cwd      string
		preserve bool // pass an open handle of hostDir as fd 3
	}{
		{"/proc/self/fd/3", true},
		{"/proc/self/fd/3", false},
		{"/proc/self/fd/4", false},
		{"/proc/self/fd/5", false},
		{"/proc/self/fd/6", false},
		{"/proc/self/fd/7", false},
		{"../../..", false},
		{"/../../..", false},
	}
	for _, c := range cases {
		t.Run(c.cwd+" preserve "+strconv.FormatBool(c.preserve), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := shell(t, "pwd; ls -a")
			s.Process.Cwd = c.cwd
			var o cmdOpts
			var extra []string
			if c.preserve {
				dir, err := os.Open(hostDir)
				if err != nil {
					t.Fatal(err)
				}
				defer dir.Close()
				o.extraFiles = []*os.File{dir}
				extra = []string{"--preserve-fds", "1"}
			}
			r := e.runWith(o, s, extra...)
			t.Logf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			if strings.Contains(r.stdout, marker) || strings.Contains(r.stdout, "unreachable") {
				t.Errorf("the container ran in a directory outside its rootfs: %s", r)
			}
			if r.code == 0 && !strings.HasPrefix(r.stdout, "/") {
				t.Errorf("container ran with cwd %q", r.stdout)
			}
		})
	}
}

// TestMountDestinationStaysInside mounts a tmpfs on destinations that
// lead to a host directory if resolved on the host: a rootfs symlink to
// the host directory's path and a path with dot-dots. Each mount must land
// inside the rootfs (or, for a symlink to nothing, create may refuse it),
// and nothing may appear on the host directory.
func TestMountDestinationStaysInside(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// prepare sets up the rootfs and returns the mount destination.
		prepare   func(t *testing.T, rootfs, hostDir string) string
		mayRefuse bool
	}{
		{"symlink", func(t *testing.T, rootfs, hostDir string) string {
			if err := os.MkdirAll(filepath.Join(rootfs, hostDir), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(hostDir, filepath.Join(rootfs, "evil")); err != nil {
				t.Fatal(err)
			}
			return "/evil"
		}, false},
		{"dangling symlink", func(t *testing.T, rootfs, hostDir string) string {
			if err := os.Symlink(hostDir, filepath.Join(rootfs, "evil")); err != nil {
				t.Fatal(err)
			}
			return "/evil"
		}, true},
		{"dot-dot", func(t *testing.T, rootfs, hostDir string) string {
			return "/../../../.." + hostDir
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			hostDir := t.TempDir()
			s := newSpec(t)
			rootfs := copyRootfs(t, s)
			dest := c.prepare(t, rootfs, hostDir)
			s.Process.Args = []string{"sh", "-c", "touch " + dest + "/pwned; cat /proc/self/mountinfo; echo ready; exec sleep 100"}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}})

			id := e.newID()
			b := e.bundle(s)
			e.track(id)
			r := e.rt("create", "--bundle", b, id)
			checkHost := func() {
				t.Helper()
				checkNoHostMounts(t, hostDir)
				if entries, _ := os.ReadDir(hostDir); len(entries) > 0 {
					t.Errorf("host directory %s got %d entries", hostDir, len(entries))
				}
			}
			if r.code != 0 {
				if !c.mayRefuse {
					t.Fatalf("create: %s", r)
				}
				contains(t, "create error", r.stderr, dest)
				checkHost()
				return
			}
			e.mustRT("start", id)
			out := waitOutput(t, r.outPath, "ready")
			checkHost()
			// Inside the container the tmpfs is at the host path taken inside the rootfs.
			found := false
			for _, l := range lines(out) {
				if f := strings.Fields(l); len(f) > 4 && f[4] == hostDir && strings.Contains(l, " - tmpfs ") {
					found = true
				}
			}
			if !found {
				t.Errorf("no tmpfs at %s inside the container:\n%s", hostDir, out)
			}
		})
	}
}

// TestFakeDevNull puts a regular file where /dev/null should be, bound over
// the node, or in a /dev bound from the host (then no node is made there):
// masking paths with it must be refused, and the failed create must leave
// nothing.
func TestFakeDevNull(t *testing.T) {
	t.Parallel()
	// dev-bound-missing: /dev/null is checked once before the masks, even
	// when none of the masked paths exists (as the Go init does).
	for _, variant := range []string{"null-bound", "dev-bound", "dev-bound-missing"} {
		t.Run(variant, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.privateRuntime()
			dev := t.TempDir()
			fake := filepath.Join(dev, "null")
			writeFile(t, fake, "secret\n", 0o644)
			s := newSpec(t, "true")
			want := "/dev/null"
			if variant == "null-bound" {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/null", Type: "bind", Source: fake, Options: []string{"bind"}})
			} else {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev", Type: "bind", Source: dev, Options: []string{"rbind"}})
				want = "not the null device"
			}
			if variant == "dev-bound-missing" {
				s.Linux.MaskedPaths = []string{"/no/such/path"}
			}
			if len(s.Linux.MaskedPaths) == 0 {
				t.Fatal("the default spec masks no paths")
			}
			id, b, r := e.createMustFail(s)
			oneLine(t, r)
			contains(t, "create error", r.stderr, want)
			e.checkNothingLeft(id, b)
			if got := readFile(t, fake); got != "secret\n" {
				t.Errorf("the fake /dev/null changed: %q", got)
			}
		})
	}
}
