package registry

import (
	"archive/tar"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// files reads a flattened image into name -> content (symlinks: "-> target").
func files(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	m := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return m
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if h.Typeflag == tar.TypeSymlink {
			b = []byte("-> " + h.Linkname)
		}
		m[h.Name] = string(b)
	}
}

func TestBusyboxImage(t *testing.T) {
	a, b := BusyboxImage(t), BusyboxImage(t)
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("not deterministic: %s != %s", da, db)
	}
	fs := files(t, a)
	for _, app := range BusyboxApplets {
		if fs["bin/"+app] != "-> busybox" {
			t.Errorf("bin/%s = %q, want symlink to busybox", app, fs["bin/"+app])
		}
	}
	if fs["hello.txt"] != "hello\n" || !strings.Contains(fs["etc/passwd"], "app:x:1000:1000:") ||
		!strings.HasPrefix(fs["bin/busybox"], "\x7fELF") {
		t.Errorf("bad content: hello=%q passwd=%q", fs["hello.txt"], fs["etc/passwd"])
	}
	cf, _ := a.ConfigFile()
	if cf.OS != "linux" || cf.Architecture != "amd64" || cf.Config.Cmd[0] != "sh" || len(cf.History) < 2 {
		t.Errorf("bad config: %+v", cf)
	}
}

func TestPushPull(t *testing.T) {
	for _, auth := range []bool{false, true} {
		t.Run(map[bool]string{false: "anonymous", true: "auth"}[auth], func(t *testing.T) {
			r := Start(t, Options{Auth: auth})
			if auth != (r.Password != "") {
				t.Fatalf("Auth=%v but password %q", auth, r.Password)
			}
			opts := []remote.Option{remote.WithAuth(r.Authenticator())}

			// Single image: the pulled manifest and config are the pushed ones.
			ref := r.Ref("busybox:latest")
			want := r.Push(t, ref, BusyboxImage(t))
			img, err := remote.Image(parse(t, ref), opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := img.Digest(); got != want {
				t.Errorf("pulled %s, pushed %s", got, want)
			}
			if fs := files(t, img); fs["hello.txt"] != "hello\n" {
				t.Errorf("pulled hello.txt = %q", fs["hello.txt"])
			}

			// Index: both platforms there, arm64 told apart by label and file.
			ref = r.Ref("multi:1")
			want = r.PushIndex(t, ref)
			desc, err := remote.Get(parse(t, ref), opts...)
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != want || desc.MediaType != types.OCIImageIndex {
				t.Errorf("index %s %s, want %s", desc.Digest, desc.MediaType, want)
			}
			arm, err := remote.Image(parse(t, ref), append(opts, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))...)
			if err != nil {
				t.Fatal(err)
			}
			cf, _ := arm.ConfigFile()
			if fs := files(t, arm); cf.Architecture != "arm64" || cf.Config.Labels["org.berth.test"] != "busybox-arm64" || fs["arch.txt"] != "arm64" {
				t.Errorf("arm64 variant: arch %q labels %v arch.txt %q", cf.Architecture, cf.Config.Labels, fs["arch.txt"])
			}
			amd, err := remote.Image(parse(t, ref), append(opts, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))...)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := amd.Digest(); got != r.Push(t, r.Ref("busybox:again"), BusyboxImage(t)) {
				t.Errorf("amd64 variant %s is not BusyboxImage", got)
			}

			// skopeo (containers/image) is another client that must read it.
			if _, err := exec.LookPath("skopeo"); err == nil {
				args := []string{"inspect", "--raw", "--tls-verify=false", "docker://" + ref}
				if auth {
					args = append(args[:3], "--creds", r.User+":"+r.Password, args[3])
				}
				if out, err := exec.Command("skopeo", args...).CombinedOutput(); err != nil || !strings.Contains(string(out), "arm64") {
					t.Errorf("skopeo %v: %v\n%s", args, err, out)
				}
			}
		})
	}
}

func TestAuthRejects(t *testing.T) {
	r := Start(t, Options{Auth: true})
	ref := r.Ref("busybox:latest")
	r.Push(t, ref, BusyboxImage(t))
	for name, a := range map[string]authn.Authenticator{
		"wrong password": &authn.Basic{Username: r.User, Password: "wrong"},
		"anonymous":      authn.Anonymous,
	} {
		_, err := remote.Get(parse(t, ref), remote.WithAuth(a))
		var te *transport.Error
		if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: got %v, want 401 unauthorized", name, err)
		}
	}
	if _, err := remote.Get(parse(t, ref), remote.WithAuth(r.Authenticator())); err != nil {
		t.Errorf("right password: %v", err)
	}
}

func TestStopsOnCleanup(t *testing.T) {
	var r *Registry
	t.Run("run", func(t *testing.T) {
		r = Start(t, Options{})
		if c, err := net.Dial("tcp", r.Host); err != nil {
			t.Fatal(err)
		} else {
			c.Close()
		}
	}) // the subtest's cleanups have run here
	if r == nil {
		t.Skip("registry did not start")
	}
	if c, err := net.Dial("tcp", r.Host); err == nil {
		c.Close()
		t.Errorf("%s still open after cleanup", r.Host)
	}
	if _, err := os.Stat(r.Dir); !os.IsNotExist(err) {
		t.Errorf("%s not removed: %v", r.Dir, err)
	}
}
