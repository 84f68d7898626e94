package volume

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/layertar"
)

// The archiving below runs in a chroot, in a child of this process
// (go.podman.io/storage/pkg/chrootarchive): the program must call
// reexec.Init() first thing in main (berth does; so must a test binary).

// CopyUp fills the volume with what rootfs (a container's mounted root)
// holds at containerPath, as docker does when a volume is first mounted:
// the directory tree is copied with ownership, modes, times, extended
// attributes (user.*, security.capability) and hard links, symbolic links
// as symbolic links; the volume's directory takes the ownership and mode of
// the source directory. containerPath is resolved inside rootfs (a symbolic
// link on the way cannot lead out of it).
//
// It copies only into an empty volume that was never copied into; it does
// nothing when containerPath does not exist in rootfs or is not a directory.
// Call it after the rootfs is mounted and before the container starts.
func (v *Volume) CopyUp(rootfs, containerPath string) error {
	m, err := parseOptions(v.Options)
	if err != nil {
		return fmt.Errorf("copy up into volume %s: %w", v.Name, err)
	}
	unlock, err := lockPath(filepath.Join(v.dir, lockName))
	if err != nil {
		return fmt.Errorf("copy up into volume %s: %w", v.Name, err)
	}
	defer unlock()
	fresh, err := v.reload()
	if err != nil {
		return err
	}
	if fresh.CopiedUp {
		v.CopiedUp = true
		return nil
	}
	if m != nil {
		if err := v.mountLocked(m); err != nil {
			return err
		}
	}
	empty, err := isEmptyDir(v.Path())
	if err != nil {
		return fmt.Errorf("copy up into volume %s: %w", v.Name, err)
	}
	if !empty {
		return nil
	}
	src, root, err := resolveIn(rootfs, containerPath)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("copy up into volume %s: resolve %s in %s: %w", v.Name, containerPath, rootfs, err)
	}
	if src == "" {
		return nil // not a directory
	}
	if err := copyTree(root, src, v.Path()); err != nil {
		return fmt.Errorf("copy up %s into volume %s: %w", containerPath, v.Name, err)
	}
	fresh.CopiedUp = true
	if err := fresh.save(); err != nil {
		return fmt.Errorf("copy up into volume %s: %w", v.Name, err)
	}
	v.CopiedUp = true
	return nil
}

// reload reads the volume's record again (under its lock).
func (v *Volume) reload() (*Volume, error) {
	if _, err := os.Stat(filepath.Join(v.dir, recordFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, v.Name) // removed meanwhile
	}
	fresh, err := (&Store{root: filepath.Dir(v.dir)}).get(v.Name)
	if err != nil {
		return nil, err
	}
	return fresh, nil
}

// resolveIn resolves p inside rootfs, following symbolic links as the
// container would see them. It returns the directory's host path ("" when
// it is not a directory) and rootfs's real path.
func resolveIn(rootfs, p string) (dir, root string, err error) {
	rf, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", "", err
	}
	defer rf.Close()
	root, err = fdPath(rf)
	if err != nil {
		return "", "", err
	}
	rel := strings.TrimLeft(filepath.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	h, err := pathrs.OpenatInRoot(rf, rel)
	if err != nil {
		return "", "", err
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return "", "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", root, nil
	}
	dir, err = fdPath(h)
	if err != nil {
		return "", "", err
	}
	if dir != root && !strings.HasPrefix(dir, root+"/") {
		return "", "", fmt.Errorf("%s resolved to %s, outside the root", p, dir)
	}
	return dir, root, nil
}

// fdPath is where a handle is, as /proc/self/fd shows it.
func fdPath(f *os.File) (string, error) {
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		return "", err
	}
	return filepath.Clean(p), nil
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return len(names) == 0, err
}

// copyTree copies the directory src (under root, which it is read in a
// chroot of) into dst with its root directory's metadata.
func copyTree(root, src, dst string) error {
	rc, err := tarDir(root, src)
	if err != nil {
		return err
	}
	defer rc.Close()
	return untar(rc, dst)
}

// tarDir tars src, "./" and what is below, reading in a chroot of root.
func tarDir(root, src string) (io.ReadCloser, error) {
	return chrootarchive.Tar(src, &archive.TarOptions{Compression: archive.Uncompressed, IncludeSourceDir: true}, root)
}

// untar extracts an uncompressed tar into dst, in a chroot of dst.
func untar(r io.Reader, dst string) error {
	return chrootarchive.UntarUncompressed(r, dst, nil)
}

