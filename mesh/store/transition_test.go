package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

func TestActivate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from task.State
		ok   bool
	}{
		{task.Pending, true},    // a fresh task is claimed
		{task.Failed, true},     // a retry is claimed
		{task.Active, false},    // already taken (a duplicate id in Redis)
		{task.Completed, false}, // finished: redelivery changes nothing
		{task.Dead, false},      // dead letters wait for an operator
	}
	for _, tt := range tests {
		t.Run(string(tt.from), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			before := b.inState(tt.from)
			got := b.activate("w2", before)
			if tt.ok != (len(got) == 1) {
				t.Fatalf("Activate from %s returned %d rows", tt.from, len(got))
			}
			after := b.get(before.ID)
			if !tt.ok {
				if after.State != before.State || after.Attempts != before.Attempts || after.WorkerID != before.WorkerID {
					t.Fatalf("Activate changed a %s task: %+v", tt.from, after)
				}
				return
			}
			g := got[0]
			if g.State != task.Active || g.WorkerID != "w2" || g.Attempts != before.Attempts+1 || g.StartedAt == nil {
				t.Fatalf("activated task = %+v", g)
			}
		})
	}
}

func TestActivateBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ts := b.insertN(5, task.QA)
	taken := b.activate("w1", ts[:2]...)
	got, err := b.st.Activate(b.ctx, "w2", append(ids(ts), ts[0].ID, uuid.New())) // taken, duplicate and unknown ids too
	if err != nil {
		t.Fatal(err)
	}
	if len(taken) != 2 || len(got) != 3 {
		t.Fatalf("activated %d then %d, want 2 then 3", len(taken), len(got))
	}
	for _, g := range got {
		if g.ID == ts[0].ID || g.ID == ts[1].ID {
			t.Fatalf("w2 took %s from w1", g.ID)
		}
	}
}

func TestFinish(t *testing.T) {
	t.Parallel()
	retryAt := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	tests := []struct {
		name     string
		attempts int // attempts used before this one (max_attempts is 2)
		worker   string
		attempt  int // Outcome.Attempt relative to the current attempt: 0 = right
		err      string
		want     task.State // state after; "" = unchanged (stale outcome)
	}{
		// Success completes.
		{"success", 0, "w1", 0, "", task.Completed},
		// An error with attempts left schedules a retry.
		{"error, attempts left", 0, "w1", 0, "boom", task.Failed},
		// An error on the last attempt dead-letters.
		{"error, last attempt", 1, "w1", 0, "boom", task.Dead},
		// Another worker (the task was reaped and re-claimed) gets nothing.
		{"other worker", 0, "w9", 0, "", ""},
		// An outcome of an older attempt gets nothing.
		{"stale attempt", 1, "w1", -1, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			tk := b.inState(task.Pending)
			for i := range tt.attempts { // use up attempts with failures
				b.activate("w1", tk)
				b.finish("w1", store.Outcome{ID: tk.ID, Attempt: i + 1, Err: "earlier"})
			}
			active := b.activate("w1", tk)[0]
			out := store.Outcome{ID: tk.ID, Attempt: active.Attempts + tt.attempt, Err: tt.err, RetryAt: retryAt}
			f := b.finish(tt.worker, out)
			after := b.get(tk.ID)
			if tt.want == "" {
				if len(f.Done) != 0 || after.State != task.Active || after.UpdatedAt != active.UpdatedAt {
					t.Fatalf("stale outcome applied: %+v, now %+v", f, after)
				}
				return
			}
			if len(f.Done) != 1 || f.Done[0].State != tt.want || after.State != tt.want {
				t.Fatalf("Finish = %+v, task now %s, want %s", f, after.State, tt.want)
			}
			switch tt.want {
			case task.Completed:
				if after.CompletedAt == nil || after.RunAt != nil {
					t.Errorf("completed task: completed_at %v run_at %v", after.CompletedAt, after.RunAt)
				}
			case task.Failed:
				if after.LastError != "boom" || after.RunAt == nil || !after.RunAt.Equal(retryAt) {
					t.Errorf("failed task: last_error %q run_at %v, want boom at %s", after.LastError, after.RunAt, retryAt)
				}
			case task.Dead:
				if after.LastError != "boom" || after.RunAt != nil || after.CompletedAt != nil {
					t.Errorf("dead task = %+v", after)
				}
			}
			if again := b.finish("w1", out); len(again.Done)+len(again.Next) != 0 {
				t.Fatalf("a repeated Finish applied again: %+v", again)
			}
		})
	}
}

