package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.podman.io/storage"
)

// Archive formats of Save and SaveDir.
const (
	DockerArchive = "docker-archive" // what `docker save` writes
	OCIArchive    = "oci-archive"    // a tar of an OCI image layout
	OCIDir        = "oci-dir"        // an OCI image layout directory
)

// OCI and containerd annotations naming an image in an index.
const (
	annotationRefName    = "org.opencontainers.image.ref.name"
	annotationImageName  = "io.containerd.image.name"
	ociLayoutFile        = "oci-layout"
	ociIndexFile         = "index.json"
	dockerManifestFile   = "manifest.json"
	ociLayoutFileContent = `{"imageLayoutVersion":"1.0.0"}`
)

// savedImage is one image to save, with the names it is saved under.
type savedImage struct {
	id    string
	img   v1.Image
	names []string
}

// Save writes the images refs name to w as a docker-archive (format "" is
// docker-archive too) or oci-archive tar, streaming layers from the store.
// All refs are resolved before anything is written.
func Save(ctx context.Context, s storage.Store, refs []string, format string, w io.Writer) error {
	if format == "" {
		format = DockerArchive
	}
	if format == OCIDir {
		return fmt.Errorf("format %s is written to a directory, not a stream", OCIDir)
	}
	if format != DockerArchive && format != OCIArchive {
		return unknownFormat(format)
	}
	imgs, err := resolveSaved(s, refs)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := writeArchive(ctx, tarSink{tw}, imgs, format); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	return nil
}

// SaveDir writes the images as an OCI image layout into dir, which must be
// missing or empty.
func SaveDir(ctx context.Context, s storage.Store, refs []string, dir string) error {
	imgs, err := resolveSaved(s, refs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) > 0 {
		return fmt.Errorf("save to %s: directory is not empty", dir)
	}
	return writeArchive(ctx, dirSink(dir), imgs, OCIDir)
}

func unknownFormat(f string) error {
	return fmt.Errorf("unknown format %q (want %s, %s or %s)", f, DockerArchive, OCIArchive, OCIDir)
}

// resolveSaved looks up every ref; refs to the same image make one entry
// with all their names.
func resolveSaved(s storage.Store, refs []string) ([]*savedImage, error) {
	var out []*savedImage
	byID := map[string]*savedImage{}
	for _, ref := range refs {
		img, err := Lookup(s, ref)
		if err != nil {
			return nil, err
		}
		si := byID[img.ID]
		if si == nil {
			src, err := Source(s, img)
			if err != nil {
				return nil, err
			}
			si = &savedImage{id: img.ID, img: src}
			byID[img.ID] = si
			out = append(out, si)
		}
		if n := savedName(img, ref); n != "" && !slices.Contains(si.names, n) {
			si.names = append(si.names, n)
		}
	}
	return out, nil
}

// savedName is the stored name ref picked out of img's names; "" when ref
// is an ID or a digest, which docker saves without a tag.
func savedName(img *storage.Image, ref string) string {
	if hexPrefix.MatchString(ref) && strings.HasPrefix(img.ID, strings.TrimPrefix(ref, "sha256:")) {
		return ""
	}
	parsed, err := ParseName(ref)
	if err != nil {
		return ""
	}
	if _, ok := parsed.(name.Digest); ok {
		return ""
	}
	for _, n := range []string{Canonical(parsed), localName(parsed)} {
		if slices.Contains(img.Names, n) {
			return n
		}
	}
	return ""
}

// sink receives the files of an archive, parent directories first.
type sink interface {
	dir(name string) error
	file(name string, size int64, r io.Reader) error
}

