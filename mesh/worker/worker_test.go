package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/agentmesh/agentmesh/mesh/health"
	"github.com/agentmesh/agentmesh/mesh/maintenance"
	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
	"github.com/agentmesh/agentmesh/mesh/worker"
)

func TestMain(m *testing.M) {
	code := m.Run()
	meshtest.RemoveMeshBinary()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// bundle is one test's isolated mesh: its own key prefix and schema.
type bundle struct {
	rdb    redis.UniversalClient
	q      *queue.Queue
	s      *store.Store
	schema string
	prefix string
	log    *slog.Logger
}

func setup(t testing.TB) *bundle {
	t.Helper()
	rdb, prefix := meshtest.Redis(t)
	return setupWith(t, rdb, prefix)
}

func setupWith(t testing.TB, rdb redis.UniversalClient, prefix string) *bundle {
	t.Helper()
	pool, schema := meshtest.Postgres(t)
	s := store.New(pool, store.Config{Schema: schema})
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &bundle{rdb: rdb, q: queue.New(rdb, queue.Config{Prefix: prefix, ClaimWait: 200 * time.Millisecond}),
		s: s, schema: schema, prefix: prefix, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// submit inserts and enqueues specs the way the producer does.
func (b *bundle) submit(t testing.TB, pipeline bool, specs ...task.Spec) []task.Task {
	t.Helper()
	ctx := context.Background()
	for i := range specs {
		if err := specs[i].Validate(); err != nil {
			t.Fatal(err)
		}
	}
	ins, err := b.s.Insert(ctx, specs, pipeline)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]task.Task, len(ins))
	items := make([]queue.Item, len(ins))
	for i, in := range ins {
		out[i] = in.Task
		items[i] = queue.Item{ID: in.Task.ID, Role: in.Task.Role, Priority: in.Task.Priority}
	}
	if err := b.q.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	return out
}

func specs(n int, role task.Role, payload string) []task.Spec {
	out := make([]task.Spec, n)
	for i := range out {
		out[i] = task.Spec{Role: role, Payload: json.RawMessage(payload)}
	}
	return out
}

// start runs a worker (and, if maint, a maintainer) until the test ends or
// the returned stop is called; stop returns Run's error.
func (b *bundle) start(t testing.TB, cfg worker.Config, maint bool) (*worker.Worker, func() error) {
	t.Helper()
	cfg.Logger = b.log
	if cfg.Health.Limit == 0 {
		cfg.Health.Limit = 64 << 30 // the race detector inflates RSS; these tests are not about memory
	}
	w, err := worker.New(b.q, b.s, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); errc <- w.Run(ctx) }()
	if maint {
		mt := maintenance.New(b.q, b.s, maintenance.Config{ID: w.ID(), LeaderTTL: time.Second,
			PromoteInterval: 20 * time.Millisecond, ReapInterval: 100 * time.Millisecond,
			RecoverInterval: 100 * time.Millisecond, StaleAfter: 2 * time.Second, Logger: b.log}, nil)
		wg.Add(1)
		go func() { defer wg.Done(); mt.Run(ctx) }()
	}
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); wg.Wait(); runErr = <-errc })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return w, stop
}

