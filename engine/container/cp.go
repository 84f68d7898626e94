package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/events"
	"github.com/berth-containers/berth/engine/layertar"
)

// CopyOptions are docker cp's.
type CopyOptions struct {
	// Archive keeps the source's owners (-a). Without it, what is copied
	// into a container belongs to root (0:0) and what is copied out belongs
	// to the user running berth.
	Archive bool
	// FollowLink copies what a symbolic link source points to, not the
	// link (-L).
	FollowLink bool
}

// fsRoot is a directory every path of a copy is resolved in: the
// container's mounted rootfs, or the host's "/". Paths never leave it, by
// ".." or by a symbolic link: they are resolved with pathrs-lite, and the
// files are opened, created and changed relative to directory handles, with
// O_NOFOLLOW on the last component.
type fsRoot struct {
	f    *os.File // O_PATH handle of the directory
	path string   // its path on the host
	// what names the root in messages: "container NAME" or "" (the host)
	what string
}

func openRoot(dir, what string) (*fsRoot, error) {
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	// Its real path, as /proc/self/fd shows the paths of handles under it.
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fsRoot{f: f, path: path.Clean(real), what: what}, nil
}

func (r *fsRoot) Close() error { return r.f.Close() }

// open resolves p (absolute, clean) in the root, following every symbolic
// link, and returns an O_PATH handle.
func (r *fsRoot) open(p string) (*os.File, error) {
	if p == "/" {
		return pathrs.OpenatInRoot(r.f, ".")
	}
	return pathrs.OpenatInRoot(r.f, p)
}

// realPath is where a handle opened in the root is, as a path in the root
// (symbolic links resolved), read from /proc/self/fd.
func (r *fsRoot) realPath(f *os.File) (string, error) {
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		return "", err
	}
	if r.path == "/" {
		return path.Clean(target), nil
	}
	rel, ok := strings.CutPrefix(target, r.path)
	if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) {
		return "", fmt.Errorf("%s is not under the root %s", target, r.path)
	}
	return path.Clean("/" + rel), nil
}

// ErrNoSuchPath is a copy's source that does not exist.
var ErrNoSuchPath = errors.New("no such file or directory")

type noSuchPath string

func (e noSuchPath) Error() string        { return string(e) }
func (e noSuchPath) Is(target error) bool { return target == ErrNoSuchPath }

// notFound words a missing path as docker does.
func (r *fsRoot) notFound(p string) error {
	if r.what != "" {
		return noSuchPath(fmt.Sprintf("could not find the file %s in %s", p, r.what))
	}
	return noSuchPath(fmt.Sprintf("lstat %s: no such file or directory", p))
}

// withRootfs mounts c's rootfs (a running container's is mounted already:
// this takes one more reference) for fn and unmounts it after.
func withRootfs(s storage.Store, c *Container, fn func(*fsRoot) error) (err error) {
	mnt, err := s.Mount(c.ID, "")
	if err != nil {
		return fmt.Errorf("mount container %s: %w", c.Name, err)
	}
	defer func() {
		if _, uerr := s.Unmount(c.ID, false); uerr != nil && err == nil {
			err = fmt.Errorf("unmount container %s: %w", c.Name, uerr)
		}
	}()
	root, err := openRoot(mnt, "container "+c.Name)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.Name, err)
	}
	defer root.Close()
	return fn(root)
}

func hostRoot() (*fsRoot, error) { return openRoot("/", "") }

// cpPath is a path of docker cp: clean, absolute in its root, with the
// trailing "/" or "/." docker gives a meaning to.
type cpPath struct {
	raw   string
	clean string
	slash bool // ends with "/" (or "/."): must be a directory
	dot   bool // ends with "/.": a directory's contents, not the directory
}

func parseCpPath(p, cwd string) cpPath {
	dot := p == "." || strings.HasSuffix(p, "/.")
	slash := dot || strings.HasSuffix(p, "/")
	full := p
	if !path.IsAbs(p) {
		full = cwd + "/" + p
	}
	return cpPath{raw: p, clean: path.Clean("/" + full), slash: slash, dot: dot}
}

