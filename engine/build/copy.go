package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/bundle/user"
)

// source is one thing COPY or ADD copies.
type source struct {
	// abs is the file or directory on disk (for a heredoc: "").
	abs string
	// rel is its path in the context or the stage (for messages and
	// .dockerignore).
	rel string
	// ctx is the context it is in; nil for a stage's or image's file.
	ctx *Context
	// data and name are a heredoc's content and file name.
	data *string
	name string
	// archive: ADD extracts it.
	archive bool
}

// copyOptions say how files land.
type copyOptions struct {
	// chown is --chown's owner; without it, context files are root's and
	// a stage's keep theirs.
	chown      string
	chmod      *fs.FileMode
	keepOwners bool
	// destDir says the destination is a directory (trailing slash, or
	// several sources).
	destDir bool
}

func (b *builder) copyCommand(ctx context.Context, stage int, s *state, c *instructions.CopyCommand) error {
	o, err := newCopyOptions(c.Chown, c.Chmod)
	if err != nil {
		return err
	}
	var srcs []source
	var key string
	if c.From != "" {
		root, fromKey, err := b.mountFrom(ctx, stage, c.From)
		if err != nil {
			return err
		}
		o.keepOwners = c.Chown == ""
		for _, p := range c.SourcePaths {
			m, err := matchIn(root, p)
			if err != nil {
				return fmt.Errorf("--from=%s: %w", c.From, err)
			}
			srcs = append(srcs, m...)
		}
		key = "from " + fromKey + fmt.Sprintf(" %q", c.SourcePaths)
	} else {
		if srcs, key, err = b.contextSources(c.SourcePaths); err != nil {
			return err
		}
	}
	srcs, key = withHeredocs(srcs, key, c.SourceContents)
	o.destDir = strings.HasSuffix(c.DestPath, "/") || len(srcs) > 1 || len(c.SourcePaths)+len(c.SourceContents) > 1
	if len(srcs) > 1 && !strings.HasSuffix(c.DestPath, "/") {
		return errors.New("when using COPY with more than one source file, the destination must be a directory and end with a /")
	}
	dest := destPath(s, c.DestPath)
	return b.layerStep(ctx, s, fmt.Sprintf("COPY %s %s chown=%s chmod=%s", key, dest, c.Chown, c.Chmod), stepText(c)+" # buildkit", func(root string) error {
		return copyAll(root, srcs, dest, o)
	})
}

func (b *builder) addCommand(ctx context.Context, s *state, c *instructions.AddCommand) error {
	o, err := newCopyOptions(c.Chown, c.Chmod)
	if err != nil {
		return err
	}
	var local []string
	var srcs []source
	var keys []string
	for _, p := range c.SourcePaths {
		if !isURL(p) {
			local = append(local, p)
			continue
		}
		dl, err := b.download(ctx, p, c.Checksum)
		if err != nil {
			return err
		}
		defer os.RemoveAll(filepath.Dir(dl.abs))
		srcs = append(srcs, dl.source)
		keys = append(keys, "url "+p+" "+dl.digest)
	}
	if len(local) > 0 {
		if c.Checksum != "" {
			return errors.New("--checksum is only for URL sources")
		}
		ctxSrcs, key, err := b.contextSources(local)
		if err != nil {
			return err
		}
		unpack := c.Unpack == nil || *c.Unpack
		for i := range ctxSrcs {
			ctxSrcs[i].archive = unpack && isArchive(ctxSrcs[i].abs)
		}
		srcs = append(srcs, ctxSrcs...)
		keys = append(keys, key)
	}
	srcs, key := withHeredocs(srcs, strings.Join(keys, " "), c.SourceContents)
	o.destDir = strings.HasSuffix(c.DestPath, "/") || len(srcs) > 1
	if len(srcs) > 1 && !strings.HasSuffix(c.DestPath, "/") {
		return errors.New("when using ADD with more than one source file, the destination must be a directory and end with a /")
	}
	dest := destPath(s, c.DestPath)
	return b.layerStep(ctx, s, fmt.Sprintf("ADD %s %s chown=%s chmod=%s", key, dest, c.Chown, c.Chmod), stepText(c)+" # buildkit", func(root string) error {
		return copyAll(root, srcs, dest, o)
	})
}

