package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	"go.opentelemetry.io/otel/attribute"
	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/layertar"
	"github.com/berth-containers/berth/engine/tracing"
)

// writeOptions say how an image reaches the store.
type writeOptions struct {
	// names are canonical names to give the image.
	names []string
	// extraManifests are stored beside the image's own manifest, so that the
	// image is also found by their digests (a manifest list's, say).
	extraManifests [][]byte
	// compressed reads layers' compressed blobs (as a registry serves them)
	// instead of their uncompressed form (as archives hold them).
	compressed bool
	progress   Progress
	// fetched, when set, gets the size of the layers fetched (those the
	// store had already are not).
	fetched *int64
}

// chainIDs are the layer identities of OCI's image spec: a layer together
// with everything under it. They are the storage IDs of our layers, so that a
// layer already stored is found without downloading it.
func chainIDs(diffIDs []v1.Hash) []string {
	ids := make([]string, len(diffIDs))
	prev := ""
	for i, d := range diffIDs {
		prev = ChainID(prev, d)
		ids[i] = prev
	}
	return ids
}

// write stores img's missing layers, fetching them in parallel and applying
// them in order, then the image record. On failure, the layers it made are
// removed again.
func write(ctx context.Context, s storage.Store, img v1.Image, o writeOptions) (*storage.Image, error) {
	cfg, ids, w, err := putLayers(ctx, s, img, o)
	if err != nil {
		return nil, err
	}
	stored, err := record(s, img, cfg, ids, o)
	if err != nil {
		w.rollback()
		return nil, err
	}
	if o.fetched != nil {
		*o.fetched = w.fetched.Load()
	}
	return stored, nil
}

// putLayers stores an image's layers (each after its parent), all or
// none; it returns the config, the layers' chain IDs and the writer that
// can take them back.
func putLayers(ctx context.Context, s storage.Store, img v1.Image, o writeOptions) (*v1.ConfigFile, []string, *layerWriter, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read image layers: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return nil, nil, nil, fmt.Errorf("image has %d layers but its config lists %d", len(layers), len(cfg.RootFS.DiffIDs))
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ids := chainIDs(cfg.RootFS.DiffIDs)
	w := &layerWriter{store: s, progress: orNone(o.progress), compressed: o.compressed}
	done := make([]chan struct{}, len(layers))
	errs := make(chan error, len(layers))
	for i, l := range layers {
		done[i] = make(chan struct{})
		var parentDone <-chan struct{}
		parent := ""
		if i > 0 {
			parentDone, parent = done[i-1], ids[i-1]
		}
		go func() {
			err := w.put(ctx, l, ids[i], parent, cfg.RootFS.DiffIDs[i], parentDone)
			if err != nil {
				cancel(err)
			} else {
				close(done[i])
			}
			errs <- err
		}()
	}
	for range layers {
		if err := <-errs; err != nil && !errors.Is(err, context.Canceled) {
			cancel(err)
		}
	}
	if err := context.Cause(ctx); err != nil {
		w.rollback()
		return nil, nil, nil, err
	}
	return cfg, ids, w, nil
}

// record makes (or updates) the image record once all layers are stored.
func record(s storage.Store, img v1.Image, cfg *v1.ConfigFile, ids []string, o writeOptions) (*storage.Image, error) {
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("read image manifest: %w", err)
	}
	cfgDigest := digest.FromBytes(rawCfg)
	mDigest := digest.FromBytes(rawManifest)
	big := []storage.ImageBigDataOption{
		{Key: configKey, Data: rawCfg, Digest: cfgDigest},
		{Key: manifestKey, Data: rawManifest, Digest: mDigest},
		{Key: manifestKey + "-" + mDigest.String(), Data: rawManifest, Digest: mDigest},
	}
	for _, m := range o.extraManifests {
		d := digest.FromBytes(m)
		big = append(big, storage.ImageBigDataOption{Key: manifestKey + "-" + d.String(), Data: m, Digest: d})
	}
	top := ""
	if len(ids) > 0 {
		top = ids[len(ids)-1]
	}
	id := cfgDigest.Encoded()
	// Created without names, which are added after: the store refuses a
	// new image a name another image has, while adding moves the name.
	_, err = s.CreateImage(id, nil, top, "", &storage.ImageOptions{
		CreationDate: cfg.Created.Time,
		Digest:       mDigest,
		BigData:      big,
	})
	if errors.Is(err, storage.ErrDuplicateID) {
		// The same image again (pulled by digest, say): add the manifests.
		for _, b := range big[2:] {
			if err := s.SetImageBigData(id, b.Key, b.Data, manifestDigest); err != nil {
				return nil, fmt.Errorf("store manifest of image %s: %w", short(id), err)
			}
		}
	} else if err != nil {
		return nil, fmt.Errorf("create image %s: %w", short(id), err)
	}
	if len(o.names) > 0 {
		if err := s.AddNames(id, o.names); err != nil {
			return nil, fmt.Errorf("name image %s: %w", short(id), err)
		}
	}
	return s.Image(id)
}

