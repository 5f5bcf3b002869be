package producer

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentmesh/agentmesh/mesh/events"
	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// admission decides, without a round trip, whether a submission may enter:
// a background loop refreshes the pause switch, the depths and the worker
// heartbeats every Config.RefreshInterval into an immutable view that
// checks read atomically (another loop refreshes the dead-letter counts
// every Config.CountsInterval, for Stats only).
//
// Between refreshes a role's depth is estimated as the refreshed depth plus
// the tasks this producer accepted since the refresh began, so a burst
// cannot overshoot the bound by a refresh period's worth of submissions (a
// task accepted while the refresh reads may count twice: conservative, and
// corrected by the next refresh).
//
// A role is
//   - overloaded (429) while its waiting tasks (pending + delayed) reach Config.MaxDepth;
//   - unhealthy (503) while it has live workers and every one of them is over
//     its soft memory limit (paused by its health gate). A role without a
//     live worker is not refused: its tasks wait durably for one.
//
// and the whole producer answers 503 while an operator paused admission.
type admission struct {
	q   *queue.Queue
	s   *store.Store
	cfg *Config
	m   *metrics.Producer
	log *slog.Logger

	view     atomic.Pointer[view]
	dead     atomic.Pointer[map[task.Role]int64] // refreshed by its own loop: PostgreSQL may be slower than Redis
	accepted map[task.Role]*atomic.Int64         // tasks accepted by this producer, ever
	mu       sync.Mutex                          // serializes view replacements
	pauseSeq atomic.Uint64                       // bumped by setPaused
	lastErr  atomic.Int64                        // unix ns of the last logged refresh error
}

// view is one refresh's result; never modified after it is stored.
type view struct {
	at       time.Time
	paused   bool
	depth    map[task.Role]queue.Depth
	workers  []queue.WorkerInfo
	wversion uint64
	base     map[task.Role]int64 // accepted counters when the refresh began
	unwell   map[task.Role]bool  // every live worker of the role is over its soft limit
}

func newAdmission(q *queue.Queue, s *store.Store, cfg *Config, m *metrics.Producer) *admission {
	a := &admission{q: q, s: s, cfg: cfg, m: m, log: cfg.Logger, accepted: map[task.Role]*atomic.Int64{}}
	base := map[task.Role]int64{}
	for _, r := range task.Roles {
		a.accepted[r] = new(atomic.Int64)
		base[r] = 0
	}
	a.view.Store(&view{depth: map[task.Role]queue.Depth{}, base: base, unwell: map[task.Role]bool{}})
	a.dead.Store(&map[task.Role]int64{})
	return a
}

// run refreshes until ctx ends: Redis state every RefreshInterval, the
// dead-letter counts every CountsInterval, in two loops so that a slow
// PostgreSQL cannot hold back admission.
func (a *admission) run(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); every(ctx, a.cfg.CountsInterval, a.refreshDead) }()
	every(ctx, a.cfg.RefreshInterval, a.refresh)
	<-done
}

// every calls f now and then every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		f(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refreshDead re-reads the dead-letter counts, keeping the last ones on error.
func (a *admission) refreshDead(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(a.cfg.CountsInterval, time.Second))
	defer cancel()
	dead, err := a.readDead(ctx)
	if err != nil {
		a.logErrors(err)
		return
	}
	a.dead.Store(&dead)
}

// refresh reads the backends concurrently, each within a bounded time, and
// stores a new view; a part whose read failed keeps its previous value.
func (a *admission) refresh(ctx context.Context) {
	old := a.view.Load()
	nv := *old
	nv.at = a.cfg.Now()
	nv.base = make(map[task.Role]int64, len(a.accepted))
	for r, c := range a.accepted {
		nv.base[r] = c.Load()
	}
	seq := a.pauseSeq.Load()
	ctx, cancel := context.WithTimeout(ctx, max(a.cfg.RefreshInterval*4, time.Second))
	defer cancel()
	var wg sync.WaitGroup
	var errPaused, errDepth, errWorkers error
	wg.Add(3)
	go func() { defer wg.Done(); nv.paused, errPaused = a.q.Paused(ctx) }()
	go func() { defer wg.Done(); nv.depth, errDepth = a.q.Depths(ctx) }()
	go func() { defer wg.Done(); nv.workers, errWorkers = a.q.Workers(ctx) }()
	wg.Wait()
	if errPaused != nil {
		nv.paused = old.paused
	}
	if errDepth != nil {
		nv.depth = old.depth
	}
	if errWorkers != nil {
		nv.workers = old.workers
	}
	a.logErrors(errPaused, errDepth, errWorkers)
	nv.wversion = workersVersion(nv.workers)
	nv.unwell = a.unwell(nv.workers, nv.at)
	a.store(&nv, seq)
}

func (a *admission) readDead(ctx context.Context) (map[task.Role]int64, error) {
	counts, err := a.s.Counts(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[task.Role]int64, len(counts))
	for r, byState := range counts {
		out[r] = byState[task.Dead]
	}
	return out, nil
}

