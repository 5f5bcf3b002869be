// Package maintenance keeps the queue honest. One process at a time — the
// leader, elected through a Redis key with a TTL — runs four jobs:
//
//   - the promoter moves retries whose backoff has passed from the delayed
//     sets to the pending lists;
//   - the reaper finds workers whose lease expired (no heartbeat), returns
//     their active rows to pending in PostgreSQL (dead-lettering those on
//     their last attempt) and pushes their processing lists back;
//   - the recoverer notices a Redis that lost its data (the epoch key is
//     gone) and rebuilds the queues from PostgreSQL, the source of truth;
//   - the sweeper re-pushes pending rows that sat untouched for StaleAfter
//     (a crash between a commit and its Redis push leaves such rows). A
//     duplicate id in Redis is harmless: activation is conditional.
//
// And, when the PostgreSQL server runs without autovacuum, the vacuumer
// vacuums the tasks table once VacuumMinDead dead tuples piled up: every
// transition leaves one, and scans of the open states (admission's counts)
// slow down with each until something reclaims them.
//
// Every process may run a Maintainer; only the leader works.
package maintenance

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// Defaults of Config.
const (
	DefaultLeaderTTL       = 5 * time.Second
	DefaultPromoteInterval = 100 * time.Millisecond
	DefaultReapInterval    = time.Second
	DefaultRecoverInterval = time.Second
	DefaultStaleAfter      = time.Minute
	DefaultBatch           = 1000
	DefaultVacuumInterval  = 10 * time.Second
	DefaultVacuumMinDead   = 10000
)

// Config configures a Maintainer.
type Config struct {
	// ID names this process in the leader election; use the worker id.
	ID string
	// LeaderTTL is how long leadership survives without renewal. Defaults to 5 s.
	LeaderTTL time.Duration
	// PromoteInterval is how often due retries are promoted. Defaults to 100 ms.
	PromoteInterval time.Duration
	// ReapInterval is how often expired leases are reaped. Defaults to 1 s.
	ReapInterval time.Duration
	// RecoverInterval is how often the Redis epoch is checked. Defaults to 1 s.
	RecoverInterval time.Duration
	// StaleAfter is how long a pending row may sit untouched before it is
	// pushed to Redis again. Defaults to 1 minute.
	StaleAfter time.Duration
	// Batch caps the rows handled per statement. Defaults to 1000.
	Batch int
	// VacuumInterval is how often the vacuumer looks at the tasks table's
	// dead tuples. Defaults to 10 s.
	VacuumInterval time.Duration
	// VacuumMinDead is how many dead tuples make the vacuumer vacuum, when
	// the server's autovacuum is off. Defaults to 10,000.
	VacuumMinDead int64
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.LeaderTTL = cmp.Or(c.LeaderTTL, DefaultLeaderTTL)
	c.PromoteInterval = cmp.Or(c.PromoteInterval, DefaultPromoteInterval)
	c.ReapInterval = cmp.Or(c.ReapInterval, DefaultReapInterval)
	c.RecoverInterval = cmp.Or(c.RecoverInterval, DefaultRecoverInterval)
	c.StaleAfter = cmp.Or(c.StaleAfter, DefaultStaleAfter)
	c.Batch = cmp.Or(c.Batch, DefaultBatch)
	c.VacuumInterval = cmp.Or(c.VacuumInterval, DefaultVacuumInterval)
	c.VacuumMinDead = cmp.Or(c.VacuumMinDead, DefaultVacuumMinDead)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Maintainer runs the maintenance jobs while it leads.
type Maintainer struct {
	cfg Config
	q   *queue.Queue
	s   *store.Store
	m   *metrics.Worker
	log *slog.Logger

	toldNoAutovacuum atomic.Bool // the "vacuuming ourselves" notice is logged once
}

// New returns a Maintainer. m may be nil.
func New(q *queue.Queue, s *store.Store, cfg Config, m *metrics.Worker) *Maintainer {
	cfg = cfg.WithDefaults()
	return &Maintainer{cfg: cfg, q: q, s: s, m: m, log: cfg.Logger.With(slog.String("component", "maintenance"))}
}

// Run campaigns for leadership and, while leading, runs the jobs, until ctx ends.
func (mt *Maintainer) Run(ctx context.Context) {
	tick := func(d time.Duration) *time.Ticker { return time.NewTicker(d) }
	elect, promote, reap, recoverT, sweep := tick(mt.cfg.LeaderTTL/3), tick(mt.cfg.PromoteInterval),
		tick(mt.cfg.ReapInterval), tick(mt.cfg.RecoverInterval), tick(mt.cfg.StaleAfter/2)
	defer func() {
		for _, t := range []*time.Ticker{elect, promote, reap, recoverT, sweep} {
			t.Stop()
		}
	}()
	var leading atomic.Bool // the vacuumer reads it too: a VACUUM must not hold up this loop
	leading.Store(mt.campaign(ctx, false))
	var wg sync.WaitGroup
	wg.Go(func() { mt.vacuumer(ctx, &leading) })
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-elect.C:
			leading.Store(mt.campaign(ctx, leading.Load()))
		case <-promote.C:
			if leading.Load() {
				mt.Promote(ctx)
			}
		case <-reap.C:
			if leading.Load() {
				mt.Reap(ctx)
			}
		case <-recoverT.C:
			if leading.Load() {
				mt.Recover(ctx)
			}
		case <-sweep.C:
			if leading.Load() {
				mt.Sweep(ctx)
			}
		}
	}
}

