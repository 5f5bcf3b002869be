package metrics

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// Reasons a submission is rejected, the reason label of
// agentmesh_tasks_rejected_total.
const (
	ReasonInvalid    = "invalid"    // 400, 415 and 422: the request was malformed
	ReasonOverloaded = "overloaded" // 429: depth over its bound, or the insert queue is full
	ReasonUnhealthy  = "unhealthy"  // 503: every live worker of the role is over its soft limit
	ReasonPaused     = "paused"     // 503: an operator paused admission
	ReasonConflict   = "conflict"   // 409: idempotency key reused with a different body
	ReasonTooLarge   = "too_large"  // 413
	ReasonError      = "error"      // a backend failed
)

// Streams of the producer's WebSockets, the stream label of
// agentmesh_ws_clients and agentmesh_ws_disconnects_total.
const (
	StreamUI          = "ui"          // GET /ws, the coalesced dashboard stream
	StreamCompletions = "completions" // GET /ws/completions, the load generator's stream
)

// Admission states, the state label of agentmesh_admission_state.
var AdmissionStates = []string{"open", "overloaded", "unhealthy", "paused"}

// DefaultCollectTimeout bounds the backend reads of one scrape.
const DefaultCollectTimeout = time.Second

// MeshReader is what the scrape-time collector reads from Redis;
// *queue.Queue implements it.
type MeshReader interface {
	Depths(ctx context.Context) (map[task.Role]queue.Depth, error)
	Workers(ctx context.Context) ([]queue.WorkerInfo, error)
}

// DeadCounter is what the scrape-time collector reads from PostgreSQL;
// *store.Store implements it.
type DeadCounter interface {
	Counts(ctx context.Context) (map[task.Role]map[task.State]int64, error)
}

// Producer is the set of collectors a producer process exposes. Every method
// is safe on a nil *Producer.
type Producer struct {
	submitted     *prometheus.CounterVec
	accepted      *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	wsClients     *prometheus.GaugeVec
	wsFrames      prometheus.Counter
	wsEvents      prometheus.Histogram
	wsDropped     prometheus.Counter
	wsDisconnects *prometheus.CounterVec
	admission     *prometheus.GaugeVec
	enqueueFailed prometheus.Counter
	insertBatch   prometheus.Histogram
	events        prometheus.Counter
	subscriptions prometheus.Counter
	collectErrors *prometheus.CounterVec
}

// NewProducer registers the producer collectors on reg. When q or s is not
// nil it also registers the scrape-time collector: queue depth and worker
// health from q (Redis), dead letters from s (PostgreSQL), each read with
// DefaultCollectTimeout so that a hung backend cannot hang a scrape.
func NewProducer(reg prometheus.Registerer, q MeshReader, s DeadCounter) *Producer {
	m := newProducerCollectors()
	reg.MustRegister(m.submitted, m.accepted, m.rejected, m.httpDuration, m.wsClients, m.wsFrames,
		m.wsEvents, m.wsDropped, m.wsDisconnects, m.admission, m.enqueueFailed, m.insertBatch,
		m.events, m.subscriptions, m.collectErrors)
	if q != nil || s != nil {
		reg.MustRegister(&MeshCollector{Queue: q, Store: s, Timeout: DefaultCollectTimeout, errors: m.collectErrors})
	}
	m.preset()
	return m
}

func newProducerCollectors() *Producer {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	return &Producer{
		submitted: counter("tasks_submitted_total", "Tasks submitted to the producer, valid or not, by role (\"unknown\" when the role is not one).", "role"),
		accepted:  counter("tasks_accepted_total", "Tasks the producer answered with 2xx (new, or an idempotent resubmit), by role.", "role"),
		rejected: counter("tasks_rejected_total",
			"Tasks the producer refused, by role and reason (invalid, overloaded, unhealthy, paused, conflict, too_large, error).", "role", "reason"),
		httpDuration: prometheus.NewHistogramVec(latencyOpts("http_request_duration_seconds",
			"Time to answer an HTTP request, by route pattern, method and status code."), []string{"route", "method", "code"}),
		wsClients: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "ws_clients",
			Help: "Connected WebSocket clients, by stream (ui, completions)."}, []string{"stream"}),
		wsFrames: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "ws_frames_total",
			Help: "Frames written to dashboard WebSocket clients (snapshots and batches)."}),
		wsEvents: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "ws_events_per_frame",
			Help:    "Raw task events one coalesced batch frame covered (observed once per tick).",
			Buckets: []float64{1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000}}),
		wsDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "ws_dropped_frames_total",
			Help: "Frames not queued for a dashboard client because its send buffer was full."}),
		wsDisconnects: counter("ws_disconnects_total",
			"WebSocket clients that went away, by stream and reason (closed, slow, write_error, shutdown).", "stream", "reason"),
		admission: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "admission_state",
			Help: "1 for the producer's current admission state (open, overloaded, unhealthy, paused), 0 for the others."}, []string{"state"}),
		enqueueFailed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "producer_enqueue_failures_total",
			Help: "Accepted tasks whose push to Redis failed after the commit; the maintenance sweeper re-pushes them."}),
		insertBatch: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "producer_insert_batch_size",
			Help:    "Submissions group-committed per PostgreSQL statement.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "producer_events_total",
			Help: "Task events the producer received from the Redis events channel."}),
		subscriptions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "producer_event_subscriptions_total",
			Help: "Times the producer (re)subscribed to the Redis events channel."}),
		collectErrors: counter("producer_collect_errors_total",
			"Scrape-time reads that failed or timed out, by source (depths, workers, counts); their metrics are left out of that scrape.", "source"),
	}
}