func newCopyOptions(chown, chmod string) (copyOptions, error) {
	o := copyOptions{chown: chown}
	if chmod != "" {
		m, err := strconv.ParseUint(chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return o, fmt.Errorf("invalid --chmod %q: want an octal mode such as 0755", chmod)
		}
		mode := fs.FileMode(m)
		o.chmod = &mode
	}
	return o, nil
}

// destPath is a COPY destination made absolute from the WORKDIR.
func destPath(s *state, dest string) string {
	d := dest
	if !path.IsAbs(d) {
		d = path.Join("/", s.cfg.Config.WorkingDir, d)
	}
	d = path.Clean(d)
	if strings.HasSuffix(dest, "/") && d != "/" {
		d += "/"
	}
	return d
}

// contextSources expands paths in the build context and digests them.
func (b *builder) contextSources(paths []string) ([]source, string, error) {
	if b.o.Context == nil {
		return nil, "", errors.New("there is no build context to copy from")
	}
	var srcs []source
	var rels []string
	for _, p := range paths {
		matches, err := b.o.Context.match(p)
		if err != nil {
			return nil, "", err
		}
		for _, rel := range matches {
			abs, err := b.o.Context.path(rel)
			if err != nil {
				return nil, "", err
			}
			srcs = append(srcs, source{abs: abs, rel: rel, ctx: b.o.Context})
			rels = append(rels, rel)
		}
	}
	d, err := b.o.Context.digest(rels)
	if err != nil {
		return nil, "", err
	}
	return srcs, "context " + d, nil
}

func withHeredocs(srcs []source, key string, contents []instructions.SourceContent) ([]source, string) {
	for _, sc := range contents {
		data := sc.Data
		srcs = append(srcs, source{data: &data, name: sc.Path, rel: sc.Path})
		sum := sha256.Sum256([]byte(data))
		key += fmt.Sprintf(" heredoc %s %x", sc.Path, sum)
	}
	return srcs, key
}

