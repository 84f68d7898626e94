package api

import (
	"errors"
	"net/http"
	"strings"

	mcontainer "github.com/moby/moby/api/types/container"

	"github.com/berth-containers/berth/engine/container"
)

func (s *Server) containerPause(w http.ResponseWriter, r *http.Request) {
	s.simple(w, r, func(c *container.Container) error { return container.Pause(r.Context(), s.o.Store, c) })
}

func (s *Server) containerUnpause(w http.ResponseWriter, r *http.Request) {
	s.simple(w, r, func(c *container.Container) error { return container.Unpause(r.Context(), s.o.Store, c) })
}

func (s *Server) containerRename(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		writeError(w, http.StatusBadRequest, "name: a new name is required")
		return
	}
	s.simple(w, r, func(c *container.Container) error { return container.Rename(s.o.Store, c, name) })
}

// simple runs op on the path's container: 204, or 409 for what the
// container's state refuses.
func (s *Server) simple(w http.ResponseWriter, r *http.Request, op func(*container.Container) error) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	if err := op(c); err != nil {
		status := http.StatusConflict
		if strings.Contains(err.Error(), "invalid") {
			status = http.StatusBadRequest
		}
		writeError(w, status, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	if c.Status != container.Running && c.Status != container.Paused {
		writeError(w, http.StatusConflict, "container "+c.ID+" is not running")
		return
	}
	p, err := container.Top(r.Context(), s.o.Store, c, strings.Fields(r.URL.Query().Get("ps_args")))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, mcontainer.TopResponse{Titles: p.Titles, Processes: p.Processes})
}

func (s *Server) containerExport(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_ = container.Export(r.Context(), s.o.Store, c, w)
}

// containerUpdate is POST /containers/{id}/update (docker update).
func (s *Server) containerUpdate(w http.ResponseWriter, r *http.Request) {
	var req mcontainer.UpdateConfig
	if !decode(w, r, &req) {
		return
	}
	l, err := updateLimits(req)
	if err != nil {
		fail(w, err)
		return
	}
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	if err := container.UpdateLimits(r.Context(), s.o.Store, c, l); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, container.ErrBadLimits) {
			status = http.StatusBadRequest
		}
		writeError(w, status, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, mcontainer.UpdateResponse{Warnings: []string{}})
}

// updateLimits maps docker's UpdateConfig, refusing the fields berth does
// not change by name.
func updateLimits(u mcontainer.UpdateConfig) (container.Limits, error) {
	res := u.Resources
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"BlkioWeightDevice", len(res.BlkioWeightDevice) > 0}, {"BlkioDeviceReadBps", len(res.BlkioDeviceReadBps) > 0},
		{"BlkioDeviceWriteBps", len(res.BlkioDeviceWriteBps) > 0}, {"BlkioDeviceReadIOps", len(res.BlkioDeviceReadIOps) > 0},
		{"BlkioDeviceWriteIOps", len(res.BlkioDeviceWriteIOps) > 0}, {"CpuRealtimePeriod", res.CPURealtimePeriod != 0},
		{"CpuRealtimeRuntime", res.CPURealtimeRuntime != 0}, {"Devices", len(res.Devices) > 0},
		{"DeviceCgroupRules", len(res.DeviceCgroupRules) > 0}, {"DeviceRequests", len(res.DeviceRequests) > 0},
		{"MemorySwappiness", res.MemorySwappiness != nil}, {"OomKillDisable", res.OomKillDisable != nil},
		{"Ulimits", len(res.Ulimits) > 0}, {"CgroupParent", res.CgroupParent != ""},
	} {
		if f.set {
			return container.Limits{}, badRequest("%s cannot be updated by berth", f.name)
		}
	}
	if res.CPUPeriod < 0 || res.CPUShares < 0 || res.NanoCPUs < 0 {
		return container.Limits{}, badRequest("CpuPeriod, CpuShares and NanoCpus must not be negative")
	}
	l := container.Limits{
		Memory: res.Memory, MemoryReservation: res.MemoryReservation, MemorySwap: res.MemorySwap,
		CPUs: float64(res.NanoCPUs) / 1e9, CPUShares: uint64(res.CPUShares), CPUQuota: res.CPUQuota,
		CPUPeriod: uint64(res.CPUPeriod), CpusetCpus: res.CpusetCpus, CpusetMems: res.CpusetMems,
		PidsLimit: res.PidsLimit, BlkioWeight: res.BlkioWeight,
	}
	if p := u.RestartPolicy; p.Name != "" {
		l.Restart = &container.RestartPolicy{Name: string(p.Name), MaxRetries: p.MaximumRetryCount}
	}
	return l, nil
}