// base is the name a copy of p gets: "" for the root (whose contents are
// copied).
func (p cpPath) base() string {
	if p.clean == "/" {
		return ""
	}
	return path.Base(p.clean)
}

// source is the root of what a copy reads.
type source struct {
	root *fsRoot
	node *node
	// contents: the directory's entries go to the destination, not the
	// directory itself.
	contents bool
	name     string // the base name in the archive
}

func (s *source) Close() {
	if s.node != nil {
		s.node.close()
	}
}

// openSource finds p in root. A symbolic link is copied as such unless
// follow or a trailing "/" asks for its target.
func openSource(root *fsRoot, p cpPath, follow bool) (*source, error) {
	src := &source{root: root, name: p.base()}
	if p.clean == "/" || follow || p.slash {
		h, err := root.open(p.clean)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, root.notFound(p.raw)
			}
			return nil, fmt.Errorf("%s: %w", p.raw, err)
		}
		n := &node{self: h}
		if err := unix.Fstat(int(h.Fd()), &n.st); err != nil {
			h.Close()
			return nil, fmt.Errorf("stat %s: %w", p.raw, err)
		}
		src.node = n
	} else {
		parent, err := root.open(path.Dir(p.clean))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
				return nil, root.notFound(p.raw)
			}
			return nil, fmt.Errorf("%s: %w", p.raw, err)
		}
		n := &node{dir: parent, ownDir: true, name: path.Base(p.clean)}
		if err := unix.Fstatat(int(parent.Fd()), n.name, &n.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			parent.Close()
			if errors.Is(err, unix.ENOENT) {
				return nil, root.notFound(p.raw)
			}
			return nil, fmt.Errorf("stat %s: %w", p.raw, err)
		}
		src.node = n
	}
	isDir := src.node.st.Mode&unix.S_IFMT == unix.S_IFDIR
	if p.slash && !isDir {
		src.Close()
		return nil, fmt.Errorf("%s: not a directory", p.raw)
	}
	src.contents = isDir && (p.dot || src.name == "")
	return src, nil
}

func (s *source) isDir() bool { return s.node.st.Mode&unix.S_IFMT == unix.S_IFDIR }

// node is a file being archived: either a name in an open directory, read
// without following a symbolic link, or a handle resolved before (self).
type node struct {
	st     unix.Stat_t
	dir    *os.File
	ownDir bool // dir is closed with the node
	name   string
	self   *os.File
}

func (n *node) close() {
	if n.self != nil {
		n.self.Close()
	}
	if n.ownDir && n.dir != nil {
		n.dir.Close()
	}
}

func (n *node) open(flags int) (*os.File, error) {
	if n.self != nil {
		return pathrs.Reopen(n.self, flags|unix.O_CLOEXEC)
	}
	fd, err := unix.Openat(int(n.dir.Fd()), n.name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: n.name, Err: err}
	}
	return os.NewFile(uintptr(fd), n.name), nil
}

