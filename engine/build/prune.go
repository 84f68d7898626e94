package build

import (
	"fmt"
	"os"
	"path/filepath"

	"go.podman.io/storage"
)

// Prune empties the build cache: its entries, its cache mounts, and the
// layers that only it kept (none an image or container uses). It returns
// the number of layers removed and their size. Sweep goes first.
func Prune(s storage.Store) (int, int64, error) {
	layers, err := s.Layers()
	if err != nil {
		return 0, 0, fmt.Errorf("list layers: %w", err)
	}
	byID := map[string]storage.Layer{}
	for _, l := range layers {
		byID[l.ID] = l
	}
	used := map[string]bool{}
	mark := func(id string) {
		for ; id != "" && !used[id]; id = byID[id].Parent {
			used[id] = true
		}
	}
	imgs, err := s.Images()
	if err != nil {
		return 0, 0, fmt.Errorf("list images: %w", err)
	}
	for _, img := range imgs {
		mark(img.TopLayer)
	}
	cs, err := s.Containers()
	if err != nil {
		return 0, 0, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs {
		mark(c.LayerID)
	}
	// Children go before their parents: repeat while something goes.
	n, freed := 0, int64(0)
	for removed := true; removed; {
		removed = false
		for _, l := range layers {
			if used[l.ID] || byID[l.ID].ID == "" {
				continue
			}
			if err := s.DeleteLayer(l.ID); err == nil {
				n++
				freed += l.UncompressedSize
				delete(byID, l.ID)
				removed = true
			}
		}
	}
	dir := filepath.Dir(CacheDir(s))
	if err := os.RemoveAll(dir); err != nil {
		return n, freed, fmt.Errorf("remove the build cache: %w", err)
	}
	return n, freed, nil
}
