// Package worker runs Agent Mesh's worker nodes: per role, a claimer moves
// batches of task ids from Redis into the worker's processing list and marks
// them active in PostgreSQL in one statement; executors run the role's
// handler; a group-committing completer records outcomes in PostgreSQL (one
// statement per batch, the next pipeline stage in the same transaction) and
// only then acks them in Redis. A heartbeat renews the worker's lease and
// publishes its health; the health gate stops claims over the soft memory
// limit.
//
// Shutdown order (senders before receivers): claimers stop first, executors
// finish what was claimed (bounded by ShutdownTimeout), the completer flushes
// on a context that outlives the signal, whatever is left is returned to the
// queue, and the heartbeat goes last, deregistering the worker.
package worker

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/health"
	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// Defaults of Config.
const (
	DefaultConcurrency       = 64
	DefaultClaimBatch        = 128
	DefaultFinishBatch       = 256
	DefaultFlushers          = 2
	DefaultLeaseTTL          = 15 * time.Second
	DefaultHeartbeatInterval = time.Second
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultRetryBase         = 200 * time.Millisecond
	DefaultRetryMax          = 30 * time.Second
)

// Config configures one worker process.
type Config struct {
	// ID identifies the worker; it must be unique. Defaults to
	// <hostname>-<pid>-<random>.
	ID string
	// Roles maps each role this worker serves to its concurrency (tasks run
	// at once). Defaults to every role at DefaultConcurrency (64).
	Roles map[task.Role]int
	// Handlers per role. Defaults to SimHandler(Work[role], FailRate).
	Handlers map[task.Role]Handler
	// Work is the simulated work per role for the default handlers. Defaults to none.
	Work map[task.Role]Work
	// FailRate is the default handlers' probability of failing an attempt. Defaults to 0.
	FailRate float64
	// ClaimBatch caps the ids moved per claim round trip. Defaults to 128.
	ClaimBatch int
	// FinishBatch caps the outcomes recorded per PostgreSQL statement. Defaults to 256.
	FinishBatch int
	// Flushers is how many finish statements may be in flight at once. Defaults to 2.
	Flushers int
	// LeaseTTL is how long the worker's claims survive without a heartbeat. Defaults to 15 s.
	LeaseTTL time.Duration
	// HeartbeatInterval defaults to 1 s.
	HeartbeatInterval time.Duration
	// ShutdownTimeout bounds how long in-flight work may run after the stop
	// signal; work still running then is interrupted and returned. Defaults to 30 s.
	ShutdownTimeout time.Duration
	// RetryBase and RetryMax shape the exponential backoff (with jitter) of
	// failed attempts. Default 200 ms and 30 s.
	RetryBase, RetryMax time.Duration
	// Health configures the RSS sampling and the backpressure gate.
	Health health.Config
	// Version is reported in heartbeats.
	Version string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.ID == "" {
		c.ID = NewID()
	}
	if len(c.Roles) == 0 {
		c.Roles = map[task.Role]int{}
		for _, r := range task.Roles {
			c.Roles[r] = DefaultConcurrency
		}
	}
	c.ClaimBatch = cmp.Or(c.ClaimBatch, DefaultClaimBatch)
	c.FinishBatch = cmp.Or(c.FinishBatch, DefaultFinishBatch)
	c.Flushers = cmp.Or(c.Flushers, DefaultFlushers)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, DefaultLeaseTTL)
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, DefaultHeartbeatInterval)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.RetryBase = cmp.Or(c.RetryBase, DefaultRetryBase)
	c.RetryMax = cmp.Or(c.RetryMax, DefaultRetryMax)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Handlers == nil {
		c.Handlers = map[task.Role]Handler{}
	}
	for r := range c.Roles {
		if c.Handlers[r] == nil {
			c.Handlers[r] = SimHandler(c.Work[r], c.FailRate)
		}
	}
	return c
}

