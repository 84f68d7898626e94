package image

import (
	"fmt"
	"sort"

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
	_, byID, err := layerIndex(s)
	if err != nil {
		return nil, err
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
		if size, err := s.ContainerSize(c.ID); err == nil {
			containers.Size += size
		}
	}
	unused, err := CacheLayers(s)
	if err != nil {
		return nil, err
	}
	cache := Usage{Type: "Build Cache", Total: len(unused)}
	for _, l := range unused {
		cache.Size += l.UncompressedSize
	}
	cache.Reclaimable = cache.Size
	return []Usage{images, containers, cache}, nil
}

// CacheLayers are the layers no image or container uses: what builds
// left (their cache), children before their parents.
func CacheLayers(s storage.Store) ([]storage.Layer, error) {
	layers, byID, err := layerIndex(s)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	mark := func(id string) {
		for ; id != "" && !used[id]; id = byID[id].Parent {
			used[id] = true
		}
	}
	imgs, err := s.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	for _, img := range imgs {
		mark(img.TopLayer)
	}
	cs, err := s.Containers()
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs {
		mark(c.LayerID)
	}
	// A layer's depth orders children first.
	depth := func(id string) int {
		n := 0
		for ; id != ""; id = byID[id].Parent {
			n++
		}
		return n
	}
	var out []storage.Layer
	for _, l := range layers {
		if !used[l.ID] {
			out = append(out, l)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i].ID) > depth(out[j].ID) })
	return out, nil
}

// SharedSizes are, per image ID, the bytes of its layers that another
// image uses too (the Engine API's SharedSize).
func SharedSizes(s storage.Store) (map[string]int64, error) {
	imgs, err := s.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	_, byID, err := layerIndex(s)
	if err != nil {
		return nil, err
	}
	users := map[string]int{}
	for _, img := range imgs {
		for id := img.TopLayer; id != ""; id = byID[id].Parent {
			users[id]++
		}
	}
	out := make(map[string]int64, len(imgs))
	for _, img := range imgs {
		var n int64
		for id := img.TopLayer; id != ""; id = byID[id].Parent {
			if users[id] > 1 {
				n += byID[id].UncompressedSize
			}
		}
		out[img.ID] = n
	}
	return out, nil
}

// layerIndex lists the store's layers and indexes them by ID, for walks up
// their parents.
func layerIndex(s storage.Store) ([]storage.Layer, map[string]storage.Layer, error) {
	layers, err := s.Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("list layers: %w", err)
	}
	byID := make(map[string]storage.Layer, len(layers))
	for _, l := range layers {
		byID[l.ID] = l
	}
	return layers, byID, nil
}