// store publishes nv unless an operator switched the pause meanwhile, in
// which case the switch's value wins over what this refresh read.
func (a *admission) store(nv *view, seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pauseSeq.Load() != seq {
		nv.paused = a.view.Load().paused
	}
	a.view.Store(nv)
	a.m.Admission(a.stateName(nv))
}

// setPaused applies an operator's switch to this producer at once (other
// producers see it at their next refresh).
func (a *admission) setPaused(paused bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pauseSeq.Add(1)
	nv := *a.view.Load()
	nv.paused = paused
	a.view.Store(&nv)
	a.m.Admission(a.stateName(&nv))
}

func (a *admission) logErrors(errs ...error) {
	for _, err := range errs {
		if err == nil {
			continue
		}
		now := time.Now().UnixNano()
		if last := a.lastErr.Load(); now-last > int64(10*time.Second) && a.lastErr.CompareAndSwap(last, now) {
			a.log.Warn("admission refresh failed; keeping the last known values", slog.Any("err", err))
		}
		return
	}
}

// live reports whether w heartbeated recently enough to count.
func (a *admission) live(w *queue.WorkerInfo, now time.Time) bool {
	return now.Sub(w.SeenAt) <= a.cfg.LiveWorkerAfter
}

// overSoftLimit: the worker's gate paused it, or its RSS passed the soft limit.
func overSoftLimit(w *queue.WorkerInfo) bool {
	return w.Paused || (w.SoftLimitBytes > 0 && w.RSSBytes > w.SoftLimitBytes)
}

func (a *admission) unwell(ws []queue.WorkerInfo, now time.Time) map[task.Role]bool {
	live, over := map[task.Role]int{}, map[task.Role]int{}
	for i := range ws {
		if !a.live(&ws[i], now) {
			continue
		}
		for _, r := range ws[i].Roles {
			live[r]++
			if overSoftLimit(&ws[i]) {
				over[r]++
			}
		}
	}
	out := make(map[task.Role]bool, len(live))
	for r, n := range live {
		out[r] = n > 0 && over[r] == n
	}
	return out
}

func workersVersion(ws []queue.WorkerInfo) uint64 {
	b, _ := json.Marshal(ws)
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

// waiting estimates a role's waiting tasks now.
func (a *admission) waiting(v *view, r task.Role) int64 {
	d := v.depth[r]
	n := d.Delayed
	for _, p := range d.Pending {
		n += p
	}
	if c, ok := a.accepted[r]; ok {
		n += c.Load() - v.base[r]
	}
	return n
}

// check answers whether a submission of role may enter now.
func (a *admission) check(r task.Role) *apiError {
	v := a.view.Load()
	switch {
	case v.paused:
		return errUnavailable(metrics.ReasonPaused, "admission is paused by an operator (PUT /api/v1/admission)", a.cfg.PausedRetryAfter)
	case v.unwell[r]:
		return errUnavailable(metrics.ReasonUnhealthy,
			fmt.Sprintf("every live %s worker is over its soft memory limit", r), a.cfg.RetryAfter)
	}
	if n := a.waiting(v, r); n >= a.cfg.MaxDepth {
		return errOverloaded(fmt.Sprintf("%s queue holds %d waiting tasks (bound %d)", r, n, a.cfg.MaxDepth), a.cfg.RetryAfter)
	}
	return nil
}

// accept counts n tasks of role this producer made pending.
func (a *admission) accept(r task.Role, n int) {
	if c, ok := a.accepted[r]; ok {
		c.Add(int64(n))
	}
}

func (a *admission) roleState(v *view, r task.Role) string {
	switch {
	case v.unwell[r]:
		return events.StateUnhealthy
	case a.waiting(v, r) >= a.cfg.MaxDepth:
		return events.StateOverloaded
	}
	return events.StateOpen
}

// stateName is the agentmesh_admission_state label of v.
func (a *admission) stateName(v *view) string {
	if v.paused {
		return "paused"
	}
	return a.summary(v).State
}

func (a *admission) summary(v *view) events.Admission {
	out := events.Admission{Paused: v.paused, State: events.StateOpen, Roles: make(map[task.Role]string, len(task.Roles))}
	for _, r := range task.Roles {
		s := a.roleState(v, r)
		out.Roles[r] = s
		if s == events.StateUnhealthy || (s == events.StateOverloaded && out.State == events.StateOpen) {
			out.State = s
		}
	}
	return out
}

// Gauges for the hub (events.Gauges).

// Depth implements events.Gauges.
func (a *admission) Depth() map[task.Role]events.RoleDepth {
	v, dead := a.view.Load(), *a.dead.Load()
	out := make(map[task.Role]events.RoleDepth, len(task.Roles))
	for _, r := range task.Roles {
		d := v.depth[r]
		rd := events.RoleDepth{Active: d.Active, Delayed: d.Delayed, Dead: dead[r]}
		for _, p := range d.Pending {
			rd.Pending += p
		}
		out[r] = rd
	}
	return out
}

// Admission implements events.Gauges.
func (a *admission) Admission() events.Admission { return a.summary(a.view.Load()) }

// Workers implements events.Gauges.
func (a *admission) Workers() ([]queue.WorkerInfo, uint64) {
	v := a.view.Load()
	return v.workers, v.wversion
}
