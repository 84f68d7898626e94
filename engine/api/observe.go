package api

import (
	"encoding/json"
	"net/http"
	"time"

	mbuild "github.com/moby/moby/api/types/build"
	mcontainer "github.com/moby/moby/api/types/container"
	mimage "github.com/moby/moby/api/types/image"
	mvolume "github.com/moby/moby/api/types/volume"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/events"
	"github.com/berth-containers/berth/engine/image"
)

// flush sends what a streaming handler wrote so far.
func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// events streams the engine's events as docker's /events: one JSON
// message per line. The log's own records are sent as they are: they hold
// docker's message with the status/id/from fields older clients read.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := time.Now()
	since, err := events.ParseTime(q.Get("since"), now)
	if err != nil {
		fail(w, badRequest("since: %v", err))
		return
	}
	until, err := events.ParseTime(q.Get("until"), now)
	if err != nil {
		fail(w, badRequest("until: %v", err))
		return
	}
	filters, err := parseFilters(q.Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	match, err := events.ParseFilters(filters)
	if err != nil {
		fail(w, badRequest("%v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	var started bool
	// The answer's head goes once the log is open: a client that has it
	// misses no event that happens after.
	o := events.ReadOptions{Since: since, Until: until, Match: match, Follow: until.IsZero() || until.After(now),
		Ready: func() { started = true; w.WriteHeader(http.StatusOK); flush(w) }}
	err = events.Read(r.Context(), s.o.Store.RunRoot(), o, func(e *events.Event) error {
		if err := enc.Encode(e); err != nil {
			return err // the client went away
		}
		flush(w)
		return nil
	})
	if err != nil && !started {
		fail(w, err)
	}
}

// containerStats is docker's stats: a sample a second while stream is on
// (the default); with stream=0 one sample with the one before it, a
// second earlier, so that CPU use can be computed; with one-shot=1 one
// sample at once.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	stream := !r.URL.Query().Has("stream") || boolParam(r, "stream")
	oneShot := boolParam(r, "one-shot")
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	var prev *container.Stats
	for first := true; ; first = false {
		var st *container.Stats
		if err := container.Refresh(r.Context(), s.o.Store, c); err == nil && (c.Status == container.Running || c.Status == container.Paused) {
			st, err = container.ReadStats(c, container.CgroupRoot)
			if err != nil && first {
				fail(w, err)
				return
			}
		}
		if !stream && !oneShot && prev == nil && st != nil {
			prev = st
		} else {
			if first {
				w.WriteHeader(http.StatusOK)
			}
			if enc.Encode(statsJSON(c, st, prev)) != nil || !stream {
				return
			}
			flush(w)
			prev = st
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// statsJSON is a sample in docker's shape; a container that does not run
// has an empty one, as with docker.
func statsJSON(c *container.Container, st, prev *container.Stats) mcontainer.StatsResponse {
	out := mcontainer.StatsResponse{ID: c.ID, Name: "/" + c.Name, OSType: "linux"}
	if st == nil {
		return out
	}
	cpu := func(x *container.Stats) mcontainer.CPUStats {
		return mcontainer.CPUStats{CPUUsage: mcontainer.CPUUsage{TotalUsage: x.CPU}, SystemUsage: x.System, OnlineCPUs: uint32(x.OnlineCPUs)}
	}
	out.Read = st.Read
	out.CPUStats = cpu(st)
	if prev != nil {
		out.PreRead, out.PreCPUStats = prev.Read, cpu(prev)
	}
	out.MemoryStats = mcontainer.MemoryStats{Usage: st.MemUsage, Limit: st.MemLimit}
	out.PidsStats = mcontainer.PidsStats{Current: st.Pids}
	out.BlkioStats = mcontainer.BlkioStats{IoServiceBytesRecursive: []mcontainer.BlkioStatEntry{
		{Op: "read", Value: st.BlockRead}, {Op: "write", Value: st.BlockWrite}}}
	if c.Network != "none" && c.Network != "host" {
		out.Networks = map[string]mcontainer.NetworkStats{"eth0": {RxBytes: st.NetRx, TxBytes: st.NetTx}}
	}
	return out
}

// diskUsage is /system/df in the shape of API versions up to 1.51, the
// lists from which docker's CLI computes its table.
type diskUsage struct {
	LayersSize int64
	Images     []mimage.Summary
	Containers []mcontainer.Summary
	Volumes    []*mvolume.Volume
	BuildCache []mbuild.CacheRecord
}

func (s *Server) systemDf(w http.ResponseWriter, r *http.Request) {
	var out diskUsage
	usage, err := image.DiskUsage(s.o.Store)
	if err != nil {
		fail(w, err)
		return
	}
	out.LayersSize = usage[0].Size
	if out.Images, err = s.imageSummaries(nil, true); err != nil {
		fail(w, err)
		return
	}
	cs, err := container.List(s.o.Store)
	if err != nil {
		fail(w, err)
		return
	}
	out.Containers = make([]mcontainer.Summary, 0, len(cs))
	for _, c := range cs {
		_ = container.Refresh(r.Context(), s.o.Store, c)
		sm := summary(c)
		if size, err := s.o.Store.ContainerSize(c.ID); err == nil {
			sm.SizeRw = size
		}
		out.Containers = append(out.Containers, sm)
	}
	vs, inUse, err := s.volumes()
	if err != nil {
		fail(w, err)
		return
	}
	vols, err := vs.List(nil, inUse)
	if err != nil {
		fail(w, err)
		return
	}
	out.Volumes = make([]*mvolume.Volume, 0, len(vols))
	for _, v := range vols {
		mv := volJSON(v)
		size, err := vs.Size(v.Name)
		if err != nil {
			size = -1
		}
		mv.UsageData = &mvolume.UsageData{Size: size, RefCount: int64(len(inUse(v.Name)))}
		out.Volumes = append(out.Volumes, mv)
	}
	cache, err := image.CacheLayers(s.o.Store)
	if err != nil {
		fail(w, err)
		return
	}
	out.BuildCache = make([]mbuild.CacheRecord, 0, len(cache))
	for _, l := range cache {
		rec := mbuild.CacheRecord{ID: l.ID, Type: "regular", Description: "build step layer", Size: l.UncompressedSize}
		if l.Created.Unix() > 0 {
			rec.CreatedAt = l.Created
		}
		if l.Parent != "" {
			rec.Parents = []string{l.Parent}
		}
		out.BuildCache = append(out.BuildCache, rec)
	}
	writeJSON(w, http.StatusOK, out)
}
