// Package user resolves a docker-style user string ("name", "uid",
// "name:group", "uid:gid", ...) against the /etc/passwd and /etc/group of a
// container's root filesystem, as docker and podman do.
//
// The files belong to an image, so they are opened inside the rootfs with
// securejoin's pathrs-lite: a symlink (absolute or with "..") resolves as if
// the rootfs were "/" and never reaches a host file.
package user

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// User is a resolved user: what a process runs as, and its home.
type User struct {
	UID            uint32
	GID            uint32
	AdditionalGids []uint32
	// Home is the passwd entry's home, or "/" for a uid without one.
	Home string
}

// Lookup resolves spec in the rootfs with moby/sys/user's rules (those of
// runc and docker): an empty spec means root; a user name needs a passwd
// entry, a numeric uid does not (gid 0 and home "/" then); a group part
// replaces the primary group; without one, the supplementary groups are the
// groups of /etc/group that list the user. Missing files count as empty.
func Lookup(rootfs, spec string) (User, error) {
	passwd, err := openOptional(rootfs, "/etc/passwd")
	if err != nil {
		return User{}, err
	}
	defer passwd.Close()
	group, err := openOptional(rootfs, "/etc/group")
	if err != nil {
		return User{}, err
	}
	defer group.Close()
	eu, err := user.GetExecUser(spec, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return User{}, fmt.Errorf("user %q in rootfs %s: %w", spec, rootfs, err)
	}
	u := User{UID: uint32(eu.Uid), GID: uint32(eu.Gid), Home: eu.Home}
	for _, g := range eu.Sgids {
		if uint32(g) != u.GID {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	return u, nil
}

// openOptional opens path in rootfs, or an empty reader when it is missing.
func openOptional(rootfs, path string) (io.ReadCloser, error) {
	f, err := openInRoot(rootfs, path)
	if errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	return f, err
}

// openInRoot opens a regular file for reading inside rootfs. The type is
// checked on the O_PATH handle first: opening a FIFO an image placed there
// would block.
func openInRoot(rootfs, path string) (*os.File, error) {
	h, err := pathrs.OpenInRoot(rootfs, path)
	if err != nil {
		return nil, fmt.Errorf("open %s in rootfs %s: %w", path, rootfs, err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat %s in rootfs %s: %w", path, rootfs, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s in rootfs %s is not a regular file", path, rootfs)
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open %s in rootfs %s: %w", path, rootfs, err)
	}
	return f, nil
}
