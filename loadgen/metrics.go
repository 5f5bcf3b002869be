package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Prometheus collectors of a run (names from
// docs/contracts.md). A nil *metrics records nothing, so the recorder calls
// it unconditionally.
type metrics struct {
	requests  *prometheus.CounterVec
	latencies *prometheus.HistogramVec
	lagHist   prometheus.Histogram
	target    prometheus.Gauge
	achieved  prometheus.Gauge
	lost      prometheus.Counter

	// the latency children, resolved once
	corrected, service, submit prometheus.Observer
}

var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, 16) // 0.5 ms … 16 s

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentmesh_loadgen_requests_total",
			Help: "Tasks by outcome: accepted, rejected, error, skipped, completed, dead.",
		}, []string{"outcome"}),
		latencies: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "agentmesh_loadgen_latency_seconds",
			Help:    "Task latency by kind: corrected (completion − intended send), service (completion − actual send), submit (2xx − intended send).",
			Buckets: latencyBuckets, NativeHistogramBucketFactor: 1.1,
		}, []string{"kind"}),
		lagHist: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "agentmesh_loadgen_schedule_lag_seconds",
			Help:    "Actual send − intended send time of each request: the generator's own health.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), NativeHistogramBucketFactor: 1.1,
		}),
		target: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agentmesh_loadgen_target_rate",
			Help: "Scheduled tasks per second (0 when closed-loop).",
		}),
		achieved: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agentmesh_loadgen_achieved_rate",
			Help: "Tasks sent per second over the last interval.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agentmesh_loadgen_lost_total",
			Help: "Accepted tasks never seen completing.",
		}),
	}
	reg.MustRegister(m.requests, m.latencies, m.lagHist, m.target, m.achieved, m.lost)
	m.corrected = m.latencies.WithLabelValues("corrected")
	m.service = m.latencies.WithLabelValues("service")
	m.submit = m.latencies.WithLabelValues("submit")
	for _, o := range []string{"accepted", "rejected", "error", "skipped", "completed", "dead"} {
		m.requests.WithLabelValues(o)
	}
	return m
}

func (m *metrics) outcome(o string, n int64) {
	if m != nil {
		m.requests.WithLabelValues(o).Add(float64(n))
	}
}

func (m *metrics) latency(kind string, ns int64) {
	if m == nil {
		return
	}
	s := float64(max(ns, 0)) / 1e9
	switch kind {
	case "corrected":
		m.corrected.Observe(s)
	case "service":
		m.service.Observe(s)
	default:
		m.submit.Observe(s)
	}
}

func (m *metrics) lag(ns int64) {
	if m != nil {
		m.lagHist.Observe(float64(max(ns, 0)) / 1e9)
	}
}

func (m *metrics) rates(target, achieved float64) {
	if m != nil {
		m.target.Set(target)
		m.achieved.Set(achieved)
	}
}

func (m *metrics) lostOne() {
	if m != nil {
		m.lost.Inc()
	}
}

// metricsServer serves a registry with the run's metrics plus the Go and
// process collectors on addr until stopped.
type metricsServer struct {
	srv  *http.Server
	done chan struct{}
}

func startMetrics(addr string) (*metrics, *metricsServer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := newMetrics(reg)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listening for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s := &metricsServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener failed: nothing left to serve
		}
	}()
	return m, s, nil
}

func (s *metricsServer) stop() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}
