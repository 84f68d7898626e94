package image

import (
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
)

// stored is a v1.Image read back from the store. Its layers are the
// uncompressed tars the store reproduces byte for byte, so their digests are
// the config's diff IDs and nothing is compressed or hashed to describe them.
type stored struct {
	store    storage.Store
	rawCfg   []byte
	manifest []byte
	layers   map[v1.Hash]storedLayer
}

type storedLayer struct {
	store storage.Store
	id    string
	desc  v1.Descriptor
}

// Source returns img as a v1.Image for saving or pushing.
func Source(s storage.Store, img *storage.Image) (v1.Image, error) {
	rawCfg, cfg, err := readConfig(s, img.ID)
	if err != nil {
		return nil, err
	}
	ids := chainIDs(cfg.RootFS.DiffIDs)
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config: v1.Descriptor{
			MediaType: types.OCIConfigJSON,
			Size:      int64(len(rawCfg)),
			Digest:    v1.Hash{Algorithm: "sha256", Hex: img.ID},
		},
	}
	src := &stored{store: s, rawCfg: rawCfg, layers: map[v1.Hash]storedLayer{}}
	for i, diffID := range cfg.RootFS.DiffIDs {
		l, err := s.Layer(ids[i])
		if err != nil {
			return nil, fmt.Errorf("image %s: layer %s: %w", short(img.ID), diffID, err)
		}
		desc := v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: l.UncompressedSize, Digest: diffID}
		m.Layers = append(m.Layers, desc)
		src.layers[diffID] = storedLayer{store: s, id: l.ID, desc: desc}
	}
	if src.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(src)
}

func (s *stored) RawConfigFile() ([]byte, error)      { return s.rawCfg, nil }
func (s *stored) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (s *stored) RawManifest() ([]byte, error)        { return s.manifest, nil }

func (s *stored) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	l, ok := s.layers[h]
	if !ok {
		return nil, fmt.Errorf("no layer %s in image", h)
	}
	return l, nil
}

func (l storedLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l storedLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l storedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

func (l storedLayer) Compressed() (io.ReadCloser, error) {
	plain := archive.Uncompressed
	rc, err := l.store.Diff("", l.id, &storage.DiffOptions{Compression: &plain})
	if err != nil {
		return nil, fmt.Errorf("read layer %s: %w", short(l.id), err)
	}
	return rc, nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