// preset creates the series of every known label value, so rates start at 0.
func (m *Producer) preset() {
	for _, r := range task.Roles {
		m.submitted.WithLabelValues(string(r))
		m.accepted.WithLabelValues(string(r))
	}
	for _, s := range []string{StreamUI, StreamCompletions} {
		m.wsClients.WithLabelValues(s)
	}
	for _, s := range AdmissionStates {
		m.admission.WithLabelValues(s)
	}
	m.admission.WithLabelValues("open").Set(1)
}

func roleLabel(r task.Role) string {
	if r.Valid() {
		return string(r)
	}
	return "unknown"
}

// Submitted counts n submissions of role.
func (m *Producer) Submitted(r task.Role, n int) {
	if m != nil && n > 0 {
		m.submitted.WithLabelValues(roleLabel(r)).Add(float64(n))
	}
}

// Accepted counts n submissions of role answered with 2xx.
func (m *Producer) Accepted(r task.Role, n int) {
	if m != nil && n > 0 {
		m.accepted.WithLabelValues(roleLabel(r)).Add(float64(n))
	}
}

// Rejected counts n submissions of role refused for reason.
func (m *Producer) Rejected(r task.Role, reason string, n int) {
	if m != nil && n > 0 {
		m.rejected.WithLabelValues(roleLabel(r), reason).Add(float64(n))
	}
}

// Request records one HTTP request's duration.
func (m *Producer) Request(route, method string, code int, d time.Duration) {
	if m != nil {
		m.httpDuration.WithLabelValues(route, method, strconv.Itoa(code)).Observe(d.Seconds())
	}
}

// WSClients adds d to the connected clients of stream.
func (m *Producer) WSClients(stream string, d int) {
	if m != nil {
		m.wsClients.WithLabelValues(stream).Add(float64(d))
	}
}

// WSFrames counts n frames written to dashboard clients.
func (m *Producer) WSFrames(n int) {
	if m != nil && n > 0 {
		m.wsFrames.Add(float64(n))
	}
}

// WSTick records how many raw events one batch frame covered.
func (m *Producer) WSTick(events int) {
	if m != nil {
		m.wsEvents.Observe(float64(events))
	}
}

// WSDropped counts one frame dropped for a slow client.
func (m *Producer) WSDropped() {
	if m != nil {
		m.wsDropped.Inc()
	}
}

// WSDisconnect counts one client of stream that went away for reason.
func (m *Producer) WSDisconnect(stream, reason string) {
	if m != nil {
		m.wsDisconnects.WithLabelValues(stream, reason).Inc()
	}
}

// Admission sets the current admission state (one of AdmissionStates).
func (m *Producer) Admission(state string) {
	if m == nil {
		return
	}
	for _, s := range AdmissionStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.admission.WithLabelValues(s).Set(v)
	}
}

// EnqueueFailed counts n accepted tasks whose Redis push failed.
func (m *Producer) EnqueueFailed(n int) {
	if m != nil && n > 0 {
		m.enqueueFailed.Add(float64(n))
	}
}

// InsertBatch records the size of one group commit.
func (m *Producer) InsertBatch(n int) {
	if m != nil {
		m.insertBatch.Observe(float64(n))
	}
}

// Events counts n events received from Redis.
func (m *Producer) Events(n int) {
	if m != nil && n > 0 {
		m.events.Add(float64(n))
	}
}

// Subscribed counts one (re)subscription to the events channel.
func (m *Producer) Subscribed() {
	if m != nil {
		m.subscriptions.Inc()
	}
}