// states returns every task's state by id.
func (b *bundle) states(t testing.TB) map[uuid.UUID]task.Task {
	t.Helper()
	out := map[uuid.UUID]task.Task{}
	cursor := ""
	for {
		page, err := b.s.List(context.Background(), store.Filter{Limit: 500, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range page.Tasks {
			out[tk.ID] = tk
		}
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
}

// waitAll waits until every task is in a terminal state and returns them.
func (b *bundle) waitAll(t testing.TB, want int, within time.Duration) map[uuid.UUID]task.Task {
	t.Helper()
	var got map[uuid.UUID]task.Task
	meshtest.Eventually(t, within, func() bool {
		got = b.states(t)
		if len(got) < want {
			return false
		}
		for _, tk := range got {
			if !tk.State.Terminal() {
				return false
			}
		}
		return true
	}, "all %d tasks terminal (have %d: %v)", want, len(got), countStates(got))
	return got
}

// waitSettled waits until no task is pending, active or failed — a cheap
// index-only count, for benchmarks that must not load PostgreSQL while
// measuring it.
func (b *bundle) waitSettled(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := b.s.Counts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		open := int64(0)
		for _, byState := range c {
			open += byState[task.Pending] + byState[task.Active] + byState[task.Failed]
		}
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tasks still open after %s", open, within)
		}
		time.Sleep(5 * time.Millisecond) // polling a count; nothing to signal on
	}
}

func countStates(m map[uuid.UUID]task.Task) map[task.State]int {
	c := map[task.State]int{}
	for _, t := range m {
		c[t.State]++
	}
	return c
}

// completions subscribes to the events channel and counts terminal events
// per task id: a second completion of one id would show as 2.
type completions struct {
	mu   sync.Mutex
	seen map[uuid.UUID]int
}

func (b *bundle) watch(t testing.TB) *completions {
	t.Helper()
	c := &completions{seen: map[uuid.UUID]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	ps := b.q.Subscribe(ctx)
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range ps.Channel() {
			var evs []task.Event
			if json.Unmarshal([]byte(msg.Payload), &evs) != nil {
				continue
			}
			c.mu.Lock()
			for _, e := range evs {
				if e.State == task.Completed {
					c.seen[e.ID]++
				}
			}
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); _ = ps.Close(); <-done })
	return c
}

func (c *completions) duplicates() []uuid.UUID {
	c.mu.Lock()
	defer c.mu.Unlock()
	var d []uuid.UUID
	for id, n := range c.seen {
		if n > 1 {
			d = append(d, id)
		}
	}
	return d
}

func TestCompletesEveryTaskOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.watch(t)
	var all []task.Task
	for _, r := range task.Roles {
		all = append(all, b.submit(t, false, specs(150, r, `{"n":1}`)...)...)
	}
	b.start(t, worker.Config{ClaimBatch: 16, FinishBatch: 32}, false)
	got := b.waitAll(t, len(all), 30*time.Second)
	for _, tk := range all {
		g := got[tk.ID]
		if g.State != task.Completed || g.Attempts != 1 || g.CompletedAt == nil || g.StartedAt == nil {
			t.Fatalf("task %s: state %s attempts %d", tk.ID, g.State, g.Attempts)
		}
	}
	meshtest.Eventually(t, 5*time.Second, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.seen) == len(all) },
		"a completion event for every task")
	if d := c.duplicates(); len(d) > 0 {
		t.Fatalf("%d tasks completed twice: %v", len(d), d)
	}
	depths, err := b.q.Depths(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for r, d := range depths {
		if d.Active != 0 || d.Delayed != 0 || d.Pending != [4]int64{} {
			t.Fatalf("%s queue not empty after the run: %+v", r, d)
		}
	}
}

func TestPipelineRunsStagesInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.submit(t, true, specs(20, task.Architect, `{"feature":"login"}`)...)
	b.start(t, worker.Config{}, false)
	got := b.waitAll(t, 60, 30*time.Second)
	byPipeline := map[uuid.UUID][]task.Task{}
	for _, tk := range got {
		if tk.PipelineID == nil {
			t.Fatalf("task %s has no pipeline id", tk.ID)
		}
		byPipeline[*tk.PipelineID] = append(byPipeline[*tk.PipelineID], tk)
	}
	if len(byPipeline) != len(first) {
		t.Fatalf("%d pipelines, want %d", len(byPipeline), len(first))
	}
	for pid, stages := range byPipeline {
		if len(stages) != 3 {
			t.Fatalf("pipeline %s has %d stages, want 3", pid, len(stages))
		}
		byStage := map[int]task.Task{}
		for _, s := range stages {
			byStage[s.Stage] = s
		}
		for i, role := range task.Roles {
			s, ok := byStage[i+1]
			if !ok || s.Role != role || s.State != task.Completed {
				t.Fatalf("pipeline %s stage %d: %+v", pid, i+1, s)
			}
			if i > 0 && s.CreatedAt.Before(*byStage[i].CompletedAt) {
				t.Fatalf("pipeline %s: stage %d created before stage %d completed", pid, i+1, i)
			}
			if string(s.Payload) != `{"feature": "login"}` && string(s.Payload) != `{"feature":"login"}` {
				t.Fatalf("stage payload %s", s.Payload)
			}
		}
	}
}

