package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/image"
)

// Prune empties the build cache: its entries, its cache mounts, and the
// layers that only it kept (none an image or container uses). It returns
// the number of layers removed and their size. Sweep goes first.
func Prune(s storage.Store) (int, int64, error) {
	unused, err := image.CacheLayers(s)
	if err != nil {
		return 0, 0, err
	}
	n, freed := 0, int64(0)
	var errs []error
	for _, l := range unused {
		if err := s.DeleteLayer(l.ID); err != nil {
			errs = append(errs, fmt.Errorf("remove cache layer %s: %w", l.ID, err))
			continue
		}
		n++
		freed += l.UncompressedSize
	}
	dir := filepath.Dir(CacheDir(s))
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove the build cache: %w", err))
	}
	return n, freed, errors.Join(errs...)
}