func (n *node) readlink() (string, error) {
	buf := make([]byte, 256)
	for {
		k, err := unix.Readlinkat(int(n.dir.Fd()), n.name, buf)
		if err != nil {
			return "", &os.PathError{Op: "readlink", Path: n.name, Err: err}
		}
		if k < len(buf) {
			return string(buf[:k]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

// archiver writes files to a tar stream, as layers and docker cp hold
// them: numeric owners, modes with their special bits, hard links kept,
// the file capability kept.
type archiver struct {
	tw    *tar.Writer
	links map[[2]uint64]string
	ctx   context.Context
}

func newArchiver(ctx context.Context, w io.Writer) *archiver {
	return &archiver{tw: tar.NewWriter(w), links: map[[2]uint64]string{}, ctx: ctx}
}

func (a *archiver) close() error { return a.tw.Close() }

// add archives n as name and, for a directory, everything under it. An
// empty name (a root whose contents are archived) has no entry of its own.
func (a *archiver) add(n *node, name string) error {
	if err := a.ctx.Err(); err != nil {
		return err
	}
	st := &n.st
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return a.addDir(n, hdr)
	case unix.S_IFREG:
		return a.addFile(n, hdr)
	case unix.S_IFLNK:
		target, err := n.readlink()
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // a socket: tar has no such entry, docker skips them too
	}
	if hdr.Name == "" {
		return nil
	}
	return a.tw.WriteHeader(hdr)
}

func (a *archiver) addDir(n *node, hdr *tar.Header) error {
	d, err := n.open(unix.O_RDONLY | unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer d.Close()
	if hdr.Name != "" {
		hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		if err := a.tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", n.name, err)
	}
	sort.Strings(names)
	prefix := strings.TrimSuffix(hdr.Name, "/")
	for _, child := range names {
		c := &node{dir: d, name: child}
		if err := unix.Fstatat(int(d.Fd()), child, &c.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed meanwhile
			}
			return fmt.Errorf("stat %s: %w", child, err)
		}
		name := child
		if prefix != "" {
			name = prefix + "/" + child
		}
		if err := a.add(c, name); err != nil {
			return err
		}
	}
	return nil
}

func (a *archiver) addFile(n *node, hdr *tar.Header) error {
	st := &n.st
	key := [2]uint64{uint64(st.Dev), st.Ino}
	if st.Nlink > 1 {
		if first, ok := a.links[key]; ok {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return a.tw.WriteHeader(hdr)
		}
	}
	// O_NONBLOCK: a file swapped for a FIFO meanwhile must not hang us.
	f, err := n.open(unix.O_RDONLY | unix.O_NONBLOCK)
	if err != nil {
		return err
	}
	defer f.Close()
	var fst unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &fst); err != nil {
		return err
	}
	if fst.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s changed while it was copied", hdr.Name)
	}
	if st.Nlink > 1 {
		a.links[key] = hdr.Name
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, fst.Size
	if v, err := fgetxattr(f, "security.capability"); err == nil && len(v) > 0 {
		hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(v)}
	}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	// Exactly the size announced, even if the file changes meanwhile.
	k, err := io.Copy(a.tw, io.LimitReader(ctxReader{a.ctx, f}, fst.Size))
	if err != nil {
		return fmt.Errorf("copy %s: %w", hdr.Name, err)
	}
	if k < fst.Size {
		_, err = io.CopyN(a.tw, zeros{}, fst.Size-k)
	}
	return err
}

// ctxReader stops a copy when the command is interrupted.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func fgetxattr(f *os.File, attr string) ([]byte, error) {
	buf := make([]byte, 256)
	k, err := unix.Fgetxattr(int(f.Fd()), attr, buf)
	if errors.Is(err, unix.ERANGE) {
		if k, err = unix.Fgetxattr(int(f.Fd()), attr, nil); err != nil {
			return nil, err
		}
		buf = make([]byte, k)
		k, err = unix.Fgetxattr(int(f.Fd()), attr, buf)
	}
	if err != nil {
		return nil, err
	}
	return buf[:k], nil
}

// archive writes src to w, its entries named under name ("" for a
// directory's contents).
func (s *source) archive(ctx context.Context, w io.Writer, name string) error {
	a := newArchiver(ctx, w)
	if err := a.add(s.node, name); err != nil {
		return err
	}
	return a.close()
}

// extractor unpacks a tar stream into a directory of a root.
type extractor struct {
	ctx  context.Context
	root *fsRoot
	dest string // absolute, clean path in the root, a directory
	// owner gives an entry's owner; ok false leaves the owner who created
	// it (the user running berth).
	owner func(*tar.Header) (uid, gid int, ok bool)

	cacheDir string
	cache    *os.File
	dirs     []extractedDir
}

// extractedDir is a directory whose times are set at the end.
type extractedDir struct {
	path string
	hdr  *tar.Header
}

func (x *extractor) close() {
	if x.cache != nil {
		x.cache.Close()
		x.cache = nil
	}
}

