package build

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
)

// Context is the build context: the files COPY and ADD may read, minus
// those .dockerignore excludes, which are never opened.
type Context struct {
	// Dir holds the files: the user's directory, or a temporary one a tar
	// was extracted to.
	Dir    string
	ignore *patternmatcher.PatternMatcher
	temp   bool
}

// ErrOutside is a source path that leads out of the context.
var ErrOutside = errors.New("forbidden path outside the build context")

// OpenDir takes a directory as the context; ignore is the .dockerignore's
// text (nil: none).
func OpenDir(dir string, ignore []byte) (*Context, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", dir)
	}
	c := &Context{Dir: abs}
	if err := c.setIgnore(ignore); err != nil {
		return nil, err
	}
	return c, nil
}

// OpenTar extracts a tar stream (plain or compressed) into a new directory
// under tmpDir, refusing entries that lead out of it. Close removes it.
func OpenTar(r io.Reader, tmpDir string) (c *Context, err error) {
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	dir, err := os.MkdirTemp(tmpDir, "context-")
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	plain, err := archive.DecompressStream(r)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	defer plain.Close()
	// Owners are not kept: the context's files are copied as root's.
	if err := chrootarchive.UntarUncompressed(plain, dir, &archive.TarOptions{NoLchown: true}); err != nil {
		return nil, fmt.Errorf("build context: extract the tar: %w", err)
	}
	return &Context{Dir: dir, temp: true}, nil
}

// OpenTarContext extracts a tar context under tmpDir and reads from it
// the Dockerfile file ("" is "Dockerfile") and its ignore file (the
// Dockerfile's own NAME.dockerignore before .dockerignore).
func OpenTarContext(r io.Reader, file, tmpDir string) (c *Context, dockerfile []byte, err error) {
	c, err = OpenTar(r, tmpDir)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if file == "" {
		file = "Dockerfile"
	}
	if dockerfile, err = c.ReadFile(file); err != nil {
		return nil, nil, fmt.Errorf("read the Dockerfile %s from the context: %w", file, err)
	}
	ignore := file + ".dockerignore"
	if _, err := c.ReadFile(ignore); err != nil {
		ignore = ".dockerignore"
	}
	if err := c.UseIgnoreFile(ignore); err != nil {
		return nil, nil, err
	}
	return c, dockerfile, nil
}

// SetIgnore reads a .dockerignore's text.
func (c *Context) setIgnore(text []byte) error {
	if text == nil {
		return nil
	}
	patterns, err := ignorefile.ReadAll(bytes.NewReader(text))
	if err != nil {
		return fmt.Errorf(".dockerignore: %w", err)
	}
	if c.ignore, err = patternmatcher.New(patterns); err != nil {
		return fmt.Errorf(".dockerignore: %w", err)
	}
	return nil
}

// UseIgnoreFile reads the ignore file name inside the context (for a tar
// context, whose .dockerignore came with it); a missing one is no error.
func (c *Context) UseIgnoreFile(name string) error {
	p, err := securejoin.SecureJoin(c.Dir, name)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return c.setIgnore(text)
}

// ReadFile reads a file of the context (the Dockerfile of a tar context).
func (c *Context) ReadFile(name string) ([]byte, error) {
	rel, err := cleanRel(name)
	if err != nil {
		return nil, err
	}
	p, err := securejoin.SecureJoin(c.Dir, rel)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// Close removes what OpenTar extracted.
func (c *Context) Close() error {
	if c.temp {
		return os.RemoveAll(c.Dir)
	}
	return nil
}

// cleanRel makes a source path relative to the context root, refusing one
// that climbs out of it.
func cleanRel(p string) (string, error) {
	clean := path.Clean("/" + filepath.ToSlash(p))
	if rel := path.Clean(filepath.ToSlash(p)); rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%w: %s", ErrOutside, p)
	}
	return strings.TrimPrefix(clean, "/"), nil
}

