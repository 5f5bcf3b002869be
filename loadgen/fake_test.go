package loadgen

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// fakeOpts shapes the behaviour of a fakeMesh.
type fakeOpts struct {
	service     time.Duration // submit → completion event
	pauseAt     int64         // the pauseAt-th submit request starts a pause …
	pause       time.Duration // … of this long: requests arriving in it wait
	dropEvery   int64         // no completion event for every dropEvery-th task
	rejectEvery int64         // answer 429 to every rejectEvery-th request
	dupEvery    int64         // send the completion event of every dupEvery-th task twice
	noStore     bool          // keep no task records (benchmarks)
	noStream    bool          // /ws/completions answers 404
	flushEvery  time.Duration // publish due events at most this often (0: at once), like a batching producer
}

// fakeMesh is a test double of the producer's HTTP contract
// (docs/contracts.md): it accepts tasks, batches and pipelines, answers
// GET /api/v1/tasks/{id}, and completes every task after opts.service on
// /ws/completions, one message per batch of due events.
type fakeMesh struct {
	opts fakeOpts
	srv  *httptest.Server
	URL  string

	reqs  atomic.Int64 // submit requests
	tasks atomic.Int64 // tasks accepted (a pipeline counts 1)

	pauseUntil atomic.Int64 // unix ns

	mu      sync.Mutex
	records map[uuid.UUID]*task.Task
	conns   map[*websocket.Conn]struct{}

	due  chan dueEvents
	stop chan struct{}
	wg   sync.WaitGroup
}

type dueEvents struct {
	at     time.Time
	events []task.Event
}

func newFakeMesh(t testing.TB, opts fakeOpts) *fakeMesh {
	t.Helper()
	f := &fakeMesh{opts: opts, records: map[uuid.UUID]*task.Task{}, conns: map[*websocket.Conn]struct{}{},
		due: make(chan dueEvents, 1<<16), stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/tasks", f.submit(f.oneTask))
	mux.HandleFunc("POST /api/v1/tasks/batch", f.submit(f.batch))
	mux.HandleFunc("POST /api/v1/pipelines", f.submit(f.pipeline))
	mux.HandleFunc("GET /api/v1/tasks/{id}", f.get)
	mux.HandleFunc("GET /ws/completions", f.completions)
	f.srv = httptest.NewServer(mux)
	f.URL = f.srv.URL
	f.wg.Go(f.completer)
	t.Cleanup(f.close)
	return f
}

func (f *fakeMesh) close() {
	close(f.stop)
	f.mu.Lock()
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.srv.Close()
	f.wg.Wait()
}

// submit wraps a handler with the pause, the rejections and the decoding.
func (f *fakeMesh) submit(h func(w http.ResponseWriter, body []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := f.reqs.Add(1)
		f.maybePause(n)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if f.opts.rejectEvery > 0 && n%f.opts.rejectEvery == 0 {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": map[string]string{"code": "overloaded", "message": "queue full"}})
			return
		}
		h(w, body)
	}
}

// maybePause starts the pause at request pauseAt and holds every request
// that arrives before it ends: the server stalls.
func (f *fakeMesh) maybePause(n int64) {
	if f.opts.pause <= 0 {
		return
	}
	if n == f.opts.pauseAt {
		f.pauseUntil.Store(time.Now().Add(f.opts.pause).UnixNano())
	}
	if wait := time.Until(time.Unix(0, f.pauseUntil.Load())); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-f.stop:
		}
	}
}

func (f *fakeMesh) oneTask(w http.ResponseWriter, body []byte) {
	if f.opts.noStore { // the benchmarks' trivial server: no decoding
		t := f.accept(task.QA, nil, 0)
		b := append(make([]byte, 0, 128), taskPrefix...)
		b = append(b, t.ID.String()...)
		b = append(b, `","role":"QA","state":"pending","attempts":0}}`...)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(b)
		return
	}
	var s task.Spec
	if err := json.Unmarshal(body, &s); err != nil || s.Validate() != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": map[string]string{"code": "validation"}})
		return
	}
	t := f.accept(s.Role, nil, 0)
	writeJSON(w, http.StatusAccepted, map[string]any{"task": t})
}

func (f *fakeMesh) batch(w http.ResponseWriter, body []byte) {
	var b struct {
		Tasks []task.Spec `json:"tasks"`
	}
	if err := json.Unmarshal(body, &b); err != nil || len(b.Tasks) == 0 || len(b.Tasks) > MaxBatch {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "bad_json"}})
		return
	}
	out := make([]task.Task, len(b.Tasks))
	for i, s := range b.Tasks {
		if s.Validate() != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": map[string]string{"code": "validation"}})
			return
		}
		out[i] = f.accept(s.Role, nil, 0)
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"tasks": out})
}