// matchIn expands a path or glob inside a stage's or image's root.
func matchIn(root, p string) ([]source, error) {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if !hasMeta(rel) {
		abs, err := securejoin.SecureJoin(root, rel)
		if err != nil {
			return nil, err
		}
		if _, err := os.Lstat(abs); err != nil {
			return nil, fmt.Errorf("%s: not found", p)
		}
		return []source{{abs: abs, rel: rel}}, nil
	}
	dir, pattern := path.Split(rel)
	if hasMeta(dir) {
		return nil, fmt.Errorf("%s: wildcards are only supported in the last path element of a --from source", p)
	}
	absDir, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(absDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	var out []source
	for _, e := range entries {
		if ok, _ := path.Match(pattern, e.Name()); ok {
			out = append(out, source{abs: filepath.Join(absDir, e.Name()), rel: path.Join(dir, e.Name())})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no file matches", p)
	}
	return out, nil
}

// copyAll copies the sources to dest inside root, as docker's COPY: a
// directory's contents, a file into dest (a directory, when it is one) or
// as dest.
func copyAll(root string, srcs []source, dest string, o copyOptions) error {
	uid, gid := -1, -1
	if o.chown != "" {
		u, err := user.Lookup(root, o.chown)
		if err != nil {
			return fmt.Errorf("--chown=%s: %w", o.chown, err)
		}
		uid, gid = int(u.UID), int(u.GID)
		if !strings.Contains(o.chown, ":") {
			gid = uid // docker: a user alone is also the group
		}
	} else if !o.keepOwners {
		uid, gid = 0, 0
	}
	dirUID, dirGID := max(uid, 0), max(gid, 0)
	for _, src := range srcs {
		target := strings.TrimSuffix(dest, "/")
		if target == "" {
			target = "/"
		}
		c := copier{root: root, uid: uid, gid: gid, chmod: o.chmod, src: src}
		switch {
		case src.data != nil:
			if o.destDir || isDir(root, target) {
				target = path.Join(target, path.Base(src.name))
			}
			if _, err := mkdirAll(root, path.Dir(target), dirUID, dirGID); err != nil {
				return fmt.Errorf("%s: %w", path.Dir(target), err)
			}
			if err := c.writeData(target, *src.data); err != nil {
				return err
			}
			continue
		case src.archive:
			dir, err := mkdirAll(root, target, dirUID, dirGID)
			if err != nil {
				return fmt.Errorf("%s: %w", target, err)
			}
			if err := extract(src.abs, dir); err != nil {
				return fmt.Errorf("ADD %s: %w", src.rel, err)
			}
			continue
		}
		fi, err := os.Stat(src.abs)
		if err != nil {
			return fmt.Errorf("%s: %w", src.rel, err)
		}
		if !fi.IsDir() && (o.destDir || isDir(root, target)) {
			target = path.Join(target, path.Base(src.abs))
		}
		if _, err := mkdirAll(root, path.Dir(target), dirUID, dirGID); err != nil {
			return fmt.Errorf("%s: %w", path.Dir(target), err)
		}
		if err := c.copy(src.abs, src.rel, target, true); err != nil {
			return err
		}
	}
	return nil
}

func isDir(root, p string) bool {
	abs, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return false
	}
	fi, err := os.Stat(abs)
	return err == nil && fi.IsDir()
}

// copier copies one source's files into root.
type copier struct {
	root     string
	uid, gid int // -1: the source's
	chmod    *fs.FileMode
	src      source
}

// place is where dest (absolute in root) is on disk: its parent resolved
// inside root, itself not followed.
func (c *copier) place(dest string) (string, error) {
	parent, err := securejoin.SecureJoin(c.root, path.Dir(dest))
	if err != nil {
		return "", err
	}
	if dest == "/" {
		return parent, nil
	}
	return filepath.Join(parent, path.Base(dest)), nil
}

// copy copies the file or tree at abs (rel in its source) to dest.
func (c *copier) copy(abs, rel, dest string, top bool) error {
	fi, err := os.Lstat(abs)
	if top {
		// The source itself was resolved, symlinks and all.
		fi, err = os.Stat(abs)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	to, err := c.place(dest)
	if err != nil {
		return err
	}
	uid, gid := c.owner(fi)
	mode := fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if c.chmod != nil {
		mode = *c.chmod
	}
	switch {
	case fi.IsDir():
		if cur, err := os.Lstat(to); err != nil || !cur.IsDir() {
			_ = os.RemoveAll(to)
			if err := os.Mkdir(to, 0o700); err != nil {
				return fmt.Errorf("%s: %w", dest, err)
			}
			if err := setMeta(to, uid, gid, mode, fi); err != nil {
				return err
			}
		} else if !top {
			if err := setMeta(to, uid, gid, mode, fi); err != nil {
				return err
			}
		}
		entries, err := os.ReadDir(abs)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		for _, e := range entries {
			childRel := path.Join(rel, e.Name())
			// An excluded directory is entered only for "!" exceptions.
			if ctx := c.src.ctx; ctx != nil && ctx.excluded(childRel) && (!e.IsDir() || !ctx.hasExceptions()) {
				continue
			}
			if err := c.copy(filepath.Join(abs, e.Name()), childRel, path.Join(dest, e.Name()), false); err != nil {
				return err
			}
		}
		return os.Chtimes(to, fi.ModTime(), fi.ModTime())
	case fi.Mode().IsRegular():
		if err := os.RemoveAll(to); err != nil {
			return err
		}
		in, err := os.Open(abs)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		defer in.Close()
		out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return fmt.Errorf("%s: %w", dest, err)
		}
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("copy %s: %w", rel, err)
		}
		return setMeta(to, uid, gid, mode, fi)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(abs)
		if err != nil {
			return err
		}
		if err := os.RemoveAll(to); err != nil {
			return err
		}
		if err := os.Symlink(target, to); err != nil {
			return fmt.Errorf("%s: %w", dest, err)
		}
		if err := os.Lchown(to, uid, gid); err != nil {
			return err
		}
		t := unix.NsecToTimespec(fi.ModTime().UnixNano())
		return unix.UtimesNanoAt(unix.AT_FDCWD, to, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW)
	}
	// Sockets, devices and fifos are not copied, as docker.
	return nil
}

