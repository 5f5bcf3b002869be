package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/goleak"

	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// fakeMesh answers the scrape-time reads; block makes them hang until
// released, ignoring their context like a client stuck on a dead socket.
type fakeMesh struct {
	block chan struct{}
	err   error
}

func (f *fakeMesh) wait() {
	if f.block != nil {
		<-f.block
	}
}

func (f *fakeMesh) Depths(context.Context) (map[task.Role]queue.Depth, error) {
	f.wait()
	return map[task.Role]queue.Depth{task.QA: {Pending: [4]int64{1, 2, 3, 4}, Active: 5, Delayed: 6}}, f.err
}

func (f *fakeMesh) Workers(context.Context) ([]queue.WorkerInfo, error) {
	f.wait()
	return []queue.WorkerInfo{{ID: "w1", RSSBytes: 1 << 20, HealthScore: 0.75}}, f.err
}

func (f *fakeMesh) Counts(context.Context) (map[task.Role]map[task.State]int64, error) {
	f.wait()
	return map[task.Role]map[task.State]int64{task.Architect: {task.Dead: 7}}, f.err
}

func TestProducerMetricsLint(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	m := metrics.NewProducer(reg, &fakeMesh{}, &fakeMesh{})
	m.Submitted(task.QA, 1)
	m.Rejected("bogus", metrics.ReasonInvalid, 1)
	m.Request("/api/v1/tasks", "POST", 202, time.Millisecond)
	m.WSDisconnect(metrics.StreamUI, "slow")
	m.WSTick(10)
	m.InsertBatch(3)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "agentmesh_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestProducerCounters(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.NewProducer(reg, nil, nil)
	m.Submitted(task.QA, 3)
	m.Accepted(task.QA, 2)
	m.Rejected(task.QA, metrics.ReasonOverloaded, 1)
	m.Rejected("nope", metrics.ReasonInvalid, 1)
	m.Admission("paused")
	want := `
# HELP agentmesh_tasks_rejected_total Tasks the producer refused, by role and reason (invalid, overloaded, unhealthy, paused, conflict, too_large, error).
# TYPE agentmesh_tasks_rejected_total counter
agentmesh_tasks_rejected_total{reason="invalid",role="unknown"} 1
agentmesh_tasks_rejected_total{reason="overloaded",role="QA"} 1
# HELP agentmesh_admission_state 1 for the producer's current admission state (open, overloaded, unhealthy, paused), 0 for the others.
# TYPE agentmesh_admission_state gauge
agentmesh_admission_state{state="open"} 0
agentmesh_admission_state{state="overloaded"} 0
agentmesh_admission_state{state="paused"} 1
agentmesh_admission_state{state="unhealthy"} 0
# HELP agentmesh_tasks_accepted_total Tasks the producer answered with 2xx (new, or an idempotent resubmit), by role.
# TYPE agentmesh_tasks_accepted_total counter
agentmesh_tasks_accepted_total{role="ARCHITECT"} 0
agentmesh_tasks_accepted_total{role="DEVELOPER"} 0
agentmesh_tasks_accepted_total{role="QA"} 2
`
	if err := gatherAndCompare(reg, want,
		"agentmesh_tasks_rejected_total", "agentmesh_admission_state", "agentmesh_tasks_accepted_total"); err != nil {
		t.Fatal(err)
	}
}

