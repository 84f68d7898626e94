package engine

import (
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// span is what the test's OTLP receiver keeps of a span.
type span struct {
	name, trace, id, parent, service string
}

// otlpReceiver is an OTLP/HTTP trace receiver of the test's own.
type otlpReceiver struct {
	url   string
	mu    sync.Mutex
	spans []span
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{url: "http://" + l.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var msg coltrace.ExportTraceServiceRequest
		if req.URL.Path != "/v1/traces" || proto.Unmarshal(body, &msg) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range msg.ResourceSpans {
			service := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					service = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					r.spans = append(r.spans, span{name: s.Name, trace: hex.EncodeToString(s.TraceId),
						id: hex.EncodeToString(s.SpanId), parent: hex.EncodeToString(s.ParentSpanId), service: service})
				}
			}
		}
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

// byName is the received spans by name (the last of each name).
func (r *otlpReceiver) byName() map[string]span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]span{}
	for _, s := range r.spans {
		out[s.name] = s
	}
	return out
}

func (r *otlpReceiver) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.spans {
		if s.name == name {
			n++
		}
	}
	return n
}

// TestTraces: one `berth run` is one trace, its spans exported over
// OTLP/HTTP by the berth command and by the container's monitor, which
// continues the start's span (and removes a --rm container in it);
// without the endpoint nothing is sent.
func TestTraces(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	r := startOTLPReceiver(t)
	e.ok("run", "--rm", "--network", "none", "busybox", "true") // not traced
	e.Env = append(e.Env, "OTEL_EXPORTER_OTLP_ENDPOINT="+r.url)
	e.ok("run", "--rm", "--network", "none", "busybox", "true")

	want := []string{"berth run", "create", "start", "network setup", "runtime run", "rm"}
	var got map[string]span
	waitFor(t, func() bool {
		got = r.byName()
		for _, n := range want {
			if _, ok := got[n]; !ok {
				return false
			}
		}
		return true
	})
	root := got["berth run"]
	if root.parent != "" || root.service != "berth" {
		t.Errorf("root span: %+v", root)
	}
	for child, parent := range map[string]string{
		"create": "berth run", "start": "berth run", "network setup": "start", "runtime run": "start",
		"rm": "start", // --rm: the monitor removes it when it ends
	} {
		if c := got[child]; c.trace != root.trace || c.parent != got[parent].id {
			t.Errorf("span %s: %+v, want a child of %s %+v in trace %s", child, c, parent, got[parent], root.trace)
		}
	}
	// The untraced run sent nothing: a later traced command is the second
	// root only.
	e.ok("ps", "-a")
	waitFor(t, func() bool { return r.count("berth ps") == 1 })
	if n := r.count("berth run"); n != 1 {
		t.Errorf("%d berth run traces, want 1", n)
	}
}