func (c *copier) owner(fi fs.FileInfo) (int, int) {
	uid, gid := c.uid, c.gid
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid < 0 {
			uid = int(st.Uid)
		}
		if gid < 0 {
			gid = int(st.Gid)
		}
	}
	return max(uid, 0), max(gid, 0)
}

func setMeta(p string, uid, gid int, mode fs.FileMode, fi fs.FileInfo) error {
	if err := os.Lchown(p, uid, gid); err != nil {
		return err
	}
	// After chown, which clears set-id bits.
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	return os.Chtimes(p, fi.ModTime(), fi.ModTime())
}

// writeData writes a heredoc's content as a file (0644, or --chmod).
func (c *copier) writeData(dest, data string) error {
	to, err := c.place(dest)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(to); err != nil {
		return err
	}
	mode := fs.FileMode(0o644)
	if c.chmod != nil {
		mode = *c.chmod
	}
	f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("%s: %w", dest, err)
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Lchown(to, max(c.uid, 0), max(c.gid, 0)); err != nil {
		return err
	}
	return os.Chmod(to, mode)
}

// isArchive tells whether a file is a tar (plain or compressed), which ADD
// extracts.
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	return isTarStream(f)
}

func isTarStream(r io.Reader) bool {
	plain, err := archive.DecompressStream(r)
	if err != nil {
		return false
	}
	defer plain.Close()
	_, err = tar.NewReader(plain).Next()
	return err == nil
}

// extract unpacks an archive into dir, in a chroot so that no entry lands
// outside it.
func extract(p, dir string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return chrootarchive.Untar(f, dir, &archive.TarOptions{})
}

func isURL(p string) bool {
	return strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://")
}

type download struct {
	source
	digest string
}

// download fetches an ADD URL to a file in the store, checking
// --checksum; the file is the source, named after the URL's last element.
func (b *builder) download(ctx context.Context, rawURL, checksum string) (*download, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %w", rawURL, err)
	}
	if checksum != "" && !strings.HasPrefix(checksum, "sha256:") {
		return nil, fmt.Errorf("invalid --checksum %q: want sha256:HEX", checksum)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ADD %s: %s", rawURL, resp.Status)
	}
	dir := filepath.Join(b.store.GraphRoot(), "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "add-")
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	_, err = io.Copy(f, io.TeeReader(resp.Body, h))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	sum := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if checksum != "" && checksum != sum {
		os.Remove(f.Name())
		return nil, fmt.Errorf("ADD %s: the content's digest is %s, --checksum wants %s", rawURL, sum, checksum)
	}
	// docker: a downloaded file is 0600.
	if err := os.Chmod(f.Name(), 0o600); err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." {
		name = "index.html"
	}
	final := filepath.Join(filepath.Dir(f.Name()), "add-"+randomHex(6), name)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return nil, err
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return nil, err
	}
	return &download{source: source{abs: final, rel: rawURL}, digest: sum}, nil
}

// IsTar tells whether data is a tar (plain or compressed): a build
// context on stdin, rather than a Dockerfile.
func IsTar(data []byte) bool { return isTarStream(bytes.NewReader(data)) }
