package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// mountLine returns the /proc/mounts line (as printed by grep) whose mount
// point is dest, or "".
func mountLine(out, dest string) string {
	for _, l := range lines(out) {
		if f := strings.Fields(l); len(f) >= 4 && f[1] == dest {
			return l
		}
	}
	return ""
}

// mountOpts returns the option words of a /proc/mounts line.
func mountOpts(line string) []string {
	f := strings.Fields(line)
	if len(f) < 4 {
		return nil
	}
	return strings.Split(f[3], ",")
}

func hasWord(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

// TestMountDevReadonly gives the /dev tmpfs the ro option: as with runc, /dev
// is still populated (device nodes, /dev/pts and /dev/shm mounted on mount
// points made in it, symlinks) and becomes read-only only at the end; the
// mounts below it keep their own flags.
func TestMountDevReadonly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := shell(t, `echo x > /dev/null && echo null-ok
head -c 4 /dev/zero | wc -c
readlink /dev/fd
grep -E ' /dev(/pts|/shm)? ' /proc/mounts
if touch /dev/newfile; then echo dev-wrote; fi
if touch /dev/shm/newfile; then echo shm-wrote; fi`)
	found := false
	for i, m := range s.Mounts {
		if m.Destination == "/dev" {
			s.Mounts[i].Options = append(append([]string{}, m.Options...), "ro")
			found = true
		}
	}
	if !found {
		t.Fatal("the default spec has no /dev mount")
	}
	r := e.run(s)
	if r.code != 0 {
		t.Fatalf("container with a read-only /dev failed: %s", r)
	}
	contains(t, "stdout", r.stdout, "null-ok\n", "\n4\n", "/proc/self/fd\n", "shm-wrote\n")
	if strings.Contains(r.stdout, "dev-wrote") || !strings.Contains(r.stderr, "touch: /dev/newfile: Read-only file system") {
		t.Errorf("touch /dev/newfile in a read-only /dev: %s", r)
	}
	if l := mountLine(r.stdout, "/dev"); !hasWord(mountOpts(l), "ro") {
		t.Errorf("/dev is not mounted ro: %q\n%s", l, r)
	}
	if l := mountLine(r.stdout, "/dev/pts"); !strings.HasPrefix(l, "devpts ") {
		t.Errorf("/dev/pts is not a devpts mount: %q\n%s", l, r)
	}
	// ro is not recursive: /dev/shm, a mount of its own, stays writable.
	if l := mountLine(r.stdout, "/dev/shm"); !hasWord(mountOpts(l), "rw") {
		t.Errorf("/dev/shm should stay rw: %q\n%s", l, r)
	}
}

// TestMountRecursiveReadonly binds a host directory that holds a tmpfs
// submount with rro (mount_setattr AT_RECURSIVE): the bind mount and the
// submount are both read-only. With plain ro only the top mount is (runc 1.1
// does the same), and other recursive attributes reach the submount too.
func TestMountRecursiveReadonly(t *testing.T) {
	t.Parallel()
	host := t.TempDir()
	sub := filepath.Join(host, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	hostMount(t, "tmpfs", sub, "tmpfs", 0)
	// After the parallel subtests, before the unmount: the containers'
	// attributes stayed on their copies of the mounts.
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(sub, "host-write"), []byte("x"), 0o644); err != nil {
			t.Errorf("the host's submount is no longer writable: %v", err)
		}
		for _, f := range []string{"top", "sub/file"} {
			if _, err := os.Stat(filepath.Join(host, f)); err == nil {
				t.Errorf("%s left in the host directory", f)
			}
		}
	})
	for _, tc := range []struct {
		name    string
		options []string
		// topRO, subRO: writes fail with EROFS; hasSub: /m/sub is a mount.
		topRO, subRO, hasSub bool
		subWords             []string // option words the submount must show
	}{
		{"rbind,rro", []string{"rbind", "rro"}, true, true, true, []string{"ro"}},
		// Without rbind there is no submount: /m/sub is the host's empty
		// directory under the read-only bind.
		{"bind,rro", []string{"bind", "rro"}, true, true, false, nil},
		{"rbind,rro,nosuid", []string{"rbind", "rro", "nosuid"}, true, true, true, []string{"ro"}},
		{"rbind,ro", []string{"rbind", "ro"}, true, false, true, []string{"rw"}},
		{"rbind,rnoatime,rnodev,rnoexec", []string{"rbind", "rnoatime", "rnodev", "rnoexec"}, false, false, true, []string{"rw", "noatime", "nodev", "noexec"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := shell(t, `grep -E ' /m(/sub)? ' /proc/mounts
for f in /m/top /m/sub/file; do
	if err=$(touch $f 2>&1); then echo "$f: written"; rm $f; else echo "$err"; fi
done`)
			copyRootfs(t, s)
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/m", Type: "bind", Source: host, Options: tc.options})
			r := e.run(s)
			if r.code != 0 {
				t.Fatalf("container failed: %s", r)
			}
			for _, c := range []struct {
				path string
				ro   bool
			}{{"/m/top", tc.topRO}, {"/m/sub/file", tc.subRO}} {
				want := c.path + ": written"
				if c.ro {
					want = "touch: " + c.path + ": Read-only file system"
				}
				contains(t, "stdout", r.stdout, want+"\n")
			}
			top := mountLine(r.stdout, "/m")
			if tc.topRO != hasWord(mountOpts(top), "ro") {
				t.Errorf("/m: %q, want ro=%v", top, tc.topRO)
			}
			subLine := mountLine(r.stdout, "/m/sub")
			if !tc.hasSub {
				if subLine != "" {
					t.Errorf("/m/sub is a mount with bind (not rbind): %q", subLine)
				}
				return
			}
			if !strings.HasPrefix(subLine, "tmpfs ") {
				t.Fatalf("/m/sub is not the host's tmpfs submount: %q\n%s", subLine, r)
			}
			for _, w := range tc.subWords {
				if !hasWord(mountOpts(subLine), w) {
					t.Errorf("/m/sub: %q lacks %q", subLine, w)
				}
			}
		})
	}
}
