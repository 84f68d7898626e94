package engine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// tarFile is one entry of a tar built by a test; directories end in "/",
// link is a symlink target.
type tarFile struct {
	name, body, link string
	mode             int64
}

// makeTar builds a tar with fixed timestamps, so equal files give equal bytes.
func makeTar(t testing.TB, files []tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		switch {
		case f.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, f.link, 0
		case strings.HasSuffix(f.name, "/"):
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f.body); err != nil && h.Size > 0 {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// busyboxRootfs is a small rootfs tarball: the host's static busybox (Debian's
// busybox-static), a few applet links and files; extra files make it differ.
func busyboxRootfs(t testing.TB, extra ...tarFile) []byte {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("/bin/busybox missing (apt-get install -y busybox-static): %v", err)
	}
	files := []tarFile{{name: "bin/", mode: 0o755}, {name: "bin/busybox", mode: 0o755, body: string(bb)}}
	for _, a := range []string{"sh", "echo", "cat", "ls"} {
		files = append(files, tarFile{name: "bin/" + a, mode: 0o777, link: "busybox"})
	}
	files = append(files,
		tarFile{name: "etc/", mode: 0o755},
		tarFile{name: "etc/passwd", mode: 0o644, body: "root:x:0:0:root:/root:/bin/sh\n"},
		tarFile{name: "tmp/", mode: 0o1777},
		tarFile{name: "hello.txt", mode: 0o644, body: "hello\n"})
	return makeTar(t, append(files, extra...))
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// importImage imports rootfs from stdin and returns the printed image ID.
func (e *engine) importImage(rootfs []byte, args ...string) string {
	e.t.Helper()
	full := append([]string{"import"}, args...)
	r := e.run(rootfs, full...)
	id := strings.TrimSpace(r.Stdout)
	if r.Code != 0 || !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		e.t.Fatalf("berth %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(full, " "), r.Code, r.Stdout, r.Stderr)
	}
	return id
}

// storeCounts counts the store's layers and images from its own records,
// whatever the storage driver.
func (e *engine) storeCounts() (layers, images int) {
	e.t.Helper()
	count := func(glob string) int {
		paths, _ := filepath.Glob(filepath.Join(e.root, glob))
		n := 0
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				e.t.Fatal(err)
			}
			var recs []json.RawMessage
			if err := json.Unmarshal(b, &recs); err != nil {
				e.t.Fatalf("%s: %v", p, err)
			}
			n += len(recs)
		}
		return n
	}
	return count("*-layers/layers.json"), count("*-images/images.json")
}