// TestFinishExactlyOnce races many deliveries of the same outcome, and of
// outcomes from a stale worker: exactly one is recorded.
func TestFinishExactlyOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tk := b.insert(true, task.Spec{})[0] // a pipeline stage: a double finish would double the next stage
	b.activate("w1", tk)
	var mu sync.Mutex
	var done, next int
	var wg sync.WaitGroup
	for i := range 8 {
		worker := "w1"
		if i%2 == 1 {
			worker = "w-stale"
		}
		wg.Go(func() {
			f, err := b.st.Finish(b.ctx, worker, []store.Outcome{{ID: tk.ID, Attempt: 1}})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			done, next = done+len(f.Done), next+len(f.Next)
			mu.Unlock()
		})
	}
	wg.Wait()
	if done != 1 || next != 1 {
		t.Fatalf("%d completions and %d next stages recorded, want 1 and 1", done, next)
	}
	if n := b.count("pipeline_id = $1", *tk.PipelineID); n != 2 {
		t.Fatalf("pipeline has %d tasks, want 2", n)
	}
}

func TestFinishBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ts := b.activate("w1", b.insertN(4, task.QA)...)
	f := b.finish("w1",
		store.Outcome{ID: ts[0].ID, Attempt: 1},
		store.Outcome{ID: ts[1].ID, Attempt: 1, Err: "x"},
		store.Outcome{ID: ts[2].ID, Attempt: 7},           // stale attempt
		store.Outcome{ID: ts[0].ID, Attempt: 1, Err: "y"}, // repeated id: the first counts
		store.Outcome{ID: uuid.New(), Attempt: 1},         // unknown
	)
	got := states(f.Done)
	if len(got) != 2 || got[ts[0].ID] != task.Completed || got[ts[1].ID] != task.Failed {
		t.Fatalf("Done = %v", got)
	}
	if r := b.get(ts[1].ID); r.RunAt == nil || r.RunAt.After(time.Now().Add(time.Minute)) {
		t.Fatalf("zero RetryAt must mean now, run_at = %v", r.RunAt)
	}
}

// TestRetryUntilDead walks one task through every attempt.
func TestRetryUntilDead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sp := spec(task.QA, `{}`)
	sp.MaxAttempts = 3
	tk := b.insert(false, sp)[0]
	for attempt := 1; attempt <= 3; attempt++ {
		a := b.activate("w1", tk)
		if len(a) != 1 || a[0].Attempts != attempt {
			t.Fatalf("attempt %d: Activate = %+v", attempt, a)
		}
		f := b.finish("w1", store.Outcome{ID: tk.ID, Attempt: attempt, Err: "fail"})
		want := task.Failed
		if attempt == 3 {
			want = task.Dead
		}
		if len(f.Done) != 1 || f.Done[0].State != want {
			t.Fatalf("attempt %d: Finish = %+v, want %s", attempt, f.Done, want)
		}
	}
	if a := b.activate("w1", tk); len(a) != 0 {
		t.Fatal("a dead task was activated")
	}
}

