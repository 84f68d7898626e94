package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
)

// CommitOptions say what docker commit makes of a container.
type CommitOptions struct {
	// Ref is the new image's REPOSITORY[:TAG]; "" leaves it without a name.
	Ref     string
	Author  string
	Message string
	// Changes are Dockerfile instructions applied last (see ApplyChanges).
	Changes []string

	// The container's ID and its settings as it was created with them:
	// they replace (Env and Labels: add to) the image's.
	ContainerID string
	// EntrypointSet says the container replaced the image's entrypoint
	// (and so dropped its command).
	EntrypointSet bool
	Entrypoint    []string
	Cmd           []string
	Env           []string
	WorkingDir    string
	User          string
	Labels        map[string]string
	// CreatedBy is the history's note of what made the layer: the
	// container's command.
	CreatedBy string
}

// Commit makes an image of a container: the image imageID's layers and,
// on top, the changes of the container's layer layerID (its diff from the
// image), with the image's config updated by the container's settings and
// o.Changes, and a history entry for the new layer.
func Commit(ctx context.Context, s storage.Store, imageID, layerID string, o CommitOptions) (*storage.Image, error) {
	var names []string
	if o.Ref != "" {
		n, err := importName(o.Ref)
		if err != nil {
			return nil, err
		}
		names = []string{n}
	}
	base, err := s.Image(imageID)
	if err != nil {
		return nil, fmt.Errorf("commit: image %s: %w", short(imageID), err)
	}
	_, baseCfg, err := readConfig(s, base.ID)
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	cfg := baseCfg.DeepCopy()
	applyContainer(&cfg.Config, o)
	if err := ApplyChanges(&cfg.Config, o.Changes); err != nil {
		return nil, err
	}
	// The container's changes, spooled to know their diff ID before the
	// config that names it is written.
	diff, diffID, size, err := spoolDiff(ctx, s, layerID)
	if err != nil {
		return nil, err
	}
	defer diff.Close()
	now := v1.Time{Time: time.Now().UTC()}
	cfg.Created = now
	cfg.Author = o.Author
	cfg.Container = o.ContainerID
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
	cfg.History = append(cfg.History, v1.History{Created: now, CreatedBy: o.CreatedBy, Author: o.Author, Comment: o.Message})
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	img, err := committedImage(s, rawCfg, cfg.RootFS.DiffIDs, diff, size)
	if err != nil {
		return nil, err
	}
	stored, err := write(ctx, s, img, writeOptions{names: names})
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return stored, nil
}

// applyContainer lays the container's settings over the image's config.
func applyContainer(c *v1.Config, o CommitOptions) {
	switch {
	case o.EntrypointSet:
		c.Entrypoint, c.Cmd = slices.Clone(o.Entrypoint), slices.Clone(o.Cmd)
	case len(o.Cmd) > 0:
		c.Cmd = slices.Clone(o.Cmd)
	}
	for _, kv := range o.Env {
		k, v, ok := splitEnv(kv)
		if ok {
			c.Env = SetEnv(c.Env, k, v)
		}
	}
	if o.WorkingDir != "" {
		c.WorkingDir = o.WorkingDir
	}
	if o.User != "" {
		c.User = o.User
	}
	if len(o.Labels) > 0 {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		maps.Copy(c.Labels, o.Labels)
	}
}

func splitEnv(kv string) (k, v string, ok bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], i > 0
		}
	}
	return "", "", false
}

// spoolDiff copies a layer's diff from its parent (as an uncompressed tar)
// to an unlinked file in the store, hashing it for its diff ID.
func spoolDiff(ctx context.Context, s storage.Store, layerID string) (*os.File, v1.Hash, int64, error) {
	plain := archive.Uncompressed
	rc, err := s.Diff("", layerID, &storage.DiffOptions{Compression: &plain})
	if err != nil {
		return nil, v1.Hash{}, 0, fmt.Errorf("commit: read the container's changes: %w", err)
	}
	defer rc.Close()
	h := sha256.New()
	f, err := spool(ctx, s, io.TeeReader(rc, h))
	if err != nil {
		return nil, v1.Hash{}, 0, fmt.Errorf("commit: read the container's changes: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, v1.Hash{}, 0, err
	}
	return f, v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, fi.Size(), nil
}

// committedImage is the base image's stored layers plus, when top is not
// nil, the new one from the spooled file, all listed uncompressed: the
// stored ones are found in the store by their chain IDs and not copied again.
func committedImage(s storage.Store, rawCfg []byte, diffIDs []v1.Hash, top *os.File, topSize int64) (v1.Image, error) {
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawCfg)), Digest: sha256Hash(rawCfg)},
	}
	img := &committed{rawCfg: rawCfg, layers: map[v1.Hash]partial.CompressedLayer{}}
	ids := chainIDs(diffIDs)
	stored := diffIDs
	if top != nil {
		stored = diffIDs[:len(diffIDs)-1]
	}
	for i, d := range stored {
		l, err := s.Layer(ids[i])
		if err != nil {
			return nil, fmt.Errorf("commit: layer %s: %w", d, err)
		}
		desc := v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: l.UncompressedSize, Digest: d}
		m.Layers = append(m.Layers, desc)
		img.layers[d] = storedLayer{store: s, id: l.ID, desc: desc}
	}
	if top != nil {
		last := diffIDs[len(diffIDs)-1]
		desc := v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: topSize, Digest: last}
		m.Layers = append(m.Layers, desc)
		img.layers[last] = spooledLayer{f: top, desc: desc}
	}
	var err error
	if img.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(img)
}

type committed struct {
	rawCfg   []byte
	manifest []byte
	layers   map[v1.Hash]partial.CompressedLayer
}

func (c *committed) RawConfigFile() ([]byte, error)      { return c.rawCfg, nil }
func (c *committed) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (c *committed) RawManifest() ([]byte, error)        { return c.manifest, nil }

func (c *committed) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	l, ok := c.layers[h]
	if !ok {
		return nil, fmt.Errorf("no layer %s in image", h)
	}
	return l, nil
}

// spooledLayer is a layer in an unlinked file; each read starts anew.
type spooledLayer struct {
	f    *os.File
	desc v1.Descriptor
}

func (l spooledLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l spooledLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l spooledLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l spooledLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(l.f, 0, l.desc.Size)), nil
}
