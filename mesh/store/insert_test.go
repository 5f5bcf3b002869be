package store_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

func TestInsertBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	specs := []task.Spec{
		{Role: task.Architect, Priority: prio(task.P0), Payload: json.RawMessage(`{"a": [1, 2]}`), MaxAttempts: 5, ClientKey: "k1"},
		{Role: task.QA}, // defaults: P2, {}, 3 attempts
		{Role: task.Developer, Priority: prio(task.P3), Payload: json.RawMessage(`"text"`)},
	}
	before := time.Now()
	got := b.insert(false, specs...)
	if len(got) != 3 || b.count("") != 3 {
		t.Fatalf("inserted %d tasks, table has %d", len(got), b.count(""))
	}
	want := []struct {
		role     task.Role
		prio     task.Priority
		payload  string
		attempts int
		key      string
	}{
		{task.Architect, task.P0, `{"a": [1, 2]}`, 5, "k1"},
		{task.QA, task.DefaultPriority, `{}`, task.DefaultMaxAttempts, ""},
		{task.Developer, task.P3, `"text"`, task.DefaultMaxAttempts, ""},
	}
	for i, w := range want {
		g := got[i]
		if g.Role != w.role || g.Priority != w.prio || string(g.Payload) != w.payload || g.MaxAttempts != w.attempts || g.ClientKey != w.key {
			t.Errorf("task %d = %+v, want %+v", i, g, w)
		}
		if g.State != task.Pending || g.Attempts != 0 || g.PipelineID != nil || g.Stage != 0 || g.WorkerID != "" {
			t.Errorf("task %d is not a fresh pending task: %+v", i, g)
		}
		if g.CreatedAt.Before(before.Add(-time.Minute)) || g.ID.Version() != 7 {
			t.Errorf("task %d: created_at %s, id version %d", i, g.CreatedAt, g.ID.Version())
		}
	}
	if specs[1].Priority != nil {
		t.Error("Insert filled defaults into the caller's specs")
	}
}

func TestInsertIdempotency(t *testing.T) {
	t.Parallel()
	base := task.Spec{Role: task.Developer, Priority: prio(task.P1), Payload: json.RawMessage(`{"x":1,"y":[true]}`), MaxAttempts: 4}
	with := func(f func(*task.Spec)) task.Spec {
		s := base
		f(&s)
		return s
	}
	tests := []struct {
		name     string
		spec     task.Spec
		pipeline bool
		existing bool // else conflict
	}{
		// The very same request again: an idempotent resubmit.
		{"same body", base, false, true},
		// Whitespace is not part of the request.
		{"same body, other spacing", with(func(s *task.Spec) { s.Payload = json.RawMessage(" {\"x\": 1, \"y\": [ true ]}\n") }), false, true},
		// A different payload is a different request.
		{"other payload", with(func(s *task.Spec) { s.Payload = json.RawMessage(`{"x":2,"y":[true]}`) }), false, false},
		// Each hashed field on its own makes a different request.
		{"other priority", with(func(s *task.Spec) { s.Priority = prio(task.P0) }), false, false},
		{"other max_attempts", with(func(s *task.Spec) { s.MaxAttempts = 5 }), false, false},
		{"other role", with(func(s *task.Spec) { s.Role = task.QA }), false, false},
		// A pipeline is not the same request as a plain task with the same body.
		{"as a pipeline", with(func(s *task.Spec) { s.Role = task.Architect }), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			first := base
			first.ClientKey = "key-1"
			orig := b.insert(false, first)[0]
			again := tt.spec
			again.ClientKey = "key-1"
			batch := []task.Spec{again, {Role: task.Architect}} // a new task rides along
			res, err := b.st.Insert(b.ctx, batch, tt.pipeline)
			if err != nil {
				t.Fatal(err)
			}
			r := res[0]
			if r.Existing != tt.existing || r.Conflict == tt.existing {
				t.Fatalf("Existing=%v Conflict=%v, want existing=%v", r.Existing, r.Conflict, tt.existing)
			}
			if r.Task.ID != orig.ID || string(r.Task.Payload) != string(orig.Payload) {
				t.Fatalf("returned %+v, want the original row %+v", r.Task, orig)
			}
			if res[1].Existing || res[1].Conflict || res[1].Task.ID == orig.ID {
				t.Fatalf("the keyless spec was not inserted: %+v", res[1])
			}
			if n := b.count(""); n != 2 {
				t.Fatalf("table has %d rows, want 2 (original, keyless spec): nothing else may be written", n)
			}
			if got := b.get(orig.ID); got.Priority != orig.Priority || got.MaxAttempts != orig.MaxAttempts || got.Role != orig.Role {
				t.Fatalf("original row changed: %+v", got)
			}
		})
	}
}

func TestInsertDuplicateKeyInBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := task.Spec{Role: task.QA, ClientKey: "dup"}
	c := task.Spec{Role: task.Architect, ClientKey: "dup"}
	res, err := b.st.Insert(b.ctx, []task.Spec{a, a, c}, false)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Existing || res[0].Conflict || !res[1].Existing || !res[2].Conflict {
		t.Fatalf("results = %+v, want new, existing, conflict", res)
	}
	if res[1].Task.ID != res[0].Task.ID || b.count("") != 1 {
		t.Fatalf("duplicate key in one batch wrote %d rows", b.count(""))
	}
}

