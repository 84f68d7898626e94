// Package api serves the Docker Engine API over the engine's libraries, so
// that the docker CLI, docker compose and the SDKs drive berth. It is a
// thin layer: every handler calls the same library functions as the berth
// command, and keeps no state of its own but the attach sessions waiting
// for a start.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/image"
	"github.com/berth-containers/berth/engine/metrics"
	"github.com/berth-containers/berth/engine/registry"
	"github.com/berth-containers/berth/engine/tracing"
)

// API versions served: the newest is what a current docker CLI asks for,
// the oldest what docker's own daemon still takes.
const (
	MaxVersion = "1.50"
	MinVersion = "1.24"
)

// Options are what the handlers work with.
type Options struct {
	Store    storage.Store
	Registry *registry.Client
	Runtime  container.Runtime
	// NetConfDir and NetRunDir are the network manager's directories.
	NetConfDir, NetRunDir string
	// NewMonitor starts a monitor for a container to come (berth's
	// monitor command); attach, when not nil, is its first client.
	NewMonitor func(attach *os.File) (*container.Monitor, error)
	// ExecHelper is berth's command with args, for an exec's helper.
	ExecHelper func(args ...string) (*exec.Cmd, error)
	// Version is berth's.
	Version string
	// Rootless says the engine is a rootless user's.
	Rootless bool
}

// Server is the API's HTTP handler.
type Server struct {
	o   Options
	mux *http.ServeMux

	mu sync.Mutex
	// pending are attach sessions made before their container's start,
	// which hands them to the new monitor.
	pending map[string]*pendingAttach
	// execs are the exec instances made, by ID.
	execs map[string]*execSession
	// traced: spans are exported (tracing.Enabled).
	traced bool
}

// New makes the handler.
func New(o Options) *Server {
	s := &Server{o: o, mux: http.NewServeMux(), pending: map[string]*pendingAttach{}, traced: tracing.Enabled()}
	s.routes()
	return s
}

var versionPrefix = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

// ServeHTTP strips a /vX.Y prefix (refusing versions out of range) and
// dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", MaxVersion)
	w.Header().Set("Server", "berth/"+s.o.Version)
	w.Header().Set("Ostype", "linux")
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		if older(m[1], MinVersion) || older(MaxVersion, m[1]) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("client version %s is not supported: berth serves API versions %s to %s", m[1], MinVersion, MaxVersion))
			return
		}
		r.URL.Path = m[2]
		r.URL.RawPath = ""
	}
	slog.Debug("api", "method", r.Method, "path", r.URL.Path)
	if !s.traced {
		s.mux.ServeHTTP(w, r)
		return
	}
	// One trace per request, continuing the client's traceparent; the
	// engine's spans (create, start, pull ...) are its children.
	ctx, span := tracing.Start(tracing.WithTraceparent(r.Context(), r.Header.Get("Traceparent")), r.Method+" "+r.URL.Path)
	r = r.WithContext(ctx)
	s.mux.ServeHTTP(w, r)
	span.SetName(r.Method + " " + strings.TrimPrefix(r.Pattern, r.Method+" "))
	span.End()
}

