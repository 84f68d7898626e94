package api

import (
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
