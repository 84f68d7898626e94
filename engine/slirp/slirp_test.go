package slirp

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/tests/testutil"
)

// newNetns makes a network namespace held by a bind mount in dir.
func newNetns(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "netns")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		// The thread is left to die in the new namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		done <- unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, "")
	}()
	if err := <-done; err != nil {
		t.Fatalf("make netns: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(path, unix.MNT_DETACH) })
	return path
}

func need(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, c := range []string{"slirp4netns", "nsenter", "busybox"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s not found", c)
		}
	}
}

// TestStartForwardStop runs slirp4netns for a namespace, checks tap0's
// address, serves a file in the namespace through a published port, and
// stops it.
func TestStartForwardStop(t *testing.T) {
	need(t)
	dir := t.TempDir()
	ns := newNetns(t, dir)
	p, err := Start(ns, filepath.Join(dir, "slirp"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	out, err := exec.Command("nsenter", "--net="+ns, "ip", "-4", "-o", "addr", "show", Device).CombinedOutput()
	if err != nil || !strings.Contains(string(out), Address+"/24") {
		t.Fatalf("tap0 in the namespace: %v: %s", err, out)
	}

	web := filepath.Join(dir, "www")
	os.Mkdir(web, 0o755)
	os.WriteFile(filepath.Join(web, "index.html"), []byte("through slirp\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	httpd := exec.CommandContext(ctx, "nsenter", "--net="+ns, "busybox", "httpd", "-f", "-p", "8080", "-h", web)
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); httpd.Wait() })

	port := testutil.FreePort(t)
	if err := p.Forward("tcp", "127.0.0.1", port, 8080); err != nil {
		t.Fatal(err)
	}
	var body []byte
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET through the published port: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if string(body) != "through slirp\n" {
		t.Fatalf("body %q", body)
	}
	// The same host port twice is refused, in slirp4netns's words.
	if err := p.Forward("tcp", "127.0.0.1", port, 8080); err == nil {
		t.Fatal("a host port published twice was accepted")
	}

	// A crash before the pid was recorded: it is found by its namespace.
	if q := Find(ns, filepath.Join(dir, "slirp")); q.PID != p.PID || q.Start != p.Start {
		t.Errorf("Find: %+v, started %+v", q, p)
	}
	if q := Find(filepath.Join(dir, "other"), filepath.Join(dir, "slirp")); q.PID != 0 {
		t.Errorf("Find of another namespace: %+v", q)
	}

	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if p.Alive() {
		t.Fatal("slirp4netns still runs after Stop")
	}
	for _, f := range []string{"slirp.sock", "slirp.log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Fatalf("%s left behind: %v", f, err)
		}
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// TestStartFails: a path that is no network namespace is reported with
// slirp4netns's own words and leaves no process.
func TestStartFails(t *testing.T) {
	need(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "not-a-netns")
	os.WriteFile(bad, nil, 0o600)
	p, err := Start(bad, filepath.Join(dir, "slirp"))
	if err == nil {
		p.Stop()
		t.Fatal("slirp4netns started for a plain file")
	}
	if !strings.Contains(err.Error(), bad) {
		t.Fatalf("error does not name the namespace: %v", err)
	}
	out, _ := exec.Command("pgrep", "-f", "slirp4netns.*"+bad).Output()
	if len(out) > 0 {
		t.Fatalf("slirp4netns left running: %s", out)
	}
}
