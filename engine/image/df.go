package image

import (
	"fmt"

	"go.podman.io/storage"
)

// Usage is the disk use of one kind of object, as `system df` reports it.
type Usage struct {
	Type        string
	Total       int
	Active      int
	Size        int64
	Reclaimable int64
}

// DiskUsage counts images (layers shared between images once),
// containers' writable layers, and the build cache: the layers no image or
// container uses (`builder prune` removes them). An image is active when a
// container uses it; what only inactive images use is reclaimable.
func DiskUsage(s storage.Store) ([]Usage, error) {
	imgs, err := s.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	used, err := containerCounts(s)
	if err != nil {
		return nil, err
	}
	layers, err := s.Layers()
	if err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	byID := make(map[string]storage.Layer, len(layers))
	for _, l := range layers {
		byID[l.ID] = l
	}
	images := Usage{Type: "Images", Total: len(imgs)}
	activeLayers := map[string]bool{}
	allLayers := map[string]bool{}
	for _, img := range imgs {
		active := used[img.ID] > 0
		if active {
			images.Active++
		}
		for id := img.TopLayer; id != ""; id = byID[id].Parent {
			allLayers[id] = true
			if active {
				activeLayers[id] = true
			}
		}
	}
	for id := range allLayers {
		images.Size += byID[id].UncompressedSize
		if !activeLayers[id] {
			images.Reclaimable += byID[id].UncompressedSize
		}
	}
	cs, err := s.Containers()
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	containers := Usage{Type: "Containers", Total: len(cs)}
	for _, c := range cs {
		allLayers[c.LayerID] = true
		if size, err := s.ContainerSize(c.ID); err == nil {
			containers.Size += size
		}
	}
	cache := Usage{Type: "Build Cache"}
	for _, l := range layers {
		if !allLayers[l.ID] {
			cache.Total++
			cache.Size += l.UncompressedSize
		}
	}
	cache.Reclaimable = cache.Size
	return []Usage{images, containers, cache}, nil
}
