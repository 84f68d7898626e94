package volume

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"
)

// The archiving runs in re-executed children of the test binary.
func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

// scratch is a directory on a disk filesystem (not a tmpfs /tmp: user
// extended attributes).
func scratch(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "berth-volume-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chroot, chown)")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, []byte(content), mode))
	must(t, unix.Chmod(path, uint32(mode))) // 0o4755 means setuid here
}

func stat(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Lstat(path, &st))
	return st
}

func xattrsSupported(dir string) bool {
	p := filepath.Join(dir, ".xattr-probe")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		return false
	}
	defer os.Remove(p)
	return unix.Lsetxattr(p, "user.probe", []byte("1"), 0) == nil
}

func TestVolumeCreateListRemove(t *testing.T) {
	s, err := Open(scratch(t))
	must(t, err)
	a, err := s.Create(CreateOptions{Name: "a", Labels: map[string]string{"env": "prod", "team": ""}})
	must(t, err)
	if a.Anonymous || a.Driver != Driver || filepath.Base(filepath.Dir(a.Path())) != "a" {
		t.Errorf("a: %+v %s", a, a.Path())
	}
	// Idempotent; the labels stay the first ones.
	again, err := s.Create(CreateOptions{Name: "a", Labels: map[string]string{"other": "x"}})
	must(t, err)
	if again.Labels["env"] != "prod" || again.Labels["other"] != "" {
		t.Errorf("create again: %+v", again)
	}
	if _, err := s.Create(CreateOptions{Name: "a", Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}}); err == nil ||
		!strings.Contains(err.Error(), "already exists with other options") {
		t.Errorf("create with other options: %v", err)
	}
	anon, err := s.Create(CreateOptions{})
	must(t, err)
	if !anon.Anonymous || len(anon.Name) != 64 || !ValidName(anon.Name) {
		t.Errorf("anonymous: %+v", anon)
	}
	for _, bad := range []string{"-x", "a/b", "..", ".hidden", "a b"} {
		if _, err := s.Create(CreateOptions{Name: bad}); err == nil || !strings.Contains(err.Error(), "invalid volume name") {
			t.Errorf("create %q: %v", bad, err)
		}
	}
	for _, opts := range []map[string]string{{"size": "1g"}, {"o": "size=1m"}, {"type": "tmpfs"}} {
		if _, err := s.Create(CreateOptions{Name: "bad", Options: opts}); err == nil {
			t.Errorf("create with %v: no error", opts)
		}
	}
	if _, err := s.Get("bad"); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused create left a volume: %v", err)
	}

	names := func(filters ...string) []string {
		t.Helper()
		users := s.InUse([]User{{Name: "web", Binds: []string{"a:/data", "/etc:/etc:ro"}}})
		vols, err := s.List(filters, users)
		must(t, err)
		var out []string
		for _, v := range vols {
			out = append(out, v.Name)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{anon.Name, "a"}) && !slices.Equal(got, []string{"a", anon.Name}) {
		t.Errorf("list: %v", got)
	}
	for filter, want := range map[string][]string{
		"label=env":      {"a"},
		"label=env=prod": {"a"},
		"label=env=dev":  nil,
		"label=team":     {"a"},
		"name=a":         {"a"}, // and the anonymous one if its name has an "a"
		"dangling=false": {"a"},
		"dangling=true":  {anon.Name},
	} {
		got := names(filter)
		if filter == "name=a" && strings.Contains(anon.Name, "a") {
			want = []string{anon.Name, "a"}
			slices.Sort(want)
		}
		if !slices.Equal(got, want) {
			t.Errorf("list %s: %v, want %v", filter, got, want)
		}
	}
	if _, err := s.List([]string{"bogus=1"}, nil); err == nil {
		t.Error("unknown filter accepted")
	}

	// In use by name, and by path.
	for _, bind := range []string{"a:/data:ro", a.Path() + ":/data", a.Path() + "/sub:/x"} {
		users := s.InUse([]User{{Name: "web", Binds: []string{bind}}})
		err := s.Remove("a", true, users)
		if err == nil || err.Error() != "volume a is in use by container web" {
			t.Errorf("remove in use (%s): %v", bind, err)
		}
	}
	removed, _, err := s.Prune(s.InUse([]User{{Name: "web", Binds: []string{"a:/data"}}}), "all=true")
	must(t, err)
	if !slices.Equal(removed, []string{anon.Name}) {
		t.Errorf("prune -a with a in use: %v", removed)
	}
	removed, _, err = s.Prune(nil)
	must(t, err)
	if len(removed) != 0 {
		t.Errorf("prune of named volumes without all: %v", removed)
	}
	must(t, s.Remove("a", false, s.InUse(nil)))
	if err := s.Remove("a", false, nil); !errors.Is(err, ErrNotFound) || err.Error() != "no such volume: a" {
		t.Errorf("remove again: %v", err)
	}
	must(t, s.Remove("a", true, nil))
	if entries, _ := os.ReadDir(s.Root()); len(entries) != 1 || entries[0].Name() != storeLock {
		t.Errorf("left in the store: %v", entries)
	}
}

