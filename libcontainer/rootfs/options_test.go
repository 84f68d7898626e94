package rootfs

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestRecursiveAttrs checks the attr_set and attr_clr that recursive
// attribute words give mount_setattr: a later word undoes an earlier one,
// and an access-time mode always comes with all of MOUNT_ATTR__ATIME in
// attr_clr (the kernel refuses a mode without it, and a partial one).
func TestRecursiveAttrs(t *testing.T) {
	const atime = unix.MOUNT_ATTR__ATIME
	for _, tc := range []struct {
		opts     []string
		set, clr uint64
	}{
		{[]string{"rro"}, unix.MOUNT_ATTR_RDONLY, 0},
		{[]string{"rro", "rrw"}, 0, unix.MOUNT_ATTR_RDONLY},
		{[]string{"rrw", "rro"}, unix.MOUNT_ATTR_RDONLY, 0},
		{[]string{"rnosuid", "rnodev", "rnoexec"}, unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC, 0},
		{[]string{"rnoatime"}, unix.MOUNT_ATTR_NOATIME, atime},
		{[]string{"rstrictatime"}, unix.MOUNT_ATTR_STRICTATIME, atime},
		{[]string{"rrelatime"}, unix.MOUNT_ATTR_RELATIME, atime},
		{[]string{"rnoatime", "rstrictatime"}, unix.MOUNT_ATTR_STRICTATIME, atime},
		{[]string{"rnoatime", "ratime"}, 0, atime},
		{[]string{"rnostrictatime"}, 0, atime},
		{[]string{"rnorelatime"}, 0, atime},
		{[]string{"rnodiratime", "rnoatime"}, unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOATIME, atime},
		{[]string{"rdiratime"}, 0, unix.MOUNT_ATTR_NODIRATIME},
		{[]string{"ro", "nosuid"}, 0, 0},
	} {
		m, err := parseOptions(tc.opts)
		if err != nil {
			t.Fatalf("%v: %v", tc.opts, err)
		}
		if m.recAttrSet != tc.set || m.recAttrClr != tc.clr {
			t.Errorf("%v: attr_set %#x attr_clr %#x, want %#x %#x", tc.opts, m.recAttrSet, m.recAttrClr, tc.set, tc.clr)
		}
	}
}

// TestDefersReadonly: fresh tmpfs mounts and /dev get their read-only flag
// last; bind mounts (of host directories) and other filesystems at once.
func TestDefersReadonly(t *testing.T) {
	for _, tc := range []struct {
		typ, dest string
		want      bool
	}{
		{"tmpfs", "/dev", true},
		{"tmpfs", "dev/", true},
		{"tmpfs", "/run", true},
		{"devtmpfs", "/dev", true},
		{"bind", "/dev", false},
		{"bind", "/data", false},
		{"proc", "/proc", false},
		{"devpts", "/dev/pts", false},
	} {
		if got := defersReadonly(tc.typ, tc.dest); got != tc.want {
			t.Errorf("defersReadonly(%q, %q) = %v, want %v", tc.typ, tc.dest, got, tc.want)
		}
	}
}