func TestRetriesThenDeadLetters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	flaky := b.submit(t, false, task.Spec{Role: task.QA, MaxAttempts: 3, Payload: json.RawMessage(`{"sim":{"fail_attempts":1}}`)})[0]
	doomed := b.submit(t, false, task.Spec{Role: task.QA, MaxAttempts: 2, Payload: json.RawMessage(`{"sim":{"fail":true}}`)})[0]
	b.start(t, worker.Config{RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}, true)
	got := b.waitAll(t, 2, 20*time.Second)
	if g := got[flaky.ID]; g.State != task.Completed || g.Attempts != 2 {
		t.Fatalf("flaky task: state %s after %d attempts, want completed after 2", g.State, g.Attempts)
	}
	g := got[doomed.ID]
	if g.State != task.Dead || g.Attempts != 2 || g.LastError == "" {
		t.Fatalf("doomed task: state %s attempts %d error %q, want dead after 2 with an error", g.State, g.Attempts, g.LastError)
	}
}

// TestShutdownFinishesInFlightWork stops a worker in the middle of slow
// tasks: what it claimed completes, the rest stays queued, nothing is lost
// and Run returns nil.
func TestShutdownFinishesInFlightWork(t *testing.T) {
	t.Parallel()
	b := setup(t)
	all := b.submit(t, false, specs(40, task.Developer, `{"sim":{"work_ms":300}}`)...)
	w, stop := b.start(t, worker.Config{Roles: map[task.Role]int{task.Developer: 8}}, false)
	meshtest.Eventually(t, 10*time.Second, func() bool { return w.Inflight()[task.Developer] == 8 }, "8 tasks in flight")
	if err := stop(); err != nil {
		t.Fatalf("Run after SIGTERM-equivalent: %v", err)
	}
	got := b.states(t)
	counts := countStates(got)
	if counts[task.Active] != 0 || counts[task.Completed] < 8 || counts[task.Completed]+counts[task.Pending] != len(all) {
		t.Fatalf("after shutdown: %v (want none active, the 8 in flight completed, the rest pending)", counts)
	}
	// The rest is still claimable: a new worker finishes the job.
	b.start(t, worker.Config{Roles: map[task.Role]int{task.Developer: 40}}, false)
	for _, tk := range b.waitAll(t, len(all), 30*time.Second) {
		if tk.State != task.Completed {
			t.Fatalf("task %s ended %s", tk.ID, tk.State)
		}
	}
}