func TestVolumeCopyUp(t *testing.T) {
	needRoot(t)
	dir := scratch(t)
	xattrs := xattrsSupported(dir)
	rootfs := filepath.Join(dir, "rootfs")
	outside := filepath.Join(dir, "outside")
	write(t, filepath.Join(outside, "secret"), "host secret", 0o600)

	data := filepath.Join(rootfs, "data")
	write(t, filepath.Join(data, "f"), "hello", 0o640)
	must(t, os.Chown(filepath.Join(data, "f"), 1234, 5678))
	write(t, filepath.Join(data, "sub", "g"), "g", 0o4755)
	must(t, os.Link(filepath.Join(data, "f"), filepath.Join(data, "hard")))
	must(t, os.Symlink("f", filepath.Join(data, "ln")))
	must(t, os.Symlink("/nonexistent/target", filepath.Join(data, "abs")))
	must(t, os.Lchown(filepath.Join(data, "abs"), 7, 8))
	must(t, os.Chmod(data, 0o750))
	must(t, os.Chown(data, 1000, 1001))
	if xattrs {
		must(t, unix.Lsetxattr(filepath.Join(data, "f"), "user.k", []byte("v"), 0))
		must(t, unix.Lsetxattr(data, "user.dir", []byte("1"), 0))
	}
	// /app leads out of the rootfs on the host, to /outside in the rootfs.
	write(t, filepath.Join(rootfs, "outside", "inside"), "in the rootfs", 0o644)
	must(t, os.Symlink("../outside", filepath.Join(rootfs, "app")))
	// /abs is the host's outside directory by its host path.
	must(t, os.Symlink(outside, filepath.Join(rootfs, "abs")))
	must(t, os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755))
	must(t, os.Symlink("../../../../../../..", filepath.Join(rootfs, "etc", "up")))
	write(t, filepath.Join(rootfs, "file"), "not a dir", 0o644)

	s, err := Open(filepath.Join(dir, "store"))
	must(t, err)
	newVol := func(name string) *Volume {
		v, err := s.Create(CreateOptions{Name: name})
		must(t, err)
		return v
	}

	// Through a symlink in the path, too.
	must(t, os.Symlink("data", filepath.Join(rootfs, "datalink")))
	v := newVol("v")
	must(t, v.CopyUp(rootfs, "/datalink/"))
	p := v.Path()
	if b, err := os.ReadFile(filepath.Join(p, "f")); err != nil || string(b) != "hello" {
		t.Fatalf("f: %q %v", b, err)
	}
	if st := stat(t, filepath.Join(p, "f")); st.Uid != 1234 || st.Gid != 5678 || st.Mode&07777 != 0o640 || st.Nlink != 2 {
		t.Errorf("f: uid %d gid %d mode %o nlink %d", st.Uid, st.Gid, st.Mode&07777, st.Nlink)
	}
	if stat(t, filepath.Join(p, "f")).Ino != stat(t, filepath.Join(p, "hard")).Ino {
		t.Error("hard link not kept")
	}
	if st := stat(t, filepath.Join(p, "sub", "g")); st.Mode&07777 != 0o4755 {
		t.Errorf("setuid file: mode %o", st.Mode&07777)
	}
	if l, err := os.Readlink(filepath.Join(p, "ln")); err != nil || l != "f" {
		t.Errorf("ln: %q %v", l, err)
	}
	if l, err := os.Readlink(filepath.Join(p, "abs")); err != nil || l != "/nonexistent/target" {
		t.Errorf("abs: %q %v", l, err)
	} else if st := stat(t, filepath.Join(p, "abs")); st.Uid != 7 || st.Gid != 8 {
		t.Errorf("abs symlink owner %d:%d", st.Uid, st.Gid)
	}
	if st := stat(t, p); st.Uid != 1000 || st.Gid != 1001 || st.Mode&07777 != 0o750 {
		t.Errorf("volume root: uid %d gid %d mode %o", st.Uid, st.Gid, st.Mode&07777)
	}
	if xattrs {
		buf := make([]byte, 16)
		if n, err := unix.Lgetxattr(filepath.Join(p, "f"), "user.k", buf); err != nil || string(buf[:n]) != "v" {
			t.Errorf("xattr of f: %q %v", buf[:n], err)
		}
		if n, err := unix.Lgetxattr(p, "user.dir", buf); err != nil || string(buf[:n]) != "1" {
			t.Errorf("xattr of the root: %q %v", buf[:n], err)
		}
	}
	if got, _ := s.Get("v"); !got.CopiedUp || !v.CopiedUp {
		t.Error("CopiedUp not recorded")
	}
	// Never again, even when empty.
	entries, _ := os.ReadDir(p)
	for _, e := range entries {
		must(t, os.RemoveAll(filepath.Join(p, e.Name())))
	}
	must(t, v.CopyUp(rootfs, "/data"))
	if empty, _ := isEmptyDir(p); !empty {
		t.Error("copied up twice")
	}

	// Symlinks on the way resolve inside the rootfs.
	app := newVol("app")
	must(t, app.CopyUp(rootfs, "/app"))
	if b, err := os.ReadFile(filepath.Join(app.Path(), "inside")); err != nil || string(b) != "in the rootfs" {
		t.Errorf("/app: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(app.Path(), "secret")); err == nil {
		t.Error("/app copied the host's directory")
	}
	up := newVol("up")
	must(t, up.CopyUp(rootfs, "/etc/up/outside"))
	if _, err := os.Stat(filepath.Join(up.Path(), "inside")); err != nil {
		t.Errorf("/etc/up/outside: %v", err)
	}
	for _, path := range []string{"/abs", "/file", "/missing", "/file/x"} {
		w := newVol("w")
		must(t, w.CopyUp(rootfs, path))
		if empty, _ := isEmptyDir(w.Path()); !empty {
			t.Errorf("%s: copied something", path)
		}
		if got, _ := s.Get("w"); got.CopiedUp {
			t.Errorf("%s: CopiedUp set", path)
		}
		must(t, s.Remove("w", false, nil))
	}

	// A volume with content is left alone.
	full := newVol("full")
	write(t, filepath.Join(full.Path(), "mine"), "mine", 0o644)
	must(t, full.CopyUp(rootfs, "/data"))
	if entries, _ := os.ReadDir(full.Path()); len(entries) != 1 {
		t.Errorf("non-empty volume filled: %v", entries)
	}
}

