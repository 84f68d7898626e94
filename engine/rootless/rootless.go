// Package rootless puts an unprivileged berth into its user's namespaces: a
// user namespace that maps the user to root and the user's subordinate ids
// (/etc/subuid, /etc/subgid) after it, and a mount namespace, both held by a
// pause process. Every berth command and container monitor of the user works
// in them, so they all see the mounts (image layers, network namespaces) the
// others made, and may join the containers' namespaces, as podman does.
//
// The join itself happens in a C constructor (engine/rootless/join) before the Go runtime
// starts, since a multithreaded process may not change its user or mount
// namespace; Enter makes the pause process when there is none and re-executes
// berth to join it.
package rootless

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage/pkg/unshare"
	"golang.org/x/sys/unix"
)

// PauseCommand is the reexec name of the pause process; main registers Pause
// under it.
const PauseCommand = "berth-rootless-pause"

// reexecEnv marks the re-execution that should have joined, so that a
// failed join is reported rather than retried forever.
const reexecEnv = "_BERTH_ROOTLESS_REEXEC"

// UID is the user berth works for: the caller's uid, or, in the user's
// namespaces (those of its pause process), the host uid that root maps to.
// Root of any other user namespace (a system container's, say) is root.
var UID = sync.OnceValue(func() int {
	if uid := os.Geteuid(); uid != 0 {
		return uid
	}
	host := mappedRoot()
	if host != 0 && sameNamespace(pausePid(pauseFile(host)), "user") {
		return host
	}
	return 0
})

// mappedRoot is the host uid of this user namespace's root; 0 in the
// initial namespace.
func mappedRoot() int {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "0" {
			if uid, err := strconv.Atoi(f[1]); err == nil {
				return uid
			}
		}
	}
	return 0
}

// Enabled reports whether berth works for an unprivileged user.
func Enabled() bool { return UID() != 0 }

// RunDir is the user's directory for runtime state: $XDG_RUNTIME_DIR, or
// ${TMPDIR:-/tmp}/berth-UID. engine/rootless/join computes the same.
func RunDir() string { return runDir(UID()) }

func runDir(uid int) string {
	if run := os.Getenv("XDG_RUNTIME_DIR"); run != "" {
		return run
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("berth-%d", uid))
}

// PauseFile holds the pid of the user's pause process.
func PauseFile() string { return pauseFile(UID()) }

func pauseFile(uid int) string { return filepath.Join(runDir(uid), "berth", "pause.pid") }

// Enter joins the user's namespaces, making the pause process first if there
// is none; it returns at once for root and in a process that has joined. It
// does not return when it re-executes berth.
func Enter() error {
	if os.Geteuid() == 0 {
		os.Unsetenv(reexecEnv)
		return nil
	}
	if os.Getenv(reexecEnv) != "" {
		return fmt.Errorf("rootless: could not join the namespaces of the pause process in %s", PauseFile())
	}
	if err := ensurePause(); err != nil {
		return fmt.Errorf("rootless: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("rootless: find berth's binary: %w", err)
	}
	os.Setenv(reexecEnv, "1")
	if err := syscall.Exec(exe, os.Args, os.Environ()); err != nil {
		return fmt.Errorf("rootless: re-execute %s: %w", exe, err)
	}
	return nil
}

// ensurePause starts the pause process unless a live one is recorded. A lock
// keeps two berth commands from making one each.
func ensurePause() error {
	dir := filepath.Dir(PauseFile())
	if err := privateDir(dir); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "pause.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open pause lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	if pausing() {
		return nil
	}
	return startPause()
}

// privateDir makes dir (and its parents) and checks that the user owns it:
// a directory under /tmp could have been made by someone else.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		var st unix.Stat_t
		if err := unix.Lstat(d, &st); err != nil {
			return fmt.Errorf("stat %s: %w", d, err)
		}
		if int(st.Uid) != os.Geteuid() || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("%s is not a directory of uid %d", d, os.Geteuid())
		}
	}
	return nil
}

// pausing reports whether the pid file names a live pause process.
func pausing() bool { return pausePid(PauseFile()) > 0 }

// pausePid is the pause process the file names, or 0 when it names none
// (missing, or a pid that another process has now).
func pausePid(file string) int {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(string(data))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || string(cmdline) != PauseCommand+"\x00" {
		return 0
	}
	return pid
}

// sameNamespace reports whether pid is in this process's namespace of the
// kind ns ("user", "mnt").
func sameNamespace(pid int, ns string) bool {
	if pid <= 0 {
		return false
	}
	theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
	ours, err2 := os.Readlink("/proc/self/ns/" + ns)
	return err == nil && err2 == nil && theirs == ours
}