func (c Config) validate() error {
	for r, n := range c.Roles {
		if !r.Valid() {
			return fmt.Errorf("worker: unknown role %q", r)
		}
		if n < 1 {
			return fmt.Errorf("worker: concurrency of %s is %d, want at least 1", r, n)
		}
	}
	switch {
	case c.FailRate < 0 || c.FailRate > 1:
		return fmt.Errorf("worker: fail rate %v outside [0,1]", c.FailRate)
	case c.HeartbeatInterval >= c.LeaseTTL:
		return fmt.Errorf("worker: heartbeat interval %s must be shorter than the lease %s", c.HeartbeatInterval, c.LeaseTTL)
	case c.ClaimBatch < 1 || c.FinishBatch < 1 || c.Flushers < 1:
		return errors.New("worker: claim batch, finish batch and flushers must be at least 1")
	}
	return nil
}

// NewID returns a worker id unique across hosts and restarts.
func NewID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Worker is one worker process's engine.
type Worker struct {
	cfg     Config
	q       *queue.Queue
	s       *store.Store
	m       *metrics.Worker
	health  *health.Monitor
	log     *slog.Logger
	roles   []task.Role
	started time.Time

	mu          sync.Mutex
	inflight    map[task.Role]int
	interrupted []uuid.UUID // stopped by the shutdown deadline, still active
}

// New builds a worker. m may be nil.
func New(q *queue.Queue, s *store.Store, cfg Config, m *metrics.Worker) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hc := cfg.Health
	hc.Logger = cmp.Or(hc.Logger, cfg.Logger)
	prev := hc.OnSample
	hc.OnSample = func(s health.Snapshot) {
		m.Health(s)
		if prev != nil {
			prev(s)
		}
	}
	mon, err := health.New(hc)
	if err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, q: q, s: s, m: m, health: mon, inflight: map[task.Role]int{},
		log: cfg.Logger.With(slog.String("worker", cfg.ID))}
	for _, r := range task.Roles {
		if _, ok := cfg.Roles[r]; ok {
			w.roles = append(w.roles, r)
		}
	}
	return w, nil
}

// ID returns the worker's id.
func (w *Worker) ID() string { return w.cfg.ID }

// Health returns the worker's health monitor.
func (w *Worker) Health() *health.Monitor { return w.health }

// job is one activated task on its way to an executor.
type job struct{ t task.Task }

// outcome is one executed task on its way to the completer.
type outcome struct {
	t   task.Task
	err error
}

// Run works until ctx is cancelled, then shuts down gracefully and returns
// nil, or the error that stopped it.
func (w *Worker) Run(ctx context.Context) error {
	w.started = time.Now()
	// Everything after the signal runs on contexts that outlive it.
	bg := context.WithoutCancel(ctx)
	hbCtx, stopHB := context.WithCancel(bg)
	var hbWG sync.WaitGroup
	hbWG.Add(2)
	go func() { defer hbWG.Done(); w.health.Run(hbCtx) }()
	if err := w.heartbeat(bg); err != nil {
		w.log.Warn("first heartbeat failed", slog.Any("err", err))
	}
	go func() { defer hbWG.Done(); w.heartbeatLoop(hbCtx) }()

	// Hard deadline for in-flight work, armed when ctx ends.
	workCtx, interrupt := context.WithCancelCause(bg)
	defer interrupt(nil)

	done := make(chan outcome, w.cfg.FinishBatch*w.cfg.Flushers)
	var flushWG sync.WaitGroup
	for range w.cfg.Flushers {
		flushWG.Add(1)
		go func() { defer flushWG.Done(); w.completer(bg, done) }()
	}

	var execWG, claimWG sync.WaitGroup
	for _, r := range w.roles {
		n := w.cfg.Roles[r]
		jobs := make(chan job, n)
		slots := make(chan struct{}, n)
		for range n {
			execWG.Add(1)
			go func() { defer execWG.Done(); w.executor(workCtx, r, jobs, slots, done) }()
		}
		claimWG.Add(1)
		go func() { defer claimWG.Done(); defer close(jobs); w.claimer(ctx, bg, r, jobs, slots) }()
	}
	w.log.Info("worker started", slog.Any("roles", w.cfg.Roles), slog.String("lease", w.cfg.LeaseTTL.String()))

	<-ctx.Done()
	w.log.Info("stopping: no new claims", slog.Any("cause", context.Cause(ctx)))
	timer := time.AfterFunc(w.cfg.ShutdownTimeout, func() {
		interrupt(fmt.Errorf("shutdown timeout %s passed", w.cfg.ShutdownTimeout))
	})
	defer timer.Stop()
	claimWG.Wait()
	execWG.Wait()
	close(done)
	flushWG.Wait()
	w.returnLeftovers(bg)
	stopHB()
	hbWG.Wait()
	if err := w.q.RemoveWorker(bg, w.cfg.ID, w.roles); err != nil {
		w.log.Warn("deregistering", slog.Any("err", err))
	}
	w.log.Info("worker stopped")
	return nil
}

