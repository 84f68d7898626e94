// Package store opens berth's containers/storage store.
package store

import (
	"fmt"

	"go.podman.io/storage"
	"go.podman.io/storage/types"

	"github.com/berth-containers/berth/engine/config"
)

// Open opens (creating if needed) the store the configuration names. With no
// driver set, overlay is tried first and vfs is the fallback (overlay cannot
// be mounted on some filesystems, such as overlay itself).
func Open(c config.Storage) (storage.Store, error) {
	opts := types.StoreOptions{
		GraphRoot:          c.Root,
		RunRoot:            c.RunRoot,
		GraphDriverName:    c.Driver,
		GraphDriverOptions: c.Options,
	}
	if c.Driver == "" {
		opts.GraphDriverPriority = []string{"overlay", "vfs"}
	}
	s, err := storage.GetStore(opts)
	if err != nil {
		return nil, fmt.Errorf("open storage at %s: %w", c.Root, err)
	}
	return s, nil
}
