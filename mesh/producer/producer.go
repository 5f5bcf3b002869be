// Package producer is Agent Mesh's front door: the JSON HTTP API under
// /api/v1 (submit, batch, pipelines, lookups, dead letters, admission,
// simulation), the dashboard WebSocket and the load generator's completion
// stream (both fed by mesh/events), admission control, health and
// readiness, Prometheus metrics and the built dashboard (web/dist).
//
// # The submission path
//
// A submission is validated (422 naming the field), checked against the
// cached admission state (paused → 503, depth over its bound → 429, every
// live worker of the role over its soft memory limit → 503; see
// admission), then group-committed: concurrent requests share one
// store.Insert and one queue.Enqueue (see inserter). The answer is 202 with
// the task, 200 with the existing task for an idempotent resubmit
// (Idempotency-Key header or client_key, same body), 409 when the key holds
// a different request. Rejected requests write nothing.
//
// # Shutdown
//
// Run stops in this order, on a context that outlives the signal and is
// bounded by Config.ShutdownTimeout: the simulation generator; the
// WebSocket clients get a close frame while the HTTP server stops taking
// requests and waits for those in flight (http.Server.Shutdown); the
// inserters flush what is queued; then the event subscriber, the hub ticker
// and the admission refresher stop.
package producer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentmesh/agentmesh/mesh/events"
	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// Defaults of Config.
const (
	DefaultAddr              = ":8080"
	DefaultMaxBodyBytes      = 1 << 20
	DefaultMaxBatch          = 1000
	DefaultMaxDepth          = 100_000
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 15 * time.Second
	DefaultWebDir            = "web/dist"
	DefaultFlushInterval     = 100 * time.Millisecond
	DefaultInsertBatch       = 500
	DefaultInsertConcurrency = 2
	DefaultRefreshInterval   = 250 * time.Millisecond
	DefaultCountsInterval    = time.Second
	DefaultLiveWorkerAfter   = 5 * time.Second
	DefaultReadyTimeout      = time.Second
	DefaultRetryAfter        = time.Second
	DefaultPausedRetryAfter  = 5 * time.Second
)