func TestInsertAtomic(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.insert(false, task.Spec{Role: task.QA, ClientKey: "taken"})
	batch := []task.Spec{{Role: task.QA}, {Role: task.Developer, ClientKey: "taken"}, {Role: task.QA}}
	res, err := b.st.InsertAtomic(b.ctx, batch, false)
	if !errors.Is(err, task.ErrConflict) || len(res) != 3 || !res[1].Conflict {
		t.Fatalf("InsertAtomic = %+v, %v; want a conflict on tasks[1]", res, err)
	}
	if n := b.count(""); n != 1 {
		t.Fatalf("a conflicting atomic batch wrote %d rows", n-1)
	}
	batch[1].Role = task.QA // now an idempotent resubmit: the batch goes in
	res, err = b.st.InsertAtomic(b.ctx, batch, false)
	if err != nil || !res[1].Existing || b.count("") != 3 {
		t.Fatalf("InsertAtomic = %+v, %v; table has %d rows", res, err, b.count(""))
	}
}

func TestInsertValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name     string
		spec     task.Spec
		pipeline bool
		field    string
		want     error
	}{
		// Spec.Validate runs on every spec.
		{"unknown role", task.Spec{Role: "CEO"}, false, "tasks[1].role", task.ErrUnknownRole},
		{"priority", task.Spec{Role: task.QA, Priority: prio(9)}, false, "tasks[1].priority", task.ErrInvalid},
		// A pipeline starts with an ARCHITECT task.
		{"pipeline of QA", task.Spec{Role: task.QA}, true, "tasks[1].role", task.ErrInvalid},
		// Payloads PostgreSQL would reject are caught per spec, before the batch.
		{"not JSON", spec(task.QA, `{"a":`), false, "tasks[1].payload", task.ErrInvalid},
		{"NUL in JSON", spec(task.QA, `{"a":"\u0000"}`), false, "tasks[1].payload", task.ErrInvalid},
		{"bad UTF-8", spec(task.QA, "\"\xff\""), false, "tasks[1].payload", task.ErrInvalid},
		{"NUL in key", task.Spec{Role: task.QA, ClientKey: "a\x00b"}, false, "tasks[1].client_key", task.ErrInvalid},
	}
	for _, tt := range tests {
		ok := task.Spec{Role: task.Architect}
		_, err := b.st.Insert(b.ctx, []task.Spec{ok, tt.spec}, tt.pipeline)
		var fe *task.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want a FieldError on %s wrapping %v", tt.name, err, tt.field, tt.want)
		}
	}
	if n := b.count(""); n != 0 {
		t.Fatalf("invalid batches wrote %d rows", n)
	}
}

func TestInsertPipeline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	got := b.insert(true, task.Spec{Priority: prio(task.P1)}, task.Spec{Role: task.Architect})
	if got[0].PipelineID == nil || got[1].PipelineID == nil || *got[0].PipelineID == *got[1].PipelineID {
		t.Fatalf("pipeline ids %v %v: want two distinct", got[0].PipelineID, got[1].PipelineID)
	}
	for _, g := range got {
		if g.Role != task.Architect || g.Stage != 1 || *g.PipelineID == g.ID {
			t.Errorf("pipeline start = %+v", g)
		}
	}
}

// TestLargeBatches crosses MaxRowsPerStatement: several statements, one
// transaction.
func TestLargeBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	n := store.MaxRowsPerStatement + 7
	ts := b.insertN(n, task.QA)
	if len(ts) != n || b.count("") != n {
		t.Fatalf("inserted %d, table has %d, want %d", len(ts), b.count(""), n)
	}
	active := b.activate("w1", ts...)
	outs := make([]store.Outcome, len(active))
	for i, a := range active {
		outs[i] = store.Outcome{ID: a.ID, Attempt: a.Attempts}
	}
	if f := b.finish("w1", outs...); len(active) != n || len(f.Done) != n {
		t.Fatalf("activated %d, finished %d, want %d", len(active), len(f.Done), n)
	}
	if c := b.count("state = 'completed'"); c != n {
		t.Fatalf("%d completed, want %d", c, n)
	}
}

// TestInsertConcurrentKey races submissions of one client key: exactly one
// creates the task, every other gets it back as Existing.
func TestInsertConcurrentKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 8
	var wg sync.WaitGroup
	res := make([]store.Inserted, n)
	for i := range n {
		wg.Go(func() {
			r, err := b.st.Insert(b.ctx, []task.Spec{{Role: task.QA, ClientKey: "race"}}, false)
			if err != nil {
				t.Error(err)
				return
			}
			res[i] = r[0]
		})
	}
	wg.Wait()
	created := 0
	for _, r := range res {
		switch {
		case r.Conflict:
			t.Fatalf("an identical request conflicted: %+v", r)
		case !r.Existing:
			created++
		}
		if r.Task.ID != res[0].Task.ID {
			t.Fatalf("two tasks for one key: %s and %s", r.Task.ID, res[0].Task.ID)
		}
	}
	if created != 1 || b.count("") != 1 {
		t.Fatalf("%d submissions created a task, table has %d rows", created, b.count(""))
	}
}
