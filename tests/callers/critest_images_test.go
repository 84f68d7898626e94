package callers

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-containers/berth/tests/registry"
)

// dynamicBusybox is Debian's dynamic busybox, which contrib/install-deps.sh
// unpacks: its shell runs applets through PATH, so critest's MaskedPaths
// spec sees its mask of /bin/ls. busybox-static (SH_STANDALONE) runs them
// in-process and never looks at /bin/ls.
const dynamicBusybox = "/var/cache/berth-test/busybox/bin/busybox"

// The images critest uses. Only the default image and the web server can be
// named with -test-images-file; the others are hard-coded in critest and
// are made up under those names, served through containerd's mirror.
const (
	critestBusybox    = "docker.io/berth-test/critest-busybox:1"
	e2eImages         = "registry.k8s.io/e2e-test-images/"
	criToolsImages    = "gcr.io/k8s-staging-cri-tools/"
	critestNginx      = e2eImages + "nginx:1.14-2"
	critestHttpd      = e2eImages + "httpd:2.4.39-4"
	critestNoNewPrivs = e2eImages + "nonewprivs:1.3"
)

// critestImagesFile is critest's -test-images-file.
const critestImagesFile = `defaultTestContainerImage: ` + critestBusybox + `
webServerTestImage: ` + critestNginx + `
`

// fsEntry is one entry of a layer: a directory (name ending in /; mode 0
// for 0755), a regular file, or a hard link to link (of the same mode).
type fsEntry struct {
	name string
	mode int64
	data []byte
	link string
}

// tarLayer makes a layer of entries, with imageTime on every entry so that
// its digest is the same from run to run.
func tarLayer(entries []fsEntry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		var err error
		switch {
		case strings.HasSuffix(e.name, "/") && e.mode == 0:
			err = writeTarDir(tw, e.name)
		case strings.HasSuffix(e.name, "/"):
			if err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: e.name, Mode: e.mode, ModTime: imageTime}); err != nil {
				err = fmt.Errorf("write layer dir %s: %w", e.name, err)
			}
		case e.link != "":
			// containerd sets the link's mode on the inode it shares.
			if err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: e.name, Linkname: e.link, Mode: e.mode, ModTime: imageTime}); err != nil {
				err = fmt.Errorf("write layer link %s: %w", e.name, err)
			}
		default:
			err = writeTarFile(tw, e.name, e.mode, e.data)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer tar: %w", err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return nil, fmt.Errorf("make layer: %w", err)
	}
	return layer, nil
}

// critestImage is an image of layers for this machine's platform with
// config as its run configuration (PATH set when config has no Env).
func critestImage(config v1.Config, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", runtime.GOARCH, v1.Time{Time: imageTime}
	if config.Env == nil {
		config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	cf.Config = config
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("set image config: %w", err)
	}
	return img, nil
}

// busyboxShims stand in for the applets Debian's busybox lacks and that
// critest runs: pgrep (its execSync timeout spec) and ipcs -m (HostIpc),
// read from /proc as the real ones are.
var busyboxShims = map[string]string{
	"bin/pgrep": `#!/bin/sh
# pgrep NAME: the pids of the processes whose command name is NAME.
found=1
for d in /proc/[0-9]*; do
	read -r comm <"$d/comm" && [ "$comm" = "$1" ] && echo "${d#/proc/}" && found=0
done 2>/dev/null
exit $found
`,
	"bin/ipcs": `#!/bin/sh
# ipcs -m: the IPC namespace's shared memory segments, as the kernel lists them.
cat /proc/sysvipc/shm
`,
}

