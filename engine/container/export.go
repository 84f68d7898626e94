package container

import (
	"context"
	"fmt"
	"io"

	"go.podman.io/storage"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/events"
)

// Export writes c's whole filesystem (the image's layers and the
// container's changes, merged) to w as a tar stream, as docker export
// does: entries named from the root without a leading "/" or "./", owners
// numeric, nothing followed out of the rootfs. A running container is
// exported as it is at the time; volumes and the /etc files berth mounts
// over the rootfs are not part of it.
func Export(ctx context.Context, s storage.Store, c *Container, w io.Writer) error {
	err := withRootfs(s, c, func(root *fsRoot) error {
		self, err := root.open("/")
		if err != nil {
			return fmt.Errorf("export %s: %w", c.Name, err)
		}
		n := &node{self: self}
		defer n.close()
		if err := unix.Fstat(int(self.Fd()), &n.st); err != nil {
			return fmt.Errorf("export %s: %w", c.Name, err)
		}
		a := newArchiver(ctx, w)
		if err := a.add(n, ""); err != nil {
			return fmt.Errorf("export %s: %w", c.Name, err)
		}
		return a.close()
	})
	if err == nil {
		events.Container(s.RunRoot(), "export", c.ID, c.Image, c.Name)
	}
	return err
}
