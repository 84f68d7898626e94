package image

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/events"
)

// Tag gives the image src the names targets.
func Tag(s storage.Store, src string, targets []string) error {
	img, err := Lookup(s, src)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(targets))
	for _, t := range targets {
		ref, err := ParseName(t)
		if err != nil {
			return err
		}
		if _, ok := ref.(name.Digest); ok {
			return fmt.Errorf("tag %s: refusing to create a tag with a digest reference", t)
		}
		names = append(names, Canonical(ref))
	}
	// Names are unique in the store: one given here leaves the image that had it.
	if err := s.AddNames(img.ID, names); err != nil {
		return fmt.Errorf("tag %s: %w", src, err)
	}
	events.Image(s.RunRoot(), "tag", "sha256:"+img.ID, names...)
	return nil
}

// Removal reports what Remove did for one argument, in docker's words.
type Removal struct {
	Untagged []string
	Deleted  []string // image and layer IDs
}

// ErrInUse is returned (wrapped) when containers still use an image.
var ErrInUse = errors.New("image is in use by a container")

// Remove untags ref, and deletes the image when no name is left. An image
// named by ID that has several names is deleted only with force; an image
// a container uses is never deleted.
func Remove(s storage.Store, ref string, force bool) (*Removal, error) {
	img, err := Lookup(s, ref)
	if err != nil {
		return nil, err
	}
	byID := strings.HasPrefix(img.ID, strings.TrimPrefix(ref, "sha256:")) && hexPrefix.MatchString(ref)
	if !byID && len(img.Names) > 1 {
		parsed, _ := ParseName(ref)
		n := matchingName(img, parsed)
		if err := s.RemoveNames(img.ID, []string{n}); err != nil {
			return nil, fmt.Errorf("untag %s: %w", ref, err)
		}
		events.Image(s.RunRoot(), "untag", "sha256:"+img.ID, n)
		return &Removal{Untagged: []string{n}}, nil
	}
	if byID && len(img.Names) > 1 && !force {
		return nil, fmt.Errorf("unable to delete %s (must be forced): image is referenced in multiple repositories", short(img.ID))
	}
	if err := notInUse(s, img); err != nil {
		return nil, err
	}
	layers, err := s.DeleteImage(img.ID, true)
	if err != nil {
		return nil, fmt.Errorf("delete image %s: %w", short(img.ID), err)
	}
	events.Image(s.RunRoot(), "untag", "sha256:"+img.ID, img.Names...)
	events.Image(s.RunRoot(), "delete", "sha256:"+img.ID)
	r := &Removal{Untagged: img.Names, Deleted: []string{"sha256:" + img.ID}}
	for _, l := range layers {
		r.Deleted = append(r.Deleted, "sha256:"+l)
	}
	return r, nil
}

// matchingName is the stored name ref stands for (the canonical or the
// localhost/ form Lookup also tries).
func matchingName(img *storage.Image, ref name.Reference) string {
	for _, n := range []string{Canonical(ref), localName(ref)} {
		for _, have := range img.Names {
			if have == n {
				return n
			}
		}
	}
	return Canonical(ref)
}

func notInUse(s storage.Store, img *storage.Image) error {
	cs, err := s.Containers()
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs {
		if c.ImageID == img.ID {
			return fmt.Errorf("image %s: %w %s", short(img.ID), ErrInUse, short(c.ID))
		}
	}
	return nil
}

// Prune deletes dangling images (all unused ones with all) that no
// container uses, and returns their IDs and the space freed.
func Prune(s storage.Store, all bool) (ids []string, freed int64, err error) {
	imgs, err := s.Images()
	if err != nil {
		return nil, 0, fmt.Errorf("list images: %w", err)
	}
	used, err := containerCounts(s)
	if err != nil {
		return nil, 0, err
	}
	sizes, err := layerSizes(s)
	if err != nil {
		return nil, 0, err
	}
	for _, img := range imgs {
		if used[img.ID] > 0 || (!all && len(img.Names) > 0) {
			continue
		}
		// Only layers no other image shares are deleted, and freed.
		layers, err := s.DeleteImage(img.ID, true)
		if err != nil {
			return ids, freed, fmt.Errorf("delete image %s: %w", short(img.ID), err)
		}
		ids = append(ids, "sha256:"+img.ID)
		events.Image(s.RunRoot(), "delete", "sha256:"+img.ID)
		for _, l := range layers {
			freed += sizes[l]
		}
	}
	return ids, freed, nil
}

// layerSizes maps layer IDs to their unpacked sizes.
func layerSizes(s storage.Store) (map[string]int64, error) {
	layers, err := s.Layers()
	if err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	sizes := make(map[string]int64, len(layers))
	for _, l := range layers {
		sizes[l.ID] = l.UncompressedSize
	}
	return sizes, nil
}
