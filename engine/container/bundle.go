package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.podman.io/storage"
	"go.podman.io/storage/pkg/chrootarchive"

	"github.com/berth-containers/berth/bundle"
	"github.com/berth-containers/berth/engine/image"
)

// WriteBundle writes a standalone OCI bundle for the image into dir (which
// must not exist or be empty): dir/rootfs holds a copy of the image's
// filesystem, dir/config.json runs it with root.path "rootfs", and the /etc
// files live beside it. Any OCI runtime can run it by hand; berth keeps no
// record of it.
func WriteBundle(ctx context.Context, s storage.Store, o CreateOptions, dir string) (err error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("bundle directory %s is not empty", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("bundle directory: %w", err)
	}
	img, err := image.Lookup(s, o.Image)
	if err != nil {
		return err
	}
	imgCfg, _, err := imageConfig(s, img.ID)
	if err != nil {
		return err
	}
	if err := standaloneMounts(&o); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bundle directory: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	// A throwaway container gives a mounted copy-on-write view to copy from.
	tmp, err := s.CreateContainer("", nil, img.ID, "", "", nil)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer func() { _ = s.DeleteContainer(tmp.ID) }()
	src, err := s.Mount(tmp.ID, "")
	if err != nil {
		return fmt.Errorf("bundle: mount image: %w", err)
	}
	defer func() { _, _ = s.Unmount(tmp.ID, true) }()
	rootfs := filepath.Join(dir, "rootfs")
	if err := chrootarchive.NewArchiver(nil).CopyWithTar(src, rootfs); err != nil {
		return fmt.Errorf("bundle: copy rootfs: %w", err)
	}
	bo := o.Bundle
	bo.Terminal = o.Tty
	spec, err := bundle.Generate(imgCfg, rootfs, bo)
	if err != nil {
		return err
	}
	if err := bundle.AddEtcFiles(dir, spec, o.Etc); err != nil {
		return err
	}
	spec.Root.Path = "rootfs"
	return bundle.WriteBundle(dir, spec)
}
