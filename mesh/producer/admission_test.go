package producer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/mesh/events"
	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/producer"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// TestDepthBound: at its bound a role gets 429 with Retry-After and nothing
// is written; other roles are unaffected; once the queue drains,
// submissions are accepted again.
func TestDepthBound(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: func(c *producer.Config) { c.MaxDepth = 3 }})
	for range 3 {
		b.submit(`{"role":"QA"}`, 202)
	}
	before := b.written()
	a := b.post("/api/v1/tasks", `{"role":"QA"}`)
	if code, _, _ := a.apiErr(); a.status != 429 || code != "overloaded" || a.header.Get("Retry-After") != "1" {
		t.Fatalf("over the bound = %d %v %s", a.status, a.header, a.body)
	}
	if a := b.post("/api/v1/tasks/batch", `{"tasks":[{"role":"ARCHITECT"},{"role":"QA"}]}`); a.status != 429 {
		t.Fatalf("batch with a full role = %d %s", a.status, a.body)
	}
	b.nothingWritten(before, "submissions over the bound")
	b.submit(`{"role":"ARCHITECT"}`, 202) // another role is open

	meshtest.Eventually(t, 5*time.Second, func() bool {
		var s struct{ Admission struct{ State string } }
		_ = json.Unmarshal(b.get("/api/v1/stats").body, &s)
		return s.Admission.State == "overloaded"
	}, "stats report overloaded")

	ctx := context.Background()
	items, err := b.q.Claim(ctx, task.QA, "w-drain", 10)
	if err != nil || len(items) != 3 {
		t.Fatalf("claiming: %v (%d)", err, len(items))
	}
	if err := b.q.Ack(ctx, "w-drain", items); err != nil {
		t.Fatal(err)
	}
	meshtest.Eventually(t, 5*time.Second, func() bool {
		return b.post("/api/v1/tasks", `{"role":"QA"}`).status == 202
	}, "admission reopens once the queue drained")
}

// heartbeat records a worker's health as a worker would.
func (b *bundle) heartbeat(id string, role task.Role, paused bool, rss uint64) {
	b.t.Helper()
	info, _ := json.Marshal(queue.WorkerInfo{ID: id, Roles: []task.Role{role}, RSSBytes: rss,
		LimitBytes: 1000, SoftLimitBytes: 800, Paused: paused, HealthScore: 1 - float64(rss)/1000})
	if err := b.q.Heartbeat(context.Background(), id, []task.Role{role}, time.Minute, info); err != nil {
		b.t.Fatal(err)
	}
}

// TestUnhealthyWorkers: when every live worker of a role is over its soft
// limit, its submissions get 503; a role without workers is still open;
// when health returns, so does admission.
func TestUnhealthyWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.heartbeat("w-qa-1", task.QA, true, 900)
	b.heartbeat("w-qa-2", task.QA, false, 850) // over the soft limit, gate not yet closed
	meshtest.Eventually(t, 5*time.Second, func() bool {
		var s struct{ Admission events.Admission }
		_ = json.Unmarshal(b.get("/api/v1/stats").body, &s)
		return s.Admission.Roles[task.QA] == events.StateUnhealthy && s.Admission.State == events.StateUnhealthy
	}, "stats report QA unhealthy")
	before := b.written()
	a := b.post("/api/v1/tasks", `{"role":"QA"}`)
	if code, _, msg := a.apiErr(); a.status != 503 || code != "unavailable" || a.header.Get("Retry-After") == "" || msg == "" {
		t.Fatalf("unhealthy answer %v %s", a.header, a.body)
	}
	b.nothingWritten(before, "submissions to an unhealthy role")
	b.submit(`{"role":"DEVELOPER"}`, 202) // no live worker: tasks wait durably

	b.heartbeat("w-qa-2", task.QA, false, 100) // one healthy worker is enough
	meshtest.Eventually(t, 5*time.Second, func() bool {
		return b.post("/api/v1/tasks", `{"role":"QA"}`).status == 202
	}, "QA accepted again once a worker is healthy")
}

