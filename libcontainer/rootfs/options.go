package rootfs

import (
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOptions is a spec mount's option list split the way mount(2) wants it.
type mountOptions struct {
	flags       uintptr // flags for the mount itself
	clearFlags  uintptr // flags an option turns off (rw, suid, ...)
	propagation []uintptr
	recAttrSet  uint64 // mount_setattr attributes applied recursively (rro, rnosuid, ...)
	recAttrClr  uint64
	data        []string
}

var flagOptions = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
	"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "diratime": {true, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"lazytime": {false, unix.MS_LAZYTIME}, "nolazytime": {true, unix.MS_LAZYTIME},
	"silent": {false, unix.MS_SILENT}, "loud": {true, unix.MS_SILENT},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"defaults": {false, 0},
}

var propagationOptions = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

var recursiveAttrs = map[string]struct {
	clear bool
	attr  uint64
}{
	"rro": {false, unix.MOUNT_ATTR_RDONLY}, "rrw": {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid": {false, unix.MOUNT_ATTR_NOSUID}, "rsuid": {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev": {false, unix.MOUNT_ATTR_NODEV}, "rdev": {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec": {false, unix.MOUNT_ATTR_NOEXEC}, "rexec": {true, unix.MOUNT_ATTR_NOEXEC},
	"rnoatime": {false, unix.MOUNT_ATTR_NOATIME}, "ratime": {true, unix.MOUNT_ATTR_NOATIME},
	"rrelatime": {false, unix.MOUNT_ATTR_RELATIME}, "rnorelatime": {true, unix.MOUNT_ATTR_RELATIME},
	"rnodiratime": {false, unix.MOUNT_ATTR_NODIRATIME}, "rdiratime": {true, unix.MOUNT_ATTR_NODIRATIME},
	"rstrictatime": {false, unix.MOUNT_ATTR_STRICTATIME}, "rnostrictatime": {true, unix.MOUNT_ATTR_STRICTATIME},
}

func parseOptions(opts []string) (mountOptions, error) {
	var m mountOptions
	for _, o := range opts {
		if m.setFlag(o) {
			continue
		}
		if p, ok := propagationOptions[o]; ok {
			m.propagation = append(m.propagation, p)
		} else if a, ok := recursiveAttrs[o]; ok {
			m.setRecAttr(a.clear, a.attr)
		} else if o == "tmpcopyup" || o == "idmap" || o == "ridmap" {
			return m, fmt.Errorf("mount option %q is not supported", o)
		} else {
			m.data = append(m.data, o)
		}
	}
	return m, nil
}

// setRecAttr records a recursive attribute word, a later word undoing an
// earlier one. The access-time modes (relatime, noatime, strictatime) are one
// setting, not bits, and mount_setattr takes a mode in attr_set only with
// all of MOUNT_ATTR__ATIME in attr_clr: a word naming a mode sets it, and a
// word undoing one (ratime, rnorelatime, rnostrictatime) sets the kernel's
// default, relatime, as mount(2) does for a mount without the flag.
func (m *mountOptions) setRecAttr(clear bool, attr uint64) {
	if attr&unix.MOUNT_ATTR__ATIME == attr { // MOUNT_ATTR_RELATIME is 0
		m.recAttrClr |= unix.MOUNT_ATTR__ATIME
		m.recAttrSet &^= unix.MOUNT_ATTR__ATIME
		if !clear {
			m.recAttrSet |= attr
		}
		return
	}
	if clear {
		m.recAttrClr |= attr
		m.recAttrSet &^= attr
	} else {
		m.recAttrSet |= attr
		m.recAttrClr &^= attr
	}
}

// setFlag applies o if it is a mount(2) flag word, a later word undoing an
// earlier one, and tells whether it was.
func (m *mountOptions) setFlag(o string) bool {
	f, ok := flagOptions[o]
	if !ok {
		return false
	}
	if f.clear {
		m.flags &^= f.flag
		m.clearFlags |= f.flag
	} else {
		m.flags |= f.flag
		m.clearFlags &^= f.flag
	}
	return true
}

// MountFlags splits mount options into the words that are mount(2) flags,
// read as the runtime reads them, and all the rest, the filesystem's data.
func MountFlags(opts []string) (flags uintptr, data string) {
	var m mountOptions
	for _, o := range opts {
		if !m.setFlag(o) {
			m.data = append(m.data, o)
		}
	}
	return m.flags, m.dataString()
}

func (m mountOptions) dataString() string { return strings.Join(m.data, ",") }

// OptionNames lists every mount option the runtime understands, for the
// features document. Options not listed are passed to the filesystem.
func OptionNames() []string {
	var names []string
	for n := range flagOptions {
		names = append(names, n)
	}
	for n := range propagationOptions {
		names = append(names, n)
	}
	for n := range recursiveAttrs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
