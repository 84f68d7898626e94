package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/layertar"
)

// Import makes a one-layer image of a rootfs tarball (plain, gzip, bzip2, xz
// or zstd) with the changes (see ApplyChanges) applied to its config, and
// stores it under ref (REPOSITORY[:TAG]; no name when empty).
func Import(ctx context.Context, s storage.Store, r io.Reader, ref string, changes []string, message string) (*storage.Image, error) {
	var names []string
	if ref != "" {
		n, err := importName(ref)
		if err != nil {
			return nil, err
		}
		names = []string{n}
	}
	now := v1.Time{Time: time.Now().UTC()}
	cfg := v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      now,
		History:      []v1.History{{Created: now, CreatedBy: "berth import", Comment: message}},
		RootFS:       v1.RootFS{Type: "layers"},
	}
	if err := ApplyChanges(&cfg.Config, changes); err != nil {
		return nil, err
	}
	layer, diffID, err := spoolRootfs(ctx, s, r)
	if err != nil {
		return nil, err
	}
	defer layer.Close()
	cfg.RootFS.DiffIDs = []v1.Hash{diffID}
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	fi, err := layer.Stat()
	if err != nil {
		return nil, err
	}
	const layerName = "rootfs.tar"
	files := &tarFiles{r: layer, entries: map[string]tarEntry{layerName: {0, fi.Size()}}}
	img, err := plainImage(files, rawCfg, cfg.RootFS.DiffIDs, []string{layerName})
	if err != nil {
		return nil, err
	}
	stored, err := write(ctx, s, img, writeOptions{names: names})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return stored, nil
}

// importName is where an imported image is stored: a name without a
// registry goes under localhost/, as podman does (see Lookup).
func importName(s string) (string, error) {
	ref, err := ParseName(s)
	if err != nil {
		return "", err
	}
	if _, ok := ref.(name.Digest); ok {
		return "", fmt.Errorf("invalid image name %q: want REPOSITORY[:TAG], not a digest", s)
	}
	if hasRegistry(s) {
		return Canonical(ref), nil
	}
	return localName(ref), nil
}

// spoolRootfs decompresses r into an unlinked file in the store, hashing it
// for its diff ID. The layer guard checks it on the way, so that a bad
// tarball is reported as such before anything is stored.
func spoolRootfs(ctx context.Context, s storage.Store, r io.Reader) (*os.File, v1.Hash, error) {
	plain, err := layertar.Decompress(r)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("import: decompress: %w", err)
	}
	defer plain.Close()
	guarded := layertar.Guard(plain)
	if c, ok := guarded.(io.Closer); ok {
		defer c.Close()
	}
	in := &readErr{r: guarded}
	h := sha256.New()
	f, err := spool(ctx, s, io.TeeReader(in, h))
	var entry *layertar.EntryError
	switch {
	case err != nil && in.err != nil && !errors.As(err, &entry):
		return nil, v1.Hash{}, fmt.Errorf("import: not a tar archive (plain, gzip, bzip2, xz or zstd): %w", err)
	case err != nil:
		return nil, v1.Hash{}, fmt.Errorf("import: %w", err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() == 0 {
		f.Close()
		return nil, v1.Hash{}, errors.New("import: the input is empty, want a tar archive")
	}
	return f, v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

// readErr remembers its reader's error, to tell a bad input from a failing
// disk.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}