// busyboxBaseLayer is the root filesystem of the images that run a shell:
// the dynamic busybox with every applet hard-linked in /bin (a masked path
// must not be a symlink, or the mask lands on busybox itself), the
// libraries it loads, the shims, and the users critest asks for by name.
func busyboxBaseLayer() (v1.Layer, error) {
	bin, err := os.ReadFile(dynamicBusybox)
	if err != nil {
		return nil, fmt.Errorf("read dynamic busybox: %w", err)
	}
	out, err := exec.Command(dynamicBusybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: %w", err)
	}
	entries := []fsEntry{{name: "bin/"}, {name: "dev/"}, {name: "etc/"}, {name: "proc/"}, {name: "root/"}, {name: "sys/"},
		{name: "usr/"}, {name: "var/"}, {name: "var/run/"},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{name: "bin/busybox", mode: 0o755, data: bin}}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			entries = append(entries, fsEntry{name: "bin/" + applet, mode: 0o755, link: "bin/busybox"})
		}
	}
	for _, name := range sortedKeys(busyboxShims) { // in order: the same layer each run
		entries = append(entries, fsEntry{name: name, mode: 0o755, data: []byte(busyboxShims[name])})
	}
	libs, err := sharedLibraries(dynamicBusybox)
	if err != nil {
		return nil, err
	}
	dirs := map[string]bool{}
	for _, lib := range libs {
		data, err := os.ReadFile(lib)
		if err != nil {
			return nil, fmt.Errorf("read busybox's library: %w", err)
		}
		rel := strings.TrimPrefix(lib, "/")
		for _, dir := range parentDirs(filepath.Dir(rel) + "/") {
			if !dirs[dir] {
				dirs[dir] = true
				entries = append(entries, fsEntry{name: dir})
			}
		}
		entries = append(entries, fsEntry{name: rel, mode: 0o755, data: data})
	}
	return tarLayer(append(entries, fsEntry{name: "tmp/", mode: 0o1777}))
}

// parentDirs lists dir ("a/b/c/") and its parents, parents first.
func parentDirs(dir string) []string {
	var dirs []string
	for i := range len(dir) {
		if dir[i] == '/' {
			dirs = append(dirs, dir[:i+1])
		}
	}
	return dirs
}

// sharedLibraries lists the files the dynamic loader maps for binary, the
// loader first, as the loader itself resolves them (`ld.so --list`).
func sharedLibraries(binary string) ([]string, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", binary, err)
	}
	defer f.Close()
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			data, err := io.ReadAll(p.Open())
			if err != nil {
				return nil, fmt.Errorf("read %s's interpreter: %w", binary, err)
			}
			interp = strings.TrimRight(string(data), "\x00")
		}
	}
	if interp == "" {
		return nil, fmt.Errorf("%s is not dynamically linked", binary)
	}
	out, err := exec.Command(interp, "--list", binary).Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list %s: %w", interp, binary, err)
	}
	libs := []string{interp}
	for _, line := range strings.Split(string(out), "\n") {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/") {
			libs = append(libs, f[2])
		}
	}
	return libs, nil
}

