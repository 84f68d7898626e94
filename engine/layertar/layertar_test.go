package layertar

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"testing/synctest"
)

// entry is one tar entry to write; body is the content of regular files.
type entry struct {
	hdr  tar.Header
	body []byte
}

func dir(name string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}
func file(name string, body []byte) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}
func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target}}
}
func hardlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

// build writes the entries and returns the stream and the offset at which
// the header blocks of each entry start.
func build(t *testing.T, entries []entry) ([]byte, []int) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	offs := make([]int, len(entries))
	for i, e := range entries {
		if err := tw.Flush(); err != nil { // writes the previous entry's padding
			t.Fatal(err)
		}
		offs[i] = buf.Len()
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatalf("%s: %v", e.hdr.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), offs
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	return b
}

func benign() []entry {
	longName := "a/" + strings.Repeat("long-directory-name/", 8) + "file"
	xattr := file("a/xattr", []byte("x"))
	xattr.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.test": "value", "SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}
	gnuLong := file("a/"+strings.Repeat("gnu-long-name-", 10), []byte("gnu"))
	gnuLong.hdr.Format = tar.FormatGNU
	paxLong := file(longName, randBytes(700))
	paxLong.hdr.Format = tar.FormatPAX
	return []entry{
		dir("./"),
		dir("./a/"),
		dir("a/b/"),
		file("./a/b/c", []byte("hello")),
		file("a/empty", nil),
		file("a/block", randBytes(512)),
		file("a/odd", randBytes(513)),
		file("a/big", randBytes(1<<20+4097)),
		symlink("bin/sh", "/bin/busybox"),
		symlink("a/b/rel", "../odd"),
		symlink("a/b/up", ".."),
		symlink("top", "a/b/c"),
		hardlink("a/hard", "a/odd"),
		hardlink("a/hard2", "./a/b/../big"),
		file("a/.wh.gone", nil),
		file("a/b/.wh..wh..opq", nil),
		{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
		{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Mode: 0o660, Devmajor: 8}},
		{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600}},
		paxLong,
		gnuLong,
		xattr,
		// A symlink replaced by a directory is no longer a symlink.
		symlink("lnk", "/etc"),
		dir("lnk/"),
		file("lnk/passwd", []byte("root:x:0:0::/root:/bin/sh\n")),
		hardlink("lnk/hard", "lnk/passwd"),
		// Absolute symlink target: its children are refused, not the link.
		symlink("etc", "/etc"),
	}
}

// readAll reads g inside a synctest bubble, so a hang fails instead of blocking.
func readAll(t *testing.T, in io.Reader, half bool) (out []byte, err error) {
	synctest.Test(t, func(t *testing.T) {
		var g io.Reader = Guard(in)
		if half {
			g = iotest.HalfReader(g)
		}
		out, err = io.ReadAll(g)
	})
	return out, err
}

func TestBenignIdentical(t *testing.T) {
	stream, _ := build(t, benign())
	// Layers are often padded past the end-of-archive blocks; keep that too.
	stream = append(stream, make([]byte, 10240)...)
	for _, half := range []bool{false, true} {
		var in io.Reader = bytes.NewReader(stream)
		if half {
			in = iotest.HalfReader(in)
		}
		out, err := readAll(t, in, half)
		if err != nil {
			t.Fatalf("half=%v: %v", half, err)
		}
		if sha256.Sum256(out) != sha256.Sum256(stream) {
			t.Fatalf("half=%v: output differs: %d bytes in, %d out", half, len(stream), len(out))
		}
	}
}

