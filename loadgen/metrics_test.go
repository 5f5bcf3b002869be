package loadgen

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// TestMetrics: the recorder reports through the contract's metric names,
// and they pass promlint.
func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := newMetrics(reg)
	r := newRecorder(recorderConfig{start: synthStart, e2e: true, interval: time.Second, maxLost: 10,
		earlyKeep: time.Second, dupWindow: time.Minute, pacer: ConstantPacer{PerSecond: 50}, m: m})
	id := uuid.New()
	r.onSubmit(&submitRecord{units: []unit{{intended: 0}}, sent: 1e6, done: 2e6, status: 202, accepted: true, ids: []uuid.UUID{id}})
	r.onSubmit(&submitRecord{units: []unit{{intended: 0}, {intended: 1}}, sent: 1e6, done: 2e6, status: 503, err: "503"})
	r.onSubmit(&submitRecord{units: []unit{{intended: 5}}, sent: 1e6, done: 2e6, status: 202, accepted: true, ids: []uuid.UUID{uuid.New()}})
	r.onEvents(eventBatch{at: 5e6, events: []task.Event{{ID: id, State: task.Completed}}})
	for _, c := range r.pendingChecks() {
		r.onCheck(checkResult{id: c.key, state: "pending"})
	}
	r.rotate(synthStart.Add(time.Second))

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	value := func(name, label string) float64 {
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if label == "" || labelIs(m, label) {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		return -1
	}
	for outcome, want := range map[string]float64{"accepted": 2, "rejected": 2, "completed": 1, "error": 0} {
		if got := value("agentmesh_loadgen_requests_total", outcome); got != want {
			t.Errorf("requests_total{outcome=%q} = %v, want %v", outcome, got, want)
		}
	}
	checks := []struct {
		name, label string
		want        float64
	}{
		{"agentmesh_loadgen_lost_total", "", 1},
		{"agentmesh_loadgen_target_rate", "", 50},
		{"agentmesh_loadgen_achieved_rate", "", 4}, // 4 sent in the 1s interval
		{"agentmesh_loadgen_latency_seconds", "corrected", 1},
		{"agentmesh_loadgen_latency_seconds", "service", 1},
		{"agentmesh_loadgen_latency_seconds", "submit", 2},
		{"agentmesh_loadgen_schedule_lag_seconds", "", 3},
	}
	for _, c := range checks {
		if got := value(c.name, c.label); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.label, got, c.want)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
}

func labelIs(m *dto.Metric, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetValue() == v {
			return true
		}
	}
	return false
}

// TestMetricsEndpoint: a run with --metrics-addr serves the metrics while it
// lasts.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	fake := newFakeMesh(t, fakeOpts{})
	var body string
	scrape := func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/metrics", addr))
		if err != nil {
			body = err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
	}
	_, err = Run(t.Context(), Config{Target: fake.URL, Rate: 1000, Requests: 200, MetricsAddr: addr,
		Interval: 50 * time.Millisecond, Progress: writerFunc(func() {
			if body == "" {
				scrape()
			}
		})})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, name := range []string{"agentmesh_loadgen_requests_total", "agentmesh_loadgen_latency_seconds",
		"agentmesh_loadgen_schedule_lag_seconds", "agentmesh_loadgen_target_rate", "agentmesh_loadgen_achieved_rate",
		"agentmesh_loadgen_lost_total", "go_goroutines", "process_"} {
		if !strings.Contains(body, name) {
			t.Errorf("metrics page lacks %s:\n%.500s", name, body)
		}
	}
}

// writerFunc calls f on every write (on the recorder's goroutine).
type writerFunc func()

func (w writerFunc) Write(p []byte) (int, error) {
	w()
	return len(p), nil
}
