package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-containers/berth/tests/registry"
)

// configDigest is the image ID berth must report for img.
func configDigest(t testing.TB, reg *registry.Registry) (ref, id string) {
	t.Helper()
	img := registry.BusyboxImage(t)
	ref = reg.Ref("test/busybox:1.0")
	reg.Push(t, ref, img)
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return ref, h.Hex
}

func TestPullByTagAndDigest(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref, id := configDigest(t, reg)
	e := newEngine(t)

	r := e.run(nil, "pull", ref)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != id {
		t.Fatalf("pull: exit %d stdout %q, want the image ID %s\nstderr: %s", r.Code, r.Stdout, id, r.Stderr)
	}
	// Not a terminal: one plain line per layer.
	if !strings.Contains(r.Stderr, "Pull complete") {
		t.Errorf("pull progress: %q", r.Stderr)
	}
	// A second pull finds the layer stored and downloads nothing.
	r = e.run(nil, "pull", ref)
	if r.Code != 0 || !strings.Contains(r.Stderr, "Already exists") || strings.Contains(r.Stderr, "Pull complete") {
		t.Errorf("second pull: exit %d stderr %q", r.Code, r.Stderr)
	}

	var inspect []struct {
		ID          string `json:"Id"`
		RepoTags    []string
		RepoDigests []string
		Config      struct{ Cmd []string }
		RootFS      struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(e.ok("image", "inspect", ref)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("inspect: %v %v", err, inspect)
	}
	in := inspect[0]
	if in.ID != "sha256:"+id || len(in.RepoTags) != 1 || in.RepoTags[0] != ref || len(in.RepoDigests) != 1 ||
		len(in.RootFS.Layers) != 1 || strings.Join(in.Config.Cmd, " ") != "sh" {
		t.Errorf("inspect: %+v", in)
	}

	// By digest, from the RepoDigests docker shows.
	e2 := newEngine(t)
	if got := strings.TrimSpace(e2.ok("pull", "-q", in.RepoDigests[0])); got != id {
		t.Errorf("pull by digest: %q, want %s", got, id)
	}
	if out := e2.ok("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"); !strings.Contains(out, "<none> "+strings.SplitN(in.RepoDigests[0], "@", 2)[1]) {
		t.Errorf("images --digests after pull by digest: %q", out)
	}
	if out := e2.ok("image", "inspect", "--format", "{{.Id}}", in.RepoDigests[0]); strings.TrimSpace(out) != "sha256:"+id {
		t.Errorf("inspect by digest: %q", out)
	}
}

func TestPullManifestList(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref := reg.Ref("multi/arch:latest")
	reg.PushIndex(t, ref)
	e := newEngine(t)
	e.ok("pull", "-q", ref)
	if arch := e.ok("image", "inspect", "--format", "{{.Architecture}}", ref); strings.TrimSpace(arch) != "amd64" {
		t.Errorf("default platform: %q", arch)
	}
	e.ok("pull", "-q", "--platform", "linux/arm64", ref)
	if arch := e.ok("image", "inspect", "--format", "{{.Architecture}}", ref); strings.TrimSpace(arch) != "arm64" {
		t.Errorf("--platform linux/arm64: %q", arch)
	}
	// The amd64 image lost its name to the arm64 one and is dangling now.
	if out := e.ok("images", "-q", "--filter", "dangling=true"); len(strings.Fields(out)) != 1 {
		t.Errorf("dangling images: %q", out)
	}
	e.fail("invalid platform", "pull", "--platform", "linux", ref)
}

func TestPullFailures(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	e := newEngine(t)
	e.fail("invalid reference format", "pull", "UPPER/case:x")
	e.fail("manifest unknown", "pull", reg.Ref("nothing/here:latest"))
	e.fail("invalid --format template", "images", "--format", "{{.Nope")
	e.fail("no such image", "image", "inspect", "busybox")
	e.fail("invalid filter", "images", "--filter", "colour=red")
	if out := e.ok("images", "-q"); out != "" {
		t.Errorf("store not empty after failed pulls: %q", out)
	}
	// Nothing half-stored: no layer directories either.
	if entries, _ := os.ReadDir(filepath.Join(e.root, "overlay")); countLayers(entries) != 0 {
		t.Errorf("layers left after failed pulls: %v", entries)
	}
}

// countLayers counts the layer directories of an overlay store, named by
// their 64-hex IDs (beside "l", "tempdirs" and others).
func countLayers(entries []os.DirEntry) int {
	n := 0
	for _, e := range entries {
		if e.IsDir() && len(e.Name()) == 64 {
			n++
		}
	}
	return n
}