// startPause starts the pause process in a new user namespace (mapped with
// newuidmap and newgidmap from the user's subordinate ranges) and a new mount
// namespace, and records its pid.
func startPause() error {
	uidmap, gidmap, err := idMappings()
	if err != nil {
		return err
	}
	logPath := filepath.Join(filepath.Dir(PauseFile()), "pause.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("pause process log: %w", err)
	}
	defer logf.Close()
	cmd := unshare.Command(PauseCommand)
	cmd.UnshareFlags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS
	cmd.UseNewuidmap, cmd.UseNewgidmap = true, true
	cmd.UidMappings, cmd.GidMappings = uidmap, gidmap
	cmd.GidMappingsEnableSetgroups = true
	cmd.Setsid = true
	cmd.Dir = "/"
	// A file, not the caller's stderr: the pause process outlives it.
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the pause process: %w%s", err, logged(logPath))
	}
	pid := cmd.Process.Pid
	// Reaped by init once this berth has exited.
	cmd.Process.Release()
	if err := checkPause(pid, uidmap, gidmap); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return fmt.Errorf("the pause process: %w%s", err, logged(logPath))
	}
	tmp := PauseFile() + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o600); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return fmt.Errorf("record the pause process: %w", err)
	}
	if err := os.Rename(tmp, PauseFile()); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		os.Remove(tmp)
		return fmt.Errorf("record the pause process: %w", err)
	}
	return nil
}

// checkPause waits until the pause process has its own mount namespace
// (it unshares after its maps are written, and no one may join it before),
// and checks its maps: containers/storage falls back to mapping the user
// alone when newuidmap fails, which would break every image later.
func checkPause(pid int, uidmap, gidmap []specs.LinuxIDMapping) error {
	deadline := time.Now().Add(10 * time.Second)
	for sameNamespace(pid, "mnt") {
		if time.Now().After(deadline) {
			return errors.New("it did not make its mount namespace in 10s")
		}
		time.Sleep(time.Millisecond)
	}
	for file, want := range map[string][]specs.LinuxIDMapping{"uid_map": uidmap, "gid_map": gidmap} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
		if err != nil {
			return err
		}
		if got := strings.Fields(string(data)); !slices.Equal(got, mapFields(want)) {
			return fmt.Errorf("its %s is %q, not the user's subordinate ids: newuidmap and newgidmap (package uidmap) must be installed setuid", file, strings.Join(got, " "))
		}
	}
	return nil
}

// mapFields are the fields of an id map file with these mappings.
func mapFields(m []specs.LinuxIDMapping) []string {
	var f []string
	for _, r := range m {
		f = append(f, strconv.Itoa(int(r.ContainerID)), strconv.Itoa(int(r.HostID)), strconv.Itoa(int(r.Size)))
	}
	return f
}

// logged is ": " and what the pause process's start logged, if anything.
func logged(path string) string {
	data, _ := os.ReadFile(path)
	if text := strings.TrimSpace(string(data)); text != "" {
		return ": " + strings.ReplaceAll(text, "\n", "; ")
	}
	return ""
}

// idMappings maps the user to root and the user's subordinate ranges, one
// after the other, to 1 and up, as podman does.
func idMappings() (uidmap, gidmap []specs.LinuxIDMapping, err error) {
	u, err := user.LookupId(strconv.Itoa(os.Geteuid()))
	if err != nil {
		return nil, nil, fmt.Errorf("look up uid %d: %w", os.Geteuid(), err)
	}
	subU, subG, err := unshare.GetSubIDMappings(u.Username, u.Username)
	if err == nil && (len(subU) == 0 || len(subG) == 0) {
		err = errors.New("empty range")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("user %s has no subordinate uid or gid range in /etc/subuid or /etc/subgid (%w); give it one: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", u.Username, err, u.Username)
	}
	return chain(os.Geteuid(), subU), chain(os.Getegid(), subG), nil
}

// chain puts id at 0 and the ranges after it, consecutively.
func chain(id int, ranges []specs.LinuxIDMapping) []specs.LinuxIDMapping {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(id), Size: 1}}
	next := uint32(1)
	for _, r := range ranges {
		m = append(m, specs.LinuxIDMapping{ContainerID: next, HostID: r.HostID, Size: r.Size})
		next += r.Size
	}
	return m
}

// Pause is the pause process: it holds the namespaces by living, and ignores
// the signals a terminal or a session's end would send it.
func Pause() {
	signal.Ignore(unix.SIGHUP, unix.SIGINT, unix.SIGTERM, unix.SIGQUIT, unix.SIGPIPE, unix.SIGUSR1, unix.SIGUSR2)
	for {
		unix.Pause()
	}
}
