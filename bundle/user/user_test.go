package user

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const passwd = `root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
broken:x:notanumber:0::/:/bin/sh
short:x:0
`

const group = `root:x:0:
audio:x:29:alice
video:x:44:bob,alice
nogroup:x:65534:
alice:x:1000:
`

// rootfs makes a directory with etc/passwd and etc/group.
func rootfs(t *testing.T, passwd, group string) string {
	t.Helper()
	root := t.TempDir()
	write(t, filepath.Join(root, "etc/passwd"), passwd)
	write(t, filepath.Join(root, "etc/group"), group)
	return root
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLookup(t *testing.T) {
	root := rootfs(t, passwd, group)
	for _, tc := range []struct {
		spec string
		want User
	}{
		{"", User{UID: 0, GID: 0, Home: "/root"}},
		{"nobody", User{UID: 65534, GID: 65534, Home: "/nonexistent"}},
		{"alice", User{UID: 1000, GID: 1000, AdditionalGids: []uint32{29, 44}, Home: "/home/alice"}},
		// A uid with an entry is that user, supplementary groups included.
		{"1000", User{UID: 1000, GID: 1000, AdditionalGids: []uint32{29, 44}, Home: "/home/alice"}},
		{"root:nogroup", User{UID: 0, GID: 65534, Home: "/root"}},
		// An explicit group replaces the primary one and drops the others.
		{"alice:44", User{UID: 1000, GID: 44, Home: "/home/alice"}},
		{"alice:9999", User{UID: 1000, GID: 9999, Home: "/home/alice"}},
		{"4242", User{UID: 4242, GID: 0, Home: "/"}},
		{"4242:4343", User{UID: 4242, GID: 4343, Home: "/"}},
		{"4242:audio", User{UID: 4242, GID: 29, Home: "/"}},
	} {
		got, err := Lookup(root, tc.spec)
		if err != nil {
			t.Errorf("Lookup(%q): %v", tc.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Lookup(%q) = %+v, want %+v", tc.spec, got, tc.want)
		}
	}
}

func TestLookupErrors(t *testing.T) {
	root := rootfs(t, passwd, group)
	for _, tc := range []struct{ spec, want string }{
		{"bob", `user "bob" in rootfs`},
		{"bob", "unable to find user bob"},
		{"alice:nosuch", "unable to find group nosuch"},
		{"4294967295", "must be in range"},
	} {
		_, err := Lookup(root, tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Lookup(%q): error %v, want one containing %q", tc.spec, err, tc.want)
		}
	}
}

func TestLookupWithoutFiles(t *testing.T) {
	root := t.TempDir()
	got, err := Lookup(root, "123:456")
	if err != nil || got.UID != 123 || got.GID != 456 || got.Home != "/" {
		t.Errorf("Lookup(123:456) without /etc = %+v, %v", got, err)
	}
	if _, err := Lookup(root, "nobody"); err == nil {
		t.Error("a user name resolved without /etc/passwd")
	}
}

// A symlink in the image resolves inside the rootfs, whether it is absolute
// or climbs with "..": the host's file must never be read.
func TestLookupSymlinkStaysInRootfs(t *testing.T) {
	outside := t.TempDir()
	write(t, filepath.Join(outside, "passwd"), "evil:x:4242:4242::/evil:/bin/sh\n")
	for _, target := range []string{
		filepath.Join(outside, "passwd"),
		"../../../../../../../../" + filepath.Join(outside, "passwd"),
	} {
		root := rootfs(t, "", group)
		p := filepath.Join(root, "etc/passwd")
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		if u, err := Lookup(root, "evil"); err == nil {
			t.Errorf("symlink to %s: read the host's file: %+v", target, u)
		}
	}

	// The same absolute link is followed when its target is in the rootfs.
	root := rootfs(t, "", group)
	write(t, filepath.Join(root, outside, "passwd"), "inside:x:77:78::/in:/bin/sh\n")
	p := filepath.Join(root, "etc/passwd")
	os.Remove(p)
	if err := os.Symlink(filepath.Join(outside, "passwd"), p); err != nil {
		t.Fatal(err)
	}
	u, err := Lookup(root, "inside")
	if err != nil || u.UID != 77 || u.GID != 78 {
		t.Errorf("symlink inside the rootfs: %+v, %v", u, err)
	}
}

func TestLookupRefusesFIFO(t *testing.T) {
	root := rootfs(t, passwd, "")
	g := filepath.Join(root, "etc/group")
	os.Remove(g)
	if err := unix.Mkfifo(g, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Lookup(root, "alice"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO /etc/group: %v", err)
	}
}
