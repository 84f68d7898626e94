package engine

import (
	"encoding/json"
	"strings"
	"testing"

	"go.podman.io/storage"
	"go.podman.io/storage/types"

	"github.com/berth-containers/berth/tests/registry"
)

func TestImagesTagRmi(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref, id := configDigest(t, reg)
	e := newEngine(t)
	e.ok("pull", "-q", ref)
	e.ok("tag", ref, "mybox", "example.org/team/box:v2")

	out := e.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	for _, want := range []string{
		"docker.io/library/mybox:latest " + id[:12],
		"example.org/team/box:v2 " + id[:12],
		ref + " " + id[:12],
	} {
		if !strings.Contains(out, want) {
			t.Errorf("images: %q lacks %q", out, want)
		}
	}
	// The default table has docker's header; -q lists the image once.
	if out := e.ok("images"); !strings.HasPrefix(out, "REPOSITORY") || !strings.Contains(strings.SplitN(out, "\n", 2)[0], "IMAGE ID") {
		t.Errorf("images table: %q", out)
	}
	if out := e.ok("images", "-q"); strings.TrimSpace(out) != id[:12] {
		t.Errorf("images -q: %q", out)
	}
	if out := e.ok("images", "-q", "--no-trunc"); strings.TrimSpace(out) != "sha256:"+id {
		t.Errorf("images -q --no-trunc: %q", out)
	}
	if out := e.ok("images", "--format", "{{.Tag}}", "mybox"); strings.TrimSpace(out) != "latest" {
		t.Errorf("images mybox: %q", out)
	}
	if out := e.ok("images", "--filter", "reference=example.org/*/*", "--format", "{{.Repository}}"); strings.TrimSpace(out) != "example.org/team/box" {
		t.Errorf("reference filter: %q", out)
	}
	if out := e.ok("images", "--filter", "label=org.berth.test=busybox", "-q"); strings.TrimSpace(out) != id[:12] {
		t.Errorf("label filter: %q", out)
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(e.ok("images", "--format", "json"), "\n", 2)[0]), &row); err != nil || row["ID"] != id[:12] {
		t.Errorf("images --format json: %v %v", row, err)
	}
	if out := e.ok("history", "--format", "{{.ID}}|{{.CreatedBy}}", "mybox"); !strings.HasPrefix(out, id[:12]+"|") || !strings.Contains(out, "<missing>|") {
		t.Errorf("history: %q", out)
	}

	// By ID with several names: refused without -f.
	e.fail("must be forced", "rmi", id[:12])
	// By name: untag only.
	if out := e.ok("rmi", "mybox"); strings.TrimSpace(out) != "Untagged: docker.io/library/mybox:latest" {
		t.Errorf("rmi mybox: %q", out)
	}
	e.fail("no such image", "rmi", "mybox")
	e.ok("rmi", "example.org/team/box:v2")

	// An image a container uses is not removed, even with -f.
	withStore(t, e, func(s storage.Store) {
		if _, err := s.CreateContainer("", []string{"user"}, id, "", "", nil); err != nil {
			t.Fatal(err)
		}
	})
	e.fail("in use by a container", "rmi", "-f", ref)
	e.ok("image", "prune", "-a")
	if out := e.ok("images", "-q"); strings.TrimSpace(out) != id[:12] {
		t.Errorf("prune removed an image in use: %q", out)
	}
	if out := e.ok("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"); !strings.Contains(out, "Images 1 1") || !strings.Contains(out, "Containers 1 0") {
		t.Errorf("system df: %q", out)
	}
	withStore(t, e, func(s storage.Store) {
		cs, _ := s.Containers()
		for _, c := range cs {
			if err := s.DeleteContainer(c.ID); err != nil {
				t.Fatal(err)
			}
		}
	})
	out = e.ok("rmi", ref)
	if !strings.Contains(out, "Untagged: "+ref) || !strings.Contains(out, "Deleted: sha256:"+id) {
		t.Errorf("rmi: %q", out)
	}
	if out := e.ok("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Size}}"); !strings.Contains(out, "Images 0 0B") {
		t.Errorf("system df after rmi: %q", out)
	}
}

func TestImagePruneDangling(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref := reg.Ref("multi/arch:latest")
	reg.PushIndex(t, ref)
	e := newEngine(t)
	e.ok("pull", "-q", ref)
	e.ok("pull", "-q", "--platform", "linux/arm64", ref)
	out := e.ok("image", "prune")
	if !strings.Contains(out, "deleted: sha256:") || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("prune: %q", out)
	}
	if out := e.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); strings.TrimSpace(out) != ref {
		t.Errorf("after prune: %q", out)
	}
	if out := e.ok("image", "prune"); strings.Contains(out, "deleted:") {
		t.Errorf("second prune deleted: %q", out)
	}
}

// withStore opens the test engine's store in the test process, for what
// berth itself cannot do yet (make containers).
func withStore(t *testing.T, e *engine, fn func(storage.Store)) {
	t.Helper()
	s, err := storage.GetStore(types.StoreOptions{GraphRoot: e.root, RunRoot: e.runroot, GraphDriverName: "overlay"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(true)
	fn(s)
}