// excluded tells whether .dockerignore hides rel (or a directory above it).
func (c *Context) excluded(rel string) bool {
	if c.ignore == nil || rel == "" || rel == "." {
		return false
	}
	ok, err := c.ignore.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// hasExceptions tells whether an excluded directory may hold included
// files ("!" patterns), so that it must still be walked.
func (c *Context) hasExceptions() bool { return c.ignore != nil && c.ignore.Exclusions() }

// match expands a COPY source (a path or a glob) to the context paths it
// names, sorted; symlinks on the way are resolved inside the context.
func (c *Context) match(src string) ([]string, error) {
	rel, err := cleanRel(src)
	if err != nil {
		return nil, err
	}
	if !hasMeta(rel) {
		if _, err := c.stat(rel); err != nil {
			return nil, err
		}
		return []string{rel}, nil
	}
	var out []string
	depth := strings.Count(rel, "/")
	err = c.walk("", func(p, _ string, d fs.DirEntry) error {
		if p == "" {
			return nil // the context's root
		}
		if ok, _ := path.Match(rel, p); ok {
			out = append(out, p)
			if d.IsDir() {
				return fs.SkipDir
			}
		}
		if d.IsDir() && strings.Count(p, "/") >= depth {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no source files were specified: %s matches no file in the build context", src)
	}
	return out, nil
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// stat stats a context path whose directories (and itself, if a symlink)
// are resolved inside the context, as docker follows a source's symlinks.
func (c *Context) stat(rel string) (fs.FileInfo, error) {
	if c.excluded(rel) {
		return nil, fmt.Errorf("%s: not found in the build context or excluded by .dockerignore", rel)
	}
	p, err := c.path(rel)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%s: not found in the build context or excluded by .dockerignore", rel)
	}
	return fi, nil
}

// path is rel's place on disk, symlinks resolved inside the context.
func (c *Context) path(rel string) (string, error) {
	p, err := securejoin.SecureJoin(c.Dir, rel)
	if err != nil {
		return "", fmt.Errorf("%s: %w", rel, err)
	}
	return p, nil
}

// walk visits the context tree below rel (itself first) in lexical order,
// skipping what .dockerignore excludes without reading it; fn gets the
// context-relative path ("" for the root) and the place on disk. Symlinks
// are reported, not followed.
func (c *Context) walk(rel string, fn func(p, abs string, d fs.DirEntry) error) error {
	root, err := c.path(rel)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(abs string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(c.Dir, abs)
		if r = filepath.ToSlash(r); r == "." {
			r = ""
		}
		if abs != root && c.excluded(r) {
			if d.IsDir() && !c.hasExceptions() {
				return fs.SkipDir
			}
			return nil
		}
		return fn(r, abs, d)
	})
}

// digest hashes what a COPY of the sources rels would copy: every path,
// type, mode, size, link target and content, but no times or owners
// (context files are copied as root's), so that a touch keeps the cache
// and an edit does not.
func (c *Context) digest(rels []string) (string, error) {
	h := sha256.New()
	for _, rel := range rels {
		fmt.Fprintf(h, "source %s\n", rel)
		top, err := c.path(rel)
		if err != nil {
			return "", err
		}
		err = c.walk(rel, func(_, abs string, _ fs.DirEntry) error {
			sub, _ := filepath.Rel(top, abs)
			return hashEntry(h, sub, abs)
		})
		if err != nil {
			return "", fmt.Errorf("%s: %w", rel, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashEntry(h io.Writer, name, abs string) error {
	fi, err := os.Lstat(abs)
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "%s %o %d", name, fi.Mode(), fi.Size())
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(abs)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, " -> %s", target)
	case fi.Mode().IsRegular():
		f, err := os.Open(abs)
		if err != nil {
			return err
		}
		fh := sha256.New()
		_, err = io.Copy(fh, bufio.NewReader(f))
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		fmt.Fprintf(h, " %x", fh.Sum(nil))
	}
	_, err = io.WriteString(h, "\n")
	return err
}
