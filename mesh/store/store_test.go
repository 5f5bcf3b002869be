package store_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bundle is what every test works with: a migrated store in a schema of its own.
type bundle struct {
	t      testing.TB
	ctx    context.Context
	pool   *pgxpool.Pool
	schema string // raw name
	st     *store.Store
}

func setup(t testing.TB) *bundle {
	t.Helper()
	pool, schema := meshtest.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	st := store.New(pool, store.Config{Schema: schema})
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return &bundle{t: t, ctx: ctx, pool: pool, schema: schema, st: st}
}

// exec runs SQL with {schema} replaced by the test's schema.
func (b *bundle) exec(sql string, args ...any) {
	b.t.Helper()
	sql = strings.ReplaceAll(sql, "{schema}", pgx.Identifier{b.schema}.Sanitize())
	if _, err := b.pool.Exec(b.ctx, sql, args...); err != nil {
		b.t.Fatalf("exec %s: %v", sql, err)
	}
}

// count returns the number of task rows matching where ("" for all).
func (b *bundle) count(where string, args ...any) int {
	b.t.Helper()
	sql := "SELECT count(*) FROM " + pgx.Identifier{b.schema}.Sanitize() + ".tasks"
	if where != "" {
		sql += " WHERE " + where
	}
	var n int
	if err := b.pool.QueryRow(b.ctx, sql, args...).Scan(&n); err != nil {
		b.t.Fatalf("count: %v", err)
	}
	return n
}

func prio(p task.Priority) *task.Priority { return &p }

func spec(role task.Role, payload string) task.Spec {
	return task.Spec{Role: role, Payload: json.RawMessage(payload)}
}

// insert writes specs and fails the test on error or if any was not new.
func (b *bundle) insert(pipeline bool, specs ...task.Spec) []task.Task {
	b.t.Helper()
	res, err := b.st.Insert(b.ctx, specs, pipeline)
	if err != nil {
		b.t.Fatalf("Insert: %v", err)
	}
	out := make([]task.Task, len(res))
	for i, r := range res {
		if r.Existing || r.Conflict {
			b.t.Fatalf("Insert: spec %d not new: %+v", i, r)
		}
		out[i] = r.Task
	}
	return out
}

// insertN writes n tasks of role in one batch.
func (b *bundle) insertN(n int, role task.Role) []task.Task {
	b.t.Helper()
	specs := make([]task.Spec, n)
	for i := range specs {
		specs[i] = spec(role, `{"n":1}`)
	}
	return b.insert(false, specs...)
}

func (b *bundle) activate(worker string, ts ...task.Task) []task.Task {
	b.t.Helper()
	got, err := b.st.Activate(b.ctx, worker, ids(ts))
	if err != nil {
		b.t.Fatalf("Activate: %v", err)
	}
	return got
}

func (b *bundle) finish(worker string, outs ...store.Outcome) store.Finished {
	b.t.Helper()
	f, err := b.st.Finish(b.ctx, worker, outs)
	if err != nil {
		b.t.Fatalf("Finish: %v", err)
	}
	return f
}

func (b *bundle) get(id uuid.UUID) task.Task {
	b.t.Helper()
	t, err := b.st.Get(b.ctx, id)
	if err != nil {
		b.t.Fatalf("Get: %v", err)
	}
	return t
}

// inState makes a task of role with max_attempts 2 and brings it to state
// through the store's own operations. Active and failed tasks belong to
// worker "w1".
func (b *bundle) inState(st task.State) task.Task {
	b.t.Helper()
	sp := spec(task.Developer, `{}`)
	sp.MaxAttempts = 2
	t := b.insert(false, sp)[0]
	step := func(outs ...store.Outcome) {
		if f := b.finish("w1", outs...); len(f.Done) != 1 {
			b.t.Fatalf("inState(%s): finish applied to %d tasks", st, len(f.Done))
		}
	}
	switch st {
	case task.Pending:
	case task.Active:
		b.activate("w1", t)
	case task.Completed:
		b.activate("w1", t)
		step(store.Outcome{ID: t.ID, Attempt: 1})
	case task.Failed:
		b.activate("w1", t)
		step(store.Outcome{ID: t.ID, Attempt: 1, Err: "boom"})
	case task.Dead:
		b.activate("w1", t)
		step(store.Outcome{ID: t.ID, Attempt: 1, Err: "boom"})
		b.activate("w1", t)
		step(store.Outcome{ID: t.ID, Attempt: 2, Err: "boom again"})
	}
	got := b.get(t.ID)
	if got.State != st {
		b.t.Fatalf("inState(%s): task is %s", st, got.State)
	}
	return got
}

func ids(ts []task.Task) []uuid.UUID {
	out := make([]uuid.UUID, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

func states(ts []task.Task) map[uuid.UUID]task.State {
	out := make(map[uuid.UUID]task.State, len(ts))
	for _, t := range ts {
		out[t.ID] = t.State
	}
	return out
}

func quoted(schema string) string { return pgx.Identifier{schema}.Sanitize() }

// TestVacuumReclaimsDeadTuples: transitions leave dead tuples that Garbage
// reports and Vacuum reclaims.
func TestVacuumReclaimsDeadTuples(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.activate("w1", b.insertN(200, task.QA)...)
	var g store.Garbage
	meshtest.Eventually(t, 10*time.Second, func() bool {
		var err error
		g, err = b.st.Garbage(b.ctx)
		return err == nil && g.Dead >= 200
	}, "the activations' dead tuples reported")
	if err := b.st.Vacuum(b.ctx); err != nil {
		t.Fatal(err)
	}
	meshtest.Eventually(t, 10*time.Second, func() bool {
		after, err := b.st.Garbage(b.ctx)
		return err == nil && after.Dead == 0 && after.Live == 200
	}, "no dead tuples and 200 live rows after the vacuum (before: %+v)", g)
}