// TestInsertQueueFull: when submissions outrun the group commit they get
// 429 instead of piling up in memory, and the queued ones still complete.
// A SHARE lock on the table holds the one flusher inside its INSERT.
func TestInsertQueueFull(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: func(c *producer.Config) { c.InsertQueue = 1; c.InsertBatch = 1; c.InsertConcurrency = 1 }})
	ctx := context.Background()
	tx := b.lockTasks()
	results := make(chan int, 4)
	go func() { results <- b.post("/api/v1/tasks", `{"role":"QA"}`).status }()
	meshtest.Eventually(t, 5*time.Second, func() bool {
		count, _ := histogram(t, b.reg, "agentmesh_producer_insert_batch_size")
		return count == 1
	}, "the flusher holds the first submission")
	for range 3 { // one fits the queue, the others cannot
		go func() { results <- b.post("/api/v1/tasks", `{"role":"QA"}`).status }()
	}
	refused := 0
	for range 2 {
		if st := <-results; st != 429 {
			t.Fatalf("status %d while the queue is full, want 429", st)
		}
		refused++
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if st := <-results; st != 202 {
			t.Fatalf("queued submission = %d, want 202", st)
		}
	}
	if w := b.written(); w.rows != 2 {
		t.Fatalf("%d rows, want the 2 admitted submissions", w.rows)
	}
}

// TestBatchQueueFull: batch submissions waiting to be stored are bounded
// (InsertQueue tasks): past it they get 429 at once. Keyless batches wait
// in the group commit's queue (the flusher's own batch no longer counts);
// keyed batches wait for a transaction of their own (the running one
// counts).
func TestBatchQueueFull(t *testing.T) {
	t.Parallel()
	for _, keyed := range []bool{false, true} {
		t.Run(map[bool]string{false: "keyless", true: "keyed"}[keyed], func(t *testing.T) {
			t.Parallel()
			testBatchQueueFull(t, keyed)
		})
	}
}

func testBatchQueueFull(t *testing.T, keyed bool) {
	b := setup(t, options{cfg: func(c *producer.Config) { c.InsertQueue = 150; c.InsertConcurrency = 1; c.MaxBatch = 100 }})
	ctx := context.Background()
	tx := b.lockTasks()
	var seq atomic.Int64
	batch := func(n int) string {
		specs := make([]string, n)
		for i := range specs {
			specs[i] = `{"role":"QA"}`
			if keyed {
				specs[i] = fmt.Sprintf(`{"role":"QA","client_key":"k-%d"}`, seq.Add(1))
			}
		}
		return `{"tasks":[` + strings.Join(specs, ",") + `]}`
	}
	results := make(chan int, 3)
	go func() { results <- b.post("/api/v1/tasks/batch", batch(100)).status }()
	meshtest.Eventually(t, 5*time.Second, func() bool {
		var waiting int
		_ = b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT l.granted AND n.nspname = $1 AND c.relname = 'tasks'`, b.schema).Scan(&waiting)
		return waiting > 0
	}, "the first batch waits on the lock")
	// Keyed: 100 running + 40 fits in 150, + 40 more does not. Keyless: the
	// running 100 is the flusher's, 100 waiting fits, + 100 more does not.
	second := map[bool]int{false: 100, true: 40}[keyed]
	for range 2 {
		go func() { results <- b.post("/api/v1/tasks/batch", batch(second)).status }()
	}
	if st := <-results; st != 429 {
		t.Fatalf("first answer %d, want 429 for the batch that does not fit", st)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if st := <-results; st != 202 {
			t.Fatalf("waiting batch = %d, want 202", st)
		}
	}
	if w := b.written(); w.rows != int64(100+second) {
		t.Fatalf("%d rows, want %d", w.rows, 100+second)
	}
}

// lockTasks holds a SHARE lock on the tasks table, which blocks every
// INSERT, until the returned transaction ends (at the latest at cleanup).
func (b *bundle) lockTasks() pgx.Tx {
	b.t.Helper()
	ctx := context.Background()
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { _ = tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{b.schema, "tasks"}.Sanitize()+" IN SHARE MODE"); err != nil {
		b.t.Fatal(err)
	}
	return tx
}
