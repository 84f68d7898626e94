package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"

	"github.com/berth-containers/berth/engine/registry"
)

// PushOptions tune Push.
type PushOptions struct {
	Progress Progress
}

// Pushed is what Push wrote.
type Pushed struct {
	Ref    name.Reference // the destination, as resolved
	Digest v1.Hash        // of the manifest
	Size   int64          // of the manifest
}

// blobKey is the layer big data recording the gzip blob a push made of the
// layer, so a later push can ask the registry for it instead of compressing
// and uploading the layer again.
const blobKey = "berth-pushed-gzip"

// Push uploads the local image src to dest (default: the name src was found
// under). Layers are gzip-compressed while they upload, nothing is spooled;
// the config goes byte for byte, so the image ID stays the same after a pull.
func Push(ctx context.Context, s storage.Store, c *registry.Client, src, dest string, o PushOptions) (*Pushed, error) {
	img, err := Lookup(s, src)
	if err != nil {
		return nil, err
	}
	if dest == "" {
		if dest, err = defaultDest(img, src); err != nil {
			return nil, err
		}
	}
	ref, err := tagRef(dest)
	if err != nil {
		return nil, err
	}
	rawCfg, cfg, err := readConfig(s, img.ID)
	if err != nil {
		return nil, err
	}
	mt := docker
	if storedAsOCI(s, img.ID) {
		mt = oci
	}
	return push(ctx, s, c, ref, rawCfg, cfg, mt, o)
}

// PushConfig uploads the image made of cfg and the stored layers its diff
// IDs name to dest (a tag), with no image record: a build's cache (build
// --cache-to).
func PushConfig(ctx context.Context, s storage.Store, c *registry.Client, dest string, cfg *v1.ConfigFile, o PushOptions) (*Pushed, error) {
	ref, err := tagRef(dest)
	if err != nil {
		return nil, err
	}
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return push(ctx, s, c, ref, rawCfg, cfg, docker, o)
}

// tagRef parses a push's destination, which must be a tag: the manifest
// is made anew, so it could not match a digest.
func tagRef(dest string) (name.Reference, error) {
	ref, err := ParseName(dest)
	if err != nil {
		return nil, err
	}
	if _, ok := ref.(name.Digest); ok {
		return nil, fmt.Errorf("push %s: the destination must be a tag, not a digest", dest)
	}
	return ref, nil
}

// push uploads the layers, the config and the manifest.
func push(ctx context.Context, s storage.Store, c *registry.Client, ref name.Reference, rawCfg []byte, cfg *v1.ConfigFile, mt mediaTypes, o PushOptions) (*Pushed, error) {
	ref, err := c.Resolve(ref)
	if err != nil {
		return nil, err
	}
	opts := c.Options(ctx, ref)
	pusher, err := remote.NewPusher(opts...)
	if err != nil {
		return nil, err
	}
	puller, err := remote.NewPuller(opts...)
	if err != nil {
		return nil, err
	}
	lp := layerPusher{store: s, pusher: pusher, puller: puller, repo: ref.Context(), mediaType: mt.layer, progress: orNone(o.Progress)}
	// One layer after the other: reading a layer's diff holds the store's
	// layer lock, so parallel uploads would only wait for each other.
	ids := chainIDs(cfg.RootFS.DiffIDs)
	descs := make([]v1.Descriptor, len(ids))
	for i, diffID := range cfg.RootFS.DiffIDs {
		if descs[i], err = lp.push(ctx, ids[i], diffID); err != nil {
			return nil, fmt.Errorf("push %s: %w", ref, err)
		}
	}

	cfgBlob := static.NewLayer(rawCfg, mt.config)
	if err := pusher.Upload(ctx, ref.Context(), cfgBlob); err != nil {
		return nil, fmt.Errorf("push %s: config: %w", ref, Explain(err))
	}
	cfgDigest, _ := cfgBlob.Digest()
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     mt.manifest,
		Config:        v1.Descriptor{MediaType: mt.config, Size: int64(len(rawCfg)), Digest: cfgDigest},
		Layers:        descs,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := pusher.Put(ctx, ref, rawManifest{raw, mt.manifest}); err != nil {
		return nil, fmt.Errorf("push %s: manifest: %w", ref, Explain(err))
	}
	d, size, _ := v1.SHA256(bytes.NewReader(raw))
	return &Pushed{Ref: ref, Digest: d, Size: size}, nil
}

