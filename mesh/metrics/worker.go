package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentmesh/agentmesh/mesh/health"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// Worker is the set of collectors a worker process exposes.
type Worker struct {
	tasks        *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	queueWait    *prometheus.HistogramVec
	inflight     *prometheus.GaugeVec
	rss          prometheus.Gauge
	rssLimit     prometheus.Gauge
	score        prometheus.Gauge
	cpu          prometheus.Gauge
	paused       prometheus.Gauge
	pauses       prometheus.Counter
	lastPauses   uint64
	claimBatch   prometheus.Histogram
	storeBatch   *prometheus.HistogramVec
	reaped       prometheus.Counter
	promoted     prometheus.Counter
	recovered    *prometheus.CounterVec
	isLeader     prometheus.Gauge
	backendError *prometheus.CounterVec
}

// Outcomes a worker counts in agentmesh_worker_tasks_total.
const (
	OutcomeCompleted = "completed"
	OutcomeFailed    = "failed" // failed, a retry is scheduled
	OutcomeDead      = "dead"
	OutcomeStale     = "stale" // the finish did not apply: the lease was lost meanwhile
)

// NewWorker registers the worker collectors on reg.
func NewWorker(reg prometheus.Registerer) *Worker {
	batch := func(name, help string) prometheus.HistogramOpts {
		return prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help,
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}}
	}
	m := &Worker{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "worker_tasks_total",
			Help: "Tasks this worker finished, by role and outcome (completed, failed, dead, stale)."}, []string{"role", "outcome"}),
		latency: prometheus.NewHistogramVec(latencyOpts("task_latency_seconds",
			"Mesh latency: task created_at to completed_at, recorded at completion."), []string{"role"}),
		queueWait: prometheus.NewHistogramVec(latencyOpts("task_queue_wait_seconds",
			"Queue wait: task created_at (or retry due time) to started_at."), []string{"role"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "worker_inflight",
			Help: "Tasks claimed and not yet finished, by role."}, []string{"role"}),
		rss: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "worker_rss_bytes",
			Help: "Resident set size of the worker process, read with gopsutil."}),
		rssLimit: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "worker_rss_limit_bytes",
			Help: "The RSS at which the worker's HealthScore reaches 0."}),
		score: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "worker_health_score",
			Help: "HealthScore = 1 - RSS/limit, clamped to [0,1]."}),
		cpu: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "worker_cpu_ratio",
			Help: "CPU used by the worker process since the previous sample, in cores."}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "worker_paused",
			Help: "1 while the worker stopped claiming because RSS passed the soft limit."}),
		pauses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "worker_backpressure_pauses_total",
			Help: "Times the worker stopped claiming because RSS passed the soft limit."}),
		claimBatch: prometheus.NewHistogram(batch("worker_claim_batch_size", "Tasks moved per claim round trip.")),
		storeBatch: prometheus.NewHistogramVec(batch("worker_store_batch_size",
			"Tasks per PostgreSQL statement, by operation (activate, finish)."), []string{"op"}),
		reaped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "maintenance_reaped_total",
			Help: "Tasks returned to the queue (or dead-lettered) because their worker's lease expired."}),
		promoted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "maintenance_promoted_total",
			Help: "Retries moved from the delayed set to the pending lists."}),
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "maintenance_recovered_total",
			Help: "Tasks re-enqueued from PostgreSQL, by reason (redis_lost, stale_pending)."}, []string{"reason"}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "maintenance_leader",
			Help: "1 while this process runs the maintenance loop (reaper, promoter, recoverer)."}),
		backendError: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "worker_backend_errors_total",
			Help: "Failed calls to Redis or PostgreSQL, by operation; each is retried."}, []string{"op"}),
	}
	reg.MustRegister(m.tasks, m.latency, m.queueWait, m.inflight, m.rss, m.rssLimit, m.score, m.cpu,
		m.paused, m.pauses, m.claimBatch, m.storeBatch, m.reaped, m.promoted, m.recovered, m.isLeader, m.backendError)
	for _, r := range task.Roles {
		m.inflight.WithLabelValues(string(r))
		for _, o := range []string{OutcomeCompleted, OutcomeFailed, OutcomeDead, OutcomeStale} {
			m.tasks.WithLabelValues(string(r), o)
		}
	}
	for _, r := range []string{"redis_lost", "stale_pending"} {
		m.recovered.WithLabelValues(r)
	}
	return m
}

// Finished counts one finished task and, for completions, its mesh latency.
func (m *Worker) Finished(t *task.Task, outcome string) {
	if m == nil {
		return
	}
	m.tasks.WithLabelValues(string(t.Role), outcome).Inc()
	if outcome == OutcomeCompleted && t.CompletedAt != nil {
		m.latency.WithLabelValues(string(t.Role)).Observe(t.CompletedAt.Sub(t.CreatedAt).Seconds())
	}
}

// Started records a task's queue wait (from when it became due).
func (m *Worker) Started(t *task.Task) {
	if m == nil || t.StartedAt == nil {
		return
	}
	due := t.CreatedAt
	if t.RunAt != nil && t.RunAt.After(due) {
		due = *t.RunAt
	}
	m.queueWait.WithLabelValues(string(t.Role)).Observe(max(t.StartedAt.Sub(due), 0).Seconds())
}

// Inflight adds d to the in-flight gauge of role.
func (m *Worker) Inflight(role task.Role, d int) {
	if m == nil {
		return
	}
	m.inflight.WithLabelValues(string(role)).Add(float64(d))
}

// Health records one health sample.
func (m *Worker) Health(s health.Snapshot) {
	if m == nil {
		return
	}
	m.rss.Set(float64(s.RSS))
	m.rssLimit.Set(float64(s.Limit))
	m.score.Set(s.HealthScore)
	m.cpu.Set(s.CPUPercent / 100)
	if s.Paused {
		m.paused.Set(1)
	} else {
		m.paused.Set(0)
	}
	if s.Pauses > m.lastPauses { // OnSample runs on one goroutine
		m.pauses.Add(float64(s.Pauses - m.lastPauses))
		m.lastPauses = s.Pauses
	}
}

// ClaimBatch records the size of one claim.
func (m *Worker) ClaimBatch(n int) {
	if m == nil {
		return
	}
	m.claimBatch.Observe(float64(n))
}

// StoreBatch records the size of one store statement.
func (m *Worker) StoreBatch(op string, n int) {
	if m == nil {
		return
	}
	m.storeBatch.WithLabelValues(op).Observe(float64(n))
}

// Reaped counts tasks returned by the reaper.
func (m *Worker) Reaped(n int) {
	if m != nil {
		m.reaped.Add(float64(n))
	}
}

// Promoted counts retries promoted to pending.
func (m *Worker) Promoted(n int) {
	if m != nil {
		m.promoted.Add(float64(n))
	}
}

// Recovered counts tasks re-enqueued from PostgreSQL.
func (m *Worker) Recovered(reason string, n int) {
	if m != nil {
		m.recovered.WithLabelValues(reason).Add(float64(n))
	}
}

// Leader sets whether this process leads maintenance.
func (m *Worker) Leader(is bool) {
	if m == nil {
		return
	}
	if is {
		m.isLeader.Set(1)
	} else {
		m.isLeader.Set(0)
	}
}

// BackendError counts one failed backend call.
func (m *Worker) BackendError(op string) {
	if m != nil {
		m.backendError.WithLabelValues(op).Inc()
	}
}
