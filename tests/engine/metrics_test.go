package engine

import (
	"bufio"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-containers/berth/tests/registry"
)

// scrape reads a Prometheus text exposition into series → value.
func scrape(t *testing.T, get func() (*http.Response, error)) map[string]float64 {
	t.Helper()
	resp, err := get()
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s\n%s", resp.Status, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: bad line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetrics scrapes `berth system metrics` while a container burns CPU
// and sends on its network: the values grow between scrapes; pulls and
// start latencies come from the event log. The API service serves the
// same on /metrics.
func TestMetrics(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	ref, _ := configDigest(t, reg)
	e := newEngine(t)
	e.ok("pull", ref)
	withBusybox(t, e)
	netName := "met" + filepath.Base(e.dir)[len("berth-engine-test-"):]
	e.ok("network", "create", netName)
	t.Cleanup(func() {
		e.run(nil, "rm", "-f", "burner")
		e.run(nil, "network", "rm", netName)
	})
	gw := strings.TrimSpace(e.ok("network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}", netName))
	id := strings.TrimSpace(e.ok("run", "-d", "--name", "burner", "--network", netName, "busybox",
		"sh", "-c", "ping -q -i 0.2 "+gw+" >/dev/null & while true; do :; done"))

	port := freePort(t)
	srv := e.cmd("system", "metrics", "--listen", "127.0.0.1:"+port)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
	})
	get := func() (*http.Response, error) { return http.Get("http://127.0.0.1:" + port + "/metrics") }
	waitFor(t, func() bool {
		resp, err := get()
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	series := func(name string, extra ...string) string {
		return name + `{` + strings.Join(append([]string{`id="` + id + `"`, `image="busybox"`, `name="burner"`}, extra...), ",") + `}`
	}
	cpu, tx, rx := series("berth_container_cpu_seconds_total"), series("berth_container_network_transmit_bytes_total"),
		series("berth_container_network_receive_bytes_total")
	first := scrape(t, get)
	for _, s := range []string{cpu, tx, rx, series("berth_container_memory_usage_bytes"), series("berth_container_pids")} {
		if _, ok := first[s]; !ok {
			t.Fatalf("no %s in the scrape", s)
		}
	}
	var later map[string]float64
	waitFor(t, func() bool {
		later = scrape(t, get)
		return later[cpu] > first[cpu] && later[tx] > first[tx] && later[rx] > first[rx]
	})
	for s, want := range map[string]float64{
		series("berth_container_state", `state="running"`): 1,
		series("berth_container_state", `state="exited"`):  0,
		`berth_containers{state="running"}`:                1,
		series("berth_container_restarts_total"):           0,
		"berth_scrape_errors":                              0,
	} {
		if got, ok := later[s]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", s, got, ok, want)
		}
	}
	if later[series("berth_container_memory_usage_bytes")] <= 0 || later[series("berth_container_pids")] < 2 {
		t.Errorf("memory %v, pids %v", later[series("berth_container_memory_usage_bytes")], later[series("berth_container_pids")])
	}
	if later["berth_image_pulls_total"] < 1 || later["berth_image_pulled_bytes_total"] <= 0 {
		t.Errorf("pulls %v, bytes %v", later["berth_image_pulls_total"], later["berth_image_pulled_bytes_total"])
	}
	if later["berth_container_start_latency_seconds_count"] < 1 || later["berth_container_start_latency_seconds_sum"] <= 0 {
		t.Errorf("start latency: count %v sum %v", later["berth_container_start_latency_seconds_count"], later["berth_container_start_latency_seconds_sum"])
	}

	s := startService(t, e, "--time", "0")
	api := scrape(t, func() (*http.Response, error) { return s.http.Get("http://berth/metrics") })
	if api[series("berth_container_state", `state="running"`)] != 1 {
		t.Errorf("the API's /metrics: %v", api)
	}
	e.fail("--listen", "system", "metrics", "--listen", "nowhere")
}