// older tells whether API version a is before b.
func older(a, b string) bool {
	am, an, _ := strings.Cut(a, ".")
	bm, bn, _ := strings.Cut(b, ".")
	ai, _ := strconv.Atoi(am)
	bi, _ := strconv.Atoi(bm)
	if ai != bi {
		return ai < bi
	}
	aj, _ := strconv.Atoi(an)
	bj, _ := strconv.Atoi(bn)
	return aj < bj
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /_ping", s.ping)
	m.HandleFunc("HEAD /_ping", s.ping)
	m.HandleFunc("GET /version", s.version)
	m.HandleFunc("GET /info", s.info)
	m.HandleFunc("GET /events", s.events)
	m.HandleFunc("GET /system/df", s.systemDf)
	m.Handle("GET /metrics", metrics.Handler(s.o.Store))
	m.HandleFunc("POST /auth", s.auth)
	m.HandleFunc("POST /build", s.build)

	m.HandleFunc("GET /containers/json", s.containerList)
	m.HandleFunc("POST /containers/create", s.containerCreate)
	m.HandleFunc("GET /containers/{id}/json", s.containerInspect)
	m.HandleFunc("POST /containers/{id}/start", s.containerStart)
	m.HandleFunc("POST /containers/{id}/stop", s.containerStop)
	m.HandleFunc("POST /containers/{id}/restart", s.containerRestart)
	m.HandleFunc("POST /containers/{id}/kill", s.containerKill)
	m.HandleFunc("POST /containers/{id}/wait", s.containerWait)
	m.HandleFunc("DELETE /containers/{id}", s.containerDelete)
	m.HandleFunc("GET /containers/{id}/logs", s.containerLogs)
	m.HandleFunc("POST /containers/{id}/attach", s.containerAttach)
	m.HandleFunc("POST /containers/{id}/resize", s.containerResize)
	m.HandleFunc("GET /containers/{id}/stats", s.containerStats)
	m.HandleFunc("HEAD /containers/{id}/archive", s.archiveHead)
	m.HandleFunc("GET /containers/{id}/archive", s.archiveGet)
	m.HandleFunc("PUT /containers/{id}/archive", s.archivePut)
	m.HandleFunc("GET /containers/{id}/changes", s.containerChanges)
	m.HandleFunc("POST /containers/prune", s.containerPrune)

	m.HandleFunc("POST /containers/{id}/pause", s.containerPause)
	m.HandleFunc("POST /containers/{id}/unpause", s.containerUnpause)
	m.HandleFunc("POST /containers/{id}/update", s.containerUpdate)
	m.HandleFunc("POST /containers/{id}/rename", s.containerRename)
	m.HandleFunc("GET /containers/{id}/top", s.containerTop)
	m.HandleFunc("GET /containers/{id}/export", s.containerExport)
	m.HandleFunc("POST /containers/{id}/exec", s.execCreate)
	m.HandleFunc("POST /exec/{id}/start", s.execStart)
	m.HandleFunc("GET /exec/{id}/json", s.execInspect)
	m.HandleFunc("POST /exec/{id}/resize", s.execResize)

	m.HandleFunc("GET /images/json", s.imageList)
	m.HandleFunc("POST /images/create", s.imageCreate)
	m.HandleFunc("POST /images/load", s.imageLoad)
	m.HandleFunc("POST /images/prune", s.imagePrune)
	m.HandleFunc("GET /images/get", s.imageSaveAll)
	m.HandleFunc("GET /images/{name...}", s.imageGet)
	m.HandleFunc("DELETE /images/{name...}", s.imageDelete)
	m.HandleFunc("POST /images/{name...}", s.imagePost)

	m.HandleFunc("GET /networks", s.networkList)
	m.HandleFunc("GET /networks/{id}", s.networkInspect)
	m.HandleFunc("POST /networks/create", s.networkCreate)
	m.HandleFunc("DELETE /networks/{id}", s.networkDelete)
	m.HandleFunc("POST /networks/{id}/connect", s.networkConnect)
	m.HandleFunc("POST /networks/{id}/disconnect", s.networkDisconnect)
	m.HandleFunc("POST /networks/prune", s.networkPrune)

	m.HandleFunc("GET /volumes", s.volumeList)
	m.HandleFunc("POST /volumes/create", s.volumeCreate)
	m.HandleFunc("GET /volumes/{name}", s.volumeInspect)
	m.HandleFunc("DELETE /volumes/{name}", s.volumeDelete)
	m.HandleFunc("POST /volumes/prune", s.volumePrune)

	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("page not found: berth does not serve %s %s", r.Method, r.URL.Path))
	})
}

// maxBody bounds a request's JSON body.
const maxBody = 4 << 20

// decode reads a JSON body into v; an empty body leaves v as it is.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxBody))
			return false
		}
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError is docker's error body.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

// fail answers an engine error with docker's status for it.
func fail(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, container.ErrNotFound), errors.Is(err, image.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, errBadRequest):
		status = http.StatusBadRequest
	}
	writeError(w, status, err.Error())
}

var errBadRequest = errors.New("bad request")

// badRequest is an invalid parameter, named.
func badRequest(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, a...))
}

// boolParam reads a query flag as docker does: 1, true (any case) or an
// empty value with the key present are true.
func boolParam(r *http.Request, key string) bool {
	q := r.URL.Query()
	if !q.Has(key) {
		return false
	}
	switch strings.ToLower(q.Get(key)) {
	case "", "1", "true", "yes":
		return true
	}
	return false
}

// Serve serves h on l until ctx ends or, when idle > 0, no request has
// been active for idle. Containers are their monitors' and keep running.
func Serve(ctx context.Context, l net.Listener, h http.Handler, idle time.Duration) error {
	var mu sync.Mutex
	active := map[net.Conn]bool{}
	kick := make(chan struct{}, 1)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second,
		ConnState: func(c net.Conn, st http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			switch st {
			case http.StateActive, http.StateHijacked:
				active[c] = true
			default:
				delete(active, c)
			}
			select {
			case kick <- struct{}{}:
			default:
			}
		}}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	var timer <-chan time.Time
	reset := func() {
		if idle > 0 {
			timer = time.After(idle)
		}
	}
	reset()
	for {
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			return srv.Shutdown(context.Background())
		case <-kick:
			reset()
		case <-timer:
			mu.Lock()
			busy := len(active) > 0
			mu.Unlock()
			if !busy {
				slog.Info("api: idle, exiting", "after", idle)
				return srv.Shutdown(context.Background())
			}
			reset()
		}
	}
}
