package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	mcontainer "github.com/moby/moby/api/types/container"

	"github.com/berth-containers/berth/engine/container"
)

// pathStatHeader carries a path's description, as dockerd sends it.
const pathStatHeader = "X-Docker-Container-Path-Stat"

func setPathStat(w http.ResponseWriter, st *container.PathStat) {
	raw, _ := json.Marshal(st)
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(raw))
}

// archiveTarget is the container and the path parameter of an archive
// request.
func (s *Server) archiveTarget(w http.ResponseWriter, r *http.Request) (*container.Container, string, bool) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return nil, "", false
	}
	p := r.URL.Query().Get("path")
	if p == "" {
		writeError(w, http.StatusBadRequest, "path is required")
		return nil, "", false
	}
	return c, p, true
}

// failPath answers a copy's error: a missing path is docker's 404.
func failPath(w http.ResponseWriter, err error) {
	if errors.Is(err, container.ErrNoSuchPath) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeError(w, http.StatusBadRequest, err.Error())
}

// archiveHead is HEAD /containers/{id}/archive: the path's description
// only (docker cp asks it about a destination).
func (s *Server) archiveHead(w http.ResponseWriter, r *http.Request) {
	c, p, ok := s.archiveTarget(w, r)
	if !ok {
		return
	}
	st, err := container.StatPath(s.o.Store, c, p)
	if err != nil {
		failPath(w, err)
		return
	}
	setPathStat(w, st)
	w.WriteHeader(http.StatusOK)
}

// archiveGet is GET /containers/{id}/archive: the path as a tar stream.
func (s *Server) archiveGet(w http.ResponseWriter, r *http.Request) {
	c, p, ok := s.archiveTarget(w, r)
	if !ok {
		return
	}
	started := false
	err := container.ArchivePath(r.Context(), s.o.Store, c, p, func(st *container.PathStat) {
		setPathStat(w, st)
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		started = true
	}, w)
	if err != nil && !started {
		failPath(w, err)
	}
}

// archivePut is PUT /containers/{id}/archive: a tar stream unpacked into
// the directory path, with the same path safety as berth cp. Owners are
// root's unless copyUIDGID.
func (s *Server) archivePut(w http.ResponseWriter, r *http.Request) {
	c, p, ok := s.archiveTarget(w, r)
	if !ok {
		return
	}
	o := container.CopyOptions{Archive: boolParam(r, "copyUIDGID")}
	if err := container.CopyTo(r.Context(), s.o.Store, c, "-", p, r.Body, o); err != nil {
		failPath(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findContainer(w, r)
	if !ok {
		return
	}
	list, err := container.Changes(s.o.Store, c)
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]mcontainer.FilesystemChange, len(list))
	for i, ch := range list {
		out[i] = mcontainer.FilesystemChange{Path: ch.Path, Kind: mcontainer.ChangeType(ch.Kind)}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	match, err := container.PruneFilters(filters, time.Now())
	if err != nil {
		fail(w, badRequest("%v", err))
		return
	}
	ids, freed, err := container.Prune(r.Context(), s.o.Store, match)
	if err != nil && len(ids) == 0 {
		fail(w, err)
		return
	}
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusOK, mcontainer.PruneReport{ContainersDeleted: ids, SpaceReclaimed: uint64(freed)})
}
