package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	mimage "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/image"
)

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	if ref := r.URL.Query().Get("filter"); ref != "" {
		filters = append(filters, "reference="+ref)
	}
	out, err := s.imageSummaries(filters, boolParam(r, "shared-size"))
	if err != nil {
		fail(w, badRequest("%v", err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// imageSummaries lists the images filters pick; SharedSize is computed
// when asked (it is -1 otherwise, as docker's).
func (s *Server) imageSummaries(filters []string, shared bool) ([]mimage.Summary, error) {
	list, err := image.List(s.o.Store, filters)
	if err != nil {
		return nil, err
	}
	var sizes map[string]int64
	if shared {
		if sizes, err = image.SharedSizes(s.o.Store); err != nil {
			return nil, err
		}
	}
	out := make([]mimage.Summary, 0, len(list))
	for _, sum := range list {
		m := mimage.Summary{ID: "sha256:" + sum.ID, Created: sum.Created.Unix(), Size: sum.Size, Labels: sum.Labels,
			Containers: int64(sum.Containers), SharedSize: -1, RepoTags: []string{}, RepoDigests: []string{}}
		if shared {
			m.SharedSize = sizes[sum.ID]
		}
		if img, err := s.o.Store.Image(sum.ID); err == nil {
			m.RepoTags, m.RepoDigests = image.RepoNames(img)
		}
		out = append(out, m)
	}
	return out, nil
}

// imageGet serves GET /images/NAME/json (NAME may hold slashes).
func (s *Server) imageGet(w http.ResponseWriter, r *http.Request) {
	name, op := splitImagePath(r.PathValue("name"))
	switch op {
	case "json":
		img, ok := s.findImage(w, name)
		if !ok {
			return
		}
		in, err := image.InspectImage(s.o.Store, img)
		if err != nil {
			fail(w, err)
			return
		}
		// Through moby's type, so that the shape is the Engine API's.
		raw, err := json.Marshal(in)
		if err != nil {
			fail(w, err)
			return
		}
		var resp mimage.InspectResponse
		if err := json.Unmarshal(raw, &resp); err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	case "history":
		s.imageHistory(w, name)
	case "get":
		s.imageSave(w, r, []string{name})
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("page not found: berth does not serve GET /images/{name}/%s", op))
	}
}

// splitImagePath cuts the operation off an image path: "a/b:1/json".
func splitImagePath(p string) (name, op string) {
	i := strings.LastIndex(p, "/")
	if i < 0 {
		return p, ""
	}
	return p[:i], p[i+1:]
}

func (s *Server) findImage(w http.ResponseWriter, name string) (*storage.Image, bool) {
	if !validRef.MatchString(name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid image reference %q", name))
		return nil, false
	}
	img, err := image.Lookup(s.o.Store, name)
	if errors.Is(err, image.ErrNotFound) {
		writeError(w, http.StatusNotFound, "No such image: "+name)
		return nil, false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return img, true
}

func (s *Server) imageDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := s.findImage(w, name); !ok {
		return
	}
	rm, err := image.Remove(s.o.Store, name, boolParam(r, "force"))
	if errors.Is(err, image.ErrInUse) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	out := []mimage.DeleteResponse{}
	for _, u := range rm.Untagged {
		out = append(out, mimage.DeleteResponse{Untagged: u})
	}
	for _, d := range rm.Deleted {
		out = append(out, mimage.DeleteResponse{Deleted: d})
	}
	writeJSON(w, http.StatusOK, out)
}

// imagePost serves POST /images/NAME/tag.
func (s *Server) imagePost(w http.ResponseWriter, r *http.Request) {
	name, op := splitImagePath(r.PathValue("name"))
	switch op {
	case "tag":
		if _, ok := s.findImage(w, name); !ok {
			return
		}
		repo, tag := r.URL.Query().Get("repo"), r.URL.Query().Get("tag")
		if repo == "" {
			writeError(w, http.StatusBadRequest, "repo is required")
			return
		}
		target := repo
		if tag != "" {
			target += ":" + tag
		}
		if err := image.Tag(s.o.Store, name, []string{target}); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		w.WriteHeader(http.StatusCreated)
	case "push":
		s.imagePush(w, r, name)
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("page not found: berth does not serve POST /images/{name}/%s", op))
	}
}

// imageCreate pulls fromImage[:tag], streaming docker's JSON progress.
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("fromSrc") {
		s.imageImport(w, r)
		return
	}
	ref := q.Get("fromImage")
	if ref == "" {
		writeError(w, http.StatusBadRequest, "fromImage or fromSrc is required")
		return
	}
	if tag := q.Get("tag"); tag != "" {
		if strings.HasPrefix(tag, "sha256:") {
			ref += "@" + tag
		} else {
			ref += ":" + tag
		}
	}
	if !validRef.MatchString(ref) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid reference %q", ref))
		return
	}
	o := image.PullOptions{}
	if p := q.Get("platform"); p != "" {
		plat, err := image.ParsePlatform(p)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid platform %q: %v", p, err))
			return
		}
		o.Platform = plat
	}
	reg, err := s.registryFor(r)
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	prog := &jsonProgress{w: w}
	o.Progress = prog
	prog.send(jsonstream.Message{Status: "Pulling from " + ref})
	img, err := image.Pull(r.Context(), s.o.Store, reg, ref, o)
	if err != nil {
		msg := image.Explain(err).Error()
		prog.send(jsonstream.Message{Error: &jsonstream.Error{Message: msg}})
		return
	}
	if img.Digest != "" {
		prog.send(jsonstream.Message{Status: "Digest: " + img.Digest.String()})
	}
	prog.send(jsonstream.Message{Status: "Status: Downloaded newer image for " + ref})
}