// writeArchive writes the metadata first, so that a reader of the stream
// finds it before the blobs, then every blob once. Blobs live under
// blobs/sha256 in every format (docker-archive as docker 25 writes it).
func writeArchive(ctx context.Context, out sink, imgs []*savedImage, format string) error {
	var index v1.IndexManifest
	var dockerManifest []dockerEntry
	manifests := make([][]byte, len(imgs))
	for i, si := range imgs {
		m, err := si.img.RawManifest()
		if err != nil {
			return fmt.Errorf("image %s: %w", short(si.id), err)
		}
		manifests[i] = m
		desc, err := si.img.Manifest()
		if err != nil {
			return fmt.Errorf("image %s: %w", short(si.id), err)
		}
		e := dockerEntry{Config: blobPath(desc.Config.Digest)}
		for _, l := range desc.Layers {
			e.Layers = append(e.Layers, blobPath(l.Digest))
		}
		e.RepoTags = si.names
		dockerManifest = append(dockerManifest, e)
		mt, err := si.img.MediaType()
		if err != nil {
			return fmt.Errorf("image %s: %w", short(si.id), err)
		}
		mdesc := v1.Descriptor{MediaType: mt, Size: int64(len(m)), Digest: sha256Hash(m)}
		if len(si.names) == 0 {
			index.Manifests = append(index.Manifests, mdesc)
		}
		for _, n := range si.names {
			d := mdesc
			_, tag := SplitName(n)
			d.Annotations = map[string]string{annotationRefName: tag, annotationImageName: n}
			index.Manifests = append(index.Manifests, d)
		}
	}
	if format == DockerArchive {
		if err := putJSON(out, dockerManifestFile, dockerManifest); err != nil {
			return err
		}
	} else {
		index.SchemaVersion = 2
		index.MediaType = "application/vnd.oci.image.index.v1+json"
		if err := out.file(ociLayoutFile, int64(len(ociLayoutFileContent)), strings.NewReader(ociLayoutFileContent)); err != nil {
			return fmt.Errorf("write %s: %w", ociLayoutFile, err)
		}
		if err := putJSON(out, ociIndexFile, index); err != nil {
			return err
		}
	}
	for _, d := range []string{"blobs", "blobs/sha256"} {
		if err := out.dir(d); err != nil {
			return fmt.Errorf("write %s: %w", d, err)
		}
	}
	written := map[v1.Hash]bool{}
	put := func(h v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
		if written[h] {
			return nil
		}
		written[h] = true
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := out.file(blobPath(h), size, ctxReader{ctx, rc}); err != nil {
			return fmt.Errorf("write blob %s: %w", h, err)
		}
		return nil
	}
	for i, si := range imgs {
		rawCfg, err := si.img.RawConfigFile()
		if err != nil {
			return fmt.Errorf("image %s: %w", short(si.id), err)
		}
		if err := put(sha256Hash(rawCfg), int64(len(rawCfg)), bytesOpener(rawCfg)); err != nil {
			return err
		}
		if format != DockerArchive {
			if err := put(sha256Hash(manifests[i]), int64(len(manifests[i])), bytesOpener(manifests[i])); err != nil {
				return err
			}
		}
		layers, err := si.img.Layers()
		if err != nil {
			return fmt.Errorf("image %s: %w", short(si.id), err)
		}
		for _, l := range layers {
			h, err := l.Digest()
			if err != nil {
				return err
			}
			size, err := l.Size()
			if err != nil {
				return err
			}
			// Source's layers are stored uncompressed: "Compressed" is the tar.
			if err := put(h, size, l.Compressed); err != nil {
				return fmt.Errorf("image %s: %w", short(si.id), err)
			}
		}
	}
	return nil
}

// dockerEntry is one image in a docker-archive's manifest.json.
type dockerEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

func sha256Hash(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h
}

func bytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func putJSON(out sink, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := out.file(name, int64(len(b)), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// tarSink streams an archive. Timestamps are fixed so that saving the same
// images twice gives the same bytes.
type tarSink struct{ tw *tar.Writer }

func (t tarSink) dir(name string) error {
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: time.Unix(0, 0)})
}

func (t tarSink) file(name string, size int64, r io.Reader) error {
	if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	n, err := io.Copy(t.tw, r)
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes, want %d", n, size)
	}
	return err
}

// dirSink writes an OCI layout directory.
type dirSink string

func (d dirSink) dir(name string) error {
	return os.Mkdir(filepath.Join(string(d), name), 0o755)
}

func (d dirSink) file(name string, size int64, r io.Reader) error {
	f, err := os.OpenFile(filepath.Join(string(d), name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes, want %d", n, size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
