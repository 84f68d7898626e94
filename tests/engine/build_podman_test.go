package engine

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestBuildLikePodman builds each Dockerfile of tests/fixtures/build with
// berth and with podman build, and compares the image configs and the root
// filesystems. Where podman and docker differ, berth follows docker and the
// comparison leaves that out (docs/build.md lists each case).
func TestBuildLikePodman(t *testing.T) {
	for _, p := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not found (make deps installs it)", p)
		}
	}
	e := newEngine(t)
	withBusybox(t, e)
	pdir := filepath.Join(e.dir, "podman")
	if err := os.MkdirAll(filepath.Join(pdir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	podman := func(args ...string) *exec.Cmd {
		return exec.Command("podman", append([]string{"--root", filepath.Join(pdir, "root"), "--runroot", filepath.Join(pdir, "run"),
			"--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
			"--runtime", "runc", "--tmpdir", filepath.Join(pdir, "tmp")}, args...)...)
	}
	t.Cleanup(func() { _ = podman("rm", "-af").Run() })
	save := e.cmd("save", "busybox:latest")
	load := podman("load", "-q")
	var err error
	if load.Stdin, err = save.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if err := save.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("podman load: %v\n%s", err, out)
	}
	if err := save.Wait(); err != nil {
		t.Fatal(err)
	}
	dirs, err := filepath.Glob("../fixtures/build/*/Dockerfile")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no Dockerfiles in tests/fixtures/build: %v", err)
	}
	for _, df := range dirs {
		ctx := filepath.Dir(df)
		name := filepath.Base(ctx)
		t.Run(name, func(t *testing.T) {
			tag := "cmp-" + name
			e.ok("build", "-q", "--network", "none", "-t", tag, ctx)
			if out, err := podman("build", "-q", "--format", "docker", "--network", "none", "-t", tag, ctx).CombinedOutput(); err != nil {
				t.Fatalf("podman build: %v\n%s", err, out)
			}
			berthCfg := e.ok("image", "inspect", "--format", "{{json .Config}}", tag)
			podmanCfg := output(t, podman("image", "inspect", "--format", "{{json .Config}}", tag))
			compareConfigs(t, berthCfg, podmanCfg)
			// podman shows the health check beside the OCI config.
			var bh, ph any
			mustJSON(t, e.ok("image", "inspect", "--format", "{{json .Config.Healthcheck}}", tag), &bh)
			mustJSON(t, output(t, podman("image", "inspect", "--format", "{{json .HealthCheck}}", tag)), &ph)
			if !reflect.DeepEqual(bh, ph) {
				t.Errorf("Healthcheck: berth %v, podman %v", bh, ph)
			}
			e.ok("create", "--name", tag, tag)
			defer e.ok("rm", tag)
			if out, err := podman("create", "--name", tag, tag).CombinedOutput(); err != nil {
				t.Fatalf("podman create: %v\n%s", err, out)
			}
			bfs := treeOf(t, e.cmd("export", tag))
			pfs := treeOf(t, podman("export", tag))
			for _, p := range podmanOnly(berthCfg) {
				delete(pfs, p)
			}
			for p, be := range bfs {
				if pe, ok := pfs[p]; !ok {
					t.Errorf("%s: only berth's image has it (%s)", p, be)
				} else if pe != be {
					t.Errorf("%s: berth %s, podman %s", p, be, pe)
				}
			}
			for p, pe := range pfs {
				if _, ok := bfs[p]; !ok {
					t.Errorf("%s: only podman's image has it (%s)", p, pe)
				}
			}
		})
	}
}

// podmanOnly are the paths buildah leaves in an image that docker does not:
// the mountpoints of its RUN containers and the image's volume directories.
func podmanOnly(cfg string) []string {
	paths := []string{"etc/hostname", "run/", "etc/hosts", "etc/resolv.conf"}
	var c struct{ Volumes map[string]struct{} }
	_ = json.Unmarshal([]byte(cfg), &c)
	for v := range c.Volumes {
		paths = append(paths, strings.TrimPrefix(v, "/")+"/")
	}
	return paths
}

func compareConfigs(t *testing.T, berth, podman string) {
	t.Helper()
	var b, p map[string]any
	mustJSON(t, berth, &b)
	mustJSON(t, podman, &p)
	if l, ok := p["Labels"].(map[string]any); ok {
		delete(l, "io.buildah.version")
		if len(l) == 0 {
			delete(p, "Labels")
		}
	}
	// Only docker's fields that podman's OCI view shows.
	for _, k := range []string{"Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes", "StopSignal"} {
		if !reflect.DeepEqual(b[k], p[k]) {
			t.Errorf("%s: berth %v, podman %v", k, b[k], p[k])
		}
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
}

func output(t *testing.T, c *exec.Cmd) string {
	t.Helper()
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(c.Args, " "), err)
	}
	return string(out)
}

// treeOf reads an exported filesystem: each path's type, mode, owner, size
// and link target (no times).
func treeOf(t *testing.T, c *exec.Cmd) map[string]string {
	t.Helper()
	r, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	tree := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if name == "" {
			continue
		}
		size := h.Size
		if h.Typeflag == tar.TypeLink {
			size = 0
		}
		tree[name] = fmt.Sprintf("type %c mode %o owner %d:%d size %d link %q", h.Typeflag, h.Mode&0o7777, h.Uid, h.Gid, size, h.Linkname)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("%s: %v", strings.Join(c.Args, " "), err)
	}
	if len(tree) == 0 {
		t.Fatalf("%s exported nothing", strings.Join(c.Args, " "))
	}
	return tree
}