type entry struct {
	name, link string
	typ        byte
	body       string
}

func tarOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		must(t, tw.WriteHeader(h))
		if h.Size > 0 {
			_, err := tw.Write([]byte(e.body))
			must(t, err)
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}

func TestVolumeImportExport(t *testing.T) {
	needRoot(t)
	dir := scratch(t)
	s, err := Open(filepath.Join(dir, "store"))
	must(t, err)
	v, err := s.Create(CreateOptions{Name: "v"})
	must(t, err)
	write(t, filepath.Join(v.Path(), "old"), "old", 0o644)

	good := tarOf(t,
		entry{name: "./", typ: tar.TypeDir},
		entry{name: "./a/b", typ: tar.TypeReg, body: "b"},
		entry{name: "./l", typ: tar.TypeSymlink, link: "a/b"})
	for _, bad := range []struct {
		data []byte
		name string
	}{
		{tarOf(t, entry{name: "ok", typ: tar.TypeReg, body: "x"}, entry{name: "../evil", typ: tar.TypeReg, body: "evil"}), "../evil"},
		{tarOf(t, entry{name: "/abs", typ: tar.TypeReg, body: "evil"}), "/abs"},
		{tarOf(t, entry{name: "up", typ: tar.TypeSymlink, link: "/"}, entry{name: "up/evil", typ: tar.TypeReg, body: "evil"}), "up/evil"},
		{tarOf(t, entry{name: "h", typ: tar.TypeLink, link: "../../x"}), "h"},
	} {
		err := s.Import("v", bytes.NewReader(bad.data))
		if err == nil || !strings.Contains(err.Error(), `"`+bad.name+`"`) {
			t.Errorf("import with %s: %v", bad.name, err)
		}
	}
	if entries, _ := os.ReadDir(v.Path()); len(entries) != 1 || entries[0].Name() != "old" {
		t.Errorf("refused import changed the volume: %v", entries)
	}
	if entries, _ := os.ReadDir(filepath.Dir(v.Path())); len(entries) != 3 { // _data, volume.json, lock
		t.Errorf("volume directory: %v", entries)
	}
	for _, p := range []string{filepath.Join(dir, "store", "evil"), filepath.Join(dir, "evil"), "/evil", filepath.Join(dir, "store", "volumes", "evil")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s written", p)
		}
	}

	must(t, s.Import("v", bytes.NewReader(good)))
	if b, err := os.ReadFile(filepath.Join(v.Path(), "l")); err != nil || string(b) != "b" {
		t.Errorf("imported: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(v.Path(), "old")); err == nil {
		t.Error("import kept the old content")
	}
	var out bytes.Buffer
	must(t, s.Export("v", &out))
	var names []string
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"./", "./a/", "./a/b", "./l"}) {
		t.Errorf("export: %v", names)
	}
	// Import makes the volume.
	must(t, s.Import("fresh", bytes.NewReader(good)))
	if n, err := s.Size("fresh"); err != nil || n != 1 {
		t.Errorf("size: %d %v", n, err)
	}
}