// claimer moves batches from Redis to this worker, activates them in
// PostgreSQL and hands them to the role's executors. slots bounds what is
// claimed to what the executors can start.
func (w *Worker) claimer(ctx, bg context.Context, role task.Role, jobs chan<- job, slots chan struct{}) {
	var fails int
	for ctx.Err() == nil {
		if err := w.health.Wait(ctx); err != nil {
			return
		}
		n := w.acquire(ctx, slots)
		if n == 0 {
			return
		}
		items, err := w.q.Claim(ctx, role, w.cfg.ID, n)
		if err != nil {
			release(slots, n)
			if ctx.Err() != nil {
				return
			}
			w.m.BackendError("claim")
			fails++
			w.log.Warn("claim failed", slog.String("role", string(role)), slog.Any("err", err))
			sleepCtx(ctx, w.backoff(fails))
			continue
		}
		fails = 0
		if len(items) == 0 {
			release(slots, n)
			continue
		}
		w.m.ClaimBatch(len(items))
		// A claimed batch is activated and run even when the stop signal
		// arrives now: it is already in our processing list.
		tasks := w.activate(bg, role, items)
		release(slots, n-len(tasks))
		for _, t := range tasks {
			jobs <- job{t: t}
		}
	}
}

// acquire takes at least one slot (blocking) and then up to ClaimBatch.
func (w *Worker) acquire(ctx context.Context, slots chan struct{}) int {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < w.cfg.ClaimBatch {
		select {
		case slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func release(slots chan struct{}, n int) {
	for range n {
		<-slots
	}
}

// activate marks claimed ids active, retrying PostgreSQL errors; ids it does
// not return are no longer runnable (finished meanwhile, or a duplicate
// delivery) and are acked at once.
func (w *Worker) activate(ctx context.Context, role task.Role, items []queue.Item) []task.Task {
	ids := make([]uuid.UUID, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	var tasks []task.Task
	failures := w.retry(ctx, "activate", func() error {
		var err error
		tasks, err = w.s.Activate(ctx, w.cfg.ID, ids)
		return err
	})
	w.m.StoreBatch("activate", len(ids))
	if len(tasks) < len(items) {
		running := make(map[uuid.UUID]bool, len(tasks))
		for _, t := range tasks {
			running[t.ID] = true
		}
		seen := make(map[uuid.UUID]bool, len(items))
		var stale []queue.Item
		for _, it := range items {
			// The first copy of an id runs and is acked when it finishes. A
			// second copy in the same claim (a duplicate push: the rebuild
			// or the stale sweep re-pushed a pending id) is acked now, or it
			// would stay in the processing list for good.
			if seen[it.ID] {
				stale = append(stale, it)
				continue
			}
			seen[it.ID] = true
			if running[it.ID] {
				continue
			}
			// After a failed attempt the statement may have committed with
			// only its answer lost (PostgreSQL crashed, a connection broke):
			// such rows are active for us already and must run, or they
			// would stay active forever under a live worker.
			if failures > 0 {
				if t, ok := w.ownActive(ctx, it.ID); ok {
					tasks = append(tasks, t)
					continue
				}
			}
			stale = append(stale, it)
		}
		if len(stale) > 0 {
			w.retry(ctx, "ack", func() error { return w.q.Ack(ctx, w.cfg.ID, stale) })
		}
	}
	w.addInflight(role, len(tasks))
	events := make([]task.Event, len(tasks))
	now := time.Now()
	for i := range tasks {
		w.m.Started(&tasks[i])
		events[i] = tasks[i].Event(now)
	}
	w.publish(ctx, events)
	return tasks
}

// ownActive reports whether id is active for this worker in PostgreSQL.
func (w *Worker) ownActive(ctx context.Context, id uuid.UUID) (task.Task, bool) {
	t := w.getTask(ctx, id)
	return t, t.State == task.Active && t.WorkerID == w.cfg.ID
}

// getTask reads id from PostgreSQL, retrying errors; the zero Task when
// the row is gone.
func (w *Worker) getTask(ctx context.Context, id uuid.UUID) task.Task {
	var t task.Task
	w.retry(ctx, "get", func() error {
		var err error
		t, err = w.s.Get(ctx, id)
		if errors.Is(err, task.ErrNotFound) {
			return nil
		}
		return err
	})
	return t
}

// executor runs jobs of one role until jobs is closed.
func (w *Worker) executor(ctx context.Context, role task.Role, jobs <-chan job, slots chan struct{}, done chan<- outcome) {
	h := w.cfg.Handlers[role]
	for j := range jobs {
		err := h(ctx, &j.t)
		<-slots
		if ctx.Err() != nil && err != nil {
			// Interrupted by the shutdown deadline: not the task's fault.
			// returnLeftovers hands it back to the queue uncounted.
			w.mu.Lock()
			w.interrupted = append(w.interrupted, j.t.ID)
			w.mu.Unlock()
			w.addInflight(role, -1)
			continue
		}
		done <- outcome{t: j.t, err: err}
	}
}

func (w *Worker) addInflight(role task.Role, d int) {
	w.mu.Lock()
	w.inflight[role] += d
	w.mu.Unlock()
	w.m.Inflight(role, d)
}

// Inflight returns how many tasks this worker holds, per role.
func (w *Worker) Inflight() map[task.Role]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[task.Role]int, len(w.inflight))
	for r, n := range w.inflight {
		out[r] = n
	}
	return out
}

// backoff is the delay before retry number n (1-based) of a backend call.
func (w *Worker) backoff(n int) time.Duration {
	return Backoff(n, 50*time.Millisecond, 2*time.Second)
}

// retry runs op until it succeeds or ctx ends, backing off between attempts.
// It returns how many attempts failed.
func (w *Worker) retry(ctx context.Context, name string, op func() error) int {
	for n := 1; ; n++ {
		err := op()
		if err == nil || ctx.Err() != nil {
			return n - 1
		}
		w.m.BackendError(name)
		w.log.Warn("backend call failed; retrying", slog.String("op", name), slog.Int("attempt", n), slog.Any("err", err))
		sleepCtx(ctx, w.backoff(n))
	}
}

// publish sends events, retrying like any backend call: the transitions
// they announce are committed, and a Redis failover (the channel's node
// down for seconds) must not silence them. A PUBLISH retried after its
// connection broke may arrive twice, identical; consumers see the same
// event again, never a different one.
func (w *Worker) publish(ctx context.Context, events []task.Event) {
	w.retry(ctx, "publish", func() error { return w.q.Publish(ctx, events) })
}

// Backoff is exponential backoff with equal jitter: attempt n (1-based)
// waits between half and all of min(base·2^(n−1), max).
func Backoff(n int, base, maxD time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	half := d / 2
	return half + time.Duration(mrand.Int64N(int64(half)+1))
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
