package image

import (
	"time"

	"go.podman.io/storage"
)

// HistoryEntry is one line of `docker history`, newest first.
type HistoryEntry struct {
	// ID is the image ID on the newest entry and "<missing>" elsewhere, as docker shows.
	ID        string
	Created   time.Time
	CreatedBy string
	Size      int64
	Comment   string
	Tags      []string
}

// History lists how an image was built, from its config's history and the
// sizes of the layers each step added.
func History(s storage.Store, img *storage.Image) ([]HistoryEntry, error) {
	cfg, err := Config(s, img.ID)
	if err != nil {
		return nil, err
	}
	ids := chainIDs(cfg.RootFS.DiffIDs)
	layer := 0
	out := make([]HistoryEntry, 0, len(cfg.History))
	for _, h := range cfg.History {
		e := HistoryEntry{ID: "<missing>", Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment}
		if !h.EmptyLayer && layer < len(ids) {
			if l, err := s.Layer(ids[layer]); err == nil {
				e.Size = l.UncompressedSize
			}
			layer++
		}
		out = append(out, e)
	}
	// Newest first; the newest entry is the image itself.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) == 0 {
		out = append(out, HistoryEntry{Created: img.Created})
	}
	out[0].ID = img.ID
	out[0].Tags, _ = RepoNames(img)
	return out, nil
}
