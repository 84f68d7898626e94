package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	mvolume "github.com/moby/moby/api/types/volume"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/volume"
)

// volumes opens the volume store and who uses which volume.
func (s *Server) volumes() (*volume.Store, func(string) []string, error) {
	vs, err := volume.Open(s.o.Store.GraphRoot())
	if err != nil {
		return nil, nil, err
	}
	inUse, err := container.VolumesInUse(s.o.Store, vs)
	if err != nil {
		return nil, nil, err
	}
	return vs, inUse, nil
}

func volJSON(v *volume.Volume) *mvolume.Volume {
	out := &mvolume.Volume{Name: v.Name, Driver: v.Driver, Mountpoint: v.Path(), Labels: v.Labels, Options: v.Options,
		Scope: "local", CreatedAt: v.CreatedAt.Format(time.RFC3339)}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	return out
}

func (s *Server) volumeList(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	vs, inUse, err := s.volumes()
	if err != nil {
		fail(w, err)
		return
	}
	list, err := vs.List(filters, inUse)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	out := mvolume.ListResponse{Volumes: []mvolume.Volume{}, Warnings: []string{}}
	for _, v := range list {
		out.Volumes = append(out.Volumes, *volJSON(v))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request) {
	var req mvolume.CreateRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Driver != "" && req.Driver != volume.Driver {
		writeError(w, http.StatusBadRequest, "Driver: only the local driver is served, not "+req.Driver)
		return
	}
	if req.Name != "" && !volume.ValidName(req.Name) {
		writeError(w, http.StatusBadRequest, "Name: invalid volume name "+req.Name)
		return
	}
	vs, _, err := s.volumes()
	if err != nil {
		fail(w, err)
		return
	}
	// Creating a volume that exists returns it, as docker.
	if req.Name != "" {
		if v, err := vs.Get(req.Name); err == nil {
			writeJSON(w, http.StatusCreated, volJSON(v))
			return
		}
	}
	v, err := vs.Create(volume.CreateOptions{Name: req.Name, Labels: req.Labels, Options: req.DriverOpts})
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, volJSON(v))
}

func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request) {
	name, ok := volumeName(w, r)
	if !ok {
		return
	}
	vs, _, err := s.volumes()
	if err != nil {
		fail(w, err)
		return
	}
	v, err := vs.Get(name)
	if errors.Is(err, volume.ErrNotFound) {
		writeError(w, http.StatusNotFound, "get "+name+": no such volume")
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, volJSON(v))
}

func (s *Server) volumeDelete(w http.ResponseWriter, r *http.Request) {
	name, ok := volumeName(w, r)
	if !ok {
		return
	}
	vs, inUse, err := s.volumes()
	if err != nil {
		fail(w, err)
		return
	}
	err = vs.Remove(name, boolParam(r, "force"), inUse)
	switch {
	case errors.Is(err, volume.ErrNotFound):
		writeError(w, http.StatusNotFound, "get "+name+": no such volume")
	case err != nil && strings.Contains(err.Error(), "in use"):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		fail(w, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	vs, inUse, err := s.volumes()
	if err != nil {
		fail(w, err)
		return
	}
	removed, freed, err := vs.Prune(inUse, filters...)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if removed == nil {
		removed = []string{}
	}
	writeJSON(w, http.StatusOK, mvolume.PruneReport{VolumesDeleted: removed, SpaceReclaimed: uint64(freed)})
}

// volumeName is the {name} of the path, checked.
func volumeName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if !volume.ValidName(name) {
		writeError(w, http.StatusBadRequest, "invalid volume name "+name)
		return "", false
	}
	return name, true
}