func manifestDigest(b []byte) (digest.Digest, error) { return digest.FromBytes(b), nil }

// Keys of an image's big data in the store.
const (
	configKey   = "config"
	manifestKey = "manifest"
)

type layerWriter struct {
	store      storage.Store
	progress   Progress
	compressed bool

	mu      sync.Mutex
	created []string // layers this write made, parents first
	fetched atomic.Int64
}

func (w *layerWriter) rollback() {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Children first: a layer with children cannot be deleted.
	for i := len(w.created) - 1; i >= 0; i-- {
		_ = w.store.DeleteLayer(w.created[i])
	}
	w.created = nil
}

// put stores one layer unless it is there. Its blob streams straight into
// the store when its parent is stored by the time the transfer starts;
// otherwise it is spooled to an unlinked file while the parent finishes.
func (w *layerWriter) put(ctx context.Context, l v1.Layer, id, parent string, diffID v1.Hash, parentDone <-chan struct{}) (err error) {
	dgst, err := l.Digest()
	if err != nil {
		return fmt.Errorf("layer digest: %w", err)
	}
	ctx, span := tracing.Start(ctx, "layer", attribute.String("layer.digest", dgst.String()))
	defer func() { tracing.End(span, err) }()
	if _, err := w.store.Layer(id); err == nil {
		w.progress.Layer(dgst.String(), 0).Done("Already exists")
		return nil
	}
	size, err := l.Size()
	if err != nil {
		size = -1
	}
	p := w.progress.Layer(dgst.String(), size)
	rc, err := w.open(l)
	if err != nil {
		p.Done("failed")
		return fmt.Errorf("fetch layer %s: %w", dgst, err)
	}
	defer rc.Close()
	var blob io.Reader = p.Reader(rc)
	if parentDone != nil && !isDone(parentDone) {
		// A registry's blob is fetched meanwhile; a local archive's is
		// read when the parent is done, it needs no copy.
		if w.compressed {
			spooled, err := spool(ctx, w.store, blob)
			if err != nil {
				p.Done("failed")
				return fmt.Errorf("fetch layer %s: %w", dgst, err)
			}
			defer spooled.Close()
			blob = spooled
		}
		select {
		case <-parentDone:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	if err := w.apply(ctx, blob, id, parent, diffID); err != nil {
		p.Done("failed")
		return fmt.Errorf("layer %s: %w", dgst, err)
	}
	p.Done("Pull complete")
	if size > 0 {
		w.fetched.Add(size)
	}
	return nil
}

func (w *layerWriter) open(l v1.Layer) (io.ReadCloser, error) {
	if w.compressed {
		return l.Compressed()
	}
	return l.Uncompressed()
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// spool copies a stream to an unlinked file in the store, so nothing is left
// behind if berth is killed.
func spool(ctx context.Context, s storage.Store, r io.Reader) (*os.File, error) {
	dir := filepath.Join(s.GraphRoot(), "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "blob-")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name())
	if _, err := io.Copy(f, ctxReader{ctx, r}); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// apply decompresses blob, checks every tar entry, and stores the layer; the
// stored content must match the config's diff ID.
func (w *layerWriter) apply(ctx context.Context, blob io.Reader, id, parent string, diffID v1.Hash) error {
	plain, err := layertar.Decompress(ctxReader{ctx, blob})
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	defer plain.Close()
	guarded := &firstError{r: layertar.Guard(plain)}
	// No digests are passed: the store then computes the diff ID itself,
	// which is checked against the config's below.
	layer, _, err := w.store.PutLayer(id, parent, nil, "", false, nil, guarded)
	if c, ok := guarded.r.(io.Closer); ok {
		c.Close()
	}
	if errors.Is(err, storage.ErrDuplicateID) {
		return nil // stored meanwhile by another berth
	}
	if err != nil {
		// The store reports a refused entry in several lines of its
		// own words; the guard's error says it in one.
		if guarded.err != nil {
			return guarded.err
		}
		return err
	}
	w.remember(layer.ID)
	// The blob's digest is checked when it is read to its end.
	if _, err := io.Copy(io.Discard, blob); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if layer.UncompressedDigest != digest.Digest(diffID.String()) {
		return fmt.Errorf("content is %s, the image config says %s", layer.UncompressedDigest, diffID)
	}
	return nil
}

func (w *layerWriter) remember(id string) {
	w.mu.Lock()
	w.created = append(w.created, id)
	w.mu.Unlock()
}

// firstError keeps the first error its reader returned.
type firstError struct {
	r   io.Reader
	err error
}

func (f *firstError) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF && f.err == nil {
		f.err = err
	}
	return n, err
}

// ctxReader stops a transfer when the pull is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := context.Cause(c.ctx); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