// jsonProgress reports a pull or a push as docker's JSON message stream.
type jsonProgress struct {
	mu sync.Mutex
	w  io.Writer
	// push words the layers' progress as docker's push does.
	push bool
}

func (p *jsonProgress) send(m jsonstream.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = json.NewEncoder(p.w).Encode(m)
	if f, ok := p.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (p *jsonProgress) Layer(digest string, size int64) image.LayerProgress {
	id := strings.TrimPrefix(digest, "sha256:")
	id = id[:min(12, len(id))]
	start, moving := "Pulling fs layer", "Downloading"
	if p.push {
		start, moving = "Preparing", "Pushing"
	}
	p.send(jsonstream.Message{ID: id, Status: start})
	return &layerProgress{p: p, id: id, total: size, moving: moving}
}

type layerProgress struct {
	p       *jsonProgress
	id      string
	total   int64
	current int64
	moving  string
}

func (l *layerProgress) Reader(r io.Reader) io.Reader { return &countReader{r: r, l: l} }

func (l *layerProgress) Done(status string) {
	l.p.send(jsonstream.Message{ID: l.id, Status: status})
}

type countReader struct {
	r io.Reader
	l *layerProgress
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.l.current += int64(n)
	c.l.p.send(jsonstream.Message{ID: c.l.id, Status: c.l.moving, Progress: &jsonstream.Progress{Current: c.l.current, Total: c.l.total}})
	return n, err
}

func (s *Server) imageHistory(w http.ResponseWriter, name string) {
	img, ok := s.findImage(w, name)
	if !ok {
		return
	}
	list, err := image.History(s.o.Store, img)
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]mimage.HistoryResponseItem, len(list))
	for i, h := range list {
		id := h.ID
		if id != "<missing>" {
			id = "sha256:" + id
		}
		tags := h.Tags
		if tags == nil {
			tags = []string{}
		}
		out[i] = mimage.HistoryResponseItem{ID: id, Created: h.Created.Unix(), CreatedBy: h.CreatedBy, Size: h.Size, Comment: h.Comment, Tags: tags}
	}
	writeJSON(w, http.StatusOK, out)
}