func TestPipeline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := b.insert(true, task.Spec{Priority: prio(task.P0), Payload: []byte(`{"feature":"login"}`), MaxAttempts: 4})[0]
	cur := start
	for _, role := range []task.Role{task.Architect, task.Developer, task.QA} {
		if cur.Role != role {
			t.Fatalf("stage %d has role %s, want %s", cur.Stage, cur.Role, role)
		}
		b.activate("w1", cur)
		// A failed attempt creates no next stage.
		if f := b.finish("w1", store.Outcome{ID: cur.ID, Attempt: 1, Err: "flaky"}); len(f.Next) != 0 {
			t.Fatalf("%s: a failure created a next stage", role)
		}
		b.activate("w1", cur)
		f := b.finish("w1", store.Outcome{ID: cur.ID, Attempt: 2})
		// A stale repeat creates nothing either.
		if again := b.finish("w1", store.Outcome{ID: cur.ID, Attempt: 2}); len(again.Next) != 0 {
			t.Fatalf("%s: a stale finish created a next stage", role)
		}
		next, ok := role.Next()
		if !ok {
			if len(f.Next) != 0 {
				t.Fatalf("QA created a next stage: %+v", f.Next)
			}
			break
		}
		if len(f.Next) != 1 {
			t.Fatalf("%s completion created %d next stages", role, len(f.Next))
		}
		n := f.Next[0]
		if n.Role != next || n.Stage != cur.Stage+1 || *n.PipelineID != *start.PipelineID || n.State != task.Pending ||
			n.Priority != task.P0 || string(n.Payload) != `{"feature": "login"}` || n.MaxAttempts != 4 || n.Attempts != 0 || n.ID.Version() != 7 {
			t.Fatalf("next stage = %+v", n)
		}
		cur = n
	}
	if n := b.count("pipeline_id = $1", *start.PipelineID); n != 3 {
		t.Fatalf("pipeline has %d tasks, want 3", n)
	}
}

func TestReturnActive(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fresh := b.inState(task.Active)   // attempt 1 of 2
	lastTry := b.inState(task.Failed) // attempt 1 of 2 failed...
	b.activate("w1", lastTry)         // ...attempt 2 of 2 running
	other := b.inState(task.Pending)
	b.activate("w2", other)
	got, err := b.st.ReturnActive(b.ctx, "w1", "lease expired")
	if err != nil {
		t.Fatal(err)
	}
	st := states(got)
	if len(got) != 2 || st[fresh.ID] != task.Pending || st[lastTry.ID] != task.Dead {
		t.Fatalf("ReturnActive = %v, want fresh pending and last try dead", st)
	}
	for _, g := range got {
		if g.LastError != "lease expired" {
			t.Errorf("task %s: last_error %q", g.ID, g.LastError)
		}
	}
	if g := b.get(fresh.ID); g.Attempts != 1 {
		t.Errorf("the lost attempt must count: attempts %d", g.Attempts)
	}
	if g := b.get(other.ID); g.State != task.Active {
		t.Errorf("another worker's task was returned: %s", g.State)
	}
	if again, _ := b.st.ReturnActive(b.ctx, "w1", "lease expired"); len(again) != 0 {
		t.Errorf("a second ReturnActive returned %d tasks", len(again))
	}
}

func TestRelease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.inState(task.Active)
	keep := b.inState(task.Active)
	got, err := b.st.Release(b.ctx, "w1", []uuid.UUID{a.ID})
	if err != nil || len(got) != 1 || got[0].State != task.Pending || got[0].Attempts != 0 {
		t.Fatalf("Release = %+v, %v; want pending with attempts 0", got, err)
	}
	if other, _ := b.st.Release(b.ctx, "w2", []uuid.UUID{keep.ID}); len(other) != 0 {
		t.Fatal("a worker released another worker's task")
	}
	if b.get(keep.ID).State != task.Active {
		t.Fatal("an unlisted task was released")
	}
}