// readTar returns the regular files of a tar (archives in these tests are small).
func readTar(t testing.TB, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if _, dup := files[h.Name]; dup {
			t.Errorf("%s: %s is in the archive twice", path, h.Name)
		}
		if files[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
}

// readDir returns the regular files under dir by relative name.
func readDir(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[rel], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// savedImage is one image as an archive describes it.
type savedImage struct {
	names  []string
	id     string // sha256 of the config
	config v1.ConfigFile
	layers [][]byte
}

// dockerArchiveImages reads a docker-archive's images in manifest.json order.
func dockerArchiveImages(t testing.TB, files map[string][]byte) []savedImage {
	t.Helper()
	var entries []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &entries); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	var out []savedImage
	for _, e := range entries {
		img := savedImage{names: e.RepoTags, id: sha(files[e.Config])}
		for _, l := range e.Layers {
			img.layers = append(img.layers, files[l])
		}
		out = append(out, img.withConfig(t, files[e.Config]))
	}
	return out
}

// ociImages reads an OCI layout's images in index.json order; each is named
// by its io.containerd.image.name annotation.
func ociImages(t testing.TB, files map[string][]byte) []savedImage {
	t.Helper()
	if got := string(files["oci-layout"]); !strings.Contains(got, `"imageLayoutVersion":"1.0.0"`) {
		t.Errorf("oci-layout is %q", got)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	blob := func(h v1.Hash) []byte {
		b, ok := files["blobs/sha256/"+h.Hex]
		if !ok || sha(b) != h.String() {
			t.Fatalf("blob %s missing or wrong", h)
		}
		return b
	}
	var out []savedImage
	for _, d := range idx.Manifests {
		var m v1.Manifest
		if err := json.Unmarshal(blob(d.Digest), &m); err != nil {
			t.Fatal(err)
		}
		img := savedImage{id: m.Config.Digest.String()}
		if n := d.Annotations["io.containerd.image.name"]; n != "" {
			img.names = []string{n}
			if _, tag, _ := strings.Cut(n[strings.LastIndex(n, "/"):], ":"); d.Annotations["org.opencontainers.image.ref.name"] != tag {
				t.Errorf("%s: ref.name annotation %q, want the tag %q", n, d.Annotations["org.opencontainers.image.ref.name"], tag)
			}
		}
		for _, l := range m.Layers {
			img.layers = append(img.layers, blob(l.Digest))
		}
		out = append(out, img.withConfig(t, blob(m.Config.Digest)))
	}
	return out
}

// withConfig parses the config and checks the layers are its diff IDs.
func (s savedImage) withConfig(t testing.TB, raw []byte) savedImage {
	t.Helper()
	if err := json.Unmarshal(raw, &s.config); err != nil {
		t.Fatalf("config of %v: %v", s.names, err)
	}
	if len(s.layers) != len(s.config.RootFS.DiffIDs) {
		t.Fatalf("image %v: %d layers, config lists %d", s.names, len(s.layers), len(s.config.RootFS.DiffIDs))
	}
	for i, l := range s.layers {
		if got := sha(l); got != s.config.RootFS.DiffIDs[i].String() {
			t.Errorf("image %v: layer %d is %s, config says %s", s.names, i, got, s.config.RootFS.DiffIDs[i])
		}
	}
	return s
}

func TestImportSaveLoadDockerArchive(t *testing.T) {
	e := newEngine(t)
	rootfs := busyboxRootfs(t)
	id := e.importImage(rootfs, "--change", `CMD ["sh"]`, "-c", "ENV A=b", "-m", "first import", "-", "test/bb:1")
	dir := e.dir
	archive := filepath.Join(dir, "bb.tar")
	e.ok("save", "-o", archive, "test/bb:1")

	imgs := dockerArchiveImages(t, readTar(t, archive))
	if len(imgs) != 1 {
		t.Fatalf("%d images in the archive, want 1", len(imgs))
	}
	img := imgs[0]
	cfg := img.config
	if img.id != id || !slices.Equal(img.names, []string{"localhost/test/bb:1"}) {
		t.Errorf("archive holds %s %v, want %s [localhost/test/bb:1]", img.id, img.names, id)
	}
	if !slices.Equal(cfg.Config.Cmd, []string{"sh"}) || !slices.Equal(cfg.Config.Env, []string{"A=b"}) {
		t.Errorf("config Cmd %q Env %q, want [sh] [A=b]", cfg.Config.Cmd, cfg.Config.Env)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || time.Since(cfg.Created.Time) > time.Hour {
		t.Errorf("config os %s arch %s created %s", cfg.OS, cfg.Architecture, cfg.Created)
	}
	if len(cfg.History) != 1 || cfg.History[0].CreatedBy != "berth import" || cfg.History[0].Comment != "first import" {
		t.Errorf("history %+v", cfg.History)
	}
	// The store gives the layer back byte for byte.
	if len(img.layers) != 1 || !bytes.Equal(img.layers[0], rootfs) {
		t.Fatalf("saved layer differs from the imported rootfs")
	}

	// Into a second engine and out again: same image, same bytes.
	e2 := newEngine(t)
	if out := e2.ok("load", "-i", archive); out != "Loaded image: localhost/test/bb:1\n" {
		t.Errorf("load printed %q", out)
	}
	archive2 := filepath.Join(e2.dir, "again.tar")
	e2.ok("save", "-o", archive2, "test/bb:1")
	again := dockerArchiveImages(t, readTar(t, archive2))
	if len(again) != 1 || again[0].id != id || sha(again[0].layers[0]) != sha(rootfs) {
		t.Errorf("round trip changed the image: %s, want %s", again[0].id, id)
	}

	// A gzip-compressed archive on stdin (as `docker save | gzip`), by ID:
	// loaded without a name.
	e3 := newEngine(t)
	byID := filepath.Join(dir, "byid.tar")
	e.ok("save", "-o", byID, id[len("sha256:"):19])
	b, err := os.ReadFile(byID)
	if err != nil {
		t.Fatal(err)
	}
	if imgs := dockerArchiveImages(t, readTar(t, byID)); len(imgs[0].names) != 0 {
		t.Errorf("saved by ID with RepoTags %v", imgs[0].names)
	}
	if r := e3.run(gzipped(t, b), "image", "load"); r.Code != 0 || r.Stdout != "Loaded image ID: "+id+"\n" {
		t.Errorf("load of gzip archive: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	// To stdout, as `docker save IMAGE > file`.
	if out := e.ok("save", "test/bb:1"); out != string(readFileT(t, archive)) {
		t.Errorf("save to stdout differs from save -o")
	}
}

func readFileT(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImportCompressed(t *testing.T) {
	e := newEngine(t)
	rootfs := busyboxRootfs(t)
	file := filepath.Join(e.dir, "rootfs.tar.gz")
	if err := os.WriteFile(file, gzipped(t, rootfs), 0o644); err != nil {
		t.Fatal(err)
	}
	id := e.importImage(nil, file, "docker.io/test/gz")
	archive := filepath.Join(e.dir, "gz.tar")
	e.ok("image", "save", "-o", archive, "test/gz")
	imgs := dockerArchiveImages(t, readTar(t, archive))
	if imgs[0].id != id || imgs[0].config.RootFS.DiffIDs[0].String() != sha(rootfs) {
		t.Errorf("imported gzip rootfs: image %s diff ID %s, want %s %s", imgs[0].id, imgs[0].config.RootFS.DiffIDs[0], id, sha(rootfs))
	}
	if !slices.Equal(imgs[0].names, []string{"docker.io/test/gz:latest"}) {
		t.Errorf("names %v", imgs[0].names)
	}
	// Untagged without a name.
	if id2 := e.importImage(rootfs, "-"); id2 == id {
		t.Errorf("second import has the first one's ID (created time should differ)")
	}
}

func TestSaveLoadOCI(t *testing.T) {
	e := newEngine(t)
	rootfs := busyboxRootfs(t)
	other := busyboxRootfs(t, tarFile{name: "etc/other", mode: 0o644, body: "other\n"})
	idA := e.importImage(rootfs, "-", "test/a:1")
	idB := e.importImage(other, "-c", "LABEL x=y", "-", "test/b:2")
	idC := e.importImage(rootfs, "-c", "USER 1000", "-", "test/c:3") // shares A's layer

	check := func(t *testing.T, imgs []savedImage) {
		t.Helper()
		want := map[string]string{"localhost/test/a:1": idA, "localhost/test/b:2": idB, "localhost/test/c:3": idC}
		if len(imgs) != len(want) {
			t.Fatalf("%d images, want %d", len(imgs), len(want))
		}
		for _, img := range imgs {
			if len(img.names) != 1 || want[img.names[0]] != img.id {
				t.Errorf("image %v is %s, want %s", img.names, img.id, want[img.names[0]])
			}
			body := rootfs
			if img.id == idB {
				body = other
			}
			if !bytes.Equal(img.layers[0], body) {
				t.Errorf("image %v: wrong layer", img.names)
			}
		}
	}
	loaded := func(out string) {
		t.Helper()
		for _, n := range []string{"localhost/test/a:1", "localhost/test/b:2", "localhost/test/c:3"} {
			if !strings.Contains(out, "Loaded image: "+n+"\n") {
				t.Errorf("load printed %q, want %s in it", out, n)
			}
		}
	}

	t.Run("oci-archive", func(t *testing.T) {
		archive := filepath.Join(e.dir, "oci.tar")
		e.ok("save", "--format", "oci-archive", "-o", archive, "test/a:1", "test/b:2", "test/c:3")
		files := readTar(t, archive) // fails on a blob written twice
		check(t, ociImages(t, files))
		if n := len(files); n != 2+3*2+2 { // layout, index; 3 configs, 3 manifests; 2 layers
			t.Errorf("%d files in the archive, want 10", n)
		}
		e2 := newEngine(t)
		loaded(e2.ok("load", "-i", archive))
		again := filepath.Join(e2.dir, "again.tar")
		e2.ok("save", "--format", "oci-archive", "-o", again, "test/a:1", "test/b:2", "test/c:3")
		check(t, ociImages(t, readTar(t, again)))
		if layers, images := e2.storeCounts(); layers != 2 || images != 3 {
			t.Errorf("store has %d layers and %d images, want 2 and 3", layers, images)
		}
	})

	t.Run("oci-dir", func(t *testing.T) {
		dir := filepath.Join(e.dir, "layout")
		e.ok("save", "--format", "oci-dir", "-o", dir, "test/a:1", "test/b:2", "test/c:3")
		check(t, ociImages(t, readDir(t, dir)))
		e2 := newEngine(t)
		loaded(e2.ok("load", "-i", dir))
		again := filepath.Join(e2.dir, "again")
		e2.ok("save", "--format", "oci-dir", "-o", again, "test/a:1", "test/b:2", "test/c:3")
		check(t, ociImages(t, readDir(t, again)))
		// A directory that exists and is not empty is not overwritten.
		e2.fail("save to "+again, "save", "--format", "oci-dir", "-o", again, "test/a:1")
	})

	t.Run("docker-archive", func(t *testing.T) {
		archive := filepath.Join(e.dir, "docker.tar")
		e.ok("save", "-o", archive, "test/a:1", "test/b:2", "test/c:3")
		files := readTar(t, archive)
		check(t, dockerArchiveImages(t, files))
		if n := len(files); n != 1+3+2 { // manifest.json; 3 configs; 2 layers
			t.Errorf("%d files in the archive, want 6", n)
		}
	})
}

// TestLoadForeignArchives loads archives other tools write: ggcr's (gzip
// layers named *.tar.gz) and, if skopeo is installed, skopeo's; and skopeo
// reads ours.
func TestLoadForeignArchives(t *testing.T) {
	e := newEngine(t)
	rootfs := busyboxRootfs(t)

	layer, err := tarball.LayerFromReader(bytes.NewReader(rootfs))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	ggcr := filepath.Join(e.dir, "ggcr.tar")
	tag, _ := name.NewTag("example.com/ggcr/img:v1")
	if err := tarball.WriteToFile(ggcr, tag, img); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("load", "-q", "-i", ggcr); out != "Loaded image: example.com/ggcr/img:v1\n" {
		t.Errorf("load printed %q", out)
	}
	cfgName, _ := img.ConfigName()
	saved := filepath.Join(e.dir, "saved.tar")
	e.ok("save", "-o", saved, "example.com/ggcr/img:v1")
	if got := dockerArchiveImages(t, readTar(t, saved)); got[0].id != cfgName.String() || !bytes.Equal(got[0].layers[0], rootfs) {
		t.Errorf("ggcr archive loaded as %s, want %s", got[0].id, cfgName)
	}

	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed (apt-get install -y skopeo)")
	}
	id := e.importImage(rootfs, "-c", "ENV A=b", "-", "test/sk:1")
	docker, oci := filepath.Join(e.dir, "d.tar"), filepath.Join(e.dir, "o.tar")
	e.ok("save", "-o", docker, "test/sk:1")
	e.ok("save", "--format", "oci-archive", "-o", oci, "test/sk:1")
	for _, ref := range []string{"docker-archive:" + docker, "oci-archive:" + oci} {
		out, err := exec.Command(skopeo, "inspect", ref).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, out)
		}
		var got struct {
			Layers []string
			Env    []string
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, out)
		}
		if !slices.Equal(got.Layers, []string{sha(rootfs)}) || !slices.Equal(got.Env, []string{"A=b"}) {
			t.Errorf("skopeo inspect %s: %s", ref, out)
		}
	}
	// skopeo rewrites our image into its own docker-archive and OCI archive
	// (gzip layers); berth loads both.
	viaSkopeo := filepath.Join(e.dir, "skopeo.tar")
	if out, err := exec.Command(skopeo, "copy", "oci-archive:"+oci, "docker-archive:"+viaSkopeo+":example.com/via/skopeo:2").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	ociGzip := filepath.Join(e.dir, "skopeo-oci.tar")
	if out, err := exec.Command(skopeo, "copy", "--dest-compress", "--dest-compress-format", "gzip",
		"docker-archive:"+docker, "oci-archive:"+ociGzip+":example.com/via/skopeo:oci").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	e2 := newEngine(t)
	if out := e2.ok("load", "-i", viaSkopeo); out != "Loaded image: example.com/via/skopeo:2\n" {
		t.Errorf("load printed %q", out)
	}
	if out := e2.ok("load", "-i", ociGzip); out != "Loaded image: example.com/via/skopeo:oci\n" {
		t.Errorf("load printed %q", out)
	}
	again := filepath.Join(e2.dir, "again.tar")
	e2.ok("save", "-o", again, "example.com/via/skopeo:2", "example.com/via/skopeo:oci")
	imgs := dockerArchiveImages(t, readTar(t, again))
	if imgs[0].id != id || !bytes.Equal(imgs[0].layers[0], rootfs) || !bytes.Equal(imgs[1].layers[0], rootfs) {
		t.Errorf("skopeo's archive loaded as %s, want %s", imgs[0].id, id)
	}
}

// hostileArchive is a docker-archive of one image with a good layer and a
// second one whose entry "../evil" climbs out of the layer.
func hostileArchive(t testing.TB) []byte {
	good := makeTar(t, []tarFile{{name: "ok.txt", mode: 0o644, body: "ok\n"}})
	bad := makeTar(t, []tarFile{{name: "fine.txt", mode: 0o644, body: "x"}, {name: "../evil", mode: 0o644, body: "evil\n"}})
	cfg, _ := json.Marshal(v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH, RootFS: v1.RootFS{Type: "layers",
		DiffIDs: []v1.Hash{mustHash(t, sha(good)), mustHash(t, sha(bad))}}})
	manifest := `[{"Config":"config.json","RepoTags":["test/evil:1"],"Layers":["good/layer.tar","bad/layer.tar"]}]`
	return makeTar(t, []tarFile{
		{name: "manifest.json", mode: 0o644, body: manifest},
		{name: "config.json", mode: 0o644, body: string(cfg)},
		{name: "good/layer.tar", mode: 0o644, body: string(good)},
		{name: "bad/layer.tar", mode: 0o644, body: string(bad)},
	})
}

func mustHash(t testing.TB, s string) v1.Hash {
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLoadFailures(t *testing.T) {
	e := newEngine(t)
	stdinFail := func(input []byte, want string, args ...string) {
		t.Helper()
		r := e.run(input, args...)
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		t.Logf("berth %s: %s", strings.Join(args, " "), lines[len(lines)-1])
		if r.Code != 125 || !strings.HasPrefix(lines[len(lines)-1], "Error: ") || !strings.Contains(lines[len(lines)-1], want) {
			t.Errorf("berth %s: exit %d, stderr %q; want 125 and an error with %q", strings.Join(args, " "), r.Code, r.Stderr, want)
		}
	}
	stdinFail(bytes.Repeat([]byte("this is not an archive\n"), 100), "not a tar archive", "load")
	stdinFail(gzipped(t, []byte("short")), "not a tar archive", "load")
	stdinFail(nil, "empty", "load")
	stdinFail(makeTar(t, []tarFile{{name: "hello.txt", mode: 0o644, body: "hi"}}), "no manifest.json or index.json", "load")
	stdinFail(makeTar(t, []tarFile{{name: "manifest.json", mode: 0o644, body: `[{"Config":"c.json","Layers":[]}]`}}),
		`"c.json": file does not exist`, "load")
	stdinFail(makeTar(t, []tarFile{{name: "index.json", mode: 0o644,
		body: `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":3,"digest":"sha256:` + strings.Repeat("ab", 32) + `"}]}`}}),
		"blobs/sha256/abab", "load")

	// A layer that climbs out: refused naming the entry, the good layer
	// before it rolled back, nothing written outside.
	stdinFail(hostileArchive(t), `"../evil"`, "load")
	if layers, images := e.storeCounts(); layers != 0 || images != 0 {
		t.Errorf("after a failed load the store has %d layers and %d images", layers, images)
	}
	for _, dir := range []string{e.dir, filepath.Dir(e.dir), "/"} {
		if _, err := os.Lstat(filepath.Join(dir, "evil")); err == nil {
			t.Errorf("%s/evil was written", dir)
		}
	}
	_ = filepath.WalkDir(e.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "evil" {
			t.Errorf("%s was written", p)
		}
		return nil
	})

	out := filepath.Join(e.dir, "out.tar")
	e.fail("no such image", "save", "-o", out, "nope:1")
	e.fail("unknown format", "save", "--format", "zip", "-o", out, "nope:1")
	if left, _ := filepath.Glob(out + "*"); len(left) > 0 {
		t.Errorf("failed save left %v", left)
	}
	e.fail("needs -o", "save", "--format", "oci-dir", "nope:1")

	stdinFail(bytes.Repeat([]byte("garbage!"), 100), "not a tar archive", "import", "-")
	stdinFail([]byte("tiny"), "not a tar archive", "import", "-")
	stdinFail(nil, "input is empty", "import", "-")
	stdinFail(makeTar(t, []tarFile{{name: "../x", mode: 0o644, body: "x"}}), `"../x"`, "import", "-")
	stdinFail(busyboxRootfs(t), "unknown instruction RUN", "import", "-c", "RUN true", "-")
	e.fail("no such file", "import", filepath.Join(e.dir, "missing.tar"))
	if layers, images := e.storeCounts(); layers != 0 || images != 0 {
		t.Errorf("after failed imports the store has %d layers and %d images", layers, images)
	}
}

// TestSaveLoadTiming measures save and load of a ~120 MB image when the
// benchmark rootfs (bench/debian-image.sh) is cached; it asserts nothing
// about time.
func TestSaveLoadTiming(t *testing.T) {
	var rootfs string
	for _, p := range []string{"/var/cache/berth-bench/debian.tar", "/var/cache/berth-bench/debian-bookworm-minbase.tar"} {
		if _, err := os.Stat(p); err == nil {
			rootfs = p
			break
		}
	}
	if rootfs == "" || testing.Short() {
		t.Skip("no cached Debian rootfs (bench/debian-image.sh), or -short")
	}
	e := newEngine(t)
	timed := func(what string, fn func()) {
		start := time.Now()
		fn()
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
	}
	timed("import", func() { e.ok("import", rootfs, "bench/debian") })
	for _, format := range []string{"docker-archive", "oci-archive"} {
		archive := filepath.Join(e.dir, format+".tar")
		timed("save "+format, func() { e.ok("save", "--format", format, "-o", archive, "bench/debian") })
		e2 := newEngine(t)
		timed("load "+format+" from a file", func() { e2.ok("load", "-i", archive) })
		e3 := newEngine(t)
		b := readFileT(t, archive)
		timed("load "+format+" from a pipe", func() {
			if r := e3.run(b, "load"); r.Code != 0 {
				t.Fatalf("load: %s", r.Stderr)
			}
		})
	}
}

// TestLoadOldDockerArchive loads the layout docker before 25 wrote: layers
// as ID/layer.tar, a layer shared by two images stored once and linked.
func TestLoadOldDockerArchive(t *testing.T) {
	e := newEngine(t)
	rootfs := busyboxRootfs(t)
	config := func(user string) string {
		b, _ := json.Marshal(v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH, Config: v1.Config{User: user},
			RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{mustHash(t, sha(rootfs))}}})
		return string(b)
	}
	cfg1, cfg2 := config("1"), config("2")
	archive := makeTar(t, []tarFile{
		{name: "aaa/", mode: 0o755},
		{name: "aaa/layer.tar", mode: 0o644, body: string(rootfs)},
		{name: "bbb/", mode: 0o755},
		{name: "bbb/layer.tar", link: "../aaa/layer.tar"},
		{name: "one.json", mode: 0o644, body: cfg1},
		{name: "two.json", mode: 0o644, body: cfg2},
		{name: "repositories", mode: 0o644, body: `{"busybox":{"one":"aaa"}}`},
		{name: "manifest.json", mode: 0o644, body: `[{"Config":"one.json","RepoTags":["busybox:one"],"Layers":["aaa/layer.tar"]},` +
			`{"Config":"./two.json","RepoTags":["busybox:two","other:latest"],"Layers":["bbb/layer.tar"]}]`},
	})
	r := e.run(archive, "load")
	want := "Loaded image: docker.io/library/busybox:one\nLoaded image: docker.io/library/busybox:two\nLoaded image: docker.io/library/other:latest\n"
	if r.Code != 0 || r.Stdout != want {
		t.Fatalf("load: exit %d\nstdout %q, want %q\nstderr %s", r.Code, r.Stdout, want, r.Stderr)
	}
	saved := filepath.Join(e.dir, "saved.tar")
	e.ok("save", "-o", saved, "busybox:one", "other")
	imgs := dockerArchiveImages(t, readTar(t, saved))
	if imgs[0].id != sha([]byte(cfg1)) || imgs[1].id != sha([]byte(cfg2)) || !slices.Equal(imgs[1].names, []string{"docker.io/library/other:latest"}) {
		t.Errorf("saved %s %s %v", imgs[0].id, imgs[1].id, imgs[1].names)
	}
	if layers, images := e.storeCounts(); layers != 1 || images != 2 {
		t.Errorf("store has %d layers and %d images, want 1 and 2", layers, images)
	}
}