// entryPath is an entry's path under dest; entries may not leave it.
func (x *extractor) entryPath(name string) (string, error) {
	rel := path.Clean("/" + name)
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("invalid archive entry %q: it leads out of the destination", name)
	}
	return path.Join(x.dest, rel), nil
}

// parent is a handle of dir (made when missing) in the root.
func (x *extractor) parent(dir string) (*os.File, error) {
	if x.cache != nil && x.cacheDir == dir {
		return x.cache, nil
	}
	x.close()
	h, err := pathrs.MkdirAllHandle(x.root.f, dir, 0o755)
	if err != nil {
		return nil, err
	}
	x.cache, x.cacheDir = h, dir
	return h, nil
}

func (x *extractor) run(r io.Reader) error {
	defer x.close()
	old := unix.Umask(0)
	defer unix.Umask(old)
	tr := tar.NewReader(ctxReader{x.ctx, r})
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if err := x.entry(tr, hdr); err != nil {
			return err
		}
	}
	// Directories' times last: their entries changed them.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		p, err := x.root.open(path.Dir(d.path))
		if err != nil {
			continue
		}
		_ = setTimes(p, path.Base(d.path), d.hdr)
		p.Close()
	}
	return nil
}

func setTimes(dir *os.File, name string, h *tar.Header) error {
	atime := h.AccessTime
	if atime.IsZero() {
		atime = h.ModTime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
	return unix.UtimesNanoAt(int(dir.Fd()), name, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func (x *extractor) entry(tr *tar.Reader, hdr *tar.Header) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader:
		return nil
	}
	full, err := x.entryPath(hdr.Name)
	if err != nil {
		return err
	}
	if full == x.dest {
		return nil // the destination itself ("./") is left as it is
	}
	dir, base := path.Dir(full), path.Base(full)
	parent, err := x.parent(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", x.shown(dir), err)
	}
	pfd := int(parent.Fd())
	var cur unix.Stat_t
	exists := true
	if err := unix.Fstatat(pfd, base, &cur, unix.AT_SYMLINK_NOFOLLOW); errors.Is(err, unix.ENOENT) {
		exists = false
	} else if err != nil {
		return fmt.Errorf("stat %s: %w", x.shown(full), err)
	}
	isDir := exists && cur.Mode&unix.S_IFMT == unix.S_IFDIR
	if exists && isDir != (hdr.Typeflag == tar.TypeDir) {
		if isDir {
			return fmt.Errorf("cannot overwrite directory %s with non-directory %s", x.shown(full), hdr.Name)
		}
		return fmt.Errorf("cannot overwrite non-directory %s with directory %s", x.shown(full), hdr.Name)
	}
	if exists && !isDir {
		if err := unix.Unlinkat(pfd, base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("replace %s: %w", x.shown(full), err)
		}
	}
	uid, gid, chown := x.owner(hdr)
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exists {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return fmt.Errorf("mkdir %s: %w", x.shown(full), err)
			}
		}
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", x.shown(full), err)
		}
		err = fixup(fd, chown, uid, gid, mode)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("%s: %w", x.shown(full), err)
		}
		x.dirs = append(x.dirs, extractedDir{path: full, hdr: hdr})
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("create %s: %w", x.shown(full), err)
		}
		f := os.NewFile(uintptr(fd), full)
		_, err = io.Copy(f, tr)
		if err == nil {
			err = fixup(fd, chown, uid, gid, mode)
		}
		for k, v := range hdr.PAXRecords {
			if attr, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && err == nil {
				if xerr := unix.Fsetxattr(fd, attr, []byte(v), 0); xerr != nil && !errors.Is(xerr, unix.ENOTSUP) {
					err = fmt.Errorf("set %s: %w", attr, xerr)
				}
			}
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", x.shown(full), err)
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("symlink %s: %w", x.shown(full), err)
		}
		if chown {
			if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("chown %s: %w", x.shown(full), err)
			}
		}
	case tar.TypeLink:
		target, err := x.entryPath(hdr.Linkname)
		if err != nil {
			return err
		}
		tdir, err := x.root.open(path.Dir(target))
		if err != nil {
			return fmt.Errorf("link %s to %s: %w", x.shown(full), hdr.Linkname, err)
		}
		err = unix.Linkat(int(tdir.Fd()), path.Base(target), pfd, base, 0)
		tdir.Close()
		if err != nil {
			return fmt.Errorf("link %s to %s: %w", x.shown(full), hdr.Linkname, err)
		}
		return nil // the link shares its target's owner, mode and times
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			kind = unix.S_IFCHR
		case tar.TypeBlock:
			kind = unix.S_IFBLK
		}
		// The umask is 0: the mode is the entry's, set on creation.
		dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		if err := unix.Mknodat(pfd, base, kind|mode, dev); err != nil {
			return fmt.Errorf("mknod %s: %w", x.shown(full), err)
		}
		if chown {
			if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("chown %s: %w", x.shown(full), err)
			}
		}
	default:
		return fmt.Errorf("%s: unsupported archive entry type %q", hdr.Name, hdr.Typeflag)
	}
	if err := setTimes(parent, base, hdr); err != nil {
		return fmt.Errorf("set times of %s: %w", x.shown(full), err)
	}
	return nil
}

