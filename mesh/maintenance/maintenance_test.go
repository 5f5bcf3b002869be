package maintenance_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/agentmesh/agentmesh/mesh/maintenance"
	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"))
}

type bundle struct {
	q   *queue.Queue
	s   *store.Store
	now time.Time
	mu  sync.Mutex
}

func (b *bundle) clock() time.Time { b.mu.Lock(); defer b.mu.Unlock(); return b.now }
func (b *bundle) advance(d time.Duration) {
	b.mu.Lock()
	b.now = b.now.Add(d)
	b.mu.Unlock()
}

func setup(t *testing.T) *bundle {
	t.Helper()
	rdb, prefix := meshtest.Redis(t)
	pool, schema := meshtest.Postgres(t)
	s := store.New(pool, store.Config{Schema: schema})
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &bundle{q: queue.New(rdb, queue.Config{Prefix: prefix}), s: s, now: time.Now()}
}

func (b *bundle) maintainer(id string) *maintenance.Maintainer {
	return maintenance.New(b.q, b.s, maintenance.Config{ID: id, StaleAfter: time.Second, Now: b.clock,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
}

func pendingDepth(t *testing.T, q *queue.Queue, r task.Role) int64 {
	t.Helper()
	d, err := q.Depths(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range d[r].Pending {
		n += p
	}
	return n
}

// TestSweepRepushesStalePending: a row committed as pending whose Redis
// push never happened (a producer crash between the two) is pushed once it
// has been untouched for StaleAfter, and not before.
func TestSweepRepushesStalePending(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	spec := task.Spec{Role: task.QA}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.s.Insert(ctx, []task.Spec{spec}, false); err != nil { // committed, never pushed
		t.Fatal(err)
	}
	mt := b.maintainer("m1")
	mt.Sweep(ctx)
	if n := pendingDepth(t, b.q, task.QA); n != 0 {
		t.Fatalf("a fresh pending row was re-pushed: depth %d", n)
	}
	meshtest.Eventually(t, 10*time.Second, func() bool { mt.Sweep(ctx); return pendingDepth(t, b.q, task.QA) == 1 },
		"the stale row is pushed once StaleAfter has passed")
	mt.Sweep(ctx) // updated_at was bumped: no second push right away
	if n := pendingDepth(t, b.q, task.QA); n != 1 {
		t.Fatalf("stale row pushed %d times", n)
	}
}

// TestPromoteHonoursBackoff: a scheduled retry reaches the pending list only
// once its time has come on the injected clock.
func TestPromoteHonoursBackoff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	spec := task.Spec{Role: task.Architect}
	_ = spec.Validate()
	ins, err := b.s.Insert(ctx, []task.Spec{spec}, false)
	if err != nil {
		t.Fatal(err)
	}
	it := queue.Item{ID: ins[0].Task.ID, Role: task.Architect, Priority: *spec.Priority}
	if err := b.q.Enqueue(ctx, []queue.Item{it}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.q.Claim(ctx, task.Architect, "w1", 1); err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	if err := b.q.Retry(ctx, "w1", []queue.Item{it}, []time.Time{b.clock().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	mt := b.maintainer("m1")
	mt.Promote(ctx)
	if n := pendingDepth(t, b.q, task.Architect); n != 0 {
		t.Fatalf("retry promoted before its time: depth %d", n)
	}
	b.advance(61 * time.Second)
	mt.Promote(ctx)
	if n := pendingDepth(t, b.q, task.Architect); n != 1 {
		t.Fatalf("due retry not promoted: depth %d", n)
	}
}

// TestVacuumWithoutAutovacuum: when the server runs without autovacuum the
// maintainer vacuums the tasks table once VacuumMinDead dead tuples piled
// up; with autovacuum on it leaves the table to the server.
func TestVacuumWithoutAutovacuum(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	specs := make([]task.Spec, 300)
	for i := range specs {
		specs[i] = task.Spec{Role: task.Developer}
		if err := specs[i].Validate(); err != nil {
			t.Fatal(err)
		}
	}
	ins, err := b.s.Insert(ctx, specs, false)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]uuid.UUID, len(ins))
	for i := range ins {
		ids[i] = ins[i].Task.ID
	}
	if _, err := b.s.Activate(ctx, "w1", ids); err != nil {
		t.Fatal(err)
	}
	var before store.Garbage
	meshtest.Eventually(t, 10*time.Second, func() bool {
		before, err = b.s.Garbage(ctx)
		return err == nil && before.Dead >= 300
	}, "the activations' dead tuples reported")
	mt := maintenance.New(b.q, b.s, maintenance.Config{ID: "m1", VacuumMinDead: 200,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if off := mt.Vacuum(ctx); off == before.Autovacuum {
		t.Fatalf("Vacuum reported autovacuum off = %v, the server says on = %v", off, before.Autovacuum)
	}
	after, err := b.s.Garbage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.Autovacuum {
		t.Logf("autovacuum is on here: the maintainer left %d dead tuples to it", after.Dead)
		return
	}
	if after.Dead != 0 {
		t.Fatalf("%d dead tuples left after the vacuum (%d before)", after.Dead, before.Dead)
	}
}
