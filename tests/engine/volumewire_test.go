package engine

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Containers with volumes: -v, --mount, --volumes-from, the image's
// VOLUMEs, rm -v and run --rm.

// volumeNames are the engine's volumes, by name.
func volumeNames(e *engine) []string { return lines(e.ok("volume", "ls", "-q")) }

var anonName = regexp.MustCompile(`^[0-9a-f]{64}$`)

// anonymous are the engine's anonymous volumes (64 hex digits).
func anonymous(e *engine) []string {
	var out []string
	for _, n := range volumeNames(e) {
		if anonName.MatchString(n) {
			out = append(out, n)
		}
	}
	return out
}

// denied runs a command that must fail in the container for a read-only
// filesystem.
func denied(t *testing.T, e *engine, args ...string) {
	t.Helper()
	r := e.run(nil, args...)
	if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "Read-only file system") {
		t.Errorf("berth %s: want a read-only failure, got %+v", strings.Join(args, " "), r)
	}
}

// withVolumeImage makes withvol:1, busybox with VOLUME /data holding a
// seed file (owner 42:43) in a directory of mode 0750.
func withVolumeImage(t *testing.T, e *engine) {
	t.Helper()
	e.ok("run", "--name", "seeder", "busybox", "sh", "-c",
		"mkdir -p /data/sub && echo seed > /data/seed && chown 42:43 /data/seed && chmod 0750 /data")
	e.ok("commit", "--change", "VOLUME /data", "seeder", "withvol:1")
	e.ok("rm", "seeder")
	if got := e.ok("image", "inspect", "--format", "{{json .Config.Volumes}}", "withvol:1"); got != `{"/data":{}}`+"\n" {
		t.Fatalf("image volumes: %q", got)
	}
}

