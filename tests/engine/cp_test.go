package engine

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// untilOK retries a berth command until it succeeds (a container getting
// ready), for at most 10 s.
func untilOK(t testing.TB, e *engine, args ...string) string {
	t.Helper()
	var r result
	for i := 0; i < 200; i++ {
		if r = e.run(nil, args...); r.Code == 0 {
			return r.Stdout
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("berth %s never succeeded: %+v", strings.Join(args, " "), r)
	return ""
}

// tarEntries reads a tar stream: names to headers, and regular files'
// contents.
func tarEntries(t testing.TB, data []byte) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	hdrs, bodies := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hdrs, bodies
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		hdrs[h.Name] = h
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			bodies[h.Name] = string(b)
		}
	}
}

// catOut reads a file of a container with `berth cp CTR:PATH -`.
func catOut(t testing.TB, e *engine, ctr, p string) (string, *tar.Header) {
	t.Helper()
	hdrs, bodies := tarEntries(t, []byte(e.ok("cp", ctr+":"+p, "-")))
	name := filepath.Base(p)
	h, ok := hdrs[name]
	if !ok {
		t.Fatalf("cp %s:%s -: no entry %q in %v", ctr, p, name, hdrs)
	}
	return bodies[name], h
}

func readHost(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// layerOf is a container's layer ID, from the store's records.
func layerOf(t testing.TB, e *engine, id string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.root, "overlay-containers", "containers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cs []struct{ ID, Layer string }
	if err := json.Unmarshal(data, &cs); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == id {
			return c.Layer
		}
	}
	t.Fatalf("container %s not in the store", id)
	return ""
}

func layerMounted(t testing.TB, layer string) bool {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(mi), layer)
}

