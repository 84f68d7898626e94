package container

import (
	"context"
	"io"
	"io/fs"
	"path"
	"time"

	"go.podman.io/storage"
	"golang.org/x/sys/unix"
)

// PathStat is a path in a container as the Engine API's archive endpoints
// describe it (the X-Docker-Container-Path-Stat header).
type PathStat struct {
	Name  string      `json:"name"`
	Size  int64       `json:"size"`
	Mode  fs.FileMode `json:"mode"`
	Mtime time.Time   `json:"mtime"`
	// LinkTarget is where a symbolic link points, absolute in the
	// container.
	LinkTarget string `json:"linkTarget"`
}

// StatPath describes p in c, not following a last symbolic link.
func StatPath(s storage.Store, c *Container, p string) (*PathStat, error) {
	var st *PathStat
	err := withRootfs(s, c, func(root *fsRoot) error {
		src, err := openSource(root, parseCpPath(p, "/"), false)
		if err != nil {
			return err
		}
		defer src.Close()
		st, err = pathStat(src, parseCpPath(p, "/"))
		return err
	})
	return st, err
}

// ArchivePath writes p in c to w as a tar stream, its entries named
// under p's base name ("." for "dir/.", as docker's daemon names them),
// calling head with p's description before the first byte.
func ArchivePath(ctx context.Context, s storage.Store, c *Container, p string, head func(*PathStat), w io.Writer) error {
	cp := parseCpPath(p, "/")
	return withRootfs(s, c, func(root *fsRoot) error {
		src, err := openSource(root, cp, false)
		if err != nil {
			return err
		}
		defer src.Close()
		st, err := pathStat(src, cp)
		if err != nil {
			return err
		}
		head(st)
		name := src.name
		switch {
		case cp.dot:
			name = "."
		case name == "":
			name = "/"
		}
		return src.archive(ctx, w, name)
	})
}

func pathStat(src *source, p cpPath) (*PathStat, error) {
	st := &src.node.st
	out := &PathStat{Name: src.name, Size: st.Size, Mode: fileMode(st.Mode), Mtime: time.Unix(st.Mtim.Unix())}
	if out.Name == "" {
		out.Name = "/"
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		target, err := src.node.readlink()
		if err != nil {
			return nil, err
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p.clean), target)
		}
		out.LinkTarget = path.Clean(target)
	}
	return out, nil
}

// fileMode turns a stat mode into Go's, whose bits the API carries.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
