package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestMountTmpfsSize mounts a sized tmpfs and reads its size back.
func TestMountTmpfsSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := shell(t, "grep ' /data ' /proc/mounts; df -k /data | tail -n 1")
	copyRootfs(t, s)
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=3m", "mode=1777"}})
	out := e.mustRun(s)
	ls := lines(out)
	if len(ls) != 2 || !strings.HasPrefix(ls[0], "tmpfs /data tmpfs ") || !strings.Contains(ls[0], "size=3072k") {
		t.Fatalf("/proc/mounts for /data: %q", out)
	}
	if f := strings.Fields(ls[1]); len(f) < 2 || f[1] != "3072" {
		t.Errorf("df of /data: %q, want 3072 blocks of 1k", ls[1])
	}
}

// TestMountBindReadonly binds a host directory read-only.
func TestMountBindReadonly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	host := t.TempDir()
	writeFile(t, filepath.Join(host, "hello.txt"), "hello from the host\n", 0o644)
	s := shell(t, "cat /mnt/host/hello.txt; touch /mnt/host/new && echo WROTE")
	copyRootfs(t, s)
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt/host", Type: "bind", Source: host, Options: []string{"rbind", "ro"}})
	r := e.run(s)
	if !strings.Contains(r.stdout, "hello from the host") {
		t.Errorf("file of the host dir not visible: %s", r)
	}
	if strings.Contains(r.stdout, "WROTE") || !strings.Contains(r.stderr, "Read-only file system") {
		t.Errorf("write into the read-only bind mount: %s", r)
	}
	if _, err := os.Stat(filepath.Join(host, "new")); err == nil {
		t.Errorf("the container created a file in the read-only host dir")
	}
}

// TestMaskedPaths checks that masked files read as empty and masked
// directories show nothing: default ones of /proc and /sys (those this
// kernel has) and a file and a directory of the rootfs.
func TestMaskedPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var files, dirs []string
	for _, f := range []string{"/proc/kcore", "/proc/timer_list"} {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		}
	}
	if entries, _ := os.ReadDir("/sys/firmware"); len(entries) > 0 {
		dirs = append(dirs, "/sys/firmware")
	}
	files = append(files, "/secret.txt")
	dirs = append(dirs, "/secret")
	script := ""
	for _, f := range files {
		script += "echo " + f + " $(wc -c < " + f + "); "
	}
	for _, d := range dirs {
		script += "echo " + d + " $(ls -A " + d + " | wc -l); "
	}
	s := shell(t, script)
	rootfs := copyRootfs(t, s)
	writeFile(t, filepath.Join(rootfs, "secret", "key"), "do not show\n", 0o644)
	writeFile(t, filepath.Join(rootfs, "secret.txt"), "do not show\n", 0o644)
	s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/secret", "/secret.txt")
	out := e.mustRun(s)
	for _, p := range append(files, dirs...) {
		contains(t, "masked "+p, out, p+" 0\n")
	}
}

// TestReadonlyPaths checks that a path in readonlyPaths cannot be written,
// against a container where the same write works.
func TestReadonlyPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	script := "echo changed > /proc/sys/kernel/hostname; hostname"
	s := shell(t, script)
	r := e.run(s)
	if !strings.Contains(r.stderr, "Read-only file system") || strings.Contains(r.stdout, "changed") {
		t.Errorf("write to /proc/sys in readonlyPaths: %s", r)
	}
	s = shell(t, script)
	s.Linux.ReadonlyPaths = nil
	if out := e.mustRun(s); strings.TrimSpace(out) != "changed" {
		t.Errorf("without readonlyPaths the hostname sysctl should be writable, got %q", out)
	}
}

// TestRootReadonly checks root.readonly against a writable root.
func TestRootReadonly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run(shell(t, "touch /x && echo WROTE"))
	if r.code == 0 || strings.Contains(r.stdout, "WROTE") || !strings.Contains(r.stderr, "Read-only file system") {
		t.Errorf("touch /x on a read-only root: %s", r)
	}
	if _, err := os.Stat(filepath.Join(sharedRootfs, "x")); err == nil {
		t.Errorf("/x appeared in the shared rootfs")
	}

	s := shell(t, "touch /x && echo WROTE")
	rootfs := copyRootfs(t, s)
	if out := e.mustRun(s); !strings.Contains(out, "WROTE") {
		t.Errorf("touch /x on a writable root: %q", out)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "x")); err != nil {
		t.Errorf("/x not in the writable rootfs: %v", err)
	}
}

