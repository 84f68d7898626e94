package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"

	"github.com/berth-containers/berth/engine/layertar"
)

// Load stores every image of a docker-archive or OCI archive read from r (a
// tar, or a gzip, bzip2, xz or zstd compressed one). It returns the names of
// the images, or "sha256:ID" for one without a name. The archive's metadata
// and blobs are all checked before the first image is stored; each image is
// stored whole or not at all. On error, the images stored before it are
// returned with it.
func Load(ctx context.Context, s storage.Store, r io.Reader) ([]string, error) {
	tarball, done, err := randomAccess(ctx, s, r)
	if err != nil {
		return nil, err
	}
	defer done()
	files, err := indexTar(tarball)
	if err != nil {
		return nil, err
	}
	return load(ctx, s, files)
}

// LoadDir is Load for an archive unpacked into dir: an OCI image layout (or
// a docker-archive's files).
func LoadDir(ctx context.Context, s storage.Store, dir string) ([]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer root.Close()
	return load(ctx, s, dirFiles{root})
}

func load(ctx context.Context, s storage.Store, files archiveFiles) ([]string, error) {
	imgs, err := readArchive(files)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var loaded []string
	for _, li := range imgs {
		stored, err := write(ctx, s, li.img, writeOptions{names: li.names})
		if err != nil {
			return loaded, fmt.Errorf("load image %s: %w", li.what, err)
		}
		if len(li.names) == 0 {
			loaded = append(loaded, "sha256:"+stored.ID)
		}
		loaded = append(loaded, li.names...)
	}
	return loaded, nil
}

// randomAccess gives the plain tar in r with random access, which both
// formats need (manifest.json and index.json may come last): a plain tar in
// a regular file is read in place; anything else (a pipe, a compressed
// archive) is decompressed into an unlinked file in the store first.
func randomAccess(ctx context.Context, s storage.Store, r io.Reader) (*io.SectionReader, func(), error) {
	if f, ok := r.(*os.File); ok {
		fi, err := f.Stat()
		off, serr := f.Seek(0, io.SeekCurrent)
		if err == nil && serr == nil && fi.Mode().IsRegular() {
			head := make([]byte, 10)
			n, _ := f.ReadAt(head, off)
			if archive.DetectCompression(head[:n]) == archive.Uncompressed {
				return io.NewSectionReader(f, off, fi.Size()-off), func() {}, nil
			}
		}
	}
	plain, err := layertar.Decompress(r)
	if err != nil {
		return nil, nil, fmt.Errorf("load: decompress archive: %w", err)
	}
	defer plain.Close()
	tmp, err := spool(ctx, s, plain)
	if err != nil {
		return nil, nil, fmt.Errorf("load: read archive: %w", err)
	}
	fi, err := tmp.Stat()
	if err != nil {
		tmp.Close()
		return nil, nil, err
	}
	return io.NewSectionReader(tmp, 0, fi.Size()), func() { tmp.Close() }, nil
}

// archiveFiles are the files of an archive by the names its manifests use.
type archiveFiles interface {
	// stat returns the size of a regular file, or an error naming it.
	stat(name string) (int64, error)
	open(name string) (io.ReadCloser, error)
}

// tarFiles are the regular files of a tar, read in place.
type tarFiles struct {
	r       io.ReaderAt
	entries map[string]tarEntry // by clean name
	links   map[string]string   // symlinks and hard links: clean name to clean target
}

type tarEntry struct{ off, size int64 }

// indexTar reads the headers of a tar (the data is skipped by seeking).
func indexTar(r *io.SectionReader) (*tarFiles, error) {
	t := &tarFiles{r: r, entries: map[string]tarEntry{}, links: map[string]string{}}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF && n == 0 {
			return nil, errors.New("load: the archive is empty")
		}
		if err == io.EOF {
			return t, nil
		}
		if err != nil && n == 0 {
			return nil, fmt.Errorf("load: not a tar archive (plain, gzip, bzip2, xz or zstd): %w", err)
		}
		if err != nil {
			return nil, fmt.Errorf("load: read archive: %w", err)
		}
		name := cleanName(h.Name)
		delete(t.links, name)
		delete(t.entries, name)
		switch h.Typeflag {
		case tar.TypeReg:
			// tar.Reader reads no further than the header: this is where the data starts.
			off, err := r.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, err
			}
			t.entries[name] = tarEntry{off, h.Size}
		case tar.TypeSymlink: // old docker saves link duplicate layers
			target := h.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			t.links[name] = cleanName(target)
		case tar.TypeLink:
			t.links[name] = cleanName(h.Linkname)
		}
	}
}

// cleanName is a name relative to the archive's root; it cannot climb out.
func cleanName(n string) string { return strings.TrimPrefix(path.Clean("/"+n), "/") }