func TestMeshCollector(t *testing.T) {
	t.Parallel()
	f := &fakeMesh{}
	c := &metrics.MeshCollector{Queue: f, Store: f, Timeout: time.Second}
	want := `
# HELP agentmesh_queue_depth Tasks in Redis by role and state (pending, active, delayed), read at scrape time.
# TYPE agentmesh_queue_depth gauge
agentmesh_queue_depth{role="ARCHITECT",state="active"} 0
agentmesh_queue_depth{role="ARCHITECT",state="delayed"} 0
agentmesh_queue_depth{role="ARCHITECT",state="pending"} 0
agentmesh_queue_depth{role="DEVELOPER",state="active"} 0
agentmesh_queue_depth{role="DEVELOPER",state="delayed"} 0
agentmesh_queue_depth{role="DEVELOPER",state="pending"} 0
agentmesh_queue_depth{role="QA",state="active"} 5
agentmesh_queue_depth{role="QA",state="delayed"} 6
agentmesh_queue_depth{role="QA",state="pending"} 10
# HELP agentmesh_dead_letters Dead-lettered tasks by role, counted in PostgreSQL at scrape time.
# TYPE agentmesh_dead_letters gauge
agentmesh_dead_letters{role="ARCHITECT"} 7
agentmesh_dead_letters{role="DEVELOPER"} 0
agentmesh_dead_letters{role="QA"} 0
# HELP agentmesh_mesh_worker_rss_bytes RSS of each live worker, from its latest heartbeat.
# TYPE agentmesh_mesh_worker_rss_bytes gauge
agentmesh_mesh_worker_rss_bytes{worker="w1"} 1.048576e+06
# HELP agentmesh_mesh_worker_health_score HealthScore (1 - RSS/limit) of each live worker, from its latest heartbeat.
# TYPE agentmesh_mesh_worker_health_score gauge
agentmesh_mesh_worker_health_score{worker="w1"} 0.75
`
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if err := gatherAndCompare(reg, want); err != nil {
		t.Fatal(err)
	}
}

// A hung backend cannot hang a scrape: its metrics are left out after the
// timeout and the error is counted.
func TestMeshCollectorHungBackend(t *testing.T) {
	defer goleak.VerifyNone(t)
	hung := &fakeMesh{block: make(chan struct{})}
	reg := prometheus.NewRegistry()
	metrics.NewProducer(reg, hung, &fakeMesh{err: errors.New("boom")})
	start := time.Now()
	text, err := gatherText(reg, "agentmesh_queue_depth", "agentmesh_dead_letters", "agentmesh_mesh_worker_rss_bytes")
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(text, "\nagentmesh_")
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("scrape took %s with a hung backend", took)
	}
	if n != 0 {
		t.Fatalf("%d backend series collected, want none", n)
	}
	close(hung.block) // let the abandoned reads finish
	// The counter is gathered concurrently with the collector that bumps
	// it, so a scrape may show the previous value: every source must show
	// an error by the second scrape.
	text, err = gatherText(reg, "agentmesh_producer_collect_errors_total")
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"depths", "workers", "counts"} {
		if !strings.Contains(text, `{source="`+src+`"} `) {
			t.Errorf("no collect error counted for %s:\n%s", src, text)
		}
	}
}

func TestNilProducerIsSafe(t *testing.T) {
	t.Parallel()
	var m *metrics.Producer
	m.Submitted(task.QA, 1)
	m.Accepted(task.QA, 1)
	m.Rejected(task.QA, metrics.ReasonError, 1)
	m.Request("/", "GET", 200, 0)
	m.WSClients(metrics.StreamUI, 1)
	m.WSFrames(1)
	m.WSTick(1)
	m.WSDropped()
	m.WSDisconnect(metrics.StreamUI, "closed")
	m.Admission("open")
	m.EnqueueFailed(1)
	m.InsertBatch(1)
	m.Events(1)
	m.Subscribed()
}

// gatherText renders the families named (all when none) in the text format,
// sorted, as testutil.GatherAndCompare would compare them. (testutil itself
// needs github.com/kylelemons/godebug, which go.sum does not hold.)
func gatherText(g prometheus.Gatherer, names ...string) (string, error) {
	mfs, err := g.Gather()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, mf := range mfs {
		if len(names) > 0 && !slices.Contains(names, mf.GetName()) {
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// gatherAndCompare compares the families named with want (text format; the
// order of families does not matter).
func gatherAndCompare(g prometheus.Gatherer, want string, names ...string) error {
	got, err := gatherText(g, names...)
	if err != nil {
		return err
	}
	norm := func(s string) string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		slices.Sort(lines)
		return strings.Join(lines, "\n")
	}
	if norm(got) != norm(want) {
		return fmt.Errorf("metrics differ:\n--- got\n%s\n--- want\n%s", got, strings.TrimSpace(want))
	}
	return nil
}