func TestResetActive(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.inState(task.Active)
	p := b.inState(task.Pending)
	if got, err := b.st.ResetActive(b.ctx, time.Hour); err != nil || len(got) != 0 {
		t.Fatalf("ResetActive(1h) = %d tasks, %v; want none that young", len(got), err)
	}
	got, err := b.st.ResetActive(b.ctx, 0)
	if err != nil || len(got) != 1 || got[0].ID != a.ID || got[0].State != task.Pending || got[0].Attempts != 0 {
		t.Fatalf("ResetActive(0) = %+v, %v", got, err)
	}
	if b.get(p.ID).UpdatedAt != p.UpdatedAt {
		t.Fatal("a pending task was touched")
	}
}

func TestStalePending(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pend := b.insertN(3, task.QA)
	failed := b.inState(task.Failed)
	b.inState(task.Active)
	b.inState(task.Completed)
	b.inState(task.Dead)
	if got, _ := b.st.StalePending(b.ctx, time.Minute, 10); len(got) != 0 {
		t.Fatalf("fresh rows reported stale: %d", len(got))
	}
	// Within the clock-skew margin of creation, so the id bound lets them in.
	b.exec(`UPDATE {schema}.tasks SET updated_at = now() - interval '50 seconds', run_at = run_at - interval '50 seconds'`)
	got, err := b.st.StalePending(b.ctx, 30*time.Second, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("StalePending(limit 3) = %d, %v", len(got), err)
	}
	rest, err := b.st.StalePending(b.ctx, 30*time.Second, 10)
	if err != nil || len(rest) != 1 {
		t.Fatalf("second StalePending = %d, %v; want the 1 not yet reported", len(rest), err)
	}
	want := states(append(pend, failed))
	for _, g := range append(got, rest...) {
		if _, ok := want[g.ID]; !ok || g.State != want[g.ID] {
			t.Errorf("reported %s (%s)", g.ID, g.State)
		}
		delete(want, g.ID)
	}
	if len(want) != 0 {
		t.Errorf("not reported: %v", want)
	}
	if again, _ := b.st.StalePending(b.ctx, 30*time.Second, 10); len(again) != 0 {
		t.Fatalf("reported rows again before olderThan passed: %d", len(again))
	}
	// A failed task whose retry is not due yet is not stale, however old.
	b.exec(`UPDATE {schema}.tasks SET updated_at = now() - interval '50 seconds', run_at = now() + interval '1 hour' WHERE state = 'failed'`)
	if got, _ := b.st.StalePending(b.ctx, 30*time.Second, 10); len(got) != 0 {
		t.Fatalf("a failed task not yet due was reported")
	}
	// Rows created after the cutoff (plus margin) are not even looked at:
	// their updated_at cannot be older than their creation.
	b.exec(`UPDATE {schema}.tasks SET updated_at = now() - interval '1 hour', run_at = NULL`)
	if got, _ := b.st.StalePending(b.ctx, 10*time.Minute, 10); len(got) != 0 {
		t.Fatalf("rows younger than the cutoff by their id were reported: %d", len(got))
	}
}

func TestRecoverable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	want := states(b.insertN(5, task.Developer))
	f := b.inState(task.Failed)
	want[f.ID] = task.Failed
	b.inState(task.Active)
	b.inState(task.Completed)
	b.inState(task.Dead)
	var got []task.Task
	after := uuid.Nil
	for page := 0; ; page++ {
		ts, err := b.st.Recoverable(b.ctx, after, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 0 {
			break
		}
		if page > 3 || len(ts) > 4 {
			t.Fatalf("page %d has %d tasks", page, len(ts))
		}
		got = append(got, ts...)
		after = ts[len(ts)-1].ID
	}
	if len(got) != len(want) {
		t.Fatalf("recovered %d tasks, want %d", len(got), len(want))
	}
	for i, g := range got {
		if want[g.ID] != g.State {
			t.Errorf("recovered %s in state %s", g.ID, g.State)
		}
		if i > 0 && g.ID.String() <= got[i-1].ID.String() {
			t.Errorf("not in id order at %d", i)
		}
	}
}
