package engine

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-containers/berth/tests/registry"
)

// busyboxID pushes the fixture image to ref in reg and returns its image ID
// (config digest), which berth must keep through pulls and pushes.
func busyboxID(t *testing.T, reg *registry.Registry, ref string) string {
	t.Helper()
	img := registry.BusyboxImage(t)
	reg.Push(t, ref, img)
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.Hex
}

// pullID pulls ref quietly and checks that the image ID is want.
func pullID(t *testing.T, e *engine, ref, want string) {
	t.Helper()
	if got := strings.TrimSpace(e.ok("pull", "-q", ref)); got != want {
		t.Errorf("pull %s: image ID %q, want %s", ref, got, want)
	}
}

// blobCount counts the blobs a registry stores.
func blobCount(t *testing.T, reg *registry.Registry) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(reg.Dir, "docker/registry/v2/blobs/sha256/*/*/data"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// remoteManifest reads ref's manifest from a plain-HTTP test registry.
func remoteManifest(t *testing.T, reg *registry.Registry, ref string) *v1.Manifest {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithAuth(reg.Authenticator()), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("read %s: %v", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var pushedLine = regexp.MustCompile(`(?m)^(\S+): digest: (sha256:[0-9a-f]{64}) size: \d+$`)

// push runs `berth push args...` and returns its stderr (progress) and the
// digest of docker's last line.
func push(t *testing.T, e *engine, args ...string) (progress, digest string) {
	t.Helper()
	r := e.run(nil, append([]string{"push"}, args...)...)
	m := pushedLine.FindStringSubmatch(r.Stdout)
	if r.Code != 0 || m == nil {
		t.Fatalf("push %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stderr, m[2]
}

func TestPush(t *testing.T) {
	a := registry.Start(t, registry.Options{})
	b := registry.Start(t, registry.Options{})
	orig := a.Ref("busybox:latest")
	id := busyboxID(t, a, orig)
	e := newEngine(t)
	pullID(t, e, orig, id)

	// podman's form IMAGE DESTINATION, to another repository and to
	// another registry.
	progress, _ := push(t, e, orig, a.Ref("copy:v1"))
	if !strings.Contains(progress, "Pushed") {
		t.Errorf("first push progress: %q", progress)
	}
	push(t, e, orig, b.Ref("busybox:v1"))

	// docker's form NAME:TAG. Everything is in b already: the layer is
	// mounted from the repository that has it or found in the repository
	// itself, no blob is uploaded again, and the manifest is the same.
	e.ok("tag", orig, b.Ref("tagged:v2"))
	blobs := blobCount(t, b)
	_, d1 := push(t, e, orig, b.Ref("again:v1"))
	progress, d2 := push(t, e, b.Ref("tagged:v2"))
	if !strings.Contains(progress, "Mounted from") || strings.Contains(progress, "Pushed") {
		t.Errorf("push of a layer in another repository: progress %q", progress)
	}
	progress, d3 := push(t, e, b.Ref("tagged:v2"))
	if !strings.Contains(progress, "Layer already exists") || strings.Contains(progress, "Pushed") {
		t.Errorf("push of a layer the repository has: progress %q", progress)
	}
	if n := blobCount(t, b); n != blobs {
		t.Errorf("registry has %d blobs after pushing the same image again, had %d", n, blobs)
	}
	if d1 != d2 || d2 != d3 {
		t.Errorf("same image pushed thrice: manifests %s, %s, %s", d1, d2, d3)
	}

	// The config goes byte for byte: a fresh engine pulls the same image
	// ID from either registry. The source was OCI, so is the copy, with
	// gzip layers.
	f := newEngine(t)
	pullID(t, f, b.Ref("busybox:v1"), id)
	pullID(t, f, a.Ref("copy:v1"), id)
	pullID(t, f, b.Ref("tagged:v2"), id)
	m := remoteManifest(t, b, b.Ref("busybox:v1"))
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer || m.Config.Digest.Hex != id {
		t.Errorf("pushed manifest: %+v", m)
	}
	// skopeo (containers/image) is another client that must read it.
	if _, err := exec.LookPath("skopeo"); err == nil {
		if out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "docker://"+b.Ref("busybox:v1")).CombinedOutput(); err != nil {
			t.Errorf("skopeo inspect: %v\n%s", err, out)
		}
	}

	// -q: the digest alone, no progress.
	r := e.run(nil, "push", "-q", orig, b.Ref("quiet:1"))
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != d1 || r.Stderr != "" {
		t.Errorf("push -q: exit %d stdout %q stderr %q, want %s", r.Code, r.Stdout, r.Stderr, d1)
	}

	// By ID: with a destination; without one the image has two names and
	// the destination is ambiguous.
	push(t, e, id[:12], b.Ref("byid:1"))
	e.fail("push needs a name", "push", id[:12])
	e.fail("no such image", "push", "nothing/here", b.Ref("x:1"))
	e.fail("must be a tag", "push", orig, b.Ref("x@sha256:"+id))
}

// A Docker schema2 image stays Docker schema2, with Docker's gzip media type.
func TestPushDockerSchema2(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	img := mutate.ConfigMediaType(mutate.MediaType(registry.BusyboxImage(t), types.DockerManifestSchema2), types.DockerConfigJSON)
	src := reg.Ref("docker/busybox:1")
	reg.Push(t, src, img)
	want, _ := img.ConfigName()
	e := newEngine(t)
	pullID(t, e, src, want.Hex)
	push(t, e, src, reg.Ref("docker/copy:1"))
	m := remoteManifest(t, reg, reg.Ref("docker/copy:1"))
	if m.MediaType != types.DockerManifestSchema2 || m.Config.MediaType != types.DockerConfigJSON ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != types.DockerLayer {
		t.Errorf("pushed manifest: %+v", m)
	}
	pullID(t, newEngine(t), reg.Ref("docker/copy:1"), want.Hex)
}

// closedAddr is a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func writeConfig(t *testing.T, e *engine, conf string) {
	t.Helper()
	if err := os.WriteFile(e.Config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// berth.conf mirrors are tried in order for pulls; pushes go to the
// registry itself.
func TestMirror(t *testing.T) {
	primary := registry.Start(t, registry.Options{})
	mirror := registry.Start(t, registry.Options{})
	id := busyboxID(t, mirror, mirror.Ref("mirrored/busybox:1"))
	busyboxID(t, primary, primary.Ref("fallback/busybox:1"))
	down := closedAddr(t)

	e := newEngine(t)
	writeConfig(t, e, fmt.Sprintf("[[registry]]\nlocation = %q\nmirrors = [%q]\n", primary.Host, mirror.Host))
	// Only the mirror has it.
	pullID(t, e, primary.Ref("mirrored/busybox:1"), id)
	e.ok("image", "inspect", primary.Ref("mirrored/busybox:1"))

	// A mirror that is down, then one without the image: the registry
	// itself serves it.
	writeConfig(t, e, fmt.Sprintf("[[registry]]\nlocation = %q\nmirrors = [%q, %q]\n", primary.Host, down, mirror.Host))
	pullID(t, e, primary.Ref("fallback/busybox:1"), id)
	pullID(t, e, primary.Ref("mirrored/busybox:1"), id)
	e.fail("manifest unknown", "pull", primary.Ref("nowhere/busybox:1"))

	push(t, e, primary.Ref("mirrored/busybox:1"), primary.Ref("pushed:1"))
	remoteManifest(t, primary, primary.Ref("pushed:1"))
	r, _ := name.ParseReference(mirror.Ref("pushed:1"), name.Insecure)
	if _, err := remote.Head(r, remote.WithContext(t.Context())); err == nil {
		t.Errorf("push went to the mirror too")
	}
}

// runWithin runs berth and fails the test if it takes longer than d.
func runWithin(t *testing.T, e *engine, d time.Duration, args ...string) result {
	t.Helper()
	c := e.cmd(args...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(d, func() { c.Process.Kill() })
	err := c.Wait()
	if !timer.Stop() {
		t.Fatalf("berth %v did not finish within %v", args, d)
	}
	r := result{Stdout: out.String(), Stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// A registry that is not there fails a pull or push at once, with a one-line
// error, and leaves nothing in the store.
func TestUnreachableRegistry(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref := reg.Ref("busybox:1")
	busyboxID(t, reg, ref)
	e := newEngine(t)
	e.ok("pull", "-q", ref)
	before := e.ok("images", "-q", "--no-trunc")
	down := closedAddr(t)
	for _, args := range [][]string{
		{"pull", down + "/busybox:1"},
		{"pull", "-q", down + "/busybox:1"},
		{"push", "-q", ref, down + "/busybox:1"},
		{"login", "-u", "x", "-p", "y", down},
	} {
		r := runWithin(t, e, 30*time.Second, args...)
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		last := lines[len(lines)-1]
		if r.Code != 125 || !strings.HasPrefix(last, "Error: ") || !strings.Contains(last, down) {
			t.Errorf("berth %v: exit %d, stderr %q", args, r.Code, r.Stderr)
		}
		if args[1] == "-q" && len(lines) != 1 {
			t.Errorf("berth %v: more than one line of error: %q", args, r.Stderr)
		}
	}
	if after := e.ok("images", "-q", "--no-trunc"); after != before {
		t.Errorf("images after failed pulls: %q, before: %q", after, before)
	}
}

// tlsProxy serves reg over HTTPS with a certificate nobody trusts, under the
// host's name (so that berth does not take it for a plain-HTTP local
// registry), and returns "NAME:PORT".
func tlsProxy(t *testing.T, reg *registry.Registry) string {
	t.Helper()
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no hostname: %v", err)
	}
	addrs, err := net.LookupHost(host)
	if err != nil || len(addrs) == 0 || strings.Contains(host, "localhost") || net.ParseIP(host) != nil {
		t.Skipf("hostname %q does not resolve to an address to serve TLS on: %v", host, err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(addrs[0], "0"))
	if err != nil {
		t.Skipf("listen on %s: %v", addrs[0], err)
	}
	target := &url.URL{Scheme: "http", Host: reg.Host}
	srv := httptest.NewUnstartedServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the registry's upload URLs name the proxy
		r.SetXForwarded()
	}})
	srv.Listener.Close()
	srv.Listener = l
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // berth refusing the certificate is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return net.JoinHostPort(host, port)
}

// berth.conf's insecure = true lets pulls and pushes use a registry with an
// untrusted certificate; without it they fail.
func TestPushPullInsecure(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	id := busyboxID(t, reg, reg.Ref("busybox:1"))
	host := tlsProxy(t, reg)
	e := newEngine(t)
	e.fail("certificate", "pull", host+"/busybox:1")

	writeConfig(t, e, fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", host))
	pullID(t, e, host+"/busybox:1", id)
	push(t, e, host+"/busybox:1", host+"/pushed:1")
	f := newEngine(t)
	writeConfig(t, f, fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", host))
	pullID(t, f, host+"/pushed:1", id)
	// Without the setting the push is refused too.
	writeConfig(t, e, "")
	e.fail("certificate", "push", host+"/busybox:1", host+"/pushed:2")
}