// fixup sets an open file's owner, then its mode (a change of owner
// clears the set-user-ID bit).
func fixup(fd int, chown bool, uid, gid int, mode uint32) error {
	if chown {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

func (x *extractor) shown(p string) string {
	if x.root.what != "" {
		return p + " in " + x.root.what
	}
	return p
}

// destination is where a copy goes, as docker decides it: a symbolic link
// at the destination is followed (in its root).
type destination struct {
	path   string // resolved, absolute in the root
	exists bool
	isDir  bool
}

func resolveDest(root *fsRoot, p cpPath) (*destination, error) {
	cur := p.clean
	for range 32 {
		if cur == "/" {
			return &destination{path: "/", exists: true, isDir: true}, nil
		}
		parent, err := root.open(path.Dir(cur))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
				return nil, fmt.Errorf("no such directory: %s", path.Dir(cur)+root.in())
			}
			return nil, err
		}
		dir, err := root.realPath(parent)
		if err != nil {
			parent.Close()
			return nil, err
		}
		n := &node{dir: parent, name: path.Base(cur)}
		err = unix.Fstatat(int(parent.Fd()), n.name, &n.st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			parent.Close()
			return &destination{path: path.Join(dir, n.name)}, nil
		}
		if err != nil {
			parent.Close()
			return nil, fmt.Errorf("stat %s: %w", p.raw, err)
		}
		if n.st.Mode&unix.S_IFMT != unix.S_IFLNK {
			parent.Close()
			return &destination{path: path.Join(dir, n.name), exists: true, isDir: n.st.Mode&unix.S_IFMT == unix.S_IFDIR}, nil
		}
		target, err := n.readlink()
		parent.Close()
		if err != nil {
			return nil, err
		}
		if path.IsAbs(target) {
			cur = path.Clean(target)
		} else {
			cur = path.Join(dir, target)
		}
	}
	return nil, fmt.Errorf("%s: too many levels of symbolic links", p.raw)
}

func (r *fsRoot) in() string {
	if r.what != "" {
		return " in " + r.what
	}
	return ""
}

// plan decides, by docker's rules, which directory a copy of src is
// unpacked in and the name its top entry gets there ("" for a directory's
// contents).
func plan(src *source, dst *destination, p cpPath, root *fsRoot) (dir, name string, err error) {
	switch {
	case !dst.exists:
		if p.slash && !src.isDir() {
			return "", "", fmt.Errorf("no such directory: %s%s", p.raw, root.in())
		}
		return path.Dir(dst.path), path.Base(dst.path), nil
	case dst.isDir:
		if src.contents {
			return dst.path, "", nil
		}
		return dst.path, src.name, nil
	case src.isDir():
		return "", "", fmt.Errorf("cannot copy a directory to a file: %s%s", p.raw, root.in())
	case p.slash:
		return "", "", fmt.Errorf("%s%s: not a directory", p.raw, root.in())
	}
	return path.Dir(dst.path), path.Base(dst.path), nil
}