func TestCp(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	host := t.TempDir()
	marker := "/etc/berth-cp-marker"
	if _, err := os.Lstat(marker); err == nil {
		t.Skipf("host has %s", marker)
	}
	id := strings.TrimSpace(e.ok("run", "-d", "--name", "web", "busybox", "sh", "-c",
		"mkdir -p /data/sub && echo hello > /data/a.txt && echo deep > /data/sub/b.txt && chmod 0751 /data/sub && "+
			"echo inside > "+marker+" && ln -s "+marker+" /mlink && ln -s /etc/passwd /plink && "+
			"ln -s ../../../../etc /esc && ln -s "+host+"/victim /hostlink && touch /ready && exec sleep 1000"))
	untilOK(t, e, "cp", "web:/ready", filepath.Join(host, "ready"))
	ctrPasswd, _ := catOut(t, e, "web", "/etc/passwd")
	hostPasswd := readHost(t, "/etc/passwd")
	if ctrPasswd == hostPasswd {
		t.Fatal("the container's /etc/passwd is the host's: the test cannot tell them apart")
	}

	for _, state := range []string{"running", "stopped"} {
		t.Run(state, func(t *testing.T) {
			out := filepath.Join(host, state)
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			p := func(name string) string { return filepath.Join(out, name) }

			// Out: a file into a directory, and to a new name.
			e.ok("cp", "web:/data/a.txt", out)
			e.ok("cp", "web:/data/a.txt", p("renamed.txt"))
			if readHost(t, p("a.txt")) != "hello\n" || readHost(t, p("renamed.txt")) != "hello\n" {
				t.Error("file copied out: wrong content")
			}
			// A directory to a new path becomes that path, modes kept.
			e.ok("cp", "web:/data", p("newdata"))
			if readHost(t, p("newdata/sub/b.txt")) != "deep\n" {
				t.Error("directory copied out: wrong content")
			}
			if fi, err := os.Stat(p("newdata/sub")); err != nil || fi.Mode().Perm() != 0o751 {
				t.Errorf("mode of a directory copied out: %v %v", fi.Mode(), err)
			}
			// Into an existing directory: under its name; "/." its contents.
			os.Mkdir(p("exists"), 0o755)
			os.Mkdir(p("contents"), 0o755)
			e.ok("cp", "web:/data", p("exists"))
			e.ok("cp", "web:/data/.", p("contents"))
			if readHost(t, p("exists/data/a.txt")) != "hello\n" || readHost(t, p("contents/a.txt")) != "hello\n" {
				t.Error("dir into dir, or /. contents: wrong layout")
			}
			// A symbolic link is copied as such, or followed with -L, in
			// the container: the host's files are not read.
			e.ok("cp", "web:/mlink", p("mlink"))
			if target, err := os.Readlink(p("mlink")); err != nil || target != marker {
				t.Errorf("symlink copied out: %q %v", target, err)
			}
			e.ok("cp", "-L", "web:/mlink", p("followed"))
			e.ok("cp", "-L", "web:/plink", p("passwd-followed"))
			e.ok("cp", "web:/esc/passwd", p("passwd-escaped"))
			e.ok("cp", "web:/esc/berth-cp-marker", p("marker-escaped"))
			if readHost(t, p("followed")) != "inside\n" || readHost(t, p("marker-escaped")) != "inside\n" {
				t.Error("a link in the container was not followed inside it")
			}
			if readHost(t, p("passwd-followed")) != ctrPasswd || readHost(t, p("passwd-escaped")) != ctrPasswd {
				t.Error("a link to /etc/passwd or ../../../../etc read the host's /etc/passwd")
			}

			// In: a file, owned by root unless -a.
			in := p("in.txt")
			os.WriteFile(in, []byte("from host "+state+"\n"), 0o640)
			os.Chown(in, 1234, 5678)
			e.ok("cp", in, "web:/data/")
			body, h := catOut(t, e, "web", "/data/in.txt")
			if body != "from host "+state+"\n" || h.Uid != 0 || h.Gid != 0 || h.Mode&0o777 != 0o640 {
				t.Errorf("copied in: %q uid %d gid %d mode %o", body, h.Uid, h.Gid, h.Mode)
			}
			e.ok("cp", "-a", in, "web:/data/kept.txt")
			if _, h := catOut(t, e, "web", "/data/kept.txt"); h.Uid != 1234 || h.Gid != 5678 {
				t.Errorf("cp -a: uid %d gid %d", h.Uid, h.Gid)
			}
			// A directory in, to a new name.
			os.MkdirAll(p("tree/deeper"), 0o755)
			os.WriteFile(p("tree/deeper/f"), []byte("f\n"), 0o644)
			e.ok("cp", p("tree"), "web:/newtree-"+state)
			if body, _ := catOut(t, e, "web", "/newtree-"+state+"/deeper/f"); body != "f\n" {
				t.Errorf("directory copied in: %q", body)
			}
			// Through links in the container, writes stay in the container.
			e.ok("cp", in, "web:/esc/injected-"+state)
			if _, err := os.Lstat("/etc/injected-" + state); err == nil {
				os.Remove("/etc/injected-" + state)
				t.Fatal("cp wrote the host's /etc through ../../../../etc")
			}
			if body, _ := catOut(t, e, "web", "/etc/injected-"+state); body != "from host "+state+"\n" {
				t.Errorf("cp through ../../../../etc: %q", body)
			}
			e.ok("cp", in, "web:/mlink")
			if _, err := os.Lstat(marker); err == nil {
				t.Fatal("cp wrote the host's " + marker + " through a link")
			}
			if body, _ := catOut(t, e, "web", marker); body != "from host "+state+"\n" {
				t.Errorf("cp onto a link in the container: %q", body)
			}
			// A link to a host path that exists only on the host.
			os.WriteFile(filepath.Join(host, "victim"), []byte("untouched"), 0o644)
			e.fail("no such directory", "cp", in, "web:/hostlink/x")
			e.run(nil, "cp", in, "web:/hostlink")
			if readHost(t, filepath.Join(host, "victim")) != "untouched" {
				t.Fatal("cp wrote a host file through a link in the container")
			}
			// A link on the host: copied as a link, or followed with -L.
			os.Symlink(hostPasswdPath, p("hostlink"))
			e.ok("cp", p("hostlink"), "web:/data/")
			e.ok("cp", "-L", p("hostlink"), "web:/data/hostfollowed")
			if hdrs, _ := tarEntries(t, []byte(e.ok("cp", "web:/data/hostlink", "-"))); hdrs["hostlink"] == nil || hdrs["hostlink"].Linkname != hostPasswdPath {
				t.Errorf("host link copied in: %+v", hdrs["hostlink"])
			}
			if body, _ := catOut(t, e, "web", "/data/hostfollowed"); body != hostPasswd {
				t.Error("cp -L of a host link did not copy its target")
			}

			// "-": a tar stream out, and in (extracted in the directory).
			hdrs, bodies := tarEntries(t, []byte(e.ok("cp", "web:/data", "-")))
			if hdrs["data/"] == nil || bodies["data/a.txt"] != "hello\n" || bodies["data/sub/b.txt"] != "deep\n" {
				t.Errorf("cp to -: %v", hdrs)
			}
			stream := tarOfFiles(t, map[string]string{"streamed/x.txt": "x " + state + "\n"}, 42)
			if r := e.run(stream, "cp", "-", "web:/data"); r.Code != 0 {
				t.Fatalf("cp - : %+v", r)
			}
			if body, h := catOut(t, e, "web", "/data/streamed/x.txt"); body != "x "+state+"\n" || h.Uid != 0 {
				t.Errorf("cp from -: %q uid %d", body, h.Uid)
			}
			if r := e.run(stream, "cp", "-a", "-", "web:/data"); r.Code != 0 {
				t.Fatalf("cp -a - : %+v", r)
			}
			if _, h := catOut(t, e, "web", "/data/streamed/x.txt"); h.Uid != 42 {
				t.Errorf("cp -a from -: uid %d", h.Uid)
			}
			// A hostile stream: a link to / and a write through it stays in
			// the container; an entry climbing out is refused.
			evil := tarOf(t, []*tar.Header{
				{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: "/", Mode: 0o777},
				{Name: "evil/berth-cp-evil", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5},
			}, map[string]string{"evil/berth-cp-evil": "evil\n"})
			if r := e.run(evil, "cp", "-", "web:/data"); r.Code != 0 {
				t.Fatalf("cp of a stream through a link: %+v", r)
			}
			if _, err := os.Lstat("/berth-cp-evil"); err == nil {
				os.Remove("/berth-cp-evil")
				t.Fatal("a stream wrote the host's / through a link")
			}
			if body, _ := catOut(t, e, "web", "/berth-cp-evil"); body != "evil\n" {
				t.Errorf("stream through a link: %q", body)
			}
			climb := tarOf(t, []*tar.Header{{Name: "../../climb", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}}, map[string]string{"../../climb": "x"})
			if r := e.run(climb, "cp", "-", "web:/data"); r.Code != 125 || !strings.Contains(r.Stderr, "out of the destination") {
				t.Errorf("climbing stream: %+v", r)
			}

			// Docker's rules for files and directories.
			e.fail("cannot copy a directory to a file", "cp", p("tree"), "web:/data/a.txt")
			e.fail("not a directory", "cp", "web:/data/a.txt/", out)
			e.fail("not a directory", "cp", in, "web:/data/a.txt/")
			e.fail("no such directory", "cp", in, "web:/nosuchdir/")
			e.fail("no such directory", "cp", in, "web:/no/such/file")
			e.fail("must be a directory", "cp", "-", "web:/data/a.txt")
			e.fail("could not find the file /nope in container web", "cp", "web:/nope", out)
			e.fail("no such file or directory", "cp", p("nope"), "web:/data")
			// Overwriting a file with a file is fine.
			e.ok("cp", in, "web:/data/a.txt")
			e.ok("cp", "web:/data/a.txt", p("renamed.txt"))
			if readHost(t, p("renamed.txt")) != "from host "+state+"\n" {
				t.Error("overwrite: wrong content")
			}
			// As it was, for the next run.
			e.ok("cp", filepath.Join(out, "a.txt"), "web:/data/a.txt")
			os.WriteFile(p("marker"), []byte("inside\n"), 0o644)
			e.ok("cp", p("marker"), "web:"+marker)
		})
		if state == "running" {
			e.ok("kill", "web")
			e.ok("wait", "web")
		}
	}

	// Nothing of a stopped container stays mounted after cp.
	if layer := layerOf(t, e, id); layerMounted(t, layer) {
		t.Errorf("layer %s of the stopped container is still mounted after cp", layer)
	}

	// Failures: one line, exit 125, no mount left.
	for _, args := range [][]string{
		{"cp", "nosuch:/etc/passwd", host},
		{"cp", host, "nosuch:/tmp"},
		{"cp", "web:/nope/deeper", host},
		{"cp", "web:/etc", "web:/tmp"},
		{"cp", host, filepath.Join(host, "x")},
	} {
		r := e.run(nil, args...)
		if r.Code != 125 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 || !strings.HasPrefix(r.Stderr, "Error: ") {
			t.Errorf("berth %s: %+v", strings.Join(args, " "), r)
		}
	}
	e.fail("no such container", "cp", "nosuch:/etc/passwd", host)
	e.fail("copying between containers is not supported", "cp", "web:/etc", "web:/tmp")
	e.fail("must specify at least one container", "cp", host, filepath.Join(host, "x"))
	if layer := layerOf(t, e, id); layerMounted(t, layer) {
		t.Errorf("layer %s still mounted after failed copies", layer)
	}
	e.ok("rm", "web")
}

const hostPasswdPath = "/etc/passwd"

// tarOfFiles is a tar stream of regular files owned by uid.
func tarOfFiles(t testing.TB, files map[string]string, uid int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), Uid: uid, Gid: uid}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
