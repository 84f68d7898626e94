package build

import (
	"fmt"
	"io"
	"os"

	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
)

// ExportRootfs writes the root filesystem of a built image: into the
// directory dest (type local) or as a tar to w (type tar).
func ExportRootfs(s storage.Store, img *storage.Image, kind, dest string, w io.Writer) error {
	b := &builder{store: s}
	work, err := b.newWorkLayer(img.TopLayer)
	if err != nil {
		return err
	}
	defer work.discard()
	switch kind {
	case "local":
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return fmt.Errorf("--output dest %s: %w", dest, err)
		}
		if err := chrootarchive.NewArchiver(nil).CopyWithTar(work.root, dest); err != nil {
			return fmt.Errorf("--output dest %s: %w", dest, err)
		}
		return nil
	case "tar":
		rc, err := archive.Tar(work.root, archive.Uncompressed)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(w, rc)
		return err
	}
	return fmt.Errorf("--output type %q: want local or tar", kind)
}