// Config configures a Producer. Every zero field gets its default.
type Config struct {
	// Addr is the listen address of Run. Defaults to ":8080".
	Addr string
	// APIToken, when set, is required as "Authorization: Bearer <token>" on
	// every mutating route (POST, PUT, DELETE) and on both WebSockets (which
	// also accept ?token=). Compared in constant time. Defaults to none.
	APIToken string
	// AllowedOrigins lists the browser origins ("https://mesh.example.com")
	// allowed to open the WebSockets, besides the producer's own origin;
	// "*" allows any. When empty, only the same origin and local development
	// origins (http(s)://localhost, 127.0.0.1 or [::1] on any port) are
	// allowed. Requests without an Origin header (non-browser clients such
	// as the load generator) are always allowed; the token guards those.
	AllowedOrigins []string
	// MaxBodyBytes bounds a request body; larger bodies get 413 while being
	// read. Defaults to 1 MiB.
	MaxBodyBytes int64
	// MaxBatch bounds the tasks of one batch submission. Defaults to 1000.
	MaxBatch int
	// MaxDepth bounds the waiting tasks (pending + delayed) of each role;
	// submissions of a role at its bound get 429. Defaults to 100000.
	MaxDepth int64
	// HTTP server timeouts. Default 5 s, 30 s, 30 s and 120 s.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown of Run. Defaults to 15 s.
	ShutdownTimeout time.Duration
	// WebDir holds the built dashboard, served at / with index.html as the
	// fallback of unknown paths (a single-page app). When it does not exist,
	// / answers 404. Defaults to "web/dist".
	WebDir string
	// FlushInterval is the WebSocket coalescing tick. Defaults to 100 ms.
	FlushInterval time.Duration
	// InsertBatch caps the submissions of one group commit. Defaults to 500.
	InsertBatch int
	// InsertConcurrency is how many group commits may run at once, and how
	// many transactions of keyed batch submissions. Defaults to 2.
	InsertConcurrency int
	// InsertQueue bounds the tasks waiting for a group commit (single
	// submissions and keyless batches), and separately the tasks of keyed
	// batch submissions waiting for their transaction; past it submissions
	// get 429. Defaults to 4 × InsertBatch.
	InsertQueue int
	// RefreshInterval is how often the admission state, depths and workers
	// are re-read. Defaults to 250 ms.
	RefreshInterval time.Duration
	// CountsInterval is how often the dead-letter counts are re-read.
	// Defaults to 1 s.
	CountsInterval time.Duration
	// LiveWorkerAfter: a worker whose last heartbeat is older does not
	// count for admission. Defaults to 5 s.
	LiveWorkerAfter time.Duration
	// ReadyTimeout bounds each backend ping of /readyz. Defaults to 1 s.
	ReadyTimeout time.Duration
	// RetryAfter is sent with 429 and unhealthy 503 answers; PausedRetryAfter
	// with 503 while paused. Default 1 s and 5 s.
	RetryAfter, PausedRetryAfter time.Duration
	// Hub tunes the WebSocket fan-out; its Tick is FlushInterval and its
	// Logger and Now are the producer's.
	Hub events.Config
	// Subscriber tunes the Redis events subscription.
	Subscriber events.SubscriberConfig
	// Registry, when set, is served at /metrics, and New registers the
	// producer's collectors on it when not given a *metrics.Producer.
	Registry *prometheus.Registry
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Addr = cmp.Or(c.Addr, DefaultAddr)
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.MaxBatch = cmp.Or(c.MaxBatch, DefaultMaxBatch)
	c.MaxDepth = cmp.Or(c.MaxDepth, DefaultMaxDepth)
	c.ReadHeaderTimeout = cmp.Or(c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, DefaultReadTimeout)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, DefaultWriteTimeout)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, DefaultIdleTimeout)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.WebDir = cmp.Or(c.WebDir, DefaultWebDir)
	c.FlushInterval = cmp.Or(c.FlushInterval, DefaultFlushInterval)
	c.InsertBatch = cmp.Or(c.InsertBatch, DefaultInsertBatch)
	c.InsertConcurrency = cmp.Or(c.InsertConcurrency, DefaultInsertConcurrency)
	c.InsertQueue = cmp.Or(c.InsertQueue, 4*c.InsertBatch)
	c.RefreshInterval = cmp.Or(c.RefreshInterval, DefaultRefreshInterval)
	c.CountsInterval = cmp.Or(c.CountsInterval, DefaultCountsInterval)
	c.LiveWorkerAfter = cmp.Or(c.LiveWorkerAfter, DefaultLiveWorkerAfter)
	c.ReadyTimeout = cmp.Or(c.ReadyTimeout, DefaultReadyTimeout)
	c.RetryAfter = cmp.Or(c.RetryAfter, DefaultRetryAfter)
	c.PausedRetryAfter = cmp.Or(c.PausedRetryAfter, DefaultPausedRetryAfter)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Hub.Tick = c.FlushInterval
	c.Hub.Logger, c.Hub.Now = c.Logger, c.Now
	if c.Subscriber.Logger == nil {
		c.Subscriber.Logger = c.Logger
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.MaxBodyBytes < 1024:
		return fmt.Errorf("producer: MaxBodyBytes %d is below 1 KiB", c.MaxBodyBytes)
	case c.MaxBatch < 1 || c.MaxDepth < 1:
		return fmt.Errorf("producer: MaxBatch %d and MaxDepth %d must be positive", c.MaxBatch, c.MaxDepth)
	case c.InsertBatch < 1 || c.InsertConcurrency < 1 || c.InsertQueue < 1:
		return fmt.Errorf("producer: InsertBatch, InsertConcurrency and InsertQueue must be positive")
	case c.ReadHeaderTimeout < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0:
		return fmt.Errorf("producer: negative server timeout")
	case c.RefreshInterval < time.Millisecond || c.FlushInterval < time.Millisecond:
		return fmt.Errorf("producer: RefreshInterval and FlushInterval must be at least 1ms")
	}
	for _, o := range c.AllowedOrigins {
		if o == "" {
			return fmt.Errorf("producer: empty entry in AllowedOrigins")
		}
	}
	return c.Hub.WithDefaults().Validate()
}

// Producer serves the API. Create it with New; Run it, or Start it and
// serve Handler yourself, then Stop it.
type Producer struct {
	q   *queue.Queue
	s   *store.Store
	cfg Config
	m   *metrics.Producer
	log *slog.Logger

	hub   *events.Hub
	sub   *events.Subscriber
	adm   *admission
	tasks *inserter // single submissions
	pipes *inserter // pipeline starts
	sim   *simulator
	// announce carries pending events to the announcer goroutine.
	announce     chan []task.Event
	annDone      chan struct{}
	batchSem     chan struct{} // transactions of the batch path in flight
	batchWaiting atomic.Int64  // tasks in the batch path, waiting or inserting
	annMu        sync.RWMutex  // held for reading while sending on announce
	annClosed    bool
	handler      http.Handler
	promHandler  http.Handler
	ws           websocket.Upgrader
	token        [32]byte // sha256 of APIToken

	started  atomic.Bool
	stopOnce sync.Once
	cancel   context.CancelFunc
	bg       sync.WaitGroup
}