func (mt *Maintainer) campaign(ctx context.Context, was bool) bool {
	is, err := mt.q.AcquireLeader(ctx, mt.cfg.ID, mt.cfg.LeaderTTL)
	if err != nil {
		if ctx.Err() == nil {
			mt.log.Warn("leader election failed", slog.Any("err", err))
		}
		is = false
	}
	if is != was {
		mt.log.Info("maintenance leadership changed", slog.Bool("leading", is))
	}
	mt.m.Leader(is)
	if is && !was {
		mt.Recover(ctx) // a new leader checks at once
	}
	return is
}

// Promote moves due retries to the pending lists.
func (mt *Maintainer) Promote(ctx context.Context) {
	n, err := mt.q.PromoteDue(ctx, mt.cfg.Now(), mt.cfg.Batch)
	if err != nil {
		mt.warn(ctx, "promoting retries", err)
		return
	}
	mt.m.Promoted(n)
}

// Reap returns the work of every worker whose lease expired.
func (mt *Maintainer) Reap(ctx context.Context) {
	now := mt.cfg.Now()
	dead := map[string][]task.Role{}
	for _, r := range task.Roles {
		ws, err := mt.q.ExpiredWorkers(ctx, r, now)
		if err != nil {
			mt.warn(ctx, "listing expired workers", err)
			return
		}
		for _, w := range ws {
			dead[w] = append(dead[w], r)
		}
	}
	for w, roles := range dead {
		mt.reapWorker(ctx, w, roles)
	}
}

func (mt *Maintainer) reapWorker(ctx context.Context, worker string, roles []task.Role) {
	returned, err := mt.s.ReturnActive(ctx, worker, "lease expired: worker "+worker+" stopped heartbeating")
	if err != nil {
		mt.warn(ctx, "returning a dead worker's rows", err)
		return // the lease stays expired: the next tick tries again
	}
	drop := map[task.Role][]uuid.UUID{}
	for _, t := range returned {
		if t.State == task.Dead {
			drop[t.Role] = append(drop[t.Role], t.ID)
		}
	}
	total := 0
	for _, r := range roles {
		n, err := mt.q.ReturnWorker(ctx, r, worker, drop[r])
		if err != nil {
			mt.warn(ctx, "returning a dead worker's processing list", err)
			return
		}
		total += n
	}
	mt.publish(ctx, returned)
	mt.m.Reaped(len(returned))
	mt.log.Info("reaped a worker whose lease expired", slog.String("worker", worker),
		slog.Int("rows", len(returned)), slog.Int("ids", total))
}

