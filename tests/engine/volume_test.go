package engine

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// volumePath is a volume's Mountpoint, from inspect.
func volumePath(t *testing.T, e *engine, name string) string {
	t.Helper()
	p := strings.TrimSpace(e.ok("volume", "inspect", "-f", "{{.Mountpoint}}", name))
	if want := filepath.Join(e.root, "volumes", name, "_data"); p != want {
		t.Fatalf("mountpoint of %s: %q, want %q", name, p, want)
	}
	return p
}

func lines(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestVolumeCommands(t *testing.T) {
	e := newEngine(t)
	if out := e.ok("volume", "create", "--label", "env=prod", "--label", "team", "v1"); out != "v1\n" {
		t.Errorf("create v1: %q", out)
	}
	e.ok("volume", "create", "-l", "env=dev", "v2")
	anon := strings.TrimSpace(e.ok("volume", "create"))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon) {
		t.Errorf("anonymous volume name %q", anon)
	}
	// Idempotent, as docker's; other options are refused.
	if out := e.ok("volume", "create", "v1"); out != "v1\n" {
		t.Errorf("create v1 again: %q", out)
	}
	e.fail("already exists", "volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "v1")
	e.fail("invalid volume name", "volume", "create", "bad/name")
	e.fail(`unknown option "size"`, "volume", "create", "--opt", "size=1g", "x")
	e.fail(`only "local"`, "volume", "create", "-d", "nfs", "x")

	all := []string{anon, "v1", "v2"}
	sort.Strings(all)
	out := e.ok("volume", "ls")
	want := "DRIVER    VOLUME NAME\n"
	for _, n := range all {
		want += "local     " + n + "\n"
	}
	if out != want {
		t.Errorf("ls:\n%s\nwant:\n%s", out, want)
	}
	if got := lines(e.ok("volume", "ls", "-q")); !slices.Equal(got, all) {
		t.Errorf("ls -q: %v", got)
	}
	if got := e.ok("volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Labels}} {{.Label \"env\"}}", "--filter", "name=v"); got != "v1 local env=prod,team= prod\nv2 local env=dev dev\n" {
		t.Errorf("ls --format: %q", got)
	}
	if got := e.ok("volume", "ls", "--format", "table {{.Name}}\t{{.Mountpoint}}", "-f", "name=v1"); got != fmt.Sprintf("VOLUME NAME   MOUNTPOINT\nv1            %s\n", filepath.Join(e.root, "volumes/v1/_data")) {
		t.Errorf("ls table: %q", got)
	}
	for filter, want := range map[string][]string{
		"label=env":      {"v1", "v2"},
		"label=env=prod": {"v1"},
		"label=team":     {"v1"},
		"label!=team":    {anon, "v2"},
		"name=v2":        {"v2"},
		"dangling=true":  all,
		"dangling=false": nil,
		"driver=local":   all,
	} {
		if got := lines(e.ok("volume", "ls", "-q", "--filter", filter)); !slices.Equal(got, want) {
			t.Errorf("ls --filter %s: %v, want %v", filter, got, want)
		}
	}
	if got := lines(e.ok("volume", "ls", "-q", "--filter", "label=env", "--filter", "label=team")); !slices.Equal(got, []string{"v1"}) {
		t.Errorf("two label filters: %v", got)
	}
	e.fail("invalid filter", "volume", "ls", "--filter", "color=red")
	var js map[string]any
	if err := json.Unmarshal([]byte(lines(e.ok("volume", "ls", "--format", "json", "-f", "name=v1"))[0]), &js); err != nil || js["Name"] != "v1" || js["Driver"] != "local" {
		t.Errorf("ls --format json: %v %v", js, err)
	}

	// inspect: docker's object.
	var info []struct {
		Name, Driver, Mountpoint, CreatedAt, Scope string
		Labels, Options                            map[string]string
	}
	if err := json.Unmarshal([]byte(e.ok("volume", "inspect", "v1", "v2")), &info); err != nil || len(info) != 2 {
		t.Fatalf("inspect: %v %v", info, err)
	}
	v1 := info[0]
	if v1.Name != "v1" || v1.Driver != "local" || v1.Scope != "local" || v1.Labels["env"] != "prod" || v1.Options == nil || len(v1.Options) != 0 ||
		!regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$`).MatchString(v1.CreatedAt) {
		t.Errorf("inspect v1: %+v", v1)
	}
	if fi, err := os.Stat(v1.Mountpoint); err != nil || !fi.IsDir() || v1.Mountpoint != volumePath(t, e, "v1") {
		t.Errorf("mountpoint %s: %v", v1.Mountpoint, err)
	}
	if got := e.ok("volume", "inspect", "--format", "{{.Name}}={{.Labels.env}}", "v1", "v2"); got != "v1=prod\nv2=dev\n" {
		t.Errorf("inspect --format: %q", got)
	}
	e.fail("no such volume: nosuch", "volume", "inspect", "nosuch")

	// rm of what is not there.
	e.fail("no such volume: nosuch", "volume", "rm", "nosuch")
	e.ok("volume", "rm", "-f", "nosuch")

	// Options: mounted on first use (here, an import), unmounted by rm.
	e.ok("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=8m,mode=0700", "tv")
	if got := e.ok("volume", "inspect", "-f", "{{json .Options}}", "tv"); got != `{"device":"tmpfs","o":"size=8m,mode=0700","type":"tmpfs"}`+"\n" {
		t.Errorf("options: %q", got)
	}
	tv := volumePath(t, e, "tv")
	if fsType(t, tv) != "" {
		t.Error("tmpfs volume mounted at create")
	}
	if r := e.run(volTar(t, tarEntry{name: "f", body: "in tmpfs"}), "volume", "import", "tv", "-"); r.Code != 0 {
		t.Fatalf("import into tmpfs volume: %+v", r)
	}
	if fsType(t, tv) != "tmpfs" {
		t.Errorf("tmpfs volume not mounted after use: %q", fsType(t, tv))
	}
	if b, err := os.ReadFile(filepath.Join(tv, "f")); err != nil || string(b) != "in tmpfs" {
		t.Errorf("tmpfs volume content: %q %v", b, err)
	}
	if out := e.ok("volume", "rm", "tv"); out != "tv\n" {
		t.Errorf("rm tv: %q", out)
	}
	if _, err := os.Stat(filepath.Dir(tv)); err == nil || fsType(t, tv) != "" {
		t.Errorf("tmpfs volume left: %v", err)
	}

	// A container using a volume (by its path, until run -v NAME takes names).
	withBusybox(t, e)
	e.ok("create", "--name", "user", "-v", volumePath(t, e, "v2")+":/data", "busybox", "true")
	e.fail("volume v2 is in use by container user", "volume", "rm", "v2")
	e.fail("volume v2 is in use by container user", "volume", "rm", "-f", "v2")
	if got := lines(e.ok("volume", "ls", "-q", "--filter", "dangling=false")); !slices.Equal(got, []string{"v2"}) {
		t.Errorf("dangling=false: %v", got)
	}
	// Several at once: the others go, the command fails.
	r := e.run(nil, "volume", "rm", "v2", "nosuch")
	if r.Code != 125 || !strings.Contains(r.Stderr, "in use") || !strings.Contains(r.Stderr, "no such volume: nosuch") {
		t.Errorf("rm v2 nosuch: %+v", r)
	}

	// prune: anonymous unused volumes; -a all unused ones.
	os.WriteFile(filepath.Join(volumePath(t, e, anon), "f"), make([]byte, 2000), 0o644)
	if out := e.ok("volume", "prune", "-f"); out != "Deleted Volumes:\n"+anon+"\nTotal reclaimed space: 2kB\n" {
		t.Errorf("prune: %q", out)
	}
	if out := e.ok("volume", "prune", "-f", "--filter", "label=env=dev", "-a"); out != "Total reclaimed space: 0B\n" {
		t.Errorf("prune of v2 in use: %q", out)
	}
	if out := e.ok("volume", "prune", "-a", "-f"); out != "Deleted Volumes:\nv1\nTotal reclaimed space: 0B\n" {
		t.Errorf("prune -a: %q", out)
	}
	e.ok("rm", "user")
	if out := e.ok("volume", "rm", "v2"); out != "v2\n" {
		t.Errorf("rm v2: %q", out)
	}
	if out := e.ok("volume", "ls", "-q"); out != "" {
		t.Errorf("volumes left: %q", out)
	}
}

// fsType is the type of the filesystem mounted at p, or "".
func fsType(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	typ := ""
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 10 || f[4] != p {
			continue
		}
		for i, w := range f {
			if w == "-" && i+1 < len(f) {
				typ = f[i+1] // the last mount on p is the visible one
			}
		}
	}
	return typ
}

func TestVolumeDataOutlivesContainers(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	e.ok("volume", "create", "data")
	p := volumePath(t, e, "data")
	bind := p + ":/data"
	e.ok("run", "--rm", "-v", bind, "busybox", "sh", "-c",
		"echo hi > /data/f && chown 1234:5678 /data/f && chmod 0640 /data/f && mkdir -m 0711 /data/d && ln -s f /data/l")
	if out := e.ok("run", "--rm", "-v", bind, "busybox", "sh", "-c", "cat /data/l; stat -c '%u:%g %a' /data/f /data/d"); out != "hi\n1234:5678 640\n0:0 711\n" {
		t.Errorf("second container: %q", out)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(p, "f"), &st); err != nil || st.Uid != 1234 || st.Gid != 5678 || st.Mode&07777 != 0o640 {
		t.Errorf("from the host: %+v %v", st, err)
	}
	if l, err := os.Readlink(filepath.Join(p, "l")); err != nil || l != "f" {
		t.Errorf("symlink: %q %v", l, err)
	}
	if out := e.ok("ps", "-a", "-q"); out != "" {
		t.Errorf("containers left: %q", out)
	}
}

type tarEntry struct {
	name, link string
	typ        byte
	body       string
}

func volTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, en := range entries {
		h := &tar.Header{Name: en.name, Linkname: en.link, Typeflag: en.typ, Mode: 0o644, Size: int64(len(en.body))}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, en.body[:h.Size]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarListing is a line per entry: name, type, mode, owner, link, mtime,
// extended attributes and the sha256 of the content.
func tarListing(t *testing.T, data []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, tr); err != nil {
			t.Fatal(err)
		}
		var xattrs []string
		for k, v := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				xattrs = append(xattrs, strings.TrimPrefix(k, "SCHILY.xattr.")+"="+v)
			}
		}
		sort.Strings(xattrs)
		out = append(out, fmt.Sprintf("%s %c %o %d:%d ->%q %d %v %x", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid,
			h.Linkname, h.ModTime.Unix(), xattrs, sum.Sum(nil)))
	}
	sort.Strings(out)
	return out
}

func TestVolumeExportImport(t *testing.T) {
	e := newEngine(t)
	e.ok("volume", "create", "src")
	p := volumePath(t, e, "src")
	big := make([]byte, 3<<20)
	rand.Read(big)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(p, "d", "e"), 0o755))
	must(os.WriteFile(filepath.Join(p, "d", "f"), []byte("hello\n"), 0o644))
	must(os.WriteFile(filepath.Join(p, "big"), big, 0o600))
	must(os.WriteFile(filepath.Join(p, "empty"), nil, 0o644))
	must(os.Link(filepath.Join(p, "d", "f"), filepath.Join(p, "hard")))
	must(os.Symlink("d/f", filepath.Join(p, "sym")))
	must(os.Symlink("/nonexistent", filepath.Join(p, "dangling")))
	must(os.Lchown(filepath.Join(p, "d", "f"), 1234, 5678))
	must(os.Lchown(filepath.Join(p, "sym"), 42, 43))
	must(unix.Chmod(filepath.Join(p, "d", "f"), 0o4640))
	must(unix.Chmod(filepath.Join(p, "d"), 0o750))
	must(os.Lchown(filepath.Join(p, "d"), 1000, 1000))
	must(unix.Chmod(p, 0o770))
	must(os.Lchown(p, 99, 98))
	xattrs := unix.Lsetxattr(filepath.Join(p, "d", "f"), "user.note", []byte("kept"), 0) == nil
	if !xattrs {
		t.Log("no user xattrs on this filesystem")
	}

	exported := []byte(e.ok("volume", "export", "src"))
	file := filepath.Join(e.dir, "src.tar")
	e.ok("volume", "export", "-o", file, "src")
	fromFile, err := os.ReadFile(file)
	must(err)
	if !bytes.Equal(exported, fromFile) {
		t.Error("export to stdout and to -o FILE differ")
	}
	listing := tarListing(t, exported)
	if len(listing) != 9 || !strings.HasPrefix(listing[0], "./ 5 770 99:98") {
		t.Errorf("export listing:\n%s", strings.Join(listing, "\n"))
	}
	if xattrs && !strings.Contains(strings.Join(listing, "\n"), "[user.note=kept]") {
		t.Errorf("xattr not exported:\n%s", strings.Join(listing, "\n"))
	}

	// Into a new volume from a file, into an existing one from stdin.
	e.ok("volume", "import", "copy", file)
	e.ok("volume", "create", "copy2")
	must(os.WriteFile(filepath.Join(volumePath(t, e, "copy2"), "old"), []byte("replaced"), 0o644))
	if r := e.run(exported, "volume", "import", "copy2", "-"); r.Code != 0 {
		t.Fatalf("import from stdin: %+v", r)
	}
	for _, v := range []string{"copy", "copy2"} {
		again := []byte(e.ok("volume", "export", v))
		if got := tarListing(t, again); !slices.Equal(got, listing) {
			t.Errorf("%s differs:\n%s\nwant:\n%s", v, strings.Join(got, "\n"), strings.Join(listing, "\n"))
		}
		if !bytes.Equal(again, exported) {
			t.Errorf("%s: export not byte for byte the same", v)
		}
	}
	var st unix.Stat_t
	cp := volumePath(t, e, "copy")
	if err := unix.Lstat(filepath.Join(cp, "d", "f"), &st); err != nil || st.Uid != 1234 || st.Gid != 5678 || st.Mode&07777 != 0o4640 || st.Nlink != 2 {
		t.Errorf("imported d/f: %+v %v", st, err)
	}
	if err := unix.Lstat(cp, &st); err != nil || st.Uid != 99 || st.Mode&07777 != 0o770 {
		t.Errorf("imported root: %+v %v", st, err)
	}

	// Hostile archives: refused, naming the entry, nothing written.
	e.ok("volume", "create", "target")
	tp := volumePath(t, e, "target")
	must(os.WriteFile(filepath.Join(tp, "keep"), []byte("keep"), 0o644))
	hostile := map[string][]byte{
		"../evil":    volTar(t, tarEntry{name: "ok", body: "ok"}, tarEntry{name: "../evil", body: "evil"}),
		"up/evil":    volTar(t, tarEntry{name: "up", typ: tar.TypeSymlink, link: "/"}, tarEntry{name: "up/evil", body: "evil"}),
		"../../evil": volTar(t, tarEntry{name: "../../evil", body: "evil"}),
	}
	for name, data := range hostile {
		tarFile := filepath.Join(e.dir, "hostile.tar")
		must(os.WriteFile(tarFile, data, 0o644))
		e.fail(fmt.Sprintf("tar entry %q", name), "volume", "import", "target", tarFile)
		r := e.run(data, "volume", "import", "newvol", "-")
		if r.Code != 125 || !strings.Contains(r.Stderr, fmt.Sprintf("%q", name)) {
			t.Errorf("import %s into a new volume: %+v", name, r)
		}
	}
	if entries, _ := os.ReadDir(tp); len(entries) != 1 || entries[0].Name() != "keep" {
		t.Errorf("refused imports changed the volume: %v", entries)
	}
	e.fail("no such volume", "volume", "inspect", "newvol")
	for _, dir := range []string{e.dir, e.root, filepath.Join(e.root, "volumes"), filepath.Dir(tp), "/"} {
		if _, err := os.Lstat(filepath.Join(dir, "evil")); err == nil {
			t.Errorf("%s/evil written", dir)
		}
	}
	e.fail("no such volume", "volume", "export", "nosuch")
}
