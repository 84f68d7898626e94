// Package metrics exposes berth's containers and engine to Prometheus.
// Everything is read when scraped, from the containers' records and
// cgroups, their network namespaces and the event log, so that any berth
// process (or none: berth is daemonless) may serve it and nothing is kept
// between scrapes.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.podman.io/storage"

	"github.com/berth-containers/berth/engine/container"
	"github.com/berth-containers/berth/engine/events"
)

// StartLatencyBuckets are the start latency histogram's bounds, seconds.
var StartLatencyBuckets = []float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10}

var ctrLabels = []string{"id", "name", "image"}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("berth_"+name, help, labels, nil)
}

var (
	cpuDesc     = desc("container_cpu_seconds_total", "CPU time the container has used.", ctrLabels...)
	memDesc     = desc("container_memory_usage_bytes", "Memory the container uses, without the inactive page cache (as docker stats).", ctrLabels...)
	memLimDesc  = desc("container_memory_limit_bytes", "The container's memory limit (the host's memory without one).", ctrLabels...)
	pidsDesc    = desc("container_pids", "Processes and threads in the container.", ctrLabels...)
	blkioDesc   = desc("container_block_io_bytes_total", "Bytes the container read from and wrote to block devices.", append(ctrLabels, "op")...)
	netRxDesc   = desc("container_network_receive_bytes_total", "Bytes the container received, all interfaces but lo.", ctrLabels...)
	netTxDesc   = desc("container_network_transmit_bytes_total", "Bytes the container sent, all interfaces but lo.", ctrLabels...)
	restartDesc = desc("container_restarts_total", "Times the container was restarted by its policy or health check.", ctrLabels...)
	healthDesc  = desc("container_health_status", "1 for the container's health status (containers with a health check).", append(ctrLabels, "status")...)
	stateDesc   = desc("container_state", "1 for the container's state.", append(ctrLabels, "state")...)
	countDesc   = desc("containers", "Containers by state.", "state")
	pullsDesc   = desc("image_pulls_total", "Images pulled, as the event log records them.")
	pulledDesc  = desc("image_pulled_bytes_total", "Bytes of the layers fetched by pulls, as the event log records them.")
	latencyDesc = desc("container_start_latency_seconds", "Seconds from a start's request to the container running, as the event log records starts.")
	errorsDesc  = desc("scrape_errors", "Containers or sources that could not be read in this scrape.")
)

var (
	states   = []string{container.Created, container.Running, container.Paused, container.Exited}
	statuses = []string{container.HealthStarting, container.HealthHealthy, container.HealthUnhealthy, container.HealthUnknown}
)

// Collector is a prometheus.Collector of a store's containers.
type Collector struct {
	Store storage.Store
	// CgroupRoot is where cgroups are mounted (container.CgroupRoot).
	CgroupRoot string
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cpuDesc, memDesc, memLimDesc, pidsDesc, blkioDesc, netRxDesc, netTxDesc,
		restartDesc, healthDesc, stateDesc, countDesc, pullsDesc, pulledDesc, latencyDesc, errorsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx := context.Background()
	failures := 0
	list, err := container.Select(ctx, c.Store, container.ListOptions{All: true})
	if err != nil {
		slog.Warn("metrics: list containers", "err", err)
		failures++
	}
	count := map[string]int{}
	for _, ctr := range list {
		count[ctr.Status]++
		if !c.collectContainer(ch, ctr) {
			failures++
		}
	}
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(countDesc, prometheus.GaugeValue, float64(count[s]), s)
	}
	if !c.collectEvents(ctx, ch) {
		failures++
	}
	ch <- prometheus.MustNewConstMetric(errorsDesc, prometheus.GaugeValue, float64(failures))
}

func (c *Collector) collectContainer(ch chan<- prometheus.Metric, ctr *container.Container) bool {
	lv := []string{ctr.ID, ctr.Name, ctr.Image}
	gauge := func(d *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(lv, extra...)...)
	}
	counter := func(d *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append(lv, extra...)...)
	}
	for _, s := range states {
		gauge(stateDesc, one(ctr.Status == s), s)
	}
	counter(restartDesc, float64(ctr.RestartCount))
	if hs := ctr.HealthStatus(); hs != "none" {
		for _, s := range statuses {
			gauge(healthDesc, one(hs == s), s)
		}
	}
	if ctr.Status != container.Running && ctr.Status != container.Paused {
		return true // no cgroup to read
	}
	st, err := container.ReadStats(ctr, c.CgroupRoot)
	if err != nil {
		// It may have exited since it was listed.
		slog.Debug("metrics: container stats", "container", ctr.Name, "err", err)
		return false
	}
	counter(cpuDesc, float64(st.CPU)/1e9)
	gauge(memDesc, float64(st.MemUsage))
	gauge(memLimDesc, float64(st.MemLimit))
	gauge(pidsDesc, float64(st.Pids))
	counter(blkioDesc, float64(st.BlockRead), "read")
	counter(blkioDesc, float64(st.BlockWrite), "write")
	counter(netRxDesc, float64(st.NetRx))
	counter(netTxDesc, float64(st.NetTx))
	return true
}

// collectEvents counts pulls and start latencies in the event log (the
// current file and the one rotated before it).
func (c *Collector) collectEvents(ctx context.Context, ch chan<- prometheus.Metric) bool {
	var pulls, pulled, starts uint64
	var sum float64
	buckets := make(map[float64]uint64, len(StartLatencyBuckets))
	now := time.Now()
	err := events.Read(ctx, c.Store.RunRoot(), events.ReadOptions{Since: time.Unix(0, 1), Until: now}, func(e *events.Event) error {
		switch {
		case e.Type == events.TypeImage && e.Action == "pull":
			pulls++
			n, _ := strconv.ParseUint(e.Actor.Attributes[events.PulledBytes], 10, 64)
			pulled += n
		case e.Type == events.TypeContainer && e.Action == "start":
			v, err := strconv.ParseFloat(e.Actor.Attributes[events.StartLatency], 64)
			if err != nil {
				return nil // a start logged before berth recorded latencies
			}
			starts++
			sum += v
			for _, b := range StartLatencyBuckets {
				if v <= b {
					buckets[b]++
				}
			}
		}
		return nil
	})
	ch <- prometheus.MustNewConstMetric(pullsDesc, prometheus.CounterValue, float64(pulls))
	ch <- prometheus.MustNewConstMetric(pulledDesc, prometheus.CounterValue, float64(pulled))
	ch <- prometheus.MustNewConstHistogram(latencyDesc, starts, sum, buckets)
	if err != nil {
		slog.Warn("metrics: read the event log", "err", err)
		return false
	}
	return true
}

func one(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler serves the store's metrics in Prometheus' exposition formats.
func Handler(s storage.Store) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&Collector{Store: s, CgroupRoot: container.CgroupRoot})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Mux serves Handler on /metrics only.
func Mux(s storage.Store) http.Handler {
	m := http.NewServeMux()
	m.Handle("GET /metrics", Handler(s))
	return m
}
