package api

import (
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/container"
)

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Docker-Experimental", "false")
	// The classic builder's API: clients then send POST /build, not a
	// buildkit session.
	h.Set("Builder-Version", "1")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	_, _ = w.Write([]byte("OK"))
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	v := system.VersionResponse{
		Platform: system.PlatformInfo{Name: "berth"}, Version: s.o.Version, APIVersion: MaxVersion, MinAPIVersion: MinVersion,
		Os: "linux", Arch: runtime.GOARCH, KernelVersion: kernelVersion(), GoVersion: runtime.Version(),
		Components: []system.ComponentVersion{{Name: "Engine", Version: s.o.Version,
			Details: map[string]string{"ApiVersion": MaxVersion, "MinAPIVersion": MinVersion, "Os": "linux", "Arch": runtime.GOARCH}}},
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	list, err := container.Select(r.Context(), s.o.Store, container.ListOptions{All: true})
	if err != nil {
		fail(w, err)
		return
	}
	imgs, err := s.o.Store.Images()
	if err != nil {
		fail(w, err)
		return
	}
	host, _ := os.Hostname()
	cgroupVersion := "1"
	if st, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil && !st.IsDir() {
		cgroupVersion = "2"
	}
	in := system.Info{
		ID: "berth", Images: len(imgs), Driver: s.o.Store.GraphDriverName(), OSType: "linux",
		Architecture: runtime.GOARCH, NCPU: runtime.NumCPU(), KernelVersion: kernelVersion(),
		OperatingSystem: osName(), Name: host, ServerVersion: s.o.Version, DockerRootDir: s.o.Store.GraphRoot(),
		LoggingDriver: "k8s-file", CgroupDriver: "cgroupfs", CgroupVersion: cgroupVersion,
		SystemTime: time.Now().Format(time.RFC3339Nano), DefaultRuntime: "berth-runtime",
		Runtimes:           map[string]system.RuntimeWithStatus{"berth-runtime": {}},
		IndexServerAddress: "https://index.docker.io/v1/", MemoryLimit: true, PidsLimit: true, CPUShares: true,
		CPUCfsPeriod: true, CPUCfsQuota: true, SecurityOptions: []string{"name=seccomp,profile=builtin"},
	}
	if s.o.Rootless {
		in.SecurityOptions = append(in.SecurityOptions, "name=rootless")
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		in.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	for _, c := range list {
		in.Containers++
		switch c.Status {
		case container.Running:
			in.ContainersRunning++
		case container.Paused:
			in.ContainersPaused++
		default:
			in.ContainersStopped++
		}
	}
	writeJSON(w, http.StatusOK, in)
}

// osName is /etc/os-release's PRETTY_NAME.
func osName() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "linux"
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "linux"
}