func TestVolumeWireNamed(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	// Made on first use; the data, owners and modes outlive the container.
	e.ok("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c",
		"echo hi > /data/f && chown 1234:5678 /data/f && chmod 640 /data/f && mkdir -m 0711 /data/d")
	if got := volumeNames(e); !slices.Equal(got, []string{"data"}) {
		t.Fatalf("volumes after first use: %v", got)
	}
	if out := e.ok("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "cat /data/f; stat -c '%u:%g %a' /data/f /data/d"); out != "hi\n1234:5678 640\n0:0 711\n" {
		t.Errorf("second container: %q", out)
	}
	// :ro is read-only; z and Z change nothing here.
	denied(t, e, "run", "--rm", "-v", "data:/data:ro", "busybox", "touch", "/data/x")
	if out := e.ok("run", "--rm", "-v", "data:/data:ro,z", "busybox", "cat", "/data/f"); out != "hi\n" {
		t.Errorf("ro,z: %q", out)
	}
	host := filepath.Join(e.dir, "host")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "hf"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("run", "--rm", "-v", host+":/h:Z", "busybox", "sh", "-c", "cat /h/hf && echo new > /h/new"); out != "from host\n" {
		t.Errorf("bind with Z: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(host, "new")); err != nil || string(b) != "new\n" {
		t.Errorf("written through the bind: %q %v", b, err)
	}
	denied(t, e, "run", "--rm", "-v", host+":/h:ro,rshared", "busybox", "touch", "/h/x")
	// The record: docker's Binds.
	e.ok("create", "--name", "rec", "-v", "data:/data:ro", "-v", host+":/h", "busybox", "true")
	if got := e.ok("inspect", "--format", "{{json .HostConfig.Binds}}", "rec"); got != `["data:/data:ro","`+host+`:/h"]`+"\n" {
		t.Errorf("binds: %q", got)
	}
	e.ok("rm", "-v", "rec")
	if got := volumeNames(e); !slices.Equal(got, []string{"data"}) {
		t.Errorf("rm -v removed a named volume: %v", got)
	}
	// An anonymous volume: -v PATH.
	if out := e.ok("run", "--rm", "-v", "/anon", "busybox", "sh", "-c", "touch /anon/f && grep -c ' /anon ' /proc/mounts"); out != "1\n" {
		t.Errorf("anonymous volume: %q", out)
	}
	if got := volumeNames(e); !slices.Equal(got, []string{"data"}) {
		t.Errorf("run --rm -v /anon left volumes: %v", got)
	}
	if out := e.ok("ps", "-a", "-q"); out != "" {
		t.Errorf("containers left: %q", out)
	}
}

func TestVolumeWireImageVolume(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	withVolumeImage(t, e)
	check := "cat /data/seed; stat -c '%u:%g %a' /data/seed /data; ls -A /data"
	want := "seed\n42:43 644\n0:0 750\nseed\nsub\n"

	// An anonymous volume filled from the image.
	e.ok("create", "--name", "a", "withvol:1", "sh", "-c", check)
	anon := anonymous(e)
	if len(anon) != 1 {
		t.Fatalf("anonymous volumes after create: %v", volumeNames(e))
	}
	if out := e.ok("start", "-a", "a"); out != want {
		t.Errorf("image volume content: %q, want %q", out, want)
	}
	p := volumePath(t, e, anon[0])
	if b, err := os.ReadFile(filepath.Join(p, "seed")); err != nil || string(b) != "seed\n" {
		t.Errorf("in the volume on the host: %q %v", b, err)
	}
	if got := e.ok("inspect", "--format", "{{json .HostConfig.Binds}}", "a"); got != `["`+p+`:/data"]`+"\n" {
		t.Errorf("binds: %q", got)
	}
	// In use, even stopped, by its path.
	e.fail("volume "+anon[0]+" is in use by container a", "volume", "rm", anon[0])
	// rm keeps it, rm -v removes it.
	e.ok("rm", "a")
	if got := anonymous(e); !slices.Equal(got, anon) {
		t.Errorf("rm removed the volume: %v", got)
	}
	e.ok("volume", "rm", anon[0])
	e.ok("run", "--name", "b", "withvol:1", "true")
	if len(anonymous(e)) != 1 {
		t.Fatalf("volumes of b: %v", volumeNames(e))
	}
	e.ok("rm", "-v", "b")
	if got := volumeNames(e); len(got) != 0 {
		t.Errorf("rm -v left %v", got)
	}
	// run --rm removes the image's anonymous volume too.
	if out := e.ok("run", "--rm", "withvol:1", "cat", "/data/seed"); out != "seed\n" {
		t.Errorf("run --rm: %q", out)
	}
	if got := volumeNames(e); len(got) != 0 {
		t.Errorf("run --rm left %v", got)
	}

	// A named volume at /data: filled on first use only.
	if out := e.ok("run", "--rm", "-v", "named:/data", "withvol:1", "sh", "-c", check+" && rm /data/seed"); out != want {
		t.Errorf("named volume, first use: %q", out)
	}
	if out := e.ok("run", "--rm", "-v", "named:/data", "withvol:1", "ls", "-A", "/data"); out != "sub\n" {
		t.Errorf("named volume, second use: %q", out)
	}
	// Not filled with nocopy, nor a bind.
	if out := e.ok("run", "--rm", "-v", "nc:/data:nocopy", "withvol:1", "ls", "-A", "/data"); out != "" {
		t.Errorf("nocopy: %q", out)
	}
	if out := e.ok("run", "--rm", "--mount", "type=volume,src=nc2,dst=/data,volume-nocopy", "withvol:1", "ls", "-A", "/data"); out != "" {
		t.Errorf("volume-nocopy: %q", out)
	}
	empty := filepath.Join(e.dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("run", "--rm", "-v", empty+":/data", "withvol:1", "ls", "-A", "/data"); out != "" {
		t.Errorf("bind over a VOLUME: %q", out)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("bind source filled: %v", entries)
	}
	// A tmpfs over the VOLUME: no anonymous volume either.
	e.ok("run", "--rm", "--tmpfs", "/data", "withvol:1", "true")
	if got := volumeNames(e); !slices.Equal(got, []string{"named", "nc", "nc2"}) {
		t.Errorf("volumes: %v", got)
	}
}

func TestVolumeWireMountForms(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	host := filepath.Join(e.dir, "host")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "hf"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	e.ok("run", "--rm", "--mount", "type=volume,source=mv,target=/m", "busybox", "sh", "-c", "echo m > /m/f")
	if out := e.ok("run", "--rm", "--mount", "src=mv,dst=/m,readonly", "busybox", "cat", "/m/f"); out != "m\n" {
		t.Errorf("type defaults to volume: %q", out)
	}
	denied(t, e, "run", "--rm", "--mount", "type=volume,src=mv,destination=/m,ro=true", "busybox", "touch", "/m/x")
	if out := e.ok("run", "--rm", "--mount", "type=volume,target=/anon,volume-label=k=v", "busybox", "sh", "-c", "touch /anon/x && echo ok"); out != "ok\n" {
		t.Errorf("anonymous --mount: %q", out)
	}
	if got := volumeNames(e); !slices.Equal(got, []string{"mv"}) {
		t.Errorf("volumes: %v", got)
	}
	// volume-opt makes a tmpfs volume.
	if out := e.ok("run", "--rm", "--mount", "type=volume,src=tv,dst=/tv,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=4m",
		"busybox", "sh", "-c", "grep ' /tv ' /proc/mounts | cut -d' ' -f3"); out != "tmpfs\n" {
		t.Errorf("tmpfs volume: %q", out)
	}
	if got := e.ok("volume", "inspect", "-f", "{{.Options.type}}", "tv"); got != "tmpfs\n" {
		t.Errorf("volume-opt: %q", got)
	}
	e.ok("volume", "rm", "tv")

	if out := e.ok("run", "--rm", "--mount", "type=bind,source="+host+",target=/h,bind-propagation=rshared", "busybox", "sh", "-c", "cat /h/hf && touch /h/w"); out != "from host\n" {
		t.Errorf("bind: %q", out)
	}
	denied(t, e, "run", "--rm", "--mount", `type=bind,"src=`+host+`",target=/h,readonly`, "busybox", "touch", "/h/x")

	out := e.ok("run", "--rm", "--mount", "type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1777", "busybox", "sh", "-c",
		"stat -c %a /t; grep ' /t ' /proc/mounts")
	if !strings.HasPrefix(out, "1777\ntmpfs /t tmpfs ") || !strings.Contains(out, "size=65536k") {
		t.Errorf("tmpfs: %q", out)
	}
	denied(t, e, "run", "--rm", "--mount", "type=tmpfs,dst=/t,ro", "busybox", "touch", "/t/x")

	// Refused: exit 125, the bad field named, nothing left.
	e.ok("volume", "create", "keep")
	before := volumeNames(e)
	for _, bad := range []struct{ want, mount string }{
		{`unknown field "bogus"`, "type=volume,target=/x,bogus=1"},
		{`unknown field "tgt"`, "type=bind,src=" + host + ",tgt=/x"},
		{`field "target" is required`, "type=volume,src=v"},
		{`invalid value "nfs" for field "type"`, "type=nfs,target=/x"},
		{`field "source" is required for a bind mount`, "type=bind,target=/x"},
		{`invalid value "sideways" for field "bind-propagation"`, "type=bind,src=/,target=/x,bind-propagation=sideways"},
		{`field "tmpfs-size" is for tmpfs mounts, not volume`, "target=/x,tmpfs-size=1m"},
		{`invalid value "big" for field "tmpfs-size"`, "type=tmpfs,target=/x,tmpfs-size=big"},
		{`invalid value "maybe" for field "readonly"`, "type=tmpfs,target=/x,readonly=maybe"},
		{`field "source" is not allowed for a tmpfs mount`, "type=tmpfs,src=x,target=/x"},
		{`destination "x" is not an absolute path`, "type=volume,target=x"},
		{`invalid value "a/b" for field "source"`, "type=volume,src=a/b,target=/x"},
	} {
		msg := e.fail(bad.want, "run", "--rm", "--mount", bad.mount, "busybox", "true")
		if !strings.Contains(msg, "--mount") {
			t.Errorf("error does not name --mount: %q", msg)
		}
	}
	e.fail(`invalid -v "a/b:/x"`, "create", "-v", "a/b:/x", "busybox", "true")
	e.fail(`invalid option "nocopy" for a bind mount`, "create", "-v", host+":/x:nocopy", "busybox", "true")
	e.fail(`invalid option "shared" for a volume mount`, "create", "-v", "v:/x:shared", "busybox", "true")
	// A missing bind source: one line.
	r := e.run(nil, "run", "--rm", "-v", "v1:/v", "--mount", "type=bind,src=/nonexistent/dir,dst=/x", "busybox", "true")
	if r.Code != 125 || strings.TrimSpace(r.Stderr) != "Error: bind source path does not exist: /nonexistent/dir" {
		t.Errorf("missing bind source: %+v", r)
	}
	e.fail("duplicate mount point: /x", "create", "-v", "v1:/x", "--mount", "type=tmpfs,target=/x", "busybox", "true")
	e.fail("duplicate mount point: /x", "create", "-v", "/x", "--tmpfs", "/x", "busybox", "true")
	// A failure once the volumes are made (an unknown user) removes the
	// ones it made, not those that were there.
	e.fail("nosuchuser", "create", "--name", "late", "-v", "made:/m", "-v", "/anon", "-v", "keep:/k", "--user", "nosuchuser", "busybox", "true")
	if got := volumeNames(e); !slices.Equal(got, before) {
		t.Errorf("volumes after failed creates: %v, want %v", got, before)
	}
	if out := e.ok("ps", "-a", "-q"); out != "" {
		t.Errorf("containers after failed creates: %q", out)
	}
	assertNoLeftovers(t, e, "")
}

func TestVolumeWireVolumesFrom(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	host := filepath.Join(e.dir, "host")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "hf"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.ok("create", "--name", "src", "-v", "shared:/s", "-v", "/anon", "-v", host+":/h:ro", "--tmpfs", "/t", "busybox", "true")
	anon := anonymous(e)
	if len(anon) != 1 {
		t.Fatalf("volumes of src: %v", volumeNames(e))
	}
	if out := e.ok("run", "--rm", "--volumes-from", "src", "busybox", "sh", "-c",
		"echo s > /s/f && echo a > /anon/f && cat /h/hf && grep -c ' /t ' /proc/mounts; true"); out != "from host\n0\n" {
		t.Errorf("volumes-from: %q", out)
	}
	// The binds keep their mode; :ro makes all read-only.
	denied(t, e, "run", "--rm", "--volumes-from", "src", "busybox", "touch", "/h/x")
	denied(t, e, "run", "--rm", "--volumes-from", "src:ro", "busybox", "touch", "/s/x")
	if out := e.ok("run", "--rm", "--volumes-from", "src:ro", "busybox", "cat", "/s/f", "/anon/f"); out != "s\na\n" {
		t.Errorf("volumes-from :ro: %q", out)
	}
	// An explicit mount wins.
	if out := e.ok("run", "--rm", "--volumes-from", "src", "-v", "other:/s", "busybox", "ls", "-A", "/s"); out != "" {
		t.Errorf("-v over --volumes-from: %q", out)
	}
	// --rm of the user keeps src's anonymous volume: src uses it.
	if got := anonymous(e); !slices.Equal(got, anon) {
		t.Errorf("anonymous volumes: %v, want %v", got, anon)
	}
	// Volumes from a container that has volumes from another.
	e.ok("create", "--name", "mid", "--volumes-from", "src", "busybox", "true")
	if out := e.ok("run", "--rm", "--volumes-from", "mid", "busybox", "cat", "/s/f", "/anon/f"); out != "s\na\n" {
		t.Errorf("volumes from mid: %q", out)
	}
	// rm -v src: mid still uses the anonymous volume.
	e.ok("rm", "-v", "src")
	if got := anonymous(e); !slices.Equal(got, anon) {
		t.Errorf("anonymous volume removed while mid uses it: %v", got)
	}
	e.fail("in use by container mid", "volume", "rm", anon[0])
	e.ok("rm", "-v", "mid")
	if got := volumeNames(e); !slices.Equal(got, []string{"other", "shared"}) {
		t.Errorf("volumes after rm -v mid: %v", got)
	}
	e.fail("no such container: nosuch", "create", "--volumes-from", "nosuch", "busybox", "true")
	e.fail(`invalid mode "rx"`, "create", "--volumes-from", "mid:rx", "busybox", "true")
}

func TestVolumeWireInUse(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	e.ok("run", "--name", "user", "-v", "busy:/data", "busybox", "true")
	e.fail("volume busy is in use by container user", "volume", "rm", "busy")
	e.fail("volume busy is in use by container user", "volume", "rm", "-f", "busy")
	if out := e.ok("volume", "prune", "-a", "-f"); out != "Total reclaimed space: 0B\n" {
		t.Errorf("prune -a with busy in use: %q", out)
	}
	e.ok("create", "--name", "anonuser", "-v", "/data", "busybox", "true")
	anon := anonymous(e)
	if len(anon) != 1 {
		t.Fatalf("volumes: %v", volumeNames(e))
	}
	e.fail("in use by container anonuser", "volume", "rm", anon[0])
	if out := e.ok("volume", "prune", "-f"); out != "Total reclaimed space: 0B\n" {
		t.Errorf("prune with the anonymous volume in use: %q", out)
	}
	e.ok("rm", "user", "anonuser")
	e.ok("volume", "rm", "busy")
	if out := e.ok("volume", "prune", "-f"); !strings.Contains(out, anon[0]) {
		t.Errorf("prune after rm: %q", out)
	}
	if got := volumeNames(e); len(got) != 0 {
		t.Errorf("volumes left: %v", got)
	}
}