// defaultDest is the name src was found under; an image given by ID must
// have exactly one tag to know where it goes.
func defaultDest(img *storage.Image, src string) (string, error) {
	if hexPrefix.MatchString(src) && strings.HasPrefix(img.ID, strings.TrimPrefix(src, "sha256:")) {
		var tagged []string
		for _, n := range img.Names {
			if !strings.Contains(n, "@") {
				tagged = append(tagged, n)
			}
		}
		if len(tagged) != 1 {
			return "", fmt.Errorf("push needs a name: image %s has %d, give a destination", short(img.ID), len(tagged))
		}
		return tagged[0], nil
	}
	ref, err := ParseName(src)
	if err != nil {
		return "", err
	}
	if local := localName(ref); !slices.Contains(img.Names, Canonical(ref)) && slices.Contains(img.Names, local) {
		return local, nil
	}
	return Canonical(ref), nil
}

// mediaTypes of one manifest format; they are never mixed.
type mediaTypes struct{ manifest, config, layer types.MediaType }

var (
	// docker schema2 is the default: every registry takes it.
	docker = mediaTypes{types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer}
	oci    = mediaTypes{types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer}
)

// storedAsOCI tells whether the image came with an OCI manifest, which a
// push then keeps (as podman does).
func storedAsOCI(s storage.Store, id string) bool {
	raw, err := s.ImageBigData(id, manifestKey)
	if err != nil {
		return false
	}
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
		Config    struct {
			MediaType types.MediaType `json:"mediaType"`
		} `json:"config"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	return m.MediaType == types.OCIManifestSchema1 || (m.MediaType == "" && m.Config.MediaType == types.OCIConfigJSON)
}

type layerPusher struct {
	store     storage.Store
	pusher    *remote.Pusher
	puller    *remote.Puller
	repo      name.Repository
	mediaType types.MediaType
	progress  Progress
}

// pushedBlob is a layer's gzip blob as an earlier push made it.
type pushedBlob struct {
	Digest v1.Hash `json:"digest"`
	Size   int64   `json:"size"`
	// Repos are where pushes put it ("host/path"), newest first: a
	// registry mounts a blob from one of its repositories into another
	// (docker's cross-repository mount) without an upload.
	Repos []string `json:"repos,omitempty"`
}

// maxRepos bounds the repositories remembered per layer.
const maxRepos = 8

// push uploads one layer (storage ID id) unless the registry has the blob an
// earlier push made of it, and returns the blob's descriptor.
func (p layerPusher) push(ctx context.Context, id string, diffID v1.Hash) (v1.Descriptor, error) {
	l, err := p.store.Layer(id)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("layer %s: %w", diffID, err)
	}
	prog := p.progress.Layer(diffID.String(), l.UncompressedSize)
	b, known := p.known(id)
	if status := p.reuse(ctx, b, known); status != "" {
		p.remember(id, b)
		prog.Done(status)
		return v1.Descriptor{MediaType: p.mediaType, Size: b.Size, Digest: b.Digest}, nil
	}
	plain := archive.Uncompressed
	rc, err := p.store.Diff("", id, &storage.DiffOptions{Compression: &plain})
	if err != nil {
		prog.Done("failed")
		return v1.Descriptor{}, fmt.Errorf("read layer %s: %w", diffID, err)
	}
	// The diff holds the store's layer lock until it is closed: the stream
	// closes it when read to the end, Close below in any case (the upload
	// may fail before reading it), before the store is used again.
	diff := &onceCloser{Reader: prog.Reader(rc), c: rc}
	blob := stream.NewLayer(diff, stream.WithMediaType(p.mediaType))
	err = p.pusher.Upload(ctx, p.repo, blob)
	diff.Close()
	if err != nil {
		prog.Done("failed")
		return v1.Descriptor{}, fmt.Errorf("layer %s: %w", diffID, Explain(err))
	}
	// The stream layer knows its digests once it was read to the end.
	got, err := blob.DiffID()
	if err == nil && got != diffID {
		err = fmt.Errorf("the store gave content %s", got)
	}
	if err == nil && (b.Digest != v1.Hash{}) {
		if d, _ := blob.Digest(); d != b.Digest {
			b.Repos = nil // another blob (other compressor): the old one's places do not hold it
		}
	}
	if err == nil {
		b.Digest, err = blob.Digest()
	}
	if err == nil {
		b.Size, err = blob.Size()
	}
	if err != nil {
		prog.Done("failed")
		return v1.Descriptor{}, fmt.Errorf("layer %s: %w", diffID, err)
	}
	p.remember(id, b)
	prog.Done("Pushed")
	return v1.Descriptor{MediaType: p.mediaType, Size: b.Size, Digest: b.Digest}, nil
}

// known returns the blob an earlier push made of layer id.
func (p layerPusher) known(id string) (pushedBlob, bool) {
	var b pushedBlob
	rc, err := p.store.LayerBigData(id, blobKey)
	if err != nil {
		return b, false
	}
	defer rc.Close()
	if err := json.NewDecoder(rc).Decode(&b); err != nil || b.Size <= 0 {
		return pushedBlob{}, false
	}
	return b, true
}

// reuse makes the registry use blob b without an upload if it can: b is in
// the repository already, or is mounted from another of the registry's. It
// returns the progress status then, "" otherwise. Any failure just means
// "upload it", which reports the real errors.
func (p layerPusher) reuse(ctx context.Context, b pushedBlob, known bool) string {
	if !known {
		return ""
	}
	ref := p.repo.Digest(b.Digest.String())
	if l, err := p.puller.Layer(ctx, ref); err == nil {
		if ok, err := partial.Exists(l); err == nil && ok {
			return "Layer already exists"
		}
	}
	for _, r := range b.Repos {
		host, path, _ := strings.Cut(r, "/")
		if host != p.repo.RegistryStr() || path == p.repo.RepositoryStr() {
			continue
		}
		from := p.repo.Registry.Repo(path).Digest(b.Digest.String())
		// A refused mount starts an upload instead, which fails on
		// blobOnly's missing content: then the layer is uploaded anew.
		if p.pusher.Upload(ctx, p.repo, &remote.MountableLayer{Layer: blobOnly{b, p.mediaType}, Reference: from}) == nil {
			return "Mounted from " + path
		}
	}
	return ""
}

// remember records that the registry has blob b of layer id in p.repo.
// Only a cache: a push that cannot record it still succeeded.
func (p layerPusher) remember(id string, b pushedBlob) {
	here := p.repo.Name()
	repos := []string{here}
	for _, r := range b.Repos {
		if r != here && len(repos) < maxRepos {
			repos = append(repos, r)
		}
	}
	b.Repos = repos
	data, err := json.Marshal(b)
	if err == nil {
		err = p.store.SetLayerBigData(id, blobKey, bytes.NewReader(data))
	}
	if err != nil {
		slog.Warn("remember pushed layer", "layer", id, "err", err)
	}
}

// blobOnly describes a blob the registry has; its content is not at hand.
type blobOnly struct {
	b  pushedBlob
	mt types.MediaType
}

func (l blobOnly) Digest() (v1.Hash, error)            { return l.b.Digest, nil }
func (l blobOnly) DiffID() (v1.Hash, error)            { return v1.Hash{}, errors.New("diff ID of a remote blob") }
func (l blobOnly) Size() (int64, error)                { return l.b.Size, nil }
func (l blobOnly) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l blobOnly) Compressed() (io.ReadCloser, error) {
	return nil, errors.New("blob content not at hand")
}
func (l blobOnly) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("blob content not at hand")
}

// rawManifest is a manifest for remote.Put, which takes its media type as
// the Content-Type.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// onceCloser closes c once, however often it is closed.
type onceCloser struct {
	io.Reader
	c    io.Closer
	once sync.Once
	err  error
}

func (o *onceCloser) Close() error {
	o.once.Do(func() { o.err = o.c.Close() })
	return o.err
}
