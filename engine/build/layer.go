package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/image"
	"github.com/berth-containers/berth/engine/network"
	rtstate "github.com/berth-containers/berth/libcontainer/state"
)

// layerStep runs a step that changes files: from the cache when its key
// was seen before, else by work on a mounted writable layer on s's top,
// whose changes become the step's layer.
func (b *builder) layerStep(ctx context.Context, s *state, step, createdBy string, work func(root string) error) error {
	s.advance(step)
	if !b.o.NoCache {
		l, ok := b.cacheLookup(s.key)
		if !ok {
			l, ok = b.remoteCache(ctx, s)
		}
		if ok {
			s.layers = append(s.layers, l)
			s.dirs = nil
			s.history(createdBy, false)
			b.printf("--> Using cache %s\n", l.ChainID[:12])
			return b.exportCache(ctx, s)
		}
	}
	w, err := b.newWorkLayer(s.top())
	if err != nil {
		return err
	}
	defer w.discard()
	if err := makeDirs(w.root, s.dirs); err != nil {
		return err
	}
	if err := work(w.root); err != nil {
		return err
	}
	l, err := w.commit(ctx)
	if err != nil {
		return err
	}
	s.layers = append(s.layers, l)
	s.dirs = nil
	s.history(createdBy, false)
	b.cacheStore(s.key, l)
	b.printf("--> %s\n", l.ChainID[:12])
	return b.exportCache(ctx, s)
}

// flushDirs gives WORKDIRs no later step created a layer of their own.
func (b *builder) flushDirs(ctx context.Context, s *state) error {
	if len(s.dirs) == 0 {
		return nil
	}
	return b.layerStep(ctx, s, "WORKDIR "+strings.Join(s.dirs, " "), "WORKDIR "+strings.Join(s.dirs, " "), func(string) error { return nil })
}

// makeDirs creates directories (owned by root, 0755) inside root; a path
// through a symlink stays inside root.
func makeDirs(root string, dirs []string) error {
	for _, d := range dirs {
		if _, err := mkdirAll(root, d, 0, 0); err != nil {
			return fmt.Errorf("WORKDIR %s: %w", d, err)
		}
	}
	return nil
}

// mkdirAll creates dir (absolute in root) and its missing parents with
// mode 0755 and owner uid:gid, and returns its place on disk.
func mkdirAll(root, dir string, uid, gid int) (string, error) {
	cur := "/"
	for _, part := range strings.Split(strings.Trim(filepath.Clean("/"+dir), "/"), "/") {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		p, err := securejoin.SecureJoin(root, cur)
		if err != nil {
			return "", err
		}
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(p, 0o755); err != nil {
				return "", err
			}
			if err := os.Lchown(p, uid, gid); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case !fi.IsDir():
			return "", fmt.Errorf("%s is not a directory", cur)
		}
	}
	return securejoin.SecureJoin(root, dir)
}

// workLayer is a writable layer of the build, mounted.
type workLayer struct {
	store  storage.Store
	id     string
	parent string
	root   string
}

// workName names a build's writable layers, containers and bundles with
// the builder's process, so that what a killed build left is known as such.
func workName() string {
	start, _, _ := rtstate.ProcessStart(os.Getpid())
	return fmt.Sprintf("berth-build-%d-%d-%s", os.Getpid(), start, randomHex(4))
}

func (b *builder) newWorkLayer(parent string) (*workLayer, error) {
	l, err := b.store.CreateLayer("", parent, []string{workName()}, "", true, nil)
	if err != nil {
		return nil, fmt.Errorf("create a layer: %w", err)
	}
	root, err := b.store.Mount(l.ID, "")
	if err != nil {
		_ = b.store.DeleteLayer(l.ID)
		return nil, fmt.Errorf("mount a layer: %w", err)
	}
	return &workLayer{store: b.store, id: l.ID, parent: parent, root: root}, nil
}

// commit stores the layer's changes as an image layer.
func (w *workLayer) commit(ctx context.Context) (image.Layer, error) {
	if _, err := w.store.Unmount(w.id, true); err != nil {
		return image.Layer{}, fmt.Errorf("unmount a layer: %w", err)
	}
	w.root = ""
	return image.StoreDiff(ctx, w.store, w.id, w.parent)
}

func (w *workLayer) discard() {
	if w.root != "" {
		_, _ = w.store.Unmount(w.id, true)
	}
	_ = w.store.DeleteLayer(w.id)
}

// Sweep removes what builds killed before their end left: writable
// layers, and RUN containers with their bundles and network sandboxes.
func Sweep(s storage.Store, rt container.Runtime, netConfDir, netRunDir string) error {
	layers, err := s.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		for _, n := range l.Names {
			if stale(n) {
				_, _ = s.Unmount(l.ID, true)
				if err := s.DeleteLayer(l.ID); err != nil {
					return fmt.Errorf("remove a killed build's layer: %w", err)
				}
				break
			}
		}
	}
	dir := filepath.Join(s.RunRoot(), "build")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !stale(e.Name()) {
			continue
		}
		id := e.Name()
		ctx := context.Background()
		_ = rt.Delete(ctx, id, true)
		if m, err := network.New(netConfDir, netRunDir, nil); err == nil {
			if sb, _ := m.Sandbox(id); sb != nil {
				_ = m.Teardown(ctx, id)
			}
		}
		if err := os.RemoveAll(filepath.Join(dir, id)); err != nil {
			return fmt.Errorf("remove a killed build's bundle: %w", err)
		}
	}
	return nil
}

// stale tells whether a work layer's name is of a builder no longer running.
func stale(name string) bool {
	rest, ok := strings.CutPrefix(name, "berth-build-")
	if !ok {
		return false
	}
	f := strings.Split(rest, "-")
	if len(f) != 3 {
		return false
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	now, _, err := rtstate.ProcessStart(pid)
	return err != nil || now != start
}

// The cache maps step keys to the layers they made, one file a key.
func (b *builder) cacheDir() string { return CacheDir(b.store) }

// CacheDir is where a store's build cache lives.
func CacheDir(s storage.Store) string { return filepath.Join(s.GraphRoot(), "berth-build", "cache") }

func (b *builder) cacheLookup(key string) (image.Layer, bool) {
	raw, err := os.ReadFile(filepath.Join(b.cacheDir(), key))
	if err != nil {
		return image.Layer{}, false
	}
	var l image.Layer
	if json.Unmarshal(raw, &l) != nil {
		return image.Layer{}, false
	}
	if _, err := b.store.Layer(l.ChainID); err != nil {
		return image.Layer{}, false
	}
	return l, true
}

// cachedImage finds the image a build with this final key made.
func (b *builder) cachedImage(key string) (string, bool) {
	raw, err := os.ReadFile(filepath.Join(b.cacheDir(), "image-"+key))
	if err != nil {
		return "", false
	}
	id := string(raw)
	if _, err := b.store.Image(id); err != nil {
		return "", false
	}
	return id, true
}

// cacheStore records a step's layer.
func (b *builder) cacheStore(key string, l image.Layer) {
	if raw, err := json.Marshal(l); err == nil {
		b.cacheWrite(key, raw)
	}
}

// cacheWrite writes a cache entry whole or not at all; a failure only costs
// a later hit.
func (b *builder) cacheWrite(name string, data []byte) {
	dir := b.cacheDir()
	if os.MkdirAll(dir, 0o700) != nil {
		return
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil && cerr == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
}