func TestHostile(t *testing.T) {
	longAbs := "/" + strings.Repeat("evil-long/", 12) + "x"
	paxAbs := file(longAbs, []byte("x"))
	paxAbs.hdr.Format = tar.FormatPAX
	gnuUp := file("../"+strings.Repeat("evil-gnu-", 14), nil)
	gnuUp.hdr.Format = tar.FormatGNU
	cases := []struct {
		name    string
		entries []entry // the last entry is the hostile one
	}{
		{"absolute", []entry{file("/etc/evil-abs", nil)}},
		{"dotdot", []entry{file("../evil-up", nil)}},
		{"nested dotdot", []entry{file("a/../../evil-up2", nil)}},
		{"dotdot dir", []entry{dir("evil-d/../../")}},
		{"pax long absolute", []entry{paxAbs}},
		{"gnu long dotdot", []entry{gnuUp}},
		{"hardlink absolute", []entry{hardlink("evil-hl-abs", "/etc/shadow")}},
		{"hardlink climbs", []entry{hardlink("evil-hl-up", "a/../../etc/shadow")}},
		{"symlink climbs", []entry{dir("a/b/"), symlink("a/b/evil-sym", "../../../etc")}},
		{"symlink dotdot", []entry{symlink("evil-sym2", "..")}},
		{"through symlink", []entry{symlink("lnk", "/etc"), file("lnk/evil-passwd", []byte("x"))}},
		{"through relative symlink", []entry{dir("a/"), symlink("lnk", "a"), file("lnk/evil-x", nil)}},
		{"through nested symlink", []entry{symlink("d/lnk", "/"), dir("d/lnk/sub/evil-deep/")}},
		{"symlink through symlink", []entry{symlink("lnk", "/etc"), symlink("lnk/evil-s", "/x")}},
		{"hardlink through symlink", []entry{symlink("lnk", "/etc"), hardlink("evil-hl-through", "lnk/shadow")}},
		{"through hardlinked symlink", []entry{symlink("lnk", "/etc"), hardlink("h", "lnk"), file("h/evil-via-hl", nil)}},
		{"root replaced", []entry{symlink("./", "/evil-root")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			entries := append([]entry{file("ok", randBytes(1500))}, c.entries...)
			stream, offs := build(t, entries)
			bad := entries[len(entries)-1].hdr.Name
			out, err := readAll(t, bytes.NewReader(stream), false)
			var ee *EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("want *EntryError, got %v", err)
			}
			if ee.Name != bad || !strings.Contains(err.Error(), bad) {
				t.Fatalf("error %q does not name %q", err, bad)
			}
			t.Log(err)
			// Output is a prefix of the input ending before the hostile header.
			if !bytes.Equal(out, stream[:len(out)]) || len(out) > offs[len(offs)-1] {
				t.Fatalf("passed on %d bytes, hostile header starts at %d", len(out), offs[len(offs)-1])
			}
			if len(out) == 0 {
				t.Fatal("benign prefix not passed on")
			}
			if bytes.Contains(out, []byte(bad)) {
				t.Fatalf("output contains hostile name %q", bad)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	stream, offs := build(t, []entry{file("a", randBytes(5000)), file("b", []byte("b"))})
	garbage := randBytes(2048)
	cases := []struct {
		name string
		in   io.Reader
	}{
		{"truncated in content", bytes.NewReader(stream[:offs[0]+512+100])},
		{"truncated in header", bytes.NewReader(stream[:offs[1]+300])},
		{"truncated in trailer", bytes.NewReader(stream[:len(stream)-100])},
		{"garbage", bytes.NewReader(garbage)},
		{"zero block then garbage", bytes.NewReader(append(make([]byte, 512), garbage...))},
		{"bad checksum", bytes.NewReader(append(bytes.Clone(stream[:100]), stream[101:]...))},
		{"read error", io.MultiReader(bytes.NewReader(stream[:700]), iotest.ErrReader(errors.New("disk on fire")))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readAll(t, c.in, false)
			if err == nil {
				t.Fatal("want an error")
			}
			var ee *EntryError
			if errors.As(err, &ee) {
				t.Fatalf("syntax error reported as hostile entry: %v", err)
			}
			t.Log(err)
		})
	}
}

// TestCloseEarly stops reading midway: synctest.Test fails if the guard's
// goroutine is still blocked when the bubble ends.
func TestCloseEarly(t *testing.T) {
	stream, _ := build(t, benign())
	synctest.Test(t, func(t *testing.T) {
		g := Guard(bytes.NewReader(stream))
		if _, err := io.ReadFull(g, make([]byte, 4096)); err != nil {
			t.Fatal(err)
		}
		if err := g.(io.Closer).Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Read(make([]byte, 1)); err == nil {
			t.Fatal("read after Close succeeded")
		}
		synctest.Wait() // the goroutine must have exited by now
	})
}
