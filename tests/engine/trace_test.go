package engine

import (
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
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

// waitSpans waits until spans of every name have come, and returns them
// by name.
func (r *otlpReceiver) waitSpans(t *testing.T, names ...string) map[string]span {
	t.Helper()
	var got map[string]span
	waitFor(t, func() bool {
		got = r.byName()
		for _, n := range names {
			if _, ok := got[n]; !ok {
				return false
			}
		}
		return true
	})
	return got
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

	got := r.waitSpans(t, "berth run", "create", "start", "network setup", "runtime run", "rm")
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

// TestAPITraces: the API service makes a span per request, named by its
// route and continuing the client's traceparent, with the engine's spans
// under it; the service itself is no trace.
func TestAPITraces(t *testing.T) {
	e := newEngine(t)
	withBusybox(t, e)
	r := startOTLPReceiver(t)
	e.Env = append(e.Env, "OTEL_EXPORTER_OTLP_ENDPOINT="+r.url, "OTEL_BSP_SCHEDULE_DELAY=50")
	s := startService(t, e, "--time", "0")
	const traceID, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	call := func(method, path, body string) string {
		req, err := http.NewRequest(method, "http://berth"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Traceparent", "00-"+traceID+"-"+clientSpan+"-01")
		resp, err := s.http.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
		}
		return string(data)
	}
	call("POST", "/v1.41/containers/create?name=traced", `{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}`)
	call("POST", "/v1.41/containers/traced/start", "")
	call("POST", "/v1.41/containers/traced/wait", "")
	call("DELETE", "/v1.41/containers/traced", "")

	got := r.waitSpans(t, "POST /containers/create", "create", "POST /containers/{id}/start", "start", "runtime run", "DELETE /containers/{id}", "rm")
	for child, parent := range map[string]string{
		"create": "POST /containers/create", "start": "POST /containers/{id}/start",
		"runtime run": "start", "rm": "DELETE /containers/{id}",
	} {
		if c := got[child]; c.trace != traceID || c.parent != got[parent].id {
			t.Errorf("span %s: %+v, want a child of %s %+v", child, c, parent, got[parent])
		}
	}
	for _, n := range []string{"POST /containers/create", "POST /containers/{id}/start", "DELETE /containers/{id}"} {
		if c := got[n]; c.trace != traceID || c.parent != clientSpan || c.service != "berth" {
			t.Errorf("span %s: %+v, want the client's span %s as parent", n, c, clientSpan)
		}
	}
	if n := r.count("berth system"); n != 0 {
		t.Errorf("%d spans of the service itself", n)
	}
}