// Recover rebuilds the queues from PostgreSQL when Redis lost its data.
func (mt *Maintainer) Recover(ctx context.Context) {
	lost, err := mt.q.CheckEpoch(ctx)
	if err != nil {
		mt.warn(ctx, "checking the Redis epoch", err)
		return
	}
	if !lost {
		return
	}
	// The processing lists and leases are gone: no active row can be
	// finished through Redis any more, so every one goes back to pending.
	// A live worker finishing one of them meanwhile loses the race cleanly
	// (its finish is conditional); the task runs again, completes once.
	reset, err := mt.s.ResetActive(ctx, 0)
	if err != nil {
		mt.warn(ctx, "resetting active rows after a Redis loss", err)
		mt.q.ForgetEpoch() // try again next tick
		return
	}
	n, err := mt.enqueueAll(ctx)
	if err != nil {
		mt.warn(ctx, "re-enqueueing after a Redis loss", err)
		mt.q.ForgetEpoch()
		return
	}
	mt.m.Recovered("redis_lost", n)
	mt.publish(ctx, reset)
	mt.log.Warn("Redis lost its data: queues rebuilt from PostgreSQL",
		slog.Int("reset_active", len(reset)), slog.Int("enqueued", n))
}

func (mt *Maintainer) enqueueAll(ctx context.Context) (int, error) {
	total := 0
	after := uuid.Nil
	for {
		page, err := mt.s.Recoverable(ctx, after, mt.cfg.Batch)
		if err != nil {
			return total, err
		}
		if len(page) == 0 {
			return total, nil
		}
		if err := mt.q.Enqueue(ctx, items(page)); err != nil {
			return total, err
		}
		total += len(page)
		after = page[len(page)-1].ID
	}
}

// Sweep re-pushes pending rows untouched for StaleAfter.
func (mt *Maintainer) Sweep(ctx context.Context) {
	for {
		page, err := mt.s.StalePending(ctx, mt.cfg.StaleAfter, mt.cfg.Batch)
		if err != nil {
			mt.warn(ctx, "sweeping stale pending rows", err)
			return
		}
		if len(page) == 0 {
			return
		}
		if err := mt.q.Enqueue(ctx, items(page)); err != nil {
			mt.warn(ctx, "re-enqueueing stale pending rows", err)
			return
		}
		mt.m.Recovered("stale_pending", len(page))
		mt.log.Info("re-enqueued stale pending rows", slog.Int("rows", len(page)))
		if len(page) < mt.cfg.Batch {
			return
		}
	}
}

func items(ts []task.Task) []queue.Item {
	out := make([]queue.Item, len(ts))
	for i, t := range ts {
		out[i] = queue.Item{ID: t.ID, Role: t.Role, Priority: t.Priority}
	}
	return out
}

func (mt *Maintainer) publish(ctx context.Context, ts []task.Task) {
	if len(ts) == 0 {
		return
	}
	if err := mt.q.Publish(ctx, task.Events(ts, time.Now())); err != nil {
		mt.warn(ctx, "publishing maintenance events", err)
	}
}

func (mt *Maintainer) warn(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	mt.log.Warn(what+" failed", slog.Any("err", err))
}

// vacuumer vacuums the tasks table while this process leads, when the
// server's autovacuum is off and VacuumMinDead dead tuples piled up.
func (mt *Maintainer) vacuumer(ctx context.Context, leading *atomic.Bool) {
	t := time.NewTicker(mt.cfg.VacuumInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if leading.Load() {
				mt.Vacuum(ctx)
			}
		}
	}
}

// Vacuum vacuums the tasks table when the server's autovacuum is off and
// VacuumMinDead dead tuples piled up; it reports whether autovacuum was off.
func (mt *Maintainer) Vacuum(ctx context.Context) bool {
	g, err := mt.s.Garbage(ctx)
	if err != nil {
		mt.warn(ctx, "reading the tasks table's dead tuples", err)
		return false
	}
	if g.Autovacuum {
		return false
	}
	if mt.toldNoAutovacuum.CompareAndSwap(false, true) {
		mt.log.Info("PostgreSQL runs without autovacuum: the maintenance leader vacuums the tasks table itself",
			slog.Int64("min_dead_tuples", mt.cfg.VacuumMinDead))
	}
	if g.Dead < mt.cfg.VacuumMinDead {
		return true
	}
	start := time.Now()
	if err := mt.s.Vacuum(ctx); err != nil {
		mt.warn(ctx, "vacuuming the tasks table", err)
		return true
	}
	mt.log.Debug("vacuumed the tasks table", slog.Int64("dead_tuples", g.Dead), slog.Int64("live_tuples", g.Live),
		slog.Duration("took", time.Since(start)))
	return true
}
