package producer_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/agentmesh/agentmesh/mesh/events"
	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/producer"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

func (b *bundle) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(b.srv.URL, "http") + path
}

// dialWS opens a WebSocket; header is a list of name, value pairs. It
// returns the HTTP status of a refused handshake.
func (b *bundle) dialWS(path string, header ...string) (*websocket.Conn, int, error) {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	c, resp, err := websocket.DefaultDialer.Dial(b.wsURL(path), h)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		_ = resp.Body.Close()
	}
	if err == nil {
		b.t.Cleanup(func() { _ = c.Close() })
	}
	return c, status, err
}

func (b *bundle) mustDial(path string, header ...string) *websocket.Conn {
	b.t.Helper()
	c, status, err := b.dialWS(path, header...)
	if err != nil {
		b.t.Fatalf("dialing %s: %d %v", path, status, err)
	}
	return c
}

// frame is any frame of the dashboard stream.
type frame struct {
	Type    string             `json:"type"`
	Seq     uint64             `json:"seq"`
	Stats   events.Stats       `json:"stats"`
	Workers []queue.WorkerInfo `json:"workers"`
	Tasks   []task.Event       `json:"tasks"`
	Events  int                `json:"events"`
	Dropped uint64             `json:"dropped"`
}

// client is a dashboard client that applies frames to its own state, as the
// web store does: the snapshot replaces it, each batch overwrites the tasks
// it carries.
type client struct {
	mu     sync.Mutex
	state  map[uuid.UUID]task.Event
	frames []frame
	done   chan struct{}
	err    error
}

func (b *bundle) follow(c *websocket.Conn) *client {
	cl := &client{state: map[uuid.UUID]task.Event{}, done: make(chan struct{})}
	go func() {
		defer close(cl.done)
		for {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, data, err := c.ReadMessage()
			if err != nil {
				cl.mu.Lock()
				cl.err = err
				cl.mu.Unlock()
				return
			}
			var f frame
			if err := json.Unmarshal(data, &f); err != nil {
				cl.mu.Lock()
				cl.err = err
				cl.mu.Unlock()
				return
			}
			cl.apply(f)
		}
	}()
	b.t.Cleanup(func() { _ = c.Close(); <-cl.done })
	return cl
}

func (cl *client) apply(f frame) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if f.Type == events.TypeSnapshot {
		clear(cl.state)
	}
	for _, e := range f.Tasks {
		cl.state[e.ID] = e
	}
	f.Tasks = nil // keep only the header
	cl.frames = append(cl.frames, f)
}

func (cl *client) snapshot() (map[uuid.UUID]task.Event, []frame, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	st := make(map[uuid.UUID]task.Event, len(cl.state))
	for k, v := range cl.state {
		st[k] = v
	}
	return st, append([]frame(nil), cl.frames...), cl.err
}

// TestWSFrameRate: thousands of events per second published into Redis
// reach a client as about one frame per 100 ms tick, covering all of them.
//
// Not parallel: it measures a rate, and the other tests would share its CPU.
func TestWSFrameRate(t *testing.T) {
	b := setup(t)
	cl := b.follow(b.mustDial("/ws"))
	meshtest.Eventually(t, 5*time.Second, func() bool { _, fs, _ := cl.snapshot(); return len(fs) > 0 }, "snapshot")

	const perMsg, every = 100, 20 * time.Millisecond // 5,000 events/s
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	published := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			evs := make([]task.Event, perMsg)
			now := time.Now().UnixMicro()
			for i := range evs {
				evs[i] = task.Event{ID: uuid.New(), Role: task.QA, State: task.Completed, CreatedUS: now - 1000, CompletedUS: now, AtUS: now}
			}
			if b.q.Publish(ctx, evs) == nil {
				published += perMsg
			}
		}
	}()
	time.Sleep(500 * time.Millisecond) // warm up: the load is the thing under test, not a wait for async work
	_, before, _ := cl.snapshot()
	start := time.Now()
	time.Sleep(2 * time.Second) // the measurement window
	_, after, _ := cl.snapshot()
	elapsed := time.Since(start)
	cancel()
	wg.Wait()

	batches, covered := 0, 0
	for _, f := range after[len(before):] {
		if f.Type == events.TypeBatch {
			batches++
			covered += f.Events
		}
	}
	perSec := float64(batches) / elapsed.Seconds()
	t.Logf("%d frames in %s (%.1f frames/s) carrying %d events (%.0f events/s); published %d",
		batches, elapsed.Round(time.Millisecond), perSec, covered, float64(covered)/elapsed.Seconds(), published)
	// Tolerant bounds: the race detector and parallel tests share two cores.
	if perSec < 5 || perSec > 15 {
		t.Fatalf("%.1f frames/s at thousands of events/s, want about 10", perSec)
	}
	if covered < batches*10 {
		t.Fatalf("frames covered only %d events: they are not coalescing", covered)
	}
}

