package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth-containers/berth/engine/build"
)

// streamWriter sends what is written as docker's {"stream": ...} lines.
type streamWriter struct{ p *jsonProgress }

func (s streamWriter) Write(b []byte) (int, error) {
	s.p.send(jsonstream.Message{Stream: string(b)})
	return len(b), nil
}

// buildOptions reads POST /build's query into build options.
func (s *Server) buildOptions(r *http.Request) (build.Options, error) {
	q := r.URL.Query()
	o := build.Options{Tags: q["t"], Target: q.Get("target"), NoCache: boolParam(r, "nocache"), Pull: boolParam(r, "pull"),
		Platform: q.Get("platform"), Network: q.Get("networkmode"), Registry: s.o.Registry, Runtime: s.o.Runtime,
		NetConfDir: s.o.NetConfDir, NetRunDir: s.o.NetRunDir, Rootless: s.o.Rootless}
	switch {
	case q.Get("remote") != "":
		return o, badRequest("remote: berth builds from a tar context in the body only")
	case q.Get("version") == "2":
		return o, badRequest("version: berth serves the classic builder (1), not buildkit sessions")
	}
	if o.Network == "default" || o.Network == "bridge" {
		o.Network = ""
	}
	for _, h := range q["extrahosts"] {
		o.AddHosts = append(o.AddHosts, strings.Split(h, ",")...)
	}
	if raw := q.Get("buildargs"); raw != "" {
		var args map[string]*string
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			return o, badRequest("buildargs: %v", err)
		}
		o.BuildArgs = map[string]string{}
		for k, v := range args {
			if v != nil {
				o.BuildArgs[k] = *v
			}
		}
	}
	if raw := q.Get("labels"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &o.Labels); err != nil {
			return o, badRequest("labels: %v", err)
		}
	}
	return o, nil
}

// build is POST /build: the body is the context as a tar (compressed or
// not), the answer docker's stream: the steps and what RUN prints, the
// image ID in an aux message, errors in errorDetail.
func (s *Server) build(w http.ResponseWriter, r *http.Request) {
	o, err := s.buildOptions(r)
	if err != nil {
		fail(w, err)
		return
	}
	file := r.URL.Query().Get("dockerfile")
	o.Context, o.Dockerfile, err = build.OpenTarContext(r.Body, file, filepath.Join(s.o.Store.GraphRoot(), "tmp"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	defer o.Context.Close()
	if file == "" {
		file = "Dockerfile"
	}
	o.DockerfileName = filepath.Base(file)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	prog := &jsonProgress{w: w}
	if err := build.Sweep(s.o.Store, o.Runtime, o.NetConfDir, o.NetRunDir); err != nil {
		prog.send(jsonstream.Message{Error: &jsonstream.Error{Message: err.Error()}})
		return
	}
	quiet := boolParam(r, "q")
	if !quiet {
		o.Out = streamWriter{prog}
	}
	res, err := build.Build(r.Context(), s.o.Store, o)
	if res != nil {
		for _, warn := range res.Warnings {
			prog.send(jsonstream.Message{Stream: "WARNING: " + warn + "\n"})
		}
	}
	if err != nil {
		prog.send(jsonstream.Message{Error: &jsonstream.Error{Message: err.Error()}})
		return
	}
	id := "sha256:" + res.Image.ID
	aux := json.RawMessage(fmt.Sprintf(`{"ID":%q}`, id))
	prog.send(jsonstream.Message{Aux: &aux})
	if quiet {
		prog.send(jsonstream.Message{Stream: id + "\n"})
		return
	}
	prog.send(jsonstream.Message{Stream: "Successfully built " + res.Image.ID[:12] + "\n"})
	for _, t := range o.Tags {
		prog.send(jsonstream.Message{Stream: "Successfully tagged " + t + "\n"})
	}
}