func (t *tarFiles) section(name string) (*io.SectionReader, error) {
	n := cleanName(name)
	for range 16 { // links may chain, or loop
		if e, ok := t.entries[n]; ok {
			return io.NewSectionReader(t.r, e.off, e.size), nil
		}
		target, ok := t.links[n]
		if !ok {
			break
		}
		n = target
	}
	return nil, fmt.Errorf("%q: %w in the archive", name, fs.ErrNotExist)
}

func (t *tarFiles) stat(name string) (int64, error) {
	sr, err := t.section(name)
	if err != nil {
		return 0, err
	}
	return sr.Size(), nil
}

func (t *tarFiles) open(name string) (io.ReadCloser, error) {
	sr, err := t.section(name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(sr), nil
}

// dirFiles are the files of a directory; os.Root keeps a hostile manifest
// from naming a file outside it.
type dirFiles struct{ root *os.Root }

func (d dirFiles) stat(name string) (int64, error) {
	fi, err := d.root.Stat(name)
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%q is not a regular file", name)
	}
	return fi.Size(), nil
}

func (d dirFiles) open(name string) (io.ReadCloser, error) { return d.root.Open(name) }

// maxMetadata bounds the JSON files read into memory.
const maxMetadata = 32 << 20

func readFile(files archiveFiles, name string) ([]byte, error) {
	size, err := files.stat(name)
	if err != nil {
		return nil, err
	}
	if size > maxMetadata {
		return nil, fmt.Errorf("%q is too large (%d bytes) for image metadata", name, size)
	}
	rc, err := files.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// readBlob reads an OCI layout's blob and checks it is what d describes.
func readBlob(files archiveFiles, d v1.Descriptor) ([]byte, error) {
	b, err := readFile(files, blobPath(d.Digest))
	if err != nil {
		return nil, err
	}
	if got := sha256Hash(b); got != d.Digest || int64(len(b)) != d.Size {
		return nil, fmt.Errorf("blob %s: content is %s (%d bytes), want %d bytes", d.Digest, got, len(b), d.Size)
	}
	return b, nil
}

// loadImage is one image found in an archive.
type loadImage struct {
	img   v1.Image
	names []string
	what  string // how errors name the image
}

func readArchive(files archiveFiles) ([]loadImage, error) {
	// Docker 25 writes both files; manifest.json then has the plain tags.
	for _, f := range []struct {
		name string
		read func(archiveFiles) ([]loadImage, error)
	}{{dockerManifestFile, readDockerArchive}, {ociIndexFile, readOCILayout}} {
		_, err := files.stat(f.name)
		if err == nil {
			return f.read(files)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no %s or %s: not a docker-archive or OCI archive", dockerManifestFile, ociIndexFile)
}

func readDockerArchive(files archiveFiles) ([]loadImage, error) {
	raw, err := readFile(files, dockerManifestFile)
	if err != nil {
		return nil, err
	}
	var entries []dockerEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("parse %s: %w", dockerManifestFile, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s lists no images", dockerManifestFile)
	}
	var out []loadImage
	for _, e := range entries {
		li := loadImage{what: e.Config}
		for _, t := range e.RepoTags {
			n, err := canonicalName(t)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", dockerManifestFile, err)
			}
			li.names = append(li.names, n)
		}
		if len(li.names) > 0 {
			li.what = li.names[0]
		}
		rawCfg, err := readFile(files, e.Config)
		if err != nil {
			return nil, fmt.Errorf("image %s: config: %w", li.what, err)
		}
		cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
		if err != nil {
			return nil, fmt.Errorf("image %s: parse config: %w", li.what, err)
		}
		if len(e.Layers) != len(cfg.RootFS.DiffIDs) {
			return nil, fmt.Errorf("image %s: %s lists %d layers, its config %d", li.what, dockerManifestFile, len(e.Layers), len(cfg.RootFS.DiffIDs))
		}
		if li.img, err = plainImage(files, rawCfg, cfg.RootFS.DiffIDs, e.Layers); err != nil {
			return nil, fmt.Errorf("image %s: %w", li.what, err)
		}
		out = append(out, li)
	}
	return out, nil
}

func readOCILayout(files archiveFiles) ([]loadImage, error) {
	raw, err := readFile(files, ociIndexFile)
	if err != nil {
		return nil, err
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", ociIndexFile, err)
	}
	if len(idx.Manifests) == 0 {
		return nil, fmt.Errorf("%s lists no images", ociIndexFile)
	}
	// Entries naming the same manifest make one image with all the names.
	var out []loadImage
	seen := map[v1.Hash]int{}
	for _, d := range idx.Manifests {
		n, err := ociName(d.Annotations)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ociIndexFile, err)
		}
		if d.MediaType.IsIndex() {
			if d, err = platformManifest(files, d); err != nil {
				return nil, err
			}
		}
		i, ok := seen[d.Digest]
		if !ok {
			img, err := ociImage(files, d)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", d.Digest, err)
			}
			i = len(out)
			seen[d.Digest] = i
			out = append(out, loadImage{img: img, what: d.Digest.String()})
		}
		if n != "" {
			out[i].names = append(out[i].names, n)
			out[i].what = out[i].names[0]
		}
	}
	return out, nil
}