// TestRootfsPropagation makes the rootfs a shared mount on the host, mounts
// a tmpfs below it while the container runs, and checks that the mount
// reaches the container exactly when its rootfsPropagation lets it.
func TestRootfsPropagation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		prop      string
		tag       string // optional field of the root mount in mountinfo
		propagate bool
	}{
		{"rslave", "master:", true},
		{"rprivate", "", false},
		{"rshared", "shared:", true},
	} {
		t.Run(c.prop, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := newSpec(t, "sleep", "100")
			rootfs := copyRootfs(t, s)
			if err := os.Mkdir(filepath.Join(rootfs, "late"), 0o755); err != nil {
				t.Fatal(err)
			}
			hostMount(t, rootfs, rootfs, "", unix.MS_BIND)
			if err := unix.Mount("", rootfs, "", unix.MS_SHARED, ""); err != nil {
				t.Fatal(err)
			}
			s.Linux.RootfsPropagation = c.prop
			id, r := e.create(s)
			if st := e.rt("start", id); st.code != 0 {
				t.Fatalf("start: %s\ncontainer stderr: %s", st, readFile(t, r.errPath))
			}
			pid := e.state(id).Pid
			hostMount(t, "tmpfs", filepath.Join(rootfs, "late"), "tmpfs", 0)

			mi := readFile(t, "/proc/"+strconv.Itoa(pid)+"/mountinfo")
			var root []string
			late := false
			for _, l := range lines(mi) {
				f := strings.Fields(l)
				if len(f) > 5 && f[4] == "/" {
					root = f
				}
				if len(f) > 5 && f[4] == "/late" {
					late = true
				}
			}
			if root == nil {
				t.Fatalf("no root mount in the container's mountinfo:\n%s", mi)
			}
			optional := strings.Join(root[6:], " ")
			optional = optional[:strings.Index(optional, "-")]
			if c.tag == "" && strings.TrimSpace(optional) != "" || c.tag != "" && !strings.Contains(optional, c.tag) {
				t.Errorf("root mount propagation fields %q, want %q", optional, c.tag)
			}
			if late != c.propagate {
				t.Errorf("host mount on the rootfs seen in the container: %v, want %v", late, c.propagate)
			}
		})
	}
}

// TestRsharedBindBothWays: a bind mount with rshared propagation (a
// Kubernetes Bidirectional hostPath) carries mounts both ways: one the
// container makes under it appears on the host, one the host makes after
// the start appears in the container. The runtime binary's seal must not
// put the container in a namespace of slaves.
func TestRsharedBindBothWays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := t.TempDir()
	for _, d := range []string{"from-container", "from-host"} {
		if err := os.Mkdir(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hostMount(t, src, src, "", unix.MS_BIND)
	if err := unix.Mount("", src, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	s := newSpec(t, "sh", "-c", "mount -t tmpfs tmpfs /shared/from-container && touch /shared/from-container/made-inside && sleep 100")
	s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
	s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_SYS_ADMIN")
	s.Process.Capabilities.Permitted = append(s.Process.Capabilities.Permitted, "CAP_SYS_ADMIN")
	s.Linux.RootfsPropagation = "rshared"
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/shared", Type: "bind", Source: src, Options: []string{"rbind", "rshared", "rw"}})
	id, r := e.create(s)
	if st := e.rt("start", id); st.code != 0 {
		t.Fatalf("start: %s\ncontainer stderr: %s", st, readFile(t, r.errPath))
	}
	inside := filepath.Join(src, "from-container", "made-inside")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(inside); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container's mount under the rshared bind did not reach the host (%s); container stderr: %s", inside, readFile(t, r.errPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(src, "from-container"), unix.MNT_DETACH) })
	hostMount(t, "tmpfs", filepath.Join(src, "from-host"), "tmpfs", 0)
	mi := readFile(t, "/proc/"+strconv.Itoa(e.state(id).Pid)+"/mountinfo")
	if !strings.Contains(mi, " /shared/from-host ") {
		t.Errorf("the host's mount under the rshared bind is not in the container:\n%s", mi)
	}
	e.rt("kill", id, "KILL")
}

// hostMount mounts on the host and unmounts at cleanup.
func hostMount(t *testing.T, source, target, fstype string, flags uintptr) {
	t.Helper()
	if err := unix.Mount(source, target, fstype, flags, ""); err != nil {
		t.Fatalf("mount %s on %s: %v", source, target, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", target, err)
		}
	})
}

// TestDevices checks the default device nodes, the /dev symlinks and a
// device added by linux.devices.
func TestDevices(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := shell(t, "for d in null zero full random urandom tty fuse; do stat -c '%n %F %t:%T' /dev/$d; done; "+
		"for l in fd stdin stdout stderr; do echo /dev/$l $(readlink /dev/$l); done; "+
		"exec 3<>/dev/fuse && echo fuse opened")
	s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: ptr(os.FileMode(0o666))})
	out := e.mustRun(s)
	want := map[string]string{
		"/dev/null": "1:3", "/dev/zero": "1:5", "/dev/full": "1:7", "/dev/random": "1:8",
		"/dev/urandom": "1:9", "/dev/tty": "5:0", "/dev/fuse": "10:229",
	}
	links := map[string]string{
		"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
	}
	got := map[string]string{}
	for _, l := range lines(out) {
		f := strings.Fields(l)
		switch {
		case len(f) == 5 && f[1] == "character" && f[2] == "special":
			mm := strings.Split(f[4], ":") // stat prints major and minor in hex
			major, err1 := strconv.ParseUint(mm[0], 16, 32)
			minor, err2 := strconv.ParseUint(mm[1], 16, 32)
			if err1 == nil && err2 == nil {
				got[f[0]] = strconv.FormatUint(major, 10) + ":" + strconv.FormatUint(minor, 10)
			}
		case len(f) == 2:
			got[f[0]] = f[1]
		}
	}
	for path, mm := range want {
		if got[path] != mm {
			t.Errorf("%s: char device %q, want %s", path, got[path], mm)
		}
	}
	for path, target := range links {
		if got[path] != target {
			t.Errorf("%s -> %q, want %s", path, got[path], target)
		}
	}
	contains(t, "open the added device", out, "fuse opened")
}
