package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/tests/registry"
)

// tarOf writes headers (with bodies for regular files) into a tar stream.
func tarOf(t testing.TB, entries []*tar.Header, bodies map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(bodies[h.Name]))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, bodies[h.Name]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// imageOf makes a linux/amd64 image of the given layer tars.
func imageOf(t testing.TB, layers ...[]byte) v1.Image {
	t.Helper()
	img := empty.Image
	for _, data := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestLayerContentKept(t *testing.T) {
	base := tarOf(t, []*tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/gone", Typeflag: tar.TypeReg},
		{Name: "opaque/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "opaque/old", Typeflag: tar.TypeReg},
	}, map[string]string{"etc/gone": "x", "opaque/old": "old"})
	top := tarOf(t, []*tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/.wh.gone", Typeflag: tar.TypeReg},
		{Name: "opaque/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "opaque/.wh..wh..opq", Typeflag: tar.TypeReg},
		{Name: "opaque/new", Typeflag: tar.TypeReg},
		{Name: "owned", Typeflag: tar.TypeReg, Uid: 1234, Gid: 5678, Mode: 0o4750},
		// As tar writes them: a hardlink's header repeats its target's owner and mode.
		{Name: "hard", Typeflag: tar.TypeLink, Linkname: "owned", Uid: 1234, Gid: 5678, Mode: 0o4750},
		{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666},
		{Name: "xattr", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.user.berth": "kept"}},
		{Name: "abs-link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
	}, map[string]string{"opaque/new": "new", "owned": "secret", "xattr": "x"})
	reg := registry.Start(t, registry.Options{})
	ref := reg.Ref("layers/kept:latest")
	reg.Push(t, ref, imageOf(t, base, top))
	e := newEngine(t)
	e.ok("pull", "-q", ref)

	// The top layer's directory in the overlay store.
	topLayer := strings.TrimSpace(e.ok("image", "inspect", "--format", "{{.GraphDriver.Data.UpperDir}}", ref))
	if topLayer == "" {
		t.Fatal("no UpperDir in inspect")
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(topLayer, "etc/gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout etc/gone: not an overlay whiteout (0/0 char device): %v %+v", err, st)
	}
	if v, err := getxattr(filepath.Join(topLayer, "opaque"), "trusted.overlay.opaque"); err != nil || v != "y" {
		t.Errorf("opaque dir: xattr %q %v", v, err)
	}
	if err := unix.Lstat(filepath.Join(topLayer, "owned"), &st); err != nil || st.Uid != 1234 || st.Gid != 5678 || st.Mode&0o7777 != 0o4750 {
		t.Errorf("owned: %+v %v", st, err)
	}
	var hard unix.Stat_t
	if err := unix.Lstat(filepath.Join(topLayer, "hard"), &hard); err != nil || hard.Ino != st.Ino {
		t.Errorf("hardlink not kept: %v", err)
	}
	if err := unix.Lstat(filepath.Join(topLayer, "null"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("device node: %+v %v", st, err)
	}
	if v, err := getxattr(filepath.Join(topLayer, "xattr"), "user.berth"); err != nil || v != "kept" {
		t.Errorf("xattr: %q %v", v, err)
	}
	if target, err := os.Readlink(filepath.Join(topLayer, "abs-link")); err != nil || target != "/etc/passwd" {
		t.Errorf("absolute symlink: %q %v", target, err)
	}
}

func getxattr(path, attr string) (string, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(path, attr, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// TestHostileLayers pulls layers that try to write outside their root: the
// pull fails naming the entry, nothing lands outside, nothing is stored.
func TestHostileLayers(t *testing.T) {
	outside := t.TempDir()
	cases := []struct {
		name, entry string
		headers     []*tar.Header
	}{
		{"dotdot", "../evil", []*tar.Header{{Name: "../evil", Typeflag: tar.TypeReg}}},
		{"absolute", "/evil", []*tar.Header{{Name: "/evil", Typeflag: tar.TypeReg}}},
		{"symlink parent", "lnk/pwned", []*tar.Header{
			{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "lnk/pwned", Typeflag: tar.TypeReg},
		}},
		{"hardlink out", "hard", []*tar.Header{{Name: "hard", Typeflag: tar.TypeLink, Linkname: "../../../../etc/passwd"}}},
		{"symlink climbing out", "up", []*tar.Header{{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "../../../.."}}},
	}
	reg := registry.Start(t, registry.Options{})
	e := newEngine(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			headers := append([]*tar.Header{{Name: "ok", Typeflag: tar.TypeReg}}, c.headers...)
			ref := reg.Ref("hostile/case:" + string(rune('a'+i)))
			reg.Push(t, ref, imageOf(t, tarOf(t, headers, nil)))
			msg := e.fail(`layer entry "`+c.entry+`"`, "pull", ref)
			t.Log(msg)
		})
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files written outside the layer: %v", entries)
	}
	for _, p := range []string{filepath.Join(e.root, "..", "evil"), "/evil"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists", p)
		}
	}
	if out := e.ok("images", "-q"); out != "" {
		t.Errorf("images stored: %q", out)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.root, "overlay")); countLayers(entries) != 0 {
		t.Errorf("layers left: %d", countLayers(entries))
	}
}

// throttle is a proxy to a registry that sends blobs slowly and says when
// the first blob transfer has begun.
func throttle(t *testing.T, target string) (host string, started <-chan struct{}) {
	u, _ := url.Parse("http://" + target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	ch := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
			once.Do(func() { close(ch) })
			proxy.ServeHTTP(slowWriter{w}, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), ch
}

type slowWriter struct{ http.ResponseWriter }

func (s slowWriter) Write(p []byte) (int, error) {
	// Small writes with pauses: a 1 MiB blob takes seconds.
	n := 0
	for len(p) > 0 {
		k := min(len(p), 16<<10)
		m, err := s.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		if f, ok := s.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		time.Sleep(20 * time.Millisecond)
		p = p[k:]
	}
	return n, nil
}

// TestKilledPull kills berth in the middle of a pull; the store stays
// usable, and the next pull completes and leaves no stray layers.
func TestKilledPull(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref, id := configDigest(t, reg)
	host, started := throttle(t, reg.Host)
	slowRef := host + strings.TrimPrefix(ref, reg.Host)
	e := newEngine(t)
	e.ok("images") // make the store before the kill, as a real user's exists

	cmd := e.cmd("pull", slowRef)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("pull never fetched a blob")
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	if out := e.ok("images", "-q"); out != "" {
		t.Errorf("images after killed pull: %q", out)
	}
	if got := strings.TrimSpace(e.ok("pull", "-q", ref)); got != id {
		t.Errorf("pull after kill: %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.root, "overlay")); countLayers(entries) != 1 {
		t.Errorf("layers after kill and pull: %d, want 1", countLayers(entries))
	}
	if entries, _ := os.ReadDir(filepath.Join(e.root, "tmp")); len(entries) != 0 {
		t.Errorf("spool files left: %v", entries)
	}
}

// TestConcurrentPulls runs several berth processes on one store at once.
func TestConcurrentPulls(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref, id := configDigest(t, reg)
	for _, tag := range []string{"a", "b", "c"} {
		reg.Push(t, reg.Ref("test/busybox:"+tag), registry.BusyboxImage(t))
	}
	e := newEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for _, r := range []string{ref, reg.Ref("test/busybox:a"), reg.Ref("test/busybox:b"), reg.Ref("test/busybox:c")} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			c := e.cmd("pull", "-q", r)
			if out, err := exec.CommandContext(ctx, c.Path, c.Args[1:]...).CombinedOutput(); err != nil {
				errs <- string(out)
			}
		}()
		go func() {
			defer wg.Done()
			c := e.cmd("images")
			if out, err := exec.CommandContext(ctx, c.Path, c.Args[1:]...).CombinedOutput(); err != nil {
				errs <- string(out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Errorf("concurrent command failed: %s", msg)
	}
	if out := e.ok("images", "--format", "{{.ID}} {{.Tag}}"); strings.Count(out, id[:12]) != 4 {
		t.Errorf("images: %q", out)
	}
}
