package engine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-containers/berth/tests/registry"
)

// TestVFSDriver uses the vfs driver, chosen by flag and by the config file.
func TestVFSDriver(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref, id := configDigest(t, reg)
	e := newEngine(t)
	if got := strings.TrimSpace(e.ok("--storage-driver", "vfs", "pull", "-q", ref)); got != id {
		t.Fatalf("pull with vfs: %q", got)
	}
	if _, err := os.Stat(filepath.Join(e.root, "vfs")); err != nil {
		t.Errorf("no vfs directory: %v", err)
	}
	if d := e.ok("--storage-driver", "vfs", "image", "inspect", "--format", "{{.GraphDriver.Name}}", ref); strings.TrimSpace(d) != "vfs" {
		t.Errorf("driver: %q", d)
	}

	e2 := newEngine(t)
	if err := os.WriteFile(e2.Config, []byte("[storage]\ndriver = \"vfs\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e2.ok("pull", "-q", ref)
	if d := e2.ok("image", "inspect", "--format", "{{.GraphDriver.Name}}", ref); strings.TrimSpace(d) != "vfs" {
		t.Errorf("driver from berth.conf: %q", d)
	}
	if err := os.WriteFile(e2.Config, []byte("[storage]\ndrivr = \"vfs\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e2.fail(`unknown key "storage.drivr"`, "images")
	e2.fail("read config", "--config", "/nonexistent/berth.conf", "images")
}

// TestCorruptBlob serves a layer whose bytes do not match its digest.
func TestCorruptBlob(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref, _ := configDigest(t, reg)
	l, err := registry.BusyboxImage(t).Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := l[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(reg.Dir, "docker/registry/v2/blobs/sha256", d.Hex[:2], d.Hex, "data")
	blob, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	blob[len(blob)/2] ^= 0xff
	if err := os.WriteFile(data, blob, 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t)
	// gzip's own checksum or the digest check catches it; the error names the layer.
	e.fail("layer "+d.String(), "pull", ref)
	if out := e.ok("images", "-q"); out != "" {
		t.Errorf("image stored from a corrupt blob: %q", out)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.root, "overlay")); countLayers(entries) != 0 {
		t.Errorf("layers left: %d", countLayers(entries))
	}

	// A well-formed layer in its place: only the digest check can tell.
	var other bytes.Buffer
	zw := gzip.NewWriter(&other)
	zw.Write(tarOf(t, []*tar.Header{{Name: "impostor", Typeflag: tar.TypeReg}}, nil))
	zw.Close()
	if err := os.WriteFile(data, other.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	msg := e.fail("layer "+d.String(), "pull", ref)
	if !strings.Contains(msg, "digest") && !strings.Contains(msg, "size") {
		t.Errorf("impostor layer: %q does not say what is wrong", msg)
	}
	if out := e.ok("images", "-q"); out != "" {
		t.Errorf("image stored from an impostor blob: %q", out)
	}
}

// TestProgressBars pulls on a terminal (script(1) gives berth a pty): one
// bar per layer.
func TestProgressBars(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) not found (util-linux)")
	}
	reg := registry.Start(t, registry.Options{})
	ref, _ := configDigest(t, reg)
	e := newEngine(t)
	c := e.cmd("pull", ref)
	cmdline := strings.Join(append([]string{c.Path}, c.Args[1:]...), " ")
	// script's pty has no size unless told; mpb needs a width.
	script := exec.Command("script", "-qfec", "stty cols 120 rows 40; "+cmdline, "/dev/null")
	script.Env = c.Env
	out, err := script.CombinedOutput()
	if err != nil {
		t.Fatalf("pull on a terminal: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Copying blob") || !strings.Contains(string(out), "done") {
		t.Errorf("no progress bar on a terminal: %q", out)
	}
}
