package layertar

import (
	"io"

	"go.podman.io/storage/pkg/archive"
)

// Decompress is archive.DecompressStream (gzip, bzip2, xz, zstd or plain, by
// the stream's first bytes) with a Close that first reads the stream to its
// end. Closed early (a refused entry, a layer stored meanwhile), storage
// recycles its pooled buffer while pgzip's read-ahead goroutine may still be
// reading from it, which crashes the process (seen under concurrent pulls).
// The source ending or failing ends that read quickly.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	rc, err := archive.DecompressStream(r)
	if err != nil {
		return nil, err
	}
	return drainOnClose{rc}, nil
}

type drainOnClose struct{ io.ReadCloser }

func (d drainOnClose) Close() error {
	// Plain reads: pgzip's WriteTo panics after its Read saw the end.
	_, _ = io.Copy(io.Discard, struct{ io.Reader }{d.ReadCloser})
	return d.ReadCloser.Close()
}