// TestShutdownTimeoutReturnsWork: work longer than the shutdown bound is
// interrupted and handed back to the queue, not failed and not lost.
func TestShutdownTimeoutReturnsWork(t *testing.T) {
	t.Parallel()
	b := setup(t)
	all := b.submit(t, false, specs(4, task.QA, `{"sim":{"work_ms":60000}}`)...)
	w, stop := b.start(t, worker.Config{Roles: map[task.Role]int{task.QA: 4}, ShutdownTimeout: 200 * time.Millisecond}, false)
	meshtest.Eventually(t, 10*time.Second, func() bool { return w.Inflight()[task.QA] == 4 }, "4 tasks in flight")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := b.states(t)
	for _, tk := range all {
		if g := got[tk.ID]; g.State != task.Pending {
			t.Fatalf("interrupted task %s is %s, want pending", tk.ID, g.State)
		}
	}
	d, err := b.q.Depths(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := d[task.QA].Pending[task.DefaultPriority]; n != 4 || d[task.QA].Active != 0 {
		t.Fatalf("QA depth after return: %+v, want 4 pending", d[task.QA])
	}
}

// TestBackpressurePausesClaims drives the health gate over the soft limit:
// the worker claims nothing while over it and resumes when RSS falls.
func TestBackpressurePausesClaims(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var mu sync.Mutex
	rss := uint64(900)
	sample := func(context.Context) (health.Sample, error) {
		mu.Lock()
		defer mu.Unlock()
		return health.Sample{RSS: rss}, nil
	}
	all := b.submit(t, false, specs(50, task.Architect, `{}`)...)
	w, _ := b.start(t, worker.Config{Health: health.Config{Limit: 1000, SoftLimit: 800, Interval: 10 * time.Millisecond, Sample: sample}}, false)
	meshtest.Eventually(t, 5*time.Second, func() bool { return w.Health().Paused() }, "gate closed")
	// While paused the worker must not take anything: the queue keeps all 50.
	for range 3 {
		d, err := b.q.Depths(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n := d[task.Architect].Pending[task.DefaultPriority]; n != 50 {
			t.Fatalf("a paused worker claimed work: %d of 50 left", n)
		}
		time.Sleep(50 * time.Millisecond) // a negative check: nothing to wait on
	}
	mu.Lock()
	rss = 100
	mu.Unlock()
	for _, tk := range b.waitAll(t, len(all), 20*time.Second) {
		if tk.State != task.Completed {
			t.Fatalf("task %s ended %s", tk.ID, tk.State)
		}
	}
}

// TestRedisLossRecovers kills a private Redis mid-run and restarts it empty:
// the maintainer rebuilds the queues from PostgreSQL and every accepted task
// completes exactly once.
func TestRedisLossRecovers(t *testing.T) {
	t.Parallel()
	srv := meshtest.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	b := setupWith(t, rdb, "lossy")
	all := b.submit(t, false, specs(300, task.Developer, `{"sim":{"work_ms":5}}`)...)
	b.start(t, worker.Config{Roles: map[task.Role]int{task.Developer: 8}}, true)
	meshtest.Eventually(t, 10*time.Second, func() bool { return countStates(b.states(t))[task.Completed] >= 30 }, "some progress before the crash")
	srv.Kill()
	srv.Start()
	got := b.waitAll(t, len(all), 60*time.Second)
	for _, tk := range all {
		if g := got[tk.ID]; g.State != task.Completed {
			t.Fatalf("task %s ended %s after the Redis loss", tk.ID, g.State)
		}
	}
}

// TestReaperReturnsDeadWorkersTasks: a worker that claims and activates
// tasks and then vanishes (no heartbeat, no ack) has them returned; another
// worker completes each once.
func TestReaperReturnsDeadWorkersTasks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	all := b.submit(t, false, specs(20, task.QA, `{}`)...)
	ghost := "ghost-" + uuid.NewString()[:8]
	if _, err := b.q.CheckEpoch(ctx); err != nil { // an established Redis: no rebuild at start
		t.Fatal(err)
	}
	if err := b.q.Heartbeat(ctx, ghost, []task.Role{task.QA}, 300*time.Millisecond, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	items, err := b.q.Claim(ctx, task.QA, ghost, 10)
	if err != nil || len(items) != 10 {
		t.Fatalf("ghost claim: %d items, %v", len(items), err)
	}
	ids := make([]uuid.UUID, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	if got, err := b.s.Activate(ctx, ghost, ids); err != nil || len(got) != 10 {
		t.Fatalf("ghost activate: %d, %v", len(got), err)
	}
	b.start(t, worker.Config{}, true)
	got := b.waitAll(t, len(all), 20*time.Second)
	for _, tk := range all {
		g := got[tk.ID]
		if g.State != task.Completed {
			t.Fatalf("task %s ended %s", tk.ID, g.State)
		}
	}
	reaped := 0
	for _, id := range ids {
		if g := got[id]; g.Attempts == 2 && g.WorkerID != ghost {
			reaped++
		}
	}
	if reaped != len(ids) {
		t.Fatalf("%d of the ghost's %d tasks were re-run by a live worker on attempt 2", reaped, len(ids))
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  worker.Config
	}{
		{"unknown role", worker.Config{Roles: map[task.Role]int{"CEO": 1}}},
		{"zero concurrency", worker.Config{Roles: map[task.Role]int{task.QA: 0}}},
		{"fail rate over 1", worker.Config{FailRate: 1.5}},
		{"heartbeat not shorter than lease", worker.Config{LeaseTTL: time.Second, HeartbeatInterval: time.Second}},
	}
	for _, tt := range tests {
		if _, err := worker.New(nil, nil, tt.cfg, nil); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

func TestParseWork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"0", "0", false},                 // no work
		{"20ms", "20ms", false},           // fixed
		{"10ms-80ms", "10ms-80ms", false}, // uniform
		{"exp:20ms", "exp:20ms", false},   // exponential
		{"80ms-10ms", "", true},           // inverted range
		{"exp:soon", "", true},            // bad mean
		{"fast", "", true},                // not a duration
		{"-5ms", "", true},                // negative
	}
	for _, tt := range tests {
		w, err := worker.ParseWork(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && w.String() != tt.want) {
			t.Errorf("ParseWork(%q) = %v, %v", tt.in, w, err)
		}
	}
	u, _ := worker.ParseWork("10ms-20ms")
	for range 1000 {
		if d := u.Draw(); d < 10*time.Millisecond || d > 20*time.Millisecond {
			t.Fatalf("uniform draw %s outside [10ms,20ms]", d)
		}
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 10; n++ {
		full := min(100*time.Millisecond<<(n-1), 5*time.Second)
		for range 100 {
			d := worker.Backoff(n, 100*time.Millisecond, 5*time.Second)
			if d < full/2 || d > full {
				t.Fatalf("attempt %d: backoff %s outside [%s, %s]", n, d, full/2, full)
			}
		}
	}
}

// TestDuplicatePushesLeaveNothingBehind pushes every id twice (as a rebuild
// from PostgreSQL or the stale sweep may): each task completes once and no
// copy is left in a processing or pending list — two copies of one id in a
// single claim were once left in the processing list for good.
func TestDuplicatePushesLeaveNothingBehind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sp := specs(200, task.QA, `{}`)
	for i := range sp {
		_ = sp[i].Validate()
	}
	ins, err := b.s.Insert(context.Background(), sp, false)
	if err != nil {
		t.Fatal(err)
	}
	all := make([]task.Task, len(ins))
	var items []queue.Item
	for i, in := range ins {
		all[i] = in.Task
		it := queue.Item{ID: in.Task.ID, Role: in.Task.Role, Priority: in.Task.Priority}
		items = append(items, it, it) // two adjacent copies: both land in one claim
	}
	if err := b.q.Enqueue(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	b.start(t, worker.Config{ClaimBatch: 128}, false)
	for _, tk := range b.waitAll(t, len(all), 30*time.Second) {
		if tk.State != task.Completed || tk.Attempts != 1 {
			t.Fatalf("task %s: %s after %d attempts", tk.ID, tk.State, tk.Attempts)
		}
	}
	meshtest.Eventually(t, 10*time.Second, func() bool {
		d, err := b.q.Depths(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		q := d[task.QA]
		return q.Active == 0 && q.Pending == [4]int64{}
	}, "no copy left in the QA lists")
}