func (f *fakeMesh) pipeline(w http.ResponseWriter, body []byte) {
	var p struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "bad_json"}})
		return
	}
	pid := uuid.New()
	t := f.accept(task.Architect, &pid, 0)
	writeJSON(w, http.StatusAccepted, map[string]any{"pipeline_id": pid, "task": t})
}

// accept records a task and schedules its completion (for a pipeline: the
// completion of all three stages, in order, in one message).
func (f *fakeMesh) accept(role task.Role, pid *uuid.UUID, stage int) task.Task {
	n := f.tasks.Add(1)
	now := time.Now()
	t := task.Task{ID: uuid.New(), Role: role, State: task.Pending, MaxAttempts: 3, PipelineID: pid,
		Stage: stage, CreatedAt: now, UpdatedAt: now, Payload: json.RawMessage("{}")}
	drop := f.opts.dropEvery > 0 && n%f.opts.dropEvery == 0
	// Of the dropped events, every other task is completed in the store
	// (found by GET: a late event) and the rest stay active (lost).
	storeDone := drop && (n/f.opts.dropEvery)%2 == 0
	due := now.Add(f.opts.service)
	if !f.opts.noStore {
		rec := t
		rec.State = task.Active
		if !drop || storeDone {
			rec.State, rec.CompletedAt = task.Completed, &due
		}
		f.mu.Lock()
		f.records[t.ID] = &rec
		f.mu.Unlock()
	}
	if drop || f.opts.noStream {
		return t
	}
	evs := f.events(t, pid, due)
	if f.opts.dupEvery > 0 && n%f.opts.dupEvery == 0 {
		evs = append(evs, evs[len(evs)-1])
	}
	select {
	case f.due <- dueEvents{at: due, events: evs}:
	case <-f.stop:
	}
	return t
}

func (f *fakeMesh) events(t task.Task, pid *uuid.UUID, due time.Time) []task.Event {
	ev := func(id uuid.UUID, role task.Role, stage int) task.Event {
		e := task.Event{ID: id, Role: role, State: task.Completed, Stage: stage, Attempts: 1,
			CreatedUS: t.CreatedAt.UnixMicro(), CompletedUS: due.UnixMicro(), AtUS: due.UnixMicro()}
		if pid != nil {
			e.PipelineID = pid.String()
		}
		return e
	}
	if pid == nil {
		return []task.Event{ev(t.ID, t.Role, 0)}
	}
	return []task.Event{ev(t.ID, task.Architect, 0), ev(uuid.New(), task.Developer, 1), ev(uuid.New(), task.QA, 2)}
}

// completer publishes events when they fall due, every due event in one
// message, like the producer's per-batch messages.
func (f *fakeMesh) completer() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var next *dueEvents
	for {
		if next == nil {
			select {
			case d := <-f.due:
				next = &d
			case <-f.stop:
				return
			}
		}
		if wait := time.Until(next.at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-f.stop:
				return
			}
		}
		if f.opts.flushEvery > 0 { // let more events fall due: one message per flush
			timer.Reset(f.opts.flushEvery)
			select {
			case <-timer.C:
			case <-f.stop:
				return
			}
		}
		batch := next.events
		next = nil
		for more := true; more && next == nil; {
			select {
			case d := <-f.due:
				if d.at.After(time.Now()) {
					next = &d
				} else {
					batch = append(batch, d.events...)
				}
			default:
				more = false
			}
		}
		f.broadcast(batch)
	}
}

func (f *fakeMesh) broadcast(evs []task.Event) {
	msg, _ := json.Marshal(map[string]any{"type": "completions", "events": evs})
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		_ = c.WriteMessage(websocket.TextMessage, msg)
	}
}

var upgrader = websocket.Upgrader{}

func (f *fakeMesh) completions(w http.ResponseWriter, r *http.Request) {
	if f.opts.noStream {
		http.NotFound(w, r)
		return
	}
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.conns[c] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		_ = c.Close()
	}()
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

func (f *fakeMesh) get(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "validation"}})
		return
	}
	f.mu.Lock()
	rec, ok := f.records[id]
	var t task.Task
	if ok {
		t = *rec
	}
	f.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "not_found"}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"task": t})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