var errExtractionStopped = errors.New("extraction stopped")

// transfer archives src, its top entry named name, into the extractor
// through a pipe.
func transfer(ctx context.Context, src *source, name string, x *extractor) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := src.archive(ctx, pw, name)
		pw.CloseWithError(err)
		done <- err
	}()
	err := x.run(pr)
	pr.CloseWithError(errExtractionStopped)
	if aerr := <-done; aerr != nil && !errors.Is(aerr, errExtractionStopped) {
		return aerr // reading failed, and so extraction: the read error says why
	}
	return err
}

func cwd() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("current directory: %w", err)
	}
	return filepath.Clean(d), nil
}

// CopyFrom copies src in c to dst on the host, or writes it to out as a
// tar stream when dst is "-". Modes are kept; owners only with Archive.
func CopyFrom(ctx context.Context, s storage.Store, c *Container, src, dst string, out io.Writer, o CopyOptions) error {
	wd, err := cwd()
	if err != nil {
		return err
	}
	sp := parseCpPath(src, "/") // container paths are relative to its "/"
	err = withRootfs(s, c, func(croot *fsRoot) error {
		source, err := openSource(croot, sp, o.FollowLink)
		if err != nil {
			return err
		}
		defer source.Close()
		if dst == "-" {
			name := source.name
			if source.contents {
				name = ""
			}
			return source.archive(ctx, out, name)
		}
		host, err := hostRoot()
		if err != nil {
			return err
		}
		defer host.Close()
		dp := parseCpPath(dst, wd)
		d, err := resolveDest(host, dp)
		if err != nil {
			return err
		}
		dir, name, err := plan(source, d, dp, host)
		if err != nil {
			return err
		}
		x := &extractor{ctx: ctx, root: host, dest: dir, owner: func(h *tar.Header) (int, int, bool) {
			return h.Uid, h.Gid, o.Archive
		}}
		return transfer(ctx, source, name, x)
	})
	if err == nil {
		events.Container(s.RunRoot(), "archive-path", c.ID, c.Image, c.Name, "path", sp.clean)
	}
	return err
}

// CopyTo copies src on the host into c at dst, or unpacks the tar stream
// (plain or compressed) read from in when src is "-", into the directory
// dst. What is copied belongs to root unless Archive keeps its owners.
func CopyTo(ctx context.Context, s storage.Store, c *Container, src, dst string, in io.Reader, o CopyOptions) error {
	wd, err := cwd()
	if err != nil {
		return err
	}
	dp := parseCpPath(dst, "/")
	owner := func(h *tar.Header) (int, int, bool) {
		if o.Archive {
			return h.Uid, h.Gid, true
		}
		return 0, 0, true
	}
	var source *source
	if src != "-" {
		host, err := hostRoot()
		if err != nil {
			return err
		}
		defer host.Close()
		if source, err = openSource(host, parseCpPath(src, wd), o.FollowLink); err != nil {
			return err
		}
		defer source.Close()
	}
	err = withRootfs(s, c, func(croot *fsRoot) error {
		d, err := resolveDest(croot, dp)
		if err != nil {
			return err
		}
		if source == nil {
			if !d.exists || !d.isDir {
				return fmt.Errorf("destination %s%s must be a directory", dp.raw, croot.in())
			}
			plain, err := layertar.Decompress(in)
			if err != nil {
				return fmt.Errorf("read archive: %w", err)
			}
			defer plain.Close()
			x := &extractor{ctx: ctx, root: croot, dest: d.path, owner: owner}
			return x.run(plain)
		}
		dir, name, err := plan(source, d, dp, croot)
		if err != nil {
			return err
		}
		return transfer(ctx, source, name, &extractor{ctx: ctx, root: croot, dest: dir, owner: owner})
	})
	if err == nil {
		events.Container(s.RunRoot(), "extract-to-dir", c.ID, c.Image, c.Name, "path", dp.clean)
	}
	return err
}
