package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.podman.io/storage"
)

// Layer is a stored image layer: its storage ID is its chain ID.
type Layer struct {
	ChainID string
	DiffID  v1.Hash
	Size    int64
}

// ChainID is the chain ID of the layer diffID on top of the chain parent
// ("" for a first layer), as OCI's image spec defines it.
func ChainID(parent string, diffID v1.Hash) string {
	if parent == "" {
		return diffID.Hex
	}
	sum := sha256.Sum256([]byte("sha256:" + parent + " " + diffID.String()))
	return hex.EncodeToString(sum[:])
}

// StoreDiff stores the changes of the writable layer layerID (its diff
// from its parent, the stored layer parent) as an image layer named by its
// chain ID. The same changes on the same parent are found, not stored twice.
func StoreDiff(ctx context.Context, s storage.Store, layerID, parent string) (Layer, error) {
	diff, diffID, size, err := spoolDiff(ctx, s, layerID)
	if err != nil {
		return Layer{}, err
	}
	defer diff.Close()
	l := Layer{ChainID: ChainID(parent, diffID), DiffID: diffID, Size: size}
	if _, err := s.Layer(l.ChainID); err == nil {
		return l, nil
	}
	if _, _, err := s.PutLayer(l.ChainID, parent, nil, "", false, nil, diff); err != nil && !errors.Is(err, storage.ErrDuplicateID) {
		return Layer{}, fmt.Errorf("store layer %s: %w", diffID, err)
	}
	return l, nil
}

// WriteConfig records an image made of stored layers (cfg's diff IDs, each
// found by its chain ID) and cfg, with names (canonical references).
func WriteConfig(ctx context.Context, s storage.Store, cfg *v1.ConfigFile, x Extras, names []string) (*storage.Image, error) {
	rawCfg, err := marshalConfig(cfg, x)
	if err != nil {
		return nil, err
	}
	img, err := committedImage(s, rawCfg, cfg.RootFS.DiffIDs, nil, 0)
	if err != nil {
		return nil, err
	}
	return write(ctx, s, img, writeOptions{names: names})
}

// Canonicals turns user references (NAME[:TAG]) into the names images are
// stored under.
func Canonicals(refs []string) ([]string, error) {
	names := make([]string, 0, len(refs))
	for _, r := range refs {
		n, err := importName(r)
		if err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, nil
}