// critestHelper is the source of the images' own programs, chosen by the
// name they run as: pause (the sandbox, until SIGTERM or SIGKILL) and nnp
// (set-uid root, prints the effective uid it got, as critest's
// nonewprivs image does).
const critestHelper = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	if filepath.Base(os.Args[0]) == "nnp" {
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
		return
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
`

// buildCritestHelper compiles critestHelper, static, in dir and returns the
// binary.
func buildCritestHelper(dir string) ([]byte, error) {
	// A module of its own, built with the toolchain that runs the test.
	for name, text := range map[string]string{"go.mod": "module critesthelper\n\ngo 1.22\n", "helper.go": critestHelper} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return nil, fmt.Errorf("write the images' helper: %w", err)
		}
	}
	out := filepath.Join(dir, "helper")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build the images' helper: %v: %s", err, msg)
	}
	return os.ReadFile(out)
}

// nginxScript stands in for nginx: its pid file, and busybox httpd serving
// on $NGINX_LISTEN. Run as a script, the process has the script's name,
// nginx, which pidof looks for; critest looks for "master process" in the
// command line of nginx's master, so the image's command carries it.
const nginxScript = `#!/bin/sh
trap 'kill $!; exit 0' TERM
echo $$ >/var/run/nginx.pid
httpd -f -p "${NGINX_LISTEN:-80}" -h /usr/share/nginx/html &
wait
`

// httpdScript stands in for Apache httpd: it names itself in its log, as
// critest expects, and serves with busybox httpd on port 80.
const httpdScript = `#!/bin/sh
echo "httpd: serving /usr/local/apache2/htdocs on port 80"
exec httpd -f -p 80 -h /usr/local/apache2/htdocs
`

// critestImages makes every image critest runs or pulls, by reference,
// building the helper in dir.
func critestImages(dir string) (map[string]v1.Image, error) {
	base, err := busyboxBaseLayer()
	if err != nil {
		return nil, err
	}
	helper, err := buildCritestHelper(dir)
	if err != nil {
		return nil, err
	}
	page := []byte("<html><body>berth critest</body></html>\n")
	type spec struct {
		config  v1.Config
		base    bool // on the busybox root filesystem
		entries []fsEntry
	}
	specs := map[string]spec{
		critestBusybox: {config: v1.Config{Cmd: []string{"sh"}}, base: true},
		pauseImage: {config: v1.Config{Cmd: []string{"/pause"}},
			entries: []fsEntry{{name: "pause", mode: 0o755, data: helper}}},
		critestNoNewPrivs: {config: v1.Config{Cmd: []string{"nnp"}},
			entries: []fsEntry{{name: "usr/"}, {name: "usr/local/"}, {name: "usr/local/bin/"},
				{name: "usr/local/bin/nnp", mode: 0o4755, data: helper}}},
		critestNginx: {config: v1.Config{Cmd: []string{"/usr/sbin/nginx", "master process"}}, base: true,
			entries: []fsEntry{{name: "usr/sbin/"}, {name: "usr/sbin/nginx", mode: 0o755, data: []byte(nginxScript)},
				{name: "usr/share/"}, {name: "usr/share/nginx/"}, {name: "usr/share/nginx/html/"},
				{name: "usr/share/nginx/html/index.html", mode: 0o644, data: page}}},
		// critest's port-forward spec in the host's network reaches it on
		// 127.0.0.1:12003.
		criToolsImages + "hostnet-nginx-" + runtime.GOARCH: {base: true,
			config: v1.Config{Cmd: []string{"/usr/sbin/nginx", "master process"}, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NGINX_LISTEN=127.0.0.1:12003"}},
			entries: []fsEntry{{name: "usr/sbin/"}, {name: "usr/sbin/nginx", mode: 0o755, data: []byte(nginxScript)},
				{name: "usr/share/"}, {name: "usr/share/nginx/"}, {name: "usr/share/nginx/html/"},
				{name: "usr/share/nginx/html/index.html", mode: 0o644, data: page}}},
		critestHttpd: {config: v1.Config{Cmd: []string{"httpd-foreground"}}, base: true,
			entries: []fsEntry{{name: "usr/local/"}, {name: "usr/local/bin/"}, {name: "usr/local/bin/httpd-foreground", mode: 0o755, data: []byte(httpdScript)},
				{name: "usr/local/apache2/"}, {name: "usr/local/apache2/htdocs/"},
				{name: "usr/local/apache2/htdocs/index.html", mode: 0o644, data: page}}},
	}
	// The Image Manager's images are only pulled and inspected. Each must
	// have an image id of its own (critest removes them by id), but the
	// three tags of test-image-tags, which must share one; four carry a
	// user for the status's uid and username.
	for ref, user := range map[string]string{
		"test-image-tag:test": "", "test-image-tag:all": "", "test-image-latest": "",
		"test-image-1": "", "test-image-2": "", "test-image-3": "",
		"test-image-user-uid": "1002", "test-image-user-username": "www-data",
		"test-image-user-uid-group": "1003:1004", "test-image-user-username-group": "www-data:1004",
	} {
		specs[criToolsImages+ref] = spec{config: v1.Config{Cmd: []string{"true"}, User: user},
			entries: []fsEntry{{name: "image", mode: 0o644, data: []byte(ref + "\n")}}}
	}
	for _, tag := range []string{"1", "2", "3"} {
		specs[criToolsImages+"test-image-tags:"+tag] = spec{config: v1.Config{Cmd: []string{"true"}},
			entries: []fsEntry{{name: "image", mode: 0o644, data: []byte("test-image-tags\n")}}}
	}

	images := map[string]v1.Image{}
	for ref, s := range specs {
		var layers []v1.Layer
		if s.base {
			layers = append(layers, base)
		}
		if len(s.entries) > 0 {
			layer, err := tarLayer(s.entries)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", ref, err)
			}
			layers = append(layers, layer)
		}
		img, err := critestImage(s.config, layers...)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		images[ref] = img
	}
	return images, nil
}

// pushCritestImages pushes critest's images into r, each under its
// reference less the registry's host: the path and tag containerd asks the
// mirror for.
func pushCritestImages(t *testing.T, r *registry.Registry) {
	t.Helper()
	images, err := critestImages(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for ref, img := range images {
		repo := ref[strings.Index(ref, "/")+1:]
		if !strings.Contains(repo, ":") {
			repo += ":latest"
		}
		r.Push(t, r.Ref(repo), img)
	}
}
