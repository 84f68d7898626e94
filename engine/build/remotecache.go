package build

import (
	"context"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-containers/berth/engine/image"
)

// A registry cache (--cache-to, --cache-from) is podman's: every step that
// makes a layer is pushed as an image REPOSITORY:KEY, KEY its cache key,
// holding the layers up to it; a later build that misses its own cache
// asks the repositories for its key and takes the last layer.

// checkCacheRepos refuses a cache repository that is not one.
func checkCacheRepos(o Options) error {
	for _, flag := range []struct {
		name  string
		repos []string
	}{{"--cache-from", o.CacheFrom}, {"--cache-to", o.CacheTo}} {
		for _, r := range flag.repos {
			if i := strings.LastIndex(r, "/"); strings.ContainsAny(r[i+1:], ":@") {
				return fmt.Errorf("%s %s: give a repository, without a tag or digest (berth tags it with each step's key)", flag.name, r)
			}
			if _, err := image.ParseName(r + ":key"); err != nil {
				return fmt.Errorf("%s %s: %w", flag.name, r, err)
			}
			if o.Registry == nil {
				return fmt.Errorf("%s %s: no registry client", flag.name, r)
			}
		}
	}
	return nil
}

func cacheRef(repo, key string) string { return repo + ":" + key }

// remoteCache looks for s's key in the --cache-from repositories: an image
// whose layers are s's and one more, which becomes the step's layer.
func (b *builder) remoteCache(ctx context.Context, s *state) (image.Layer, bool) {
	for _, repo := range b.o.CacheFrom {
		cfg, err := image.FetchLayers(ctx, b.store, b.o.Registry, cacheRef(repo, s.key))
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, "manifest unknown") && !strings.Contains(msg, "MANIFEST_UNKNOWN") && !strings.Contains(msg, "NAME_UNKNOWN") {
				b.warn(fmt.Sprintf("--cache-from %s: %v", repo, err))
			}
			continue
		}
		ids := cfg.RootFS.DiffIDs
		if len(ids) != len(s.layers)+1 || !slices.Equal(ids[:len(s.layers)], s.diffIDs()) {
			continue
		}
		last := ids[len(ids)-1]
		chain := image.ChainID(s.top(), last)
		stored, err := b.store.Layer(chain)
		if err != nil {
			continue
		}
		l := image.Layer{ChainID: chain, DiffID: last, Size: stored.UncompressedSize}
		b.cacheStore(s.key, l)
		return l, true
	}
	return image.Layer{}, false
}

// exportCache pushes s, just past a layer step, to the --cache-to
// repositories.
func (b *builder) exportCache(ctx context.Context, s *state) error {
	for _, repo := range b.o.CacheTo {
		cfg := s.cfg.DeepCopy()
		cfg.RootFS = v1.RootFS{Type: "layers", DiffIDs: s.diffIDs()}
		if _, err := image.PushConfig(ctx, b.store, b.o.Registry, cacheRef(repo, s.key), cfg, image.PushOptions{}); err != nil {
			return fmt.Errorf("--cache-to %s: %w", repo, err)
		}
	}
	return nil
}
