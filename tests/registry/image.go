package registry

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxPath is the host's static busybox (Debian's busybox-static) that
// goes into the fixture image.
const BusyboxPath = "/bin/busybox"

// epoch is every fixture timestamp, so digests do not change between runs.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// BusyboxApplets are the commands linked to busybox in the fixture image.
var BusyboxApplets = []string{"sh", "echo", "true", "cat", "ls", "sleep"}

type file struct {
	name string
	mode int64
	body string // for symlinks: the target
	link bool
}

// layer builds a deterministic gzip OCI layer holding files (dirs end in /).
func layer(t testing.TB, files []file) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case f.link:
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.body
		case f.name[len(f.name)-1] == '/':
			h.Typeflag = tar.TypeDir
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// BusyboxLayer returns a gzip layer with the host's /bin/busybox, the
// BusyboxApplets linked to it, /etc/passwd and /etc/group (root and "app",
// uid/gid 1000), an empty /tmp and /hello.txt ("hello\n"). It skips the test
// if busybox-static is not installed.
func BusyboxLayer(t testing.TB) v1.Layer {
	t.Helper()
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Skipf("registry: %s missing (apt-get install -y busybox-static): %v", BusyboxPath, err)
	}
	files := []file{{name: "bin/", mode: 0o755}, {name: "bin/busybox", mode: 0o755, body: string(bb)}}
	for _, a := range BusyboxApplets {
		files = append(files, file{name: "bin/" + a, mode: 0o777, body: "busybox", link: true})
	}
	files = append(files,
		file{name: "etc/", mode: 0o755},
		file{name: "etc/passwd", mode: 0o644, body: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"},
		file{name: "etc/group", mode: 0o644, body: "root:x:0:\napp:x:1000:\n"},
		file{name: "tmp/", mode: 0o1777},
		file{name: "hello.txt", mode: 0o644, body: "hello\n"},
	)
	return layer(t, files)
}

// image builds an OCI linux/arch image from layers, one History entry each
// (createdBy[i]), plus empty-layer History entries for the config.
func image(t testing.TB, arch string, labels map[string]string, layers []v1.Layer, createdBy []string) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for i, l := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{
			Created: v1.Time{Time: epoch}, CreatedBy: createdBy[i],
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", arch, v1.Time{Time: epoch}
	cf.Config.Cmd = []string{"sh"}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Labels = labels
	history := []string{"ENV " + cf.Config.Env[0]}
	for k, v := range labels { // one label per image: map order does not matter
		history = append(history, "LABEL "+k+"="+v)
	}
	for _, c := range append(history, `CMD ["sh"]`) {
		cf.History = append(cf.History, v1.History{Created: v1.Time{Time: epoch}, CreatedBy: c, EmptyLayer: true})
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// BusyboxImage returns a linux/amd64 OCI image of BusyboxLayer with Cmd
// ["sh"], a PATH, the label org.berth.test=busybox and History entries.
func BusyboxImage(t testing.TB) v1.Image {
	t.Helper()
	return image(t, "amd64", map[string]string{"org.berth.test": "busybox"},
		[]v1.Layer{BusyboxLayer(t)}, []string{"ADD busybox rootfs /"})
}

// arm64Image is BusyboxImage told apart for index tests: arch arm64, label
// org.berth.test=busybox-arm64 and a second layer with /arch.txt ("arm64").
// Its busybox is still the host's amd64 one: it is for pull tests, not runs.
func arm64Image(t testing.TB) v1.Image {
	t.Helper()
	arch := layer(t, []file{{name: "arch.txt", mode: 0o644, body: "arm64"}})
	return image(t, "arm64", map[string]string{"org.berth.test": "busybox-arm64"},
		[]v1.Layer{BusyboxLayer(t), arch}, []string{"ADD busybox rootfs /", "ADD arch.txt /"})
}

// remoteOptions are r's credentials for remote calls bound to t's lifetime.
func (r *Registry) remoteOptions(t testing.TB) []remote.Option {
	return []remote.Option{remote.WithAuth(r.Authenticator()), remote.WithContext(t.Context())}
}

func parse(t testing.TB, ref string) name.Reference {
	t.Helper()
	n, err := name.ParseReference(ref, name.Insecure) // the registry speaks plain HTTP
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Push writes img to ref (e.g. r.Ref("busybox:latest")) with r's credentials
// and returns its manifest digest.
func (r *Registry) Push(t testing.TB, ref string, img v1.Image) v1.Hash {
	t.Helper()
	if err := remote.Write(parse(t, ref), img, r.remoteOptions(t)...); err != nil {
		t.Fatalf("registry: push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// PushIndex writes an OCI index to ref with BusyboxImage as linux/amd64 and a
// distinguishable linux/arm64 image (see arm64Image) and returns its digest.
func (r *Registry) PushIndex(t testing.TB, ref string) v1.Hash {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range []struct {
		arch string
		img  v1.Image
	}{{"amd64", BusyboxImage(t)}, {"arm64", arm64Image(t)}} {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: p.img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: p.arch},
		}})
	}
	if err := remote.WriteIndex(parse(t, ref), idx, r.remoteOptions(t)...); err != nil {
		t.Fatalf("registry: push index %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
