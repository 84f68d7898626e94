package integration

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestCreateFailures gives create one bad thing at a time. Each must fail
// with a one-line error naming it, log it as JSON, and leave no state,
// cgroup, mount or process.
func TestCreateFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// edit changes the spec; nil writes rawConfig instead.
		edit      func(s *specs.Spec)
		rawConfig string
		want      []string // words the error must contain
	}{
		{name: "bad JSON", rawConfig: `{"ociVersion": "1.0.2", "process": {`, want: []string{"config.json"}},
		{
			name: "missing root path",
			edit: func(s *specs.Spec) { s.Root.Path = "/nonexistent-berth-rootfs" },
			want: []string{"root.path", "/nonexistent-berth-rootfs"},
		},
		{
			name: "unknown namespace",
			edit: func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogusns"})
			},
			want: []string{"bogusns"},
		},
		{name: "no args", edit: func(s *specs.Spec) { s.Process.Args = nil }, want: []string{"process.args"}},
		{
			name: "command not in rootfs",
			edit: func(s *specs.Spec) { s.Process.Args = []string{"berth-no-such-command"} },
			want: []string{"berth-no-such-command", "executable file not found in $PATH"},
		},
		{
			name: "absolute command missing",
			edit: func(s *specs.Spec) { s.Process.Args = []string{"/nonexistent"} },
			want: []string{"/nonexistent", "no such file or directory"},
		},
		{
			name: "bad mount type",
			edit: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "bogusfs", Source: "none"})
			},
			want: []string{"bogusfs", "/tmp"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.privateRuntime()
			id := e.newID()
			var b string
			if c.edit != nil {
				s := newSpec(t, "true")
				c.edit(s)
				b = e.bundle(s)
			} else {
				b = filepath.Join(e.dir, "bundle")
				writeFile(t, filepath.Join(b, "config.json"), c.rawConfig, 0o644)
			}
			logPath := filepath.Join(e.dir, "log.json")
			r := e.rt("--log", logPath, "--log-format", "json", "create", "--bundle", b, id)
			if r.code == 0 {
				e.track(id)
				t.Fatalf("create succeeded: %s", r)
			}
			oneLine(t, r)
			contains(t, "error", r.stderr, c.want...)
			e.checkNothingLeft(id, b)

			logLines := lines(readFile(t, logPath))
			if len(logLines) == 0 {
				t.Fatalf("log file %s is empty", logPath)
			}
			var entry struct {
				Level string `json:"level"`
				Msg   string `json:"msg"`
			}
			last := logLines[len(logLines)-1]
			if err := json.Unmarshal([]byte(last), &entry); err != nil {
				t.Fatalf("last log line is not JSON: %q: %v", last, err)
			}
			if entry.Level != "error" {
				t.Errorf("last log line level %q, want error: %s", entry.Level, last)
			}
			contains(t, "logged error", entry.Msg, c.want...)
		})
	}
}

// privateRuntime gives the env its own copy of the binary, so that
// processesOf can find every process it left, even with other tests or
// other users of the runtime running at the same time.
func (e *env) privateRuntime() {
	e.t.Helper()
	data, err := os.ReadFile(runtimeBin)
	if err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(e.dir, "berth-runtime")
	if err := os.WriteFile(p, data, 0o755); err != nil {
		e.t.Fatal(err)
	}
	// A process forked by a parallel test while the copy was open for
	// writing holds that descriptor until it execs: until then, running
	// the copy fails with ETXTBSY.
	for i := 0; ; i++ {
		err := exec.Command(p, "--version").Run()
		if err == nil {
			break
		}
		if !errors.Is(err, unix.ETXTBSY) || i == 200 {
			e.t.Fatalf("run the copy of the runtime: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.bin = p
}

// processesOf returns the pids whose executable is the file at path (the
// same inode, whatever path /proc shows for it).
func processesOf(t *testing.T, path string) []int {
	t.Helper()
	var want unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+en.Name()+"/exe", &st) != nil {
			continue
		}
		if st.Dev == want.Dev && st.Ino == want.Ino {
			pids = append(pids, pid)
		}
	}
	return pids
}

// checkNothingLeft checks, after a failed create of id, that no state,
// cgroup, host mount or process of the private runtime is left.
func (e *env) checkNothingLeft(id string, bundle string) {
	e.t.Helper()
	if _, err := os.Stat(filepath.Join(e.root, id)); err == nil {
		e.t.Errorf("state directory %s left behind", filepath.Join(e.root, id))
	}
	for _, dir := range cgroupDirs(e.t, id) {
		if _, err := os.Stat(dir); err == nil {
			e.t.Errorf("cgroup %s left behind", dir)
		}
	}
	checkNoHostMounts(e.t, bundle, sharedRootfs)
	if pids := processesOf(e.t, e.bin); len(pids) > 0 {
		e.t.Errorf("processes of the runtime left behind: %v", pids)
		for _, pid := range pids {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
}