// MeshCollector reads, at scrape time, the values that live in the backends:
// agentmesh_queue_depth{role,state} and agentmesh_mesh_worker_rss_bytes /
// agentmesh_mesh_worker_health_score{worker} from Redis, and
// agentmesh_dead_letters{role} from PostgreSQL. The reads run concurrently
// and each is abandoned after Timeout: its metrics are then left out of that
// scrape and agentmesh_producer_collect_errors_total{source} counts it.
type MeshCollector struct {
	Queue   MeshReader  // nil: no depth or worker metrics
	Store   DeadCounter // nil: no dead-letter metric
	Timeout time.Duration
	Logger  *slog.Logger
	errors  *prometheus.CounterVec
}

var (
	depthDesc = prometheus.NewDesc(Namespace+"_queue_depth",
		"Tasks in Redis by role and state (pending, active, delayed), read at scrape time.", []string{"role", "state"}, nil)
	deadDesc = prometheus.NewDesc(Namespace+"_dead_letters",
		"Dead-lettered tasks by role, counted in PostgreSQL at scrape time.", []string{"role"}, nil)
	workerRSSDesc = prometheus.NewDesc(Namespace+"_mesh_worker_rss_bytes",
		"RSS of each live worker, from its latest heartbeat.", []string{"worker"}, nil)
	workerScoreDesc = prometheus.NewDesc(Namespace+"_mesh_worker_health_score",
		"HealthScore (1 - RSS/limit) of each live worker, from its latest heartbeat.", []string{"worker"}, nil)
)

// Describe implements prometheus.Collector.
func (c *MeshCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- depthDesc
	ch <- deadDesc
	ch <- workerRSSDesc
	ch <- workerScoreDesc
}

// Collect implements prometheus.Collector.
func (c *MeshCollector) Collect(ch chan<- prometheus.Metric) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultCollectTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var (
		mu  sync.Mutex
		out []prometheus.Metric
		wg  sync.WaitGroup
	)
	run := func(source string, read func(context.Context) ([]prometheus.Metric, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms, err := withTimeout(ctx, read)
			if err != nil {
				c.failed(source, err)
				return
			}
			mu.Lock()
			out = append(out, ms...)
			mu.Unlock()
		}()
	}
	if c.Queue != nil {
		run("depths", c.depths)
		run("workers", c.workers)
	}
	if c.Store != nil {
		run("counts", c.dead)
	}
	wg.Wait()
	for _, m := range out {
		ch <- m
	}
}

// withTimeout runs read and gives up when ctx ends even if read does not
// return (a client that ignores its context); read then finishes alone.
func withTimeout(ctx context.Context, read func(context.Context) ([]prometheus.Metric, error)) ([]prometheus.Metric, error) {
	type result struct {
		ms  []prometheus.Metric
		err error
	}
	done := make(chan result, 1)
	go func() {
		ms, err := read(ctx)
		done <- result{ms, err}
	}()
	select {
	case r := <-done:
		return r.ms, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *MeshCollector) failed(source string, err error) {
	if c.errors != nil {
		c.errors.WithLabelValues(source).Inc()
	}
	if c.Logger != nil {
		c.Logger.Debug("scrape-time read failed", slog.String("source", source), slog.Any("err", err))
	}
}

func (c *MeshCollector) depths(ctx context.Context) ([]prometheus.Metric, error) {
	ds, err := c.Queue.Depths(ctx)
	if err != nil {
		return nil, err
	}
	var out []prometheus.Metric
	for _, r := range task.Roles {
		d := ds[r]
		var pending int64
		for _, n := range d.Pending {
			pending += n
		}
		for _, s := range []struct {
			state string
			n     int64
		}{{"pending", pending}, {"active", d.Active}, {"delayed", d.Delayed}} {
			out = append(out, prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(s.n), string(r), s.state))
		}
	}
	return out, nil
}

func (c *MeshCollector) workers(ctx context.Context) ([]prometheus.Metric, error) {
	ws, err := c.Queue.Workers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]prometheus.Metric, 0, 2*len(ws))
	for _, w := range ws {
		out = append(out,
			prometheus.MustNewConstMetric(workerRSSDesc, prometheus.GaugeValue, float64(w.RSSBytes), w.ID),
			prometheus.MustNewConstMetric(workerScoreDesc, prometheus.GaugeValue, w.HealthScore, w.ID))
	}
	return out, nil
}

func (c *MeshCollector) dead(ctx context.Context) ([]prometheus.Metric, error) {
	counts, err := c.Store.Counts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]prometheus.Metric, 0, len(task.Roles))
	for _, r := range task.Roles {
		out = append(out, prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(counts[r][task.Dead]), string(r)))
	}
	return out, nil
}