// imageSaveAll is GET /images/get?names=A&names=B.
func (s *Server) imageSaveAll(w http.ResponseWriter, r *http.Request) {
	names := r.URL.Query()["names"]
	if len(names) == 0 {
		writeError(w, http.StatusBadRequest, "names is required")
		return
	}
	s.imageSave(w, r, names)
}

// imageSave writes the images as a docker-archive tar.
func (s *Server) imageSave(w http.ResponseWriter, r *http.Request, names []string) {
	for _, n := range names {
		if _, ok := s.findImage(w, n); !ok {
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	// Save resolves every name before it writes; a failure after the
	// first byte can only cut the stream, which the client sees.
	_ = image.Save(r.Context(), s.o.Store, names, image.DockerArchive, w)
}

// imageLoad is POST /images/load: a docker-archive or OCI archive in the
// body, answered with docker's "Loaded image" stream.
func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request) {
	names, err := image.Load(r.Context(), s.o.Store, r.Body)
	if err != nil && len(names) == 0 {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	prog := &jsonProgress{w: w}
	for _, n := range names {
		what := "Loaded image: "
		if strings.HasPrefix(n, "sha256:") {
			what = "Loaded image ID: "
		}
		prog.send(jsonstream.Message{Stream: what + n + "\n"})
	}
	if err != nil {
		prog.send(jsonstream.Message{Error: &jsonstream.Error{Message: err.Error()}})
	}
}

// imagePush is POST /images/NAME/push?tag=T, streaming docker's progress.
func (s *Server) imagePush(w http.ResponseWriter, r *http.Request, name string) {
	if tag := r.URL.Query().Get("tag"); tag != "" {
		name += ":" + tag
	}
	if _, ok := s.findImage(w, name); !ok {
		return
	}
	reg, err := s.registryFor(r)
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	prog := &jsonProgress{w: w, push: true}
	prog.send(jsonstream.Message{Status: "The push refers to repository [" + name + "]"})
	pushed, err := image.Push(r.Context(), s.o.Store, reg, name, "", image.PushOptions{Progress: prog})
	if err != nil {
		prog.send(jsonstream.Message{Error: &jsonstream.Error{Message: image.Explain(err).Error()}})
		return
	}
	prog.send(jsonstream.Message{Status: fmt.Sprintf("%s: digest: %s size: %d", pushed.Ref.Identifier(), pushed.Digest, pushed.Size)})
}

// imagePrune is POST /images/prune: dangling images, or with the filter
// dangling=false all that no container uses.
func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		fail(w, err)
		return
	}
	all := false
	for _, f := range filters {
		switch f {
		case "dangling=false", "dangling=0":
			all = true
		case "dangling=true", "dangling=1":
		default:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid filter %q: berth prunes images by dangling only", f))
			return
		}
	}
	ids, freed, err := image.Prune(s.o.Store, all)
	if err != nil && len(ids) == 0 {
		fail(w, err)
		return
	}
	out := mimage.PruneReport{ImagesDeleted: []mimage.DeleteResponse{}, SpaceReclaimed: uint64(freed)}
	for _, id := range ids {
		out.ImagesDeleted = append(out.ImagesDeleted, mimage.DeleteResponse{Deleted: "sha256:" + id})
	}
	writeJSON(w, http.StatusOK, out)
}

// imageImport is POST /images/create?fromSrc=- (docker import): the body
// is a root filesystem tarball.
func (s *Server) imageImport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if src := q.Get("fromSrc"); src != "-" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("fromSrc %q: only - (the request body) is served; download a URL and import it", src))
		return
	}
	name := q.Get("repo")
	if tag := q.Get("tag"); name != "" && tag != "" {
		name += ":" + tag
	}
	if name != "" && !validRef.MatchString(name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid repository %q", name))
		return
	}
	img, err := image.Import(r.Context(), s.o.Store, r.Body, name, q["changes"], q.Get("message"))
	if err != nil {
		fail(w, badRequest("import: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, jsonstream.Message{Status: "sha256:" + img.ID})
}
