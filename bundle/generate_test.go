package bundle

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/bundle/spec"
	"github.com/berth-containers/berth/libcontainer/capabilities"
	"github.com/berth-containers/berth/libcontainer/config"
	lcseccomp "github.com/berth-containers/berth/libcontainer/seccomp"
)

// testRootfs makes a rootfs with just /etc/passwd and /etc/group.
func testRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50:app\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func image(cfg v1.ImageConfig) *v1.Image {
	return &v1.Image{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Config: cfg}
}

func generate(t *testing.T, img *v1.Image, o Options) *specs.Spec {
	t.Helper()
	s, err := Generate(img, testRootfs(t), o)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return s
}

func TestCommand(t *testing.T) {
	ep := func(a ...string) *[]string { return &a }
	for _, tc := range []struct {
		name            string
		entrypoint, cmd []string
		o               Options
		want            []string
	}{
		{"cmd only", nil, []string{"sh"}, Options{}, []string{"sh"}},
		{"entrypoint only", []string{"/init"}, nil, Options{}, []string{"/init"}},
		{"both", []string{"/init", "-v"}, []string{"serve"}, Options{}, []string{"/init", "-v", "serve"}},
		{"args replace cmd", []string{"/init"}, []string{"serve"}, Options{Args: []string{"check"}}, []string{"/init", "check"}},
		{"args without entrypoint", nil, []string{"sh"}, Options{Args: []string{"ls", "-l"}}, []string{"ls", "-l"}},
		{"entrypoint option drops image cmd", []string{"/init"}, []string{"serve"}, Options{Entrypoint: ep("/bin/sh")}, []string{"/bin/sh"}},
		{"entrypoint option and args", []string{"/init"}, []string{"serve"}, Options{Entrypoint: ep("/bin/sh"), Args: []string{"-c", "true"}}, []string{"/bin/sh", "-c", "true"}},
		{"empty entrypoint option clears it", []string{"/init"}, []string{"serve"}, Options{Entrypoint: ep(), Args: []string{"ls"}}, []string{"ls"}},
	} {
		s := generate(t, image(v1.ImageConfig{Entrypoint: tc.entrypoint, Cmd: tc.cmd}), tc.o)
		if !slices.Equal(s.Process.Args, tc.want) {
			t.Errorf("%s: args %q, want %q", tc.name, s.Process.Args, tc.want)
		}
	}

	for _, tc := range []struct {
		name string
		cfg  v1.ImageConfig
		o    Options
	}{
		{"nothing to run", v1.ImageConfig{}, Options{}},
		{"empty entrypoint drops the image cmd", v1.ImageConfig{Cmd: []string{"sh"}}, Options{Entrypoint: ep()}},
		{"empty string", v1.ImageConfig{Entrypoint: []string{""}}, Options{}},
	} {
		if _, err := Generate(image(tc.cfg), testRootfs(t), tc.o); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestEnv(t *testing.T) {
	img := image(v1.ImageConfig{
		Cmd: []string{"sh"},
		Env: []string{"PATH=/app/bin:/bin", "LANG=C.UTF-8", "KEEP=1", "DROP=1"},
	})
	s := generate(t, img, Options{Hostname: "box", Terminal: true, User: "app", Env: []string{"LANG=fr_FR.UTF-8", "NEW=x=y", "DROP"}})
	want := []string{"PATH=/app/bin:/bin", "HOSTNAME=box", "TERM=xterm", "HOME=/home/app", "LANG=fr_FR.UTF-8", "KEEP=1", "NEW=x=y"}
	if !slices.Equal(s.Process.Env, want) {
		t.Errorf("env %q, want %q", s.Process.Env, want)
	}

	s = generate(t, image(v1.ImageConfig{Cmd: []string{"sh"}}), Options{})
	want = []string{defaultPath, "HOSTNAME=berth", "HOME=/root"}
	if !slices.Equal(s.Process.Env, want) {
		t.Errorf("default env %q, want %q", s.Process.Env, want)
	}

	if _, err := Generate(image(v1.ImageConfig{Cmd: []string{"sh"}}), testRootfs(t), Options{Env: []string{"=x"}}); err == nil {
		t.Error("a variable without a name was accepted")
	}
}

func TestWorkingDirAndUser(t *testing.T) {
	img := image(v1.ImageConfig{Cmd: []string{"sh"}, WorkingDir: "srv", User: "app"})
	s := generate(t, img, Options{})
	if s.Process.Cwd != "/srv" {
		t.Errorf("cwd %q, want /srv", s.Process.Cwd)
	}
	if u := s.Process.User; u.UID != 1000 || u.GID != 1000 || !slices.Equal(u.AdditionalGids, []uint32{50}) {
		t.Errorf("image user app: %+v", u)
	}
	s = generate(t, img, Options{WorkingDir: "/tmp", User: "nobody:root"})
	if s.Process.Cwd != "/tmp" || s.Process.User.UID != 65534 || s.Process.User.GID != 0 {
		t.Errorf("options: cwd %q user %+v", s.Process.Cwd, s.Process.User)
	}
	if s := generate(t, image(v1.ImageConfig{Cmd: []string{"sh"}}), Options{}); s.Process.Cwd != "/" || s.Process.User.UID != 0 {
		t.Errorf("defaults: cwd %q user %+v", s.Process.Cwd, s.Process.User)
	}
	if _, err := Generate(img, testRootfs(t), Options{WorkingDir: "rel"}); err == nil {
		t.Error("a relative working directory option was accepted")
	}
	_, err := Generate(img, testRootfs(t), Options{User: "ghost"})
	if err == nil || !strings.Contains(err.Error(), `"ghost"`) {
		t.Errorf("unknown user: %v", err)
	}
}

func TestCapabilities(t *testing.T) {
	all := capabilities.Names()
	without := func(list []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(c string) bool { return slices.Contains(drop, c) })
	}
	for _, tc := range []struct {
		name      string
		add, drop []string
		want      []string
	}{
		{"defaults", nil, nil, spec.DefaultCapabilities},
		{"add", []string{"sys_admin", "CAP_NET_ADMIN"}, nil, append(slices.Clone(spec.DefaultCapabilities), "CAP_SYS_ADMIN", "CAP_NET_ADMIN")},
		{"drop", nil, []string{"NET_RAW", "cap_mknod"}, without(spec.DefaultCapabilities, "CAP_NET_RAW", "CAP_MKNOD")},
		{"drop all, add one", []string{"CHOWN"}, []string{"ALL"}, []string{"CAP_CHOWN"}},
		{"drop all", nil, []string{"all"}, nil},
		{"add all, drop one", []string{"ALL"}, []string{"SYS_ADMIN"}, without(all, "CAP_SYS_ADMIN")},
		{"add a default again", []string{"CHOWN"}, nil, spec.DefaultCapabilities},
	} {
		s := generate(t, image(v1.ImageConfig{Cmd: []string{"sh"}}), Options{CapAdd: tc.add, CapDrop: tc.drop})
		c := s.Process.Capabilities
		if !slices.Equal(c.Bounding, tc.want) || !slices.Equal(c.Effective, tc.want) || !slices.Equal(c.Permitted, tc.want) {
			t.Errorf("%s: caps %+v, want %v in bounding, effective and permitted", tc.name, c, tc.want)
		}
		if len(c.Inheritable) > 0 || len(c.Ambient) > 0 {
			t.Errorf("%s: inheritable %v ambient %v, want none", tc.name, c.Inheritable, c.Ambient)
		}
	}
	_, err := Generate(image(v1.ImageConfig{Cmd: []string{"sh"}}), testRootfs(t), Options{CapAdd: []string{"SYS_MAGIC"}})
	if err == nil || !strings.Contains(err.Error(), `"SYS_MAGIC"`) {
		t.Errorf("unknown capability: %v", err)
	}
}

func hasSyscall(s *specs.LinuxSeccomp, name string) bool {
	for _, r := range s.Syscalls {
		if r.Action == specs.ActAllow && len(r.Args) == 0 && slices.Contains(r.Names, name) {
			return true
		}
	}
	return false
}

func TestDefaultSecurity(t *testing.T) {
	s := generate(t, image(v1.ImageConfig{Cmd: []string{"sh"}}), Options{})
	if s.Linux.Seccomp == nil || hasSyscall(s.Linux.Seccomp, "mount") {
		t.Errorf("default seccomp missing or allows mount: %+v", s.Linux.Seccomp)
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if d := s.Linux.Resources.Devices; len(d) == 0 || d[0].Allow || d[0].Access != "rwm" {
		t.Errorf("device rules %+v: want deny-all first", d)
	}
	if s.Process.NoNewPrivileges || s.Root.Readonly {
		t.Error("noNewPrivileges or a read-only root without asking")
	}
	for _, m := range s.Mounts {
		if m.Destination == "/sys" && !slices.Contains(m.Options, "ro") {
			t.Errorf("/sys is writable: %v", m.Options)
		}
	}

	// The seccomp rules follow the capabilities.
	s = generate(t, image(v1.ImageConfig{Cmd: []string{"sh"}}), Options{CapAdd: []string{"SYS_ADMIN"}})
	if !hasSyscall(s.Linux.Seccomp, "mount") {
		t.Error("CAP_SYS_ADMIN added but mount still refused by seccomp")
	}
	if s := generate(t, image(v1.ImageConfig{Cmd: []string{"sh"}}), Options{SeccompProfile: "unconfined"}); s.Linux.Seccomp != nil {
		t.Error("unconfined still has a seccomp filter")
	}
	profile := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s = generate(t, image(v1.ImageConfig{Cmd: []string{"sh"}}), Options{SeccompProfile: profile, NoNewPrivileges: true, ReadOnly: true})
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActAllow || !s.Process.NoNewPrivileges || !s.Root.Readonly {
		t.Errorf("profile file, no_new_privs, read-only: %+v %v %v", s.Linux.Seccomp, s.Process.NoNewPrivileges, s.Root.Readonly)
	}
}

func TestPrivileged(t *testing.T) {
	s := generate(t, image(v1.ImageConfig{Cmd: []string{"sh"}}), Options{Privileged: true, CapDrop: []string{"ALL"}})
	// Every capability of our own bounding set: all of them on a host.
	if want := PrivilegedCapabilities(); !slices.Equal(s.Process.Capabilities.Bounding, want) || len(want) < 30 {
		t.Errorf("privileged caps %v, want our bounding set %v", s.Process.Capabilities.Bounding, want)
	}
	if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) > 0 || len(s.Linux.ReadonlyPaths) > 0 {
		t.Errorf("privileged: seccomp %v masked %v readonly %v", s.Linux.Seccomp != nil, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow || d[0].Access != "rwm" {
		t.Errorf("privileged device rules %+v, want allow all", d)
	}
	for _, m := range s.Mounts {
		if (m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup") && slices.Contains(m.Options, "ro") {
			t.Errorf("privileged: %s read-only", m.Destination)
		}
	}
	if err := config.Validate(s); err != nil {
		t.Errorf("privileged spec refused by the runtime: %v", err)
	}
}

func TestUlimits(t *testing.T) {
	s := generate(t, image(v1.ImageConfig{Cmd: []string{"sh"}}), Options{Ulimits: []string{"nofile=2048:4096", "CORE=0", "memlock=-1:unlimited"}})
	want := []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 4096},
		{Type: "RLIMIT_CORE", Soft: 0, Hard: 0},
		{Type: "RLIMIT_MEMLOCK", Soft: ^uint64(0), Hard: ^uint64(0)},
	}
	if !slices.Equal(s.Process.Rlimits, want) {
		t.Errorf("rlimits %+v, want %+v", s.Process.Rlimits, want)
	}
	if s := generate(t, image(v1.ImageConfig{Cmd: []string{"sh"}}), Options{}); !slices.Equal(s.Process.Rlimits, spec.Default().Process.Rlimits) {
		t.Errorf("default rlimits %+v", s.Process.Rlimits)
	}
	for _, tc := range []struct{ ulimit, want string }{
		{"nofiles=10", `unknown name "nofiles"`},
		{"nofile", "want name=soft:hard"},
		{"nofile=10:5", "soft limit exceeds hard limit"},
		{"nofile=ten", `"ten" is not a number`},
	} {
		_, err := Generate(image(v1.ImageConfig{Cmd: []string{"sh"}}), testRootfs(t), Options{Ulimits: []string{tc.ulimit}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ulimit %q: error %v, want one containing %q", tc.ulimit, err, tc.want)
		}
	}
}

func TestResources(t *testing.T) {
	s := generate(t, image(v1.ImageConfig{Cmd: []string{"sh"}}), Options{Memory: 64 << 20, CPUs: 1.5, PidsLimit: 100, CgroupsPath: "/berth/x"})
	r := s.Linux.Resources
	if r.Memory == nil || *r.Memory.Limit != 64<<20 || r.CPU == nil || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 || r.Pids == nil || *r.Pids.Limit != 100 {
		t.Errorf("resources %+v", r)
	}
	if s.Linux.CgroupsPath != "/berth/x" {
		t.Errorf("cgroupsPath %q", s.Linux.CgroupsPath)
	}
	for _, o := range []Options{{Memory: -1}, {CPUs: -1}, {CPUs: 0.001}} {
		if _, err := Generate(image(v1.ImageConfig{Cmd: []string{"sh"}}), testRootfs(t), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func mountAt(s *specs.Spec, dest string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dest {
			return &s.Mounts[i]
		}
	}
	return nil
}

func TestMounts(t *testing.T) {
	host := t.TempDir()
	img := image(v1.ImageConfig{Cmd: []string{"sh"}, Volumes: map[string]struct{}{"/data": {}, "/cache": {}}})
	s := generate(t, img, Options{
		ShmSize:      1 << 20,
		Binds:        []string{host + ":/srv/a/b:ro,rslave", host + ":/srv"},
		Tmpfs:        []string{"/run:exec,size=1m"},
		ImageVolumes: "tmpfs",
	})
	if m := mountAt(s, "/dev/shm"); m == nil || !slices.Contains(m.Options, "size=1048576") {
		t.Errorf("/dev/shm %+v", m)
	}
	if m := mountAt(s, "/srv/a/b"); m == nil || m.Source != host || !slices.Equal(m.Options, []string{"rbind", "rslave", "ro"}) {
		t.Errorf("ro bind %+v", m)
	}
	if m := mountAt(s, "/srv"); m == nil || !slices.Equal(m.Options, []string{"rbind", "rprivate"}) {
		t.Errorf("bind %+v", m)
	}
	if m := mountAt(s, "/run"); m == nil || m.Type != "tmpfs" || !slices.Equal(m.Options, []string{"nosuid", "nodev", "noexec", "exec", "size=1m"}) {
		t.Errorf("tmpfs %+v", m)
	}
	if m := mountAt(s, "/data"); m == nil || m.Type != "tmpfs" {
		t.Errorf("image volume /data %+v", m)
	}
	// Parents first: /srv before /srv/a/b whatever the order given.
	idx := func(dest string) int {
		return slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == dest })
	}
	if idx("/srv") > idx("/srv/a/b") || idx("/proc") != 0 {
		t.Errorf("mount order %v", s.Mounts)
	}

	// A user mount replaces the default one; a bind covers an image volume.
	s = generate(t, img, Options{Tmpfs: []string{"/dev/shm:size=2m"}, Binds: []string{host + ":/data"}, ImageVolumes: "tmpfs"})
	n := 0
	for _, m := range s.Mounts {
		if m.Destination == "/dev/shm" || m.Destination == "/data" {
			n++
		}
	}
	if m := mountAt(s, "/data"); n != 2 || m.Type != "bind" {
		t.Errorf("replaced mounts: %v", s.Mounts)
	}
	if mountAt(generate(t, img, Options{}), "/data") != nil {
		t.Error("image volume mounted without asking")
	}

	for _, o := range []Options{
		{Binds: []string{"rel:/x"}},
		{Binds: []string{"/nonexistent/host/dir:/x"}},
		{Binds: []string{host + ":/x:rw,bogus"}},
		{Binds: []string{host + ":/"}},
		{Binds: []string{host + ":/x", host + ":/x/"}},
		{Tmpfs: []string{"run"}},
		{ImageVolumes: "anonymous"},
		{ShmSize: -1},
	} {
		if _, err := Generate(img, testRootfs(t), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestNetworkModes(t *testing.T) {
	img := image(v1.ImageConfig{Cmd: []string{"sh"}})
	for _, tc := range []struct {
		mode    string
		netns   bool
		path    string
		sysctls bool
	}{
		{"", true, "", true},
		{"none", true, "", true},
		{"host", false, "", false},
		{"ns:/proc/1/ns/net", true, "/proc/1/ns/net", false},
	} {
		s := generate(t, img, Options{NetworkMode: tc.mode})
		i := slices.IndexFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
		if (i >= 0) != tc.netns || (i >= 0 && s.Linux.Namespaces[i].Path != tc.path) {
			t.Errorf("mode %q: namespaces %+v", tc.mode, s.Linux.Namespaces)
		}
		if (s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] == "0") != tc.sysctls {
			t.Errorf("mode %q: sysctls %v", tc.mode, s.Linux.Sysctl)
		}
		if !config.HasNamespace(s, specs.UTSNamespace) || !config.HasNamespace(s, specs.CgroupNamespace) {
			t.Errorf("mode %q: namespaces %+v", tc.mode, s.Linux.Namespaces)
		}
	}
	host, _ := os.Hostname()
	if s := generate(t, img, Options{NetworkMode: "host"}); s.Hostname != host {
		t.Errorf("host network hostname %q, want the host's %q", s.Hostname, host)
	}
	for _, mode := range []string{"bridge", "ns:relative"} {
		if _, err := Generate(img, testRootfs(t), Options{NetworkMode: mode}); err == nil {
			t.Errorf("network mode %q accepted", mode)
		}
	}
	if _, err := Generate(img, testRootfs(t), Options{Hostname: strings.Repeat("h", 65)}); err == nil {
		t.Error("a 65-character hostname was accepted")
	}
}

func TestAnnotations(t *testing.T) {
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	img := image(v1.ImageConfig{
		Cmd:          []string{"sh"},
		StopSignal:   "SIGQUIT",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		Labels:       map[string]string{"org.opencontainers.image.os": "label-wins", "a": "image"},
	})
	img.Created = &created
	s := generate(t, img, Options{Labels: map[string]string{"a": "container", "b": "1"}, Annotations: map[string]string{"b": "2"}})
	want := map[string]string{
		"org.opencontainers.image.os":           "label-wins",
		"org.opencontainers.image.architecture": "amd64",
		"org.opencontainers.image.created":      "2024-05-06T07:08:09Z",
		AnnotationStopSignal:                    "SIGQUIT",
		AnnotationExposedPorts:                  "53/udp,80/tcp",
		"a":                                     "container",
		"b":                                     "2",
	}
	for k, v := range want {
		if s.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, s.Annotations[k], v)
		}
	}
	if sig, err := StopSignal(s); err != nil || sig != unix.SIGQUIT {
		t.Errorf("StopSignal = %v, %v", sig, err)
	}
	s = generate(t, img, Options{StopSignal: "rtmin+3"})
	if sig, err := StopSignal(s); err != nil || sig != 37 {
		t.Errorf("StopSignal(rtmin+3) = %v, %v", sig, err)
	}
	if sig, err := StopSignal(&specs.Spec{}); err != nil || sig != unix.SIGTERM {
		t.Errorf("StopSignal without annotation = %v, %v", sig, err)
	}
	for _, bad := range []string{"SIGNOPE", "0", "65", "RTMAX+1", "RTMIN-1"} {
		if _, err := Generate(img, testRootfs(t), Options{StopSignal: bad}); err == nil {
			t.Errorf("stop signal %q accepted", bad)
		}
	}
	for _, good := range []string{"9", "kill", "SIGUSR1", "RTMAX", "SIGRTMAX-2"} {
		if _, err := parseSignal(good); err != nil {
			t.Errorf("stop signal %q: %v", good, err)
		}
	}
}

func TestRefusedInputs(t *testing.T) {
	if _, err := Generate(&v1.Image{Platform: v1.Platform{OS: "windows"}}, testRootfs(t), Options{Args: []string{"x"}}); err == nil {
		t.Error("a windows image was accepted")
	}
	if _, err := Generate(nil, "/nonexistent/rootfs", Options{Args: []string{"x"}}); err == nil {
		t.Error("a missing rootfs was accepted")
	}
}

// Whatever the options, the runtime must accept what Generate makes.
func TestGeneratedSpecsValidate(t *testing.T) {
	host := t.TempDir()
	for _, o := range []Options{
		{},
		{User: "nobody", ReadOnly: true, NoNewPrivileges: true, CapAdd: []string{"SYS_ADMIN", "NET_ADMIN"}, CapDrop: []string{"MKNOD"}},
		{NetworkMode: "host", Terminal: true, Ulimits: []string{"nproc=100:200"}, Memory: 1 << 30, CPUs: 0.5, PidsLimit: 50},
		{Binds: []string{host + ":/mnt:ro"}, Tmpfs: []string{"/run"}, CapDrop: []string{"ALL"}},
	} {
		s := generate(t, image(v1.ImageConfig{Cmd: []string{"sh"}}), o)
		if err := config.Validate(s); err != nil {
			t.Errorf("%+v: the runtime refuses the spec: %v", o, err)
		}
		if err := lcseccomp.Validate(s.Linux.Seccomp); err != nil {
			t.Errorf("%+v: the runtime refuses the seccomp section: %v", o, err)
		}
	}
}

// TestRootless: a rootless engine's container has no cgroup filesystem and
// no ping_group_range (it would name unmapped groups), and keeps the rest.
func TestRootless(t *testing.T) {
	img := image(v1.ImageConfig{Cmd: []string{"sh"}})
	for _, rootless := range []bool{false, true} {
		s := generate(t, img, Options{Rootless: rootless})
		hasCgroup := slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys/fs/cgroup" })
		_, hasPing := s.Linux.Sysctl["net.ipv4.ping_group_range"]
		if hasCgroup == rootless || hasPing == rootless {
			t.Errorf("rootless %v: cgroup mount %v, ping_group_range %v", rootless, hasCgroup, hasPing)
		}
		if s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" {
			t.Errorf("rootless %v: sysctls %v", rootless, s.Linux.Sysctl)
		}
		if !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys" }) {
			t.Errorf("rootless %v: no /sys mount", rootless)
		}
	}
}
