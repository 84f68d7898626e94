package integration

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestNamespacesAreNew checks that every namespace the config asks for is a
// new one: its /proc/self/ns link differs from the host's.
func TestNamespacesAreNew(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	kinds := []string{"pid", "mnt", "uts", "ipc", "net", "cgroup", "time"}
	s := shell(t, "for n in "+strings.Join(kinds, " ")+"; do echo $n $(readlink /proc/self/ns/$n); done")
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	inside := map[string]string{}
	for _, l := range lines(e.mustRun(s)) {
		if f := strings.Fields(l); len(f) == 2 {
			inside[f[0]] = f[1]
		}
	}
	for _, k := range kinds {
		host, err := os.Readlink("/proc/self/ns/" + k)
		if err != nil {
			t.Fatal(err)
		}
		if in := inside[k]; in == "" || in == host {
			t.Errorf("%s namespace: container %q, host %q", k, in, host)
		}
	}
}

// TestUserNamespace maps container root to host uid 100000 and checks both
// sides of the mapping.
func TestUserNamespace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := shell(t, "echo uid=$(id -u) gid=$(id -g); echo ready; exec sleep 100")
	rootfs := copyRootfs(t, s)
	// Container root owns its rootfs, as it would with an image unpacked for it.
	if out, err := exec.Command("chown", "-hR", "100000:100000", rootfs).CombinedOutput(); err != nil {
		t.Fatalf("chown rootfs: %v: %s", err, out)
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	id, r := e.start(s)
	out := waitOutput(t, r.outPath, "ready")
	if !strings.Contains(out, "uid=0 gid=0") {
		t.Errorf("inside the container: %q, want uid=0 gid=0", out)
	}
	pid := e.state(id).Pid
	status := readFile(t, "/proc/"+strconv.Itoa(pid)+"/status")
	if uid := strings.Fields(statusField(status, "Uid")); len(uid) != 4 || uid[0] != "100000" || uid[1] != "100000" {
		t.Errorf("host uid of the container process: %v, want 100000", uid)
	}
	if gid := strings.Fields(statusField(status, "Gid")); len(gid) != 4 || gid[0] != "100000" {
		t.Errorf("host gid of the container process: %v, want 100000", gid)
	}
}

// TestJoinNetworkNamespace makes container B join the network namespace of
// running container A by path.
func TestJoinNetworkNamespace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, _ := e.start(newSpec(t, "sleep", "100"))
	path := "/proc/" + strconv.Itoa(e.state(a).Pid) + "/ns/net"
	want, err := os.Readlink(path)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Readlink("/proc/self/ns/net")
	if want == host {
		t.Fatalf("container A shares the host network namespace")
	}

	s := newSpec(t, "readlink", "/proc/self/ns/net")
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			s.Linux.Namespaces[i].Path = path
		}
	}
	if got := strings.TrimSpace(e.mustRun(s)); got != want {
		t.Errorf("container B is in network namespace %q, A in %q", got, want)
	}
}

// TestHostname checks that the config's hostname is set in the new uts
// namespace.
func TestHostname(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := newSpec(t, "hostname")
	s.Hostname = "it-box-" + idSalt
	if got := strings.TrimSpace(e.mustRun(s)); got != s.Hostname {
		t.Errorf("hostname %q, want %q", got, s.Hostname)
	}
}