// New returns a Producer on an existing queue and store (which it does not
// close). m may be nil: then, when cfg.Registry is set, New registers the
// producer's collectors (and the scrape-time collector of q and s) on it.
func New(q *queue.Queue, s *store.Store, cfg Config, m *metrics.Producer) (*Producer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if q == nil || s == nil {
		return nil, errors.New("producer: New needs a queue and a store")
	}
	if m == nil && cfg.Registry != nil {
		m = metrics.NewProducer(cfg.Registry, q, s)
	}
	p := &Producer{q: q, s: s, cfg: cfg, m: m, log: cfg.Logger, token: sha256.Sum256([]byte(cfg.APIToken))}
	p.adm = newAdmission(q, s, &p.cfg, m)
	hub, err := events.NewHub(cfg.Hub, p.adm, m)
	if err != nil {
		return nil, err
	}
	p.hub = hub
	p.sub = events.NewSubscriber(q, hub.Ingest, cfg.Subscriber, m)
	p.tasks, p.pipes = newInserter(p, false), newInserter(p, true)
	p.announce, p.annDone = make(chan []task.Event, announceQueue), make(chan struct{})
	p.batchSem = make(chan struct{}, cfg.InsertConcurrency)
	p.sim = &simulator{p: p}
	p.ws = websocket.Upgrader{
		ReadBufferSize: 1024, WriteBufferSize: 16 << 10, WriteBufferPool: &sync.Pool{},
		HandshakeTimeout: 5 * time.Second,
		CheckOrigin:      func(*http.Request) bool { return true }, // checked before the upgrade
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			writeError(w, &apiError{Status: status, Code: CodeBadJSON, Message: "websocket: " + reason.Error()})
		},
	}
	p.promHandler = newPromHandler(cfg.Registry)
	p.handler = p.routes()
	return p, nil
}

// Handler is the producer's HTTP handler: API, WebSockets, health,
// metrics and the dashboard. Serve it only between Start and Stop.
func (p *Producer) Handler() http.Handler { return p.handler }

// Hub is the WebSocket fan-out (for embedding and tests).
func (p *Producer) Hub() *events.Hub { return p.hub }

// Start runs the background parts: the admission refresher, the events
// subscriber, the hub's ticker and the group-commit inserters. They run
// until Stop; ctx only carries values.
func (p *Producer) Start(ctx context.Context) {
	if !p.started.CompareAndSwap(false, true) {
		return
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	p.adm.refresh(bg) // admission and /stats start from real values
	p.adm.refreshDead(bg)
	for _, run := range []func(context.Context){p.adm.run, p.sub.Run, p.hub.Run} {
		p.bg.Add(1)
		go func() { defer p.bg.Done(); run(bg) }()
	}
	go func() { defer close(p.annDone); p.announcer() }()
	p.tasks.start()
	p.pipes.start()
}

// Stop shuts the background parts down in order — the simulation, the
// WebSocket clients (close frames), the inserters (flushing what is
// queued), the announcer of pending events, then the loops — and returns when done or when ctx ends. Call it
// after the HTTP server stopped taking requests.
func (p *Producer) Stop(ctx context.Context) error {
	if !p.started.Load() {
		return nil
	}
	var err error
	p.stopOnce.Do(func() {
		p.sim.stop()
		err = p.hub.Close(ctx)
		done := make(chan struct{})
		go func() {
			p.tasks.close()
			p.pipes.close()
			p.annMu.Lock()
			p.annClosed = true
			close(p.announce) // after the inserters; a late handler's events are dropped
			p.annMu.Unlock()
			<-p.annDone
			p.cancel()
			p.bg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = errors.Join(err, fmt.Errorf("producer: stopping: %w", context.Cause(ctx)))
		}
	})
	return err
}

// Run listens on Config.Addr and serves until ctx ends, then shuts down
// gracefully (see the package doc).
func (p *Producer) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", p.cfg.Addr)
	if err != nil {
		return fmt.Errorf("producer: listening on %s: %w", p.cfg.Addr, err)
	}
	return p.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened.
func (p *Producer) Serve(ctx context.Context, ln net.Listener) error {
	p.Start(ctx)
	srv := &http.Server{
		Handler: p.handler, ReadHeaderTimeout: p.cfg.ReadHeaderTimeout, ReadTimeout: p.cfg.ReadTimeout,
		WriteTimeout: p.cfg.WriteTimeout, IdleTimeout: p.cfg.IdleTimeout, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	p.log.Info("producer listening", slog.String("addr", ln.Addr().String()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.ShutdownTimeout)
	defer cancel()
	p.sim.stop()
	var wg sync.WaitGroup
	var hubErr error
	wg.Add(1)
	go func() { defer wg.Done(); hubErr = p.hub.Close(sctx) }()
	shutErr := srv.Shutdown(sctx)
	wg.Wait()
	stopErr := p.Stop(sctx)
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	p.log.Info("producer stopped")
	return errors.Join(serveErr, shutErr, hubErr, stopErr)
}

// outcome counts n submissions of role and their result in the metrics and
// the hub's totals; ae nil means accepted.
func (p *Producer) outcome(role task.Role, n int, ae *apiError) {
	p.m.Submitted(role, n)
	if ae == nil {
		p.m.Accepted(role, n)
		p.hub.CountSubmissions(n, n, 0)
		return
	}
	reason := cmp.Or(ae.Reason, metrics.ReasonInvalid)
	p.m.Rejected(role, reason, n)
	p.hub.CountSubmissions(n, 0, n)
}
