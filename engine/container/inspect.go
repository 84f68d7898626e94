package container

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/network"
)

// Inspect is a container as `docker inspect` shows it.
type Inspect struct {
	ID              string          `json:"Id"`
	Created         time.Time       `json:"Created"`
	Path            string          `json:"Path"`
	Args            []string        `json:"Args"`
	State           InspectState    `json:"State"`
	Image           string          `json:"Image"`
	ResolvConfPath  string          `json:"ResolvConfPath"`
	HostnamePath    string          `json:"HostnamePath"`
	HostsPath       string          `json:"HostsPath"`
	LogPath         string          `json:"LogPath"`
	Name            string          `json:"Name"`
	RestartCount    int             `json:"RestartCount"`
	Driver          string          `json:"Driver"`
	Platform        string          `json:"Platform"`
	HostConfig      HostConfig      `json:"HostConfig"`
	Config          InspectConfig   `json:"Config"`
	NetworkSettings NetworkSettings `json:"NetworkSettings"`
	// SizeRw and SizeRootFs are shown when asked for (inspect --size).
	SizeRw     *int64 `json:"SizeRw,omitempty"`
	SizeRootFs *int64 `json:"SizeRootFs,omitempty"`
}

// InspectState is docker's State.
type InspectState struct {
	Status     string    `json:"Status"`
	Running    bool      `json:"Running"`
	Paused     bool      `json:"Paused"`
	Restarting bool      `json:"Restarting"`
	OOMKilled  bool      `json:"OOMKilled"`
	Dead       bool      `json:"Dead"`
	Pid        int       `json:"Pid"`
	ExitCode   int       `json:"ExitCode"`
	Error      string    `json:"Error"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
	Health     *Health   `json:"Health,omitempty"`
}

// HostConfig is the part of docker's HostConfig berth has.
type HostConfig struct {
	Binds         []string             `json:"Binds"`
	NetworkMode   string               `json:"NetworkMode"`
	RestartPolicy InspectRestartPolicy `json:"RestartPolicy"`
	AutoRemove    bool                 `json:"AutoRemove"`
	Runtime       string               `json:"Runtime"`
	LogConfig     LogConfig            `json:"LogConfig"`
	CgroupParent  string               `json:"CgroupParent"`
	Resources
}

// InspectRestartPolicy is docker's RestartPolicy.
type InspectRestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

// Resources are the container's limits as docker's HostConfig shows them,
// read from its bundle (where update changes them).
type Resources struct {
	Memory            int64  `json:"Memory"`
	MemoryReservation int64  `json:"MemoryReservation"`
	MemorySwap        int64  `json:"MemorySwap"`
	CPUShares         int64  `json:"CpuShares"`
	CPUQuota          int64  `json:"CpuQuota"`
	CPUPeriod         int64  `json:"CpuPeriod"`
	CpusetCpus        string `json:"CpusetCpus"`
	CpusetMems        string `json:"CpusetMems"`
	PidsLimit         *int64 `json:"PidsLimit"`
	BlkioWeight       uint16 `json:"BlkioWeight"`
}

// resources reads the limits of the container's bundle (none when it
// cannot be read: inspect shows what it can).
func resources(c *Container) Resources {
	var out Resources
	spec, err := c.BundleSpec()
	if err != nil || spec.Linux == nil || spec.Linux.Resources == nil {
		return out
	}
	r := spec.Linux.Resources
	if m := r.Memory; m != nil {
		out.Memory, out.MemoryReservation, out.MemorySwap = deref(m.Limit), deref(m.Reservation), deref(m.Swap)
	}
	if cpu := r.CPU; cpu != nil {
		out.CPUShares, out.CPUQuota, out.CPUPeriod = int64(deref(cpu.Shares)), deref(cpu.Quota), int64(deref(cpu.Period))
		out.CpusetCpus, out.CpusetMems = cpu.Cpus, cpu.Mems
	}
	if r.Pids != nil {
		out.PidsLimit = r.Pids.Limit
	}
	if r.BlockIO != nil {
		out.BlkioWeight = deref(r.BlockIO.Weight)
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// InspectConfig is docker's Config.
type InspectConfig struct {
	Hostname    string            `json:"Hostname"`
	User        string            `json:"User"`
	Tty         bool              `json:"Tty"`
	OpenStdin   bool              `json:"OpenStdin"`
	Env         []string          `json:"Env"`
	Cmd         []string          `json:"Cmd"`
	Image       string            `json:"Image"`
	WorkingDir  string            `json:"WorkingDir"`
	Entrypoint  []string          `json:"Entrypoint"`
	Labels      map[string]string `json:"Labels"`
	StopSignal  string            `json:"StopSignal,omitempty"`
	StopTimeout int               `json:"StopTimeout"`
	Healthcheck *Healthcheck      `json:"Healthcheck,omitempty"`
}

// NetworkSettings lists the container's networks and published ports.
type NetworkSettings struct {
	Networks map[string]InspectEndpoint `json:"Networks"`
	Ports    []network.PortMapping      `json:"Ports"`
}

// InspectEndpoint is the container on one network.
type InspectEndpoint struct {
	IPAddress string   `json:"IPAddress"`
	Aliases   []string `json:"Aliases"`
}

// InspectContainer describes a container.
func InspectContainer(c *Container, driver string) *Inspect {
	etc := func(name string) string {
		p := filepath.Join(c.Dir, name)
		if _, err := os.Stat(p); err != nil {
			return ""
		}
		return p
	}
	return &Inspect{
		ID: c.ID, Created: c.Created, Path: c.Path, Args: c.Args,
		State: InspectState{
			Status: c.Status, Running: c.Status == Running || c.Status == Paused, Paused: c.Status == Paused, Restarting: c.Restarting,
			OOMKilled: c.OOMKilled, Pid: c.Pid, ExitCode: c.ExitCode, Error: c.Error,
			StartedAt: c.StartedAt, FinishedAt: c.FinishedAt, Health: c.Health,
		},
		Image: "sha256:" + c.ImageID, LogPath: c.LogPath(), Name: "/" + c.Name,
		ResolvConfPath: etc("resolv.conf"), HostnamePath: etc("hostname"), HostsPath: etc("hosts"),
		RestartCount: c.RestartCount, Driver: driver, Platform: "linux",
		HostConfig: HostConfig{Binds: c.Binds, NetworkMode: c.Network, RestartPolicy: InspectRestartPolicy{c.Restart.Name, c.Restart.MaxRetries},
			AutoRemove: c.AutoRemove, Runtime: c.Config.Runtime, LogConfig: c.Log, CgroupParent: c.CgroupPath,
			Resources: resources(c)},
		Config: InspectConfig{Hostname: c.Hostname, User: c.User, Tty: c.Tty, OpenStdin: c.OpenStdin,
			Env: c.Env, Cmd: c.Cmd, Image: c.Image, WorkingDir: c.WorkingDir, Entrypoint: c.Entrypoint,
			Labels: c.Labels, StopSignal: c.StopSignal, StopTimeout: c.StopTimeout, Healthcheck: c.Healthcheck},
		NetworkSettings: networkSettings(c),
	}
}

func networkSettings(c *Container) NetworkSettings {
	ns := NetworkSettings{Networks: map[string]InspectEndpoint{}, Ports: c.Published}
	for _, a := range c.Networks {
		name := a.Network
		if name == "" {
			name = network.DefaultName
		}
		ns.Networks[name] = InspectEndpoint{IPAddress: c.IPs[name], Aliases: a.Aliases}
	}
	return ns
}

// Sizes are docker's SizeRw (the bytes of the container's own layer) and
// SizeRootFs (those and its image's).
func Sizes(s storage.Store, c *Container) (rw, rootfs int64, err error) {
	if rw, err = s.ContainerSize(c.ID); err != nil {
		return 0, 0, fmt.Errorf("container %s: size: %w", c.Name, err)
	}
	img, err := s.ImageSize(c.ImageID)
	if err != nil {
		return 0, 0, fmt.Errorf("container %s: image size: %w", c.Name, err)
	}
	return rw, rw + img, nil
}
