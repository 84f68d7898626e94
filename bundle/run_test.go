package bundle

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// runtimeBin is the runtime the end-to-end tests run bundles with.
const runtimeBin = "../bin/berth-runtime"

// busybox makes a busybox rootfs with tests/fixtures/mkbundle.sh. It skips
// the test without root, the runtime binary or busybox.
func busybox(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running a container needs root")
	}
	if _, err := os.Stat(runtimeBin); err != nil {
		t.Skipf("%s not built (make build)", runtimeBin)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("/bin/busybox not found (apt-get install busybox-static)")
	}
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("../tests/fixtures/mkbundle.sh", "--rootfs-only", rootfs).CombinedOutput(); err != nil {
		t.Fatalf("mkbundle.sh: %v: %s", err, out)
	}
	return rootfs
}

// runBundle makes a bundle from img and o on rootfs, runs it with
// berth-runtime and returns its output.
func runBundle(t *testing.T, rootfs string, img *v1.Image, o Options) string {
	t.Helper()
	bin, err := filepath.Abs(runtimeBin)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	s, err := Generate(img, rootfs, o)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "bundle")
	if err := AddEtcFiles(dir, s, EtcOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteBundle(dir, s); err != nil {
		t.Fatal(err)
	}

	state := filepath.Join(tmp, "state")
	id := fmt.Sprintf("bundle-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		// Only needed if run failed half way; run deletes what it made.
		exec.Command(bin, "--root", state, "delete", "--force", id).Run()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--root", state, "run", "--bundle", dir, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("berth-runtime run: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestRunBusybox(t *testing.T) {
	img := image(v1.ImageConfig{
		Cmd:  []string{"sh", "-c", "id; cat /etc/hostname; echo $FOO; grep Seccomp: /proc/self/status; pwd; echo $HOME"},
		Env:  []string{"FOO=bar"},
		User: "nobody",
	})
	out := runBundle(t, busybox(t), img, Options{Hostname: "bundle-e2e", ReadOnly: true})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"uid=1000(nobody) gid=1000(nobody)", "bundle-e2e", "bar", "Seccomp:\t2", "/", "/nonexistent"}
	if len(lines) != len(want) {
		t.Fatalf("output %q, want lines like %q", out, want)
	}
	if !strings.HasPrefix(lines[0], want[0]) {
		t.Errorf("id printed %q, want it to start with %q", lines[0], want[0])
	}
	for i := 1; i < len(want); i++ {
		if lines[i] != want[i] {
			t.Errorf("line %d: %q, want %q", i+1, lines[i], want[i])
		}
	}
}

// The default seccomp profile is in force: root without CAP_SYS_ADMIN may
// create a user namespace as far as the kernel is concerned, so only the
// filter refuses unshare(CLONE_NEWUSER).
func TestRunSeccompRefusesUnshare(t *testing.T) {
	img := image(v1.ImageConfig{Cmd: []string{"sh", "-c", "unshare -U true 2>/dev/null && echo allowed || echo refused"}})
	rootfs := busybox(t)
	if out := strings.TrimSpace(runBundle(t, rootfs, img, Options{})); out != "refused" {
		t.Errorf("unshare -U under the default profile: %q", out)
	}
	if out := strings.TrimSpace(runBundle(t, rootfs, img, Options{SeccompProfile: "unconfined"})); out != "allowed" {
		t.Errorf("unshare -U unconfined: %q", out)
	}
}