// ociName is the name an index entry gives: containerd and docker put only
// the tag in ref.name and the full name in their own annotation.
func ociName(a map[string]string) (string, error) {
	n := a[annotationRefName]
	if !strings.ContainsAny(n, "/:") {
		n = a[annotationImageName]
	}
	if n == "" {
		return "", nil
	}
	return canonicalName(n)
}

func canonicalName(n string) (string, error) {
	ref, err := ParseName(n)
	if err != nil {
		return "", err
	}
	return Canonical(ref), nil
}

// platformManifest picks this machine's image from an index in the layout.
func platformManifest(files archiveFiles, d v1.Descriptor) (v1.Descriptor, error) {
	raw, err := readBlob(files, d)
	if err != nil {
		return d, fmt.Errorf("index %s: %w", d.Digest, err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return d, fmt.Errorf("index %s: %w", d.Digest, err)
	}
	for _, m := range idx.Manifests {
		p := m.Platform
		if p != nil && p.OS == "linux" && p.Architecture == runtime.GOARCH && m.MediaType.IsImage() {
			// Docker saves only the platforms it has.
			if _, err := files.stat(blobPath(m.Digest)); err == nil {
				return m, nil
			}
		}
	}
	return d, fmt.Errorf("index %s has no linux/%s image", d.Digest, runtime.GOARCH)
}

// ociImage is an image of an OCI layout; its manifest is kept as it is, so
// that the image keeps its digest.
func ociImage(files archiveFiles, d v1.Descriptor) (v1.Image, error) {
	raw, err := readBlob(files, d)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	mt := m.MediaType
	if mt == "" {
		mt = d.MediaType
	}
	if mt == "" { // optional in OCI's first manifests
		mt = types.OCIManifestSchema1
	}
	if !mt.IsImage() {
		return nil, fmt.Errorf("unsupported manifest type %q", mt)
	}
	rawCfg, err := readBlob(files, m.Config)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	img := &archived{rawCfg: rawCfg, manifest: raw, mediaType: mt, layers: map[v1.Hash]archivedLayer{}}
	for _, l := range m.Layers {
		if _, err := files.stat(blobPath(l.Digest)); err != nil {
			return nil, fmt.Errorf("layer: %w", err)
		}
		img.layers[l.Digest] = archivedLayer{files: files, path: blobPath(l.Digest), desc: l}
	}
	return partial.CompressedToImage(img)
}

// plainImage is an image whose layers are files with no manifest of their
// own (a docker-archive's, an imported rootfs): its manifest lists them
// uncompressed, as the store will hold them.
func plainImage(files archiveFiles, rawCfg []byte, diffIDs []v1.Hash, paths []string) (v1.Image, error) {
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawCfg)), Digest: sha256Hash(rawCfg)},
	}
	img := &archived{rawCfg: rawCfg, mediaType: m.MediaType, layers: map[v1.Hash]archivedLayer{}}
	for i, p := range paths {
		size, err := uncompressedSize(files, p)
		if err != nil {
			return nil, fmt.Errorf("layer: %w", err)
		}
		desc := v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: size, Digest: diffIDs[i]}
		m.Layers = append(m.Layers, desc)
		img.layers[diffIDs[i]] = archivedLayer{files: files, path: p, desc: desc}
	}
	var err error
	if img.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(img)
}

// uncompressedSize is a layer file's size, decompressing it to count when
// it is compressed (ggcr's and old docker-archives may hold gzip layers).
func uncompressedSize(files archiveFiles, name string) (int64, error) {
	size, err := files.stat(name)
	if err != nil {
		return 0, err
	}
	rc, err := files.open(name)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	head, _ := br.Peek(10)
	if archive.DetectCompression(head) == archive.Uncompressed {
		return size, nil
	}
	plain, err := layertar.Decompress(br)
	if err != nil {
		return 0, err
	}
	defer plain.Close()
	return io.Copy(io.Discard, plain)
}

// archived is an image whose config, manifest and layers are in an archive.
type archived struct {
	rawCfg    []byte
	manifest  []byte
	mediaType types.MediaType
	layers    map[v1.Hash]archivedLayer
}

func (a *archived) RawConfigFile() ([]byte, error)      { return a.rawCfg, nil }
func (a *archived) MediaType() (types.MediaType, error) { return a.mediaType, nil }
func (a *archived) RawManifest() ([]byte, error)        { return a.manifest, nil }

func (a *archived) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	l, ok := a.layers[h]
	if !ok {
		return nil, fmt.Errorf("no layer %s in image", h)
	}
	return l, nil
}

type archivedLayer struct {
	files archiveFiles
	path  string
	desc  v1.Descriptor
}

func (l archivedLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l archivedLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l archivedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l archivedLayer) Compressed() (io.ReadCloser, error)  { return l.files.open(l.path) }