// Export writes the volume's data as a tar: "./" (the data directory) and
// what is below, with ownership, modes, times, extended attributes (user.*,
// security.capability) and hard links. A running container may change the
// data meanwhile.
func (s *Store) Export(name string, w io.Writer) error {
	v, err := s.get(name)
	if err != nil {
		return err
	}
	rc, err := tarDir(v.Path(), v.Path())
	if err != nil {
		return fmt.Errorf("export volume %s: %w", name, err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("export volume %s: %w", name, err)
	}
	return nil
}

// Import replaces the volume's data with a tar's content (it may be
// compressed), creating the volume if needed. An entry that would land
// outside the volume (by "..", an absolute path, a hard link, or through a
// symbolic link of the archive) makes it fail, naming the entry, and leaves
// the data as it was (the archive is extracted aside first), or no volume
// if Import made it. A tar entry
// "./" sets the data directory's ownership and mode.
func (s *Store) Import(name string, r io.Reader) error {
	v, err := s.get(name)
	created := false
	if errors.Is(err, ErrNotFound) {
		v, err = s.Create(CreateOptions{Name: name})
		created = true
	}
	if err != nil {
		return err
	}
	if err := v.importTar(r); err != nil {
		if created { // a refused archive leaves no volume behind
			_ = s.Remove(name, true, nil)
		}
		return err
	}
	return nil
}

func (v *Volume) importTar(r io.Reader) error {
	name := v.Name
	m, err := parseOptions(v.Options)
	if err != nil {
		return fmt.Errorf("import into volume %s: %w", name, err)
	}
	unlock, err := lockPath(filepath.Join(v.dir, lockName))
	if err != nil {
		return fmt.Errorf("import into volume %s: %w", name, err)
	}
	defer unlock()
	if _, err := v.reload(); err != nil {
		return err
	}
	if m != nil {
		if err := v.mountLocked(m); err != nil {
			return err
		}
	}
	plain, err := layertar.Decompress(r)
	if err != nil {
		return fmt.Errorf("import into volume %s: %w", name, err)
	}
	defer plain.Close()
	guarded := &firstError{r: layertar.Guard(plain)}
	defer guarded.Close()

	// Extracted aside, so that a refused archive changes nothing.
	staging, err := os.MkdirTemp(v.dir, "import-")
	if err != nil {
		return fmt.Errorf("import into volume %s: %w", name, err)
	}
	defer os.RemoveAll(staging)
	if err := os.Chmod(staging, 0o755); err != nil {
		return fmt.Errorf("import into volume %s: %w", name, err)
	}
	err = untar(guarded, staging)
	// The guard's refusal ends the stream; the extractor may then fail
	// for the truncation, or not notice it: the refusal decides.
	if gerr := guarded.error(); gerr != nil {
		var ee *layertar.EntryError
		if errors.As(gerr, &ee) {
			return fmt.Errorf("import into volume %s: tar entry %q refused: %s", name, ee.Name, strings.Replace(ee.Reason, "layer root", "volume", 1))
		}
		return fmt.Errorf("import into volume %s: %w", name, gerr)
	}
	if err != nil {
		return fmt.Errorf("import into volume %s: %w", name, err)
	}
	if err := replaceContent(staging, v.Path()); err != nil {
		return fmt.Errorf("import into volume %s: %w", name, err)
	}
	return nil
}

// firstError keeps the first error (not io.EOF) its reader returned.
type firstError struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (f *firstError) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF {
		f.mu.Lock()
		if f.err == nil {
			f.err = err
		}
		f.mu.Unlock()
	}
	return n, err
}

func (f *firstError) error() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *firstError) Close() error {
	if c, ok := f.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// replaceContent empties dst and moves src's content and metadata there;
// across filesystems (a volume with a tmpfs mounted) it copies.
func replaceContent(src, dst string) error {
	old, err := os.ReadDir(dst)
	if err != nil {
		return err
	}
	for _, e := range old {
		if err := os.RemoveAll(filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	var sst, dst1 unix.Stat_t
	if err := unix.Lstat(src, &sst); err != nil {
		return err
	}
	if err := unix.Lstat(dst, &dst1); err != nil {
		return err
	}
	if sst.Dev != dst1.Dev {
		return copyTree(src, src, dst)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return copyDirMeta(src, dst, &sst)
}

// copyDirMeta gives dst src's owner, mode, extended attributes and times.
func copyDirMeta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(dst, st.Mode&07777); err != nil {
		return err
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	return unix.UtimesNano(dst, []unix.Timespec{st.Atim, st.Mtim})
}

func copyXattrs(src, dst string) error {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return err
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(src, buf)
	if err != nil {
		return err
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "security.selinux") {
			continue
		}
		n, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			return err
		}
		val := make([]byte, n)
		if n, err = unix.Lgetxattr(src, name, val); err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, name, val[:n], 0); err != nil {
			return fmt.Errorf("set %s on %s: %w", name, dst, err)
		}
	}
	return nil
}