// drive moves tasks through states as a worker would, publishing its events.
// It returns the events of the second message (the finishes), as published.
func (b *bundle) drive(ctx context.Context, ts []task.Task, outcome func(i int) string) []task.Event {
	b.t.Helper()
	ids := make([]uuid.UUID, len(ts))
	for i := range ts {
		ids[i] = ts[i].ID
	}
	act, err := b.s.Activate(ctx, "w-drive", ids)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := b.q.Publish(ctx, task.Events(act, time.Now())); err != nil {
		b.t.Fatal(err)
	}
	byID := map[uuid.UUID]task.Task{}
	for _, a := range act {
		byID[a.ID] = a
	}
	var outs []store.Outcome
	for i, id := range ids {
		if o := outcome(i); o != "active" {
			outs = append(outs, store.Outcome{ID: id, Attempt: byID[id].Attempts, Err: o})
		}
	}
	f, err := b.s.Finish(ctx, "w-drive", outs)
	if err != nil {
		b.t.Fatal(err)
	}
	evs := task.Events(f.Done, time.Now())
	evs = append(evs, task.Events(f.Next, time.Now())...)
	if err := b.q.Publish(ctx, evs); err != nil {
		b.t.Fatal(err)
	}
	return evs
}

// TestWSStateMatchesDatabase: a client's state, built from the snapshot
// and the batches, ends equal to PostgreSQL for tasks driven through every
// state; a reconnecting client gets the same from its fresh snapshot.
func TestWSStateMatchesDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cl := b.follow(b.mustDial("/ws"))
	ctx := context.Background()
	var ts []task.Task
	for i := range 40 {
		max := 3
		if i%4 == 3 {
			max = 1
		}
		ts = append(ts, b.submit(`{"role":"QA","max_attempts":`+itoa(max)+`}`, 202))
	}
	// 0: completed, 1: failed (retry), 2: still active, 3: dead (max_attempts 1)
	b.drive(ctx, ts, func(i int) string {
		return [...]string{"", "flaky", "active", "boom"}[i%4]
	})
	want := func() map[uuid.UUID]task.State {
		out := map[uuid.UUID]task.State{}
		for _, tk := range ts {
			got, err := b.s.Get(ctx, tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			out[tk.ID] = got.State
		}
		return out
	}()
	for i, st := range []task.State{task.Completed, task.Failed, task.Active, task.Dead} {
		if want[ts[i].ID] != st {
			t.Fatalf("database has %s for task %d, want %s", want[ts[i].ID], i, st)
		}
	}
	matches := func(state map[uuid.UUID]task.Event) bool {
		for id, st := range want {
			if state[id].State != st {
				return false
			}
		}
		return true
	}
	meshtest.Eventually(t, 10*time.Second, func() bool { st, _, _ := cl.snapshot(); return matches(st) },
		"the client's state equals the database's")

	fresh := b.follow(b.mustDial("/ws"))
	meshtest.Eventually(t, 5*time.Second, func() bool {
		st, fs, _ := fresh.snapshot()
		return len(fs) > 0 && fs[0].Type == events.TypeSnapshot && matches(st)
	}, "a reconnecting client's snapshot equals the database")
	_, fs, _ := fresh.snapshot()
	if fs[0].Stats.Totals.Completed < 10 || fs[0].Stats.Totals.Dead < 10 {
		t.Fatalf("snapshot totals %+v", fs[0].Stats.Totals)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestCompletionStream: every terminal event reaches a load generator once,
// in order of arrival, unbatched.
func TestCompletionStream(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.mustDial("/ws/completions")
	meshtest.Eventually(t, 5*time.Second, func() bool { return b.p.Hub().Counters().CompletionClients == 1 }, "registered")
	ctx := context.Background()
	var want []uuid.UUID
	for range 20 {
		var ts []task.Task
		for range 5 {
			ts = append(ts, b.submit(`{"role":"DEVELOPER","max_attempts":1}`, 202))
		}
		for _, e := range b.drive(ctx, ts, func(i int) string { return [...]string{"", "boom", "", "", "active"}[i] }) {
			if e.State.Terminal() {
				want = append(want, e.ID)
			}
		}
	}
	var got []uuid.UUID
	for len(got) < len(want) {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m events.Completions
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("after %d of %d: %v", len(got), len(want), err)
		}
		for _, e := range m.Events {
			if !e.State.Terminal() || (e.State == task.Completed && e.CompletedUS == 0) {
				t.Fatalf("event %+v on the completion stream", e)
			}
			got = append(got, e.ID)
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("completion %d = %s, want %s", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d completions, want %d", len(got), len(want))
	}
}

func TestWSAuthAndOrigin(t *testing.T) {
	t.Parallel()
	b := setup(t, options{cfg: func(c *producer.Config) { c.APIToken = "tok" }})
	for _, path := range []string{"/ws", "/ws/completions"} {
		if _, status, err := b.dialWS(path); err == nil || status != 401 {
			t.Errorf("%s without a token: %d %v", path, status, err)
		}
		if _, status, err := b.dialWS(path + "?token=nope"); err == nil || status != 401 {
			t.Errorf("%s with a wrong token: %d %v", path, status, err)
		}
		b.mustDial(path + "?token=tok")
		b.mustDial(path, "Authorization", "Bearer tok")
	}
	host := strings.TrimPrefix(b.srv.URL, "http://")
	for _, c := range []struct {
		origin string
		ok     bool
	}{
		{"http://" + host, true},         // same origin
		{"http://localhost:5173", true},  // Vite dev server
		{"http://127.0.0.1:3000", true},  // local dev
		{"https://evil.example", false},  // anything else
		{"http://localhost.evil", false}, // not localhost
		{"null", false},                  // sandboxed frames
		{"ftp://localhost:21", false},    // not a web origin
	} {
		_, status, err := b.dialWS("/ws?token=tok", "Origin", c.origin)
		if (err == nil) != c.ok || (!c.ok && status != 403) {
			t.Errorf("origin %s: %d %v, want allowed=%t", c.origin, status, err, c.ok)
		}
	}
	listed := setup(t, options{cfg: func(c *producer.Config) { c.AllowedOrigins = []string{"https://mesh.example"} }})
	if _, status, err := listed.dialWS("/ws", "Origin", "https://mesh.example"); err != nil {
		t.Errorf("listed origin refused: %d %v", status, err)
	}
	if _, status, _ := listed.dialWS("/ws", "Origin", "http://localhost:5173"); status != 403 {
		t.Errorf("localhost with an allowlist = %d, want 403", status)
	}
	if a := b.get("/ws?token=tok"); a.status != 400 {
		t.Errorf("plain GET /ws = %d, want 400", a.status)
	}
}

// TestShutdownClosesWebSockets: Run's graceful shutdown sends close frames
// and answers the requests in flight.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	b := setup(t, options{noStart: true})
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.p.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	meshtest.Eventually(t, 5*time.Second, func() bool {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
		}
		return err == nil
	}, "serving")
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	defer c.Close()
	accepted := make(chan uuid.UUID, 1000)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := http.Post(url+"/api/v1/tasks", "application/json", strings.NewReader(`{"role":"QA"}`))
				if err != nil {
					return
				}
				var out struct{ Task task.Task }
				_ = json.NewDecoder(resp.Body).Decode(&out)
				_ = resp.Body.Close()
				if resp.StatusCode == 202 {
					accepted <- out.Task.ID
				}
			}
		}()
	}
	meshtest.Eventually(t, 5*time.Second, func() bool { return len(accepted) >= 20 }, "submissions flowing")
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of the signal")
	}
	wg.Wait()
	close(accepted)
	for id := range accepted {
		if _, err := b.s.Get(context.Background(), id); err != nil {
			t.Fatalf("task %s answered 202 is not stored: %v", id, err)
		}
	}
	for {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
				t.Fatalf("WebSocket ended with %v, want close 1001", err)
			}
			break
		}
	}
}
