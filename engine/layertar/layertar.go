// Package layertar guards image-layer tar streams before they reach the
// extractor (go.podman.io/storage): entries that would write outside the
// layer root, or through a symlink laid down earlier in the same layer, are
// refused before any byte of their header is passed on.
package layertar

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"strings"
)

// EntryError reports a hostile layer entry.
type EntryError struct {
	Name   string // the entry's name as found in the header
	Reason string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("layer entry %q: %s", e.Name, e.Reason)
}

// Guard returns a reader that yields exactly the bytes of the uncompressed tar
// stream r (byte for byte: the consumer computes the layer digest from them),
// but only after each entry's header has been checked; the first hostile entry
// makes Read return an *EntryError naming the entry, and no byte of that
// entry's header is passed on. Tar syntax errors and truncation are errors too.
//
// The returned reader is an io.ReadCloser: a consumer that stops before
// io.EOF or an error must call Close, which ends the background goroutine
// (at its next write; it may first finish a pending Read of r).
func Guard(r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(guard(r, pw)) }() // nil error closes with io.EOF
	return pr
}

// recorder keeps every byte tar.Reader consumes, so we forward the original
// encoding (padding, PAX/GNU blocks, sparse maps) rather than a re-encoding.
type recorder struct {
	r   io.Reader
	buf []byte
}

func (rec *recorder) Read(p []byte) (int, error) {
	n, err := rec.r.Read(p)
	rec.buf = append(rec.buf, p[:n]...)
	return n, err
}

// flush passes the recorded bytes on; it blocks until the consumer took them.
func (rec *recorder) flush(w io.Writer) error {
	_, err := w.Write(rec.buf)
	rec.buf = rec.buf[:0]
	return err
}

func guard(r io.Reader, w io.Writer) error {
	rec := &recorder{r: r}
	tr := tar.NewReader(rec)
	links := map[string]bool{} // cleaned names of symlinks created so far
	chunk := make([]byte, 64<<10)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			// End of archive: forward the trailer, then whatever padding follows.
			if err := rec.flush(w); err != nil {
				return err
			}
			// Plain reads only: pgzip's WriteTo panics when called after
			// its Read has seen the end of the stream (pgzip 1.2.7).
			_, err = io.Copy(w, struct{ io.Reader }{r})
			return err
		}
		if err != nil {
			return fmt.Errorf("layer tar: %w", err) // never a bare io.EOF
		}
		if reason := check(hdr, links); reason != "" {
			return &EntryError{Name: hdr.Name, Reason: reason} // recorded header dropped
		}
		if err := rec.flush(w); err != nil {
			return err
		}
		// Stream the content so memory stays bounded by one chunk.
		for {
			_, err := tr.Read(chunk)
			if ferr := rec.flush(w); ferr != nil {
				return ferr
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("layer tar: entry %q: %w", hdr.Name, err)
			}
		}
	}
}

// escapes reports whether a cleaned relative path climbs above the root.
func escapes(p string) bool { return p == ".." || strings.HasPrefix(p, "../") }

// throughLink returns the first proper ancestor of the cleaned path p that is
// a symlink from this stream: the extractor would follow it.
func throughLink(p string, links map[string]bool) string {
	for i := range len(p) {
		if p[i] == '/' && links[p[:i]] {
			return p[:i]
		}
	}
	return ""
}

// check returns why hdr is hostile, or "" if it may pass; it records symlinks.
func check(hdr *tar.Header, links map[string]bool) string {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return "" // metadata only, never extracted
	}
	if path.IsAbs(hdr.Name) {
		return "absolute path"
	}
	name := path.Clean(hdr.Name)
	if escapes(name) {
		return "path escapes the layer root"
	}
	if name == "." && hdr.Typeflag != tar.TypeDir {
		return "layer root replaced by a non-directory"
	}
	if l := throughLink(name, links); l != "" {
		return fmt.Sprintf("path goes through symlink %q", l)
	}
	switch hdr.Typeflag {
	case tar.TypeLink: // target is relative to the layer root
		if path.IsAbs(hdr.Linkname) {
			return fmt.Sprintf("hardlink to absolute path %q", hdr.Linkname)
		}
		target := path.Clean(hdr.Linkname)
		if escapes(target) {
			return fmt.Sprintf("hardlink target %q escapes the layer root", hdr.Linkname)
		}
		if l := throughLink(target, links); l != "" {
			return fmt.Sprintf("hardlink target %q goes through symlink %q", hdr.Linkname, l)
		}
		if links[target] { // a hardlink to a symlink is that symlink again
			links[name] = true
			return ""
		}
	case tar.TypeSymlink:
		// Absolute targets are resolved inside the container's root, so they
		// are fine; relative ones are checked against the symlink's directory.
		if !path.IsAbs(hdr.Linkname) && escapes(path.Join(path.Dir(name), hdr.Linkname)) {
			return fmt.Sprintf("symlink target %q escapes the layer root", hdr.Linkname)
		}
		links[name] = true
		return ""
	}
	delete(links, name) // any other entry replaces an earlier symlink there
	return ""
}
