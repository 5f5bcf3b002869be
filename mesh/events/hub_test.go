package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/agentmesh/agentmesh/mesh/events"
	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/task"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// bundle is a hub served over WebSockets by an httptest server; the test
// drives ticks with hub.Tick().
type bundle struct {
	hub   *events.Hub
	srv   *httptest.Server
	clock *fakeClock
}

func setup(t *testing.T, cfg events.Config) *bundle {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	hub, err := events.NewHub(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	serve := func(f func(*websocket.Conn) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			if err := f(c); err != nil {
				_ = c.Close()
			}
		}
	}
	mux.Handle("/ws", serve(hub.Serve))
	mux.Handle("/ws/completions", serve(hub.ServeCompletions))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hub.Close(ctx); err != nil {
			t.Errorf("closing hub: %v", err)
		}
		srv.Close()
	})
	return &bundle{hub: hub, srv: srv, clock: clock}
}

func (b *bundle) dial(t *testing.T, path string) *websocket.Conn {
	t.Helper()
	return dialWith(t, websocket.DefaultDialer, "ws"+strings.TrimPrefix(b.srv.URL, "http")+path)
}

func dialWith(t *testing.T, d *websocket.Dialer, url string) *websocket.Conn {
	t.Helper()
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dialing %s: %v", url, err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
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
	Omitted int                `json:"omitted"`
	Dropped uint64             `json:"dropped"`
}

func read(t *testing.T, c *websocket.Conn) frame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return f
}

func ev(id uuid.UUID, st task.State, atUS int64) task.Event {
	return task.Event{ID: id, Role: task.QA, State: st, CreatedUS: 1, AtUS: atUS}
}

func ids(n int) []uuid.UUID {
	out := make([]uuid.UUID, n)
	for i := range out {
		out[i] = uuid.New()
	}
	return out
}

func TestBatchCoalescesLatestPerTask(t *testing.T) {
	t.Parallel()
	b := setup(t, events.Config{})
	c := b.dial(t, "/ws")
	if f := read(t, c); f.Type != events.TypeSnapshot || len(f.Tasks) != 0 || f.Workers == nil {
		t.Fatalf("first frame = %+v, want an empty snapshot with workers []", f)
	}
	x, y := ids(2)[0], uuid.New()
	b.hub.Ingest([]task.Event{ev(x, task.Pending, 10), ev(y, task.Pending, 11)})
	b.hub.Ingest([]task.Event{ev(x, task.Active, 20), ev(x, task.Completed, 30)})
	b.hub.Ingest([]task.Event{ev(y, task.Active, 5)}) // older than y's pending: ignored for the frame
	b.hub.Tick()
	f := read(t, c)
	if f.Type != events.TypeBatch || f.Events != 5 || len(f.Tasks) != 2 || f.Dropped != 0 {
		t.Fatalf("batch = %+v, want 5 events over 2 tasks", f)
	}
	got := map[uuid.UUID]task.State{f.Tasks[0].ID: f.Tasks[0].State, f.Tasks[1].ID: f.Tasks[1].State}
	if got[x] != task.Completed || got[y] != task.Pending {
		t.Fatalf("tasks = %v, want x completed and y pending", got)
	}
	if f.Stats.Totals.Completed != 1 {
		t.Fatalf("totals = %+v, want 1 completed", f.Stats.Totals)
	}
}

func TestTickWithoutChangeSendsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, events.Config{})
	c := b.dial(t, "/ws")
	read(t, c) // snapshot
	b.hub.Tick()
	b.hub.Tick() // nothing changed since the first
	b.hub.Ingest([]task.Event{ev(uuid.New(), task.Pending, 1)})
	b.hub.Tick()
	first, second := read(t, c), read(t, c)
	if first.Events != 0 || second.Events != 1 || second.Seq != first.Seq+1 {
		t.Fatalf("frames %+v then %+v: want an initial frame, then only the one with an event", first, second)
	}
	if n := b.hub.Counters().Ticks; n != 2 {
		t.Fatalf("ticks with a frame = %d, want 2", n)
	}
}

func TestTickCapsTasksAndCountsOmitted(t *testing.T) {
	t.Parallel()
	b := setup(t, events.Config{MaxTickTasks: 10})
	c := b.dial(t, "/ws")
	read(t, c)
	var evs []task.Event
	for _, id := range ids(25) {
		evs = append(evs, ev(id, task.Completed, 1))
	}
	b.hub.Ingest(evs)
	b.hub.Tick()
	f := read(t, c)
	if len(f.Tasks) != 10 || f.Omitted != 15 || f.Events != 25 || f.Stats.Totals.Completed != 25 {
		t.Fatalf("frame: %d tasks, omitted %d, events %d, completed %d; want 10, 15, 25, 25",
			len(f.Tasks), f.Omitted, f.Events, f.Stats.Totals.Completed)
	}
}

func TestSnapshotHoldsRecentTasksNewestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, events.Config{RecentTasks: 3})
	all := ids(5)
	for i, id := range all {
		b.hub.Ingest([]task.Event{ev(id, task.Pending, int64(10+i))})
	}
	b.hub.Ingest([]task.Event{ev(all[1], task.Active, 100)}) // touched last
	f := read(t, b.dial(t, "/ws"))
	want := []uuid.UUID{all[1], all[4], all[3]}
	if len(f.Tasks) != 3 {
		t.Fatalf("snapshot has %d tasks, want 3", len(f.Tasks))
	}
	for i, id := range want {
		if f.Tasks[i].ID != id {
			t.Fatalf("snapshot[%d] = %s, want %s", i, f.Tasks[i].ID, id)
		}
	}
	if f.Tasks[0].State != task.Active {
		t.Fatalf("snapshot[0] state = %s, want active", f.Tasks[0].State)
	}
}

func TestStatsTotalsRatesLatency(t *testing.T) {
	t.Parallel()
	b := setup(t, events.Config{})
	b.hub.Tick() // a rate sample at t0
	b.hub.CountSubmissions(10, 8, 2)
	var evs []task.Event
	for i, id := range ids(100) {
		e := task.Event{ID: id, Role: task.QA, State: task.Completed, CreatedUS: 0, CompletedUS: int64(i+1) * 1000, AtUS: 1}
		evs = append(evs, e)
	}
	x := uuid.New()
	evs = append(evs, ev(x, task.Failed, 2), task.Event{ID: x, State: task.Active, Attempts: 2, AtUS: 3}, ev(uuid.New(), task.Dead, 4))
	b.hub.Ingest(evs)
	b.clock.Advance(time.Second)
	s := b.hub.Stats()
	want := events.Totals{Submitted: 10, Accepted: 8, Rejected: 2, Completed: 100, Failed: 1, Retried: 1, Dead: 1}
	if s.Totals != want {
		t.Fatalf("totals = %+v, want %+v", s.Totals, want)
	}
	if s.Rates.CompletedPerS != 100 || s.Rates.EventsPerS != 103 || s.Rates.SubmittedPerS != 10 {
		t.Fatalf("rates = %+v, want 100 completed, 103 events, 10 submitted per second", s.Rates)
	}
	if s.LatencyMS.P50 < 49 || s.LatencyMS.P50 > 51 || s.LatencyMS.P99 < 98 || s.LatencyMS.P99 > 100 {
		t.Fatalf("latency = %+v, want p50 ≈ 50 ms and p99 ≈ 99 ms", s.LatencyMS)
	}
	b.clock.Advance(11 * time.Second) // the window forgets
	if s := b.hub.Stats(); s.LatencyMS != (events.Latency{}) {
		t.Fatalf("latency after the window = %+v, want zeros", s.LatencyMS)
	}
}

func TestCompletionsInOrderExactlyOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, events.Config{})
	c := b.dial(t, "/ws/completions")
	meshtest.Eventually(t, 5*time.Second, func() bool { return b.hub.Counters().CompletionClients == 1 }, "client registered")
	var want []uuid.UUID
	for i := range 200 {
		done, dead, act := uuid.New(), uuid.New(), uuid.New()
		msg := []task.Event{ev(act, task.Active, 1), ev(done, task.Completed, 2)}
		want = append(want, done)
		if i%10 == 0 {
			msg = append(msg, ev(dead, task.Dead, 3))
			want = append(want, dead)
		}
		b.hub.Ingest(msg)
	}
	b.hub.Ingest([]task.Event{ev(uuid.New(), task.Active, 1)}) // nothing terminal: no message
	var got []uuid.UUID
	for len(got) < len(want) {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m events.Completions
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if m.Type != events.TypeCompletions || len(m.Events) == 0 {
			t.Fatalf("message %+v", m)
		}
		for _, e := range m.Events {
			if !e.State.Terminal() {
				t.Fatalf("non-terminal event %+v on the completion stream", e)
			}
			got = append(got, e.ID)
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d = %s, want %s (order of arrival)", i, got[i], want[i])
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, data, err := c.ReadMessage(); err == nil {
		t.Fatalf("extra message %s", data)
	}
}

// bigEvents returns n events with a large error text, to fill socket buffers fast.
func bigEvents(n int) []task.Event {
	pad := strings.Repeat("x", 2000)
	out := make([]task.Event, n)
	for i := range out {
		out[i] = task.Event{ID: uuid.New(), Role: task.QA, State: task.Dead, Error: pad, AtUS: 1}
	}
	return out
}

// stalledDialer dials with a tiny receive buffer and never reads.
var stalledDialer = &websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
	c, err := net.Dial(network, addr)
	if err == nil {
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
	}
	return c, err
}}

func TestClientThatNeverReadsIsDisconnected(t *testing.T) {
	t.Parallel()
	b := setup(t, events.Config{ClientBuffer: 8, MaxDrops: 5, WriteTimeout: 2 * time.Second, MaxTickTasks: 500})
	dialWith(t, stalledDialer, "ws"+strings.TrimPrefix(b.srv.URL, "http")+"/ws") // never read
	meshtest.Eventually(t, 5*time.Second, func() bool { return b.hub.Counters().Clients == 1 }, "client registered")
	maxQueued := 0
	meshtest.Eventually(t, 30*time.Second, func() bool {
		b.hub.Ingest(bigEvents(500)) // ~1 MB frames
		b.hub.Tick()
		c := b.hub.Counters()
		maxQueued = max(maxQueued, c.MaxQueued)
		return c.Clients == 0
	}, "the stalled client is disconnected")
	c := b.hub.Counters()
	if maxQueued > 8 {
		t.Fatalf("a client buffer held %d frames, bound is 8", maxQueued)
	}
	if c.Disconnects["slow"]+c.Disconnects["write_error"] != 1 {
		t.Fatalf("disconnects = %v, want one slow or write_error", c.Disconnects)
	}
	if c.Disconnects["slow"] == 1 && c.Dropped < 5 {
		t.Fatalf("dropped = %d, want at least MaxDrops before a slow disconnect", c.Dropped)
	}
}

func TestDroppedCountReachesTheClient(t *testing.T) {
	t.Parallel()
	b := setup(t, events.Config{ClientBuffer: 2, MaxDrops: 1 << 20, WriteTimeout: 30 * time.Second, MaxTickTasks: 500})
	c := b.dial(t, "/ws") // not read until frames were dropped
	meshtest.Eventually(t, 5*time.Second, func() bool { return b.hub.Counters().Clients == 1 }, "client registered")
	meshtest.Eventually(t, 30*time.Second, func() bool {
		b.hub.Ingest(bigEvents(500))
		b.hub.Tick()
		return b.hub.Counters().Dropped >= 3
	}, "frames dropped for the stalled client")
	frames, done := make(chan frame, 64), make(chan struct{})
	t.Cleanup(func() { _ = c.Close(); <-done })
	go func() { // now read everything
		defer close(done)
		defer close(frames)
		for {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			var f frame
			_ = json.Unmarshal(data, &f)
			f.Stats, f.Workers = events.Stats{}, nil
			if len(f.Tasks) > 1 {
				f.Tasks = f.Tasks[:1] // keep memory small
			}
			select {
			case frames <- f:
			default: // the test stopped looking
			}
		}
	}()
	marker := uuid.New()
	var got frame
	meshtest.Eventually(t, 20*time.Second, func() bool {
		b.hub.Ingest([]task.Event{ev(marker, task.Pending, time.Now().UnixMicro())})
		b.hub.Tick()
		for {
			select {
			case f, ok := <-frames:
				if !ok {
					t.Fatal("connection closed")
				}
				if f.Type == events.TypeBatch && len(f.Tasks) == 1 && f.Tasks[0].ID == marker {
					got = f
					return true
				}
			default:
				return false
			}
		}
	}, "a frame after the drops arrives")
	if dropped := b.hub.Counters().Dropped; got.Dropped < 3 || got.Dropped > dropped {
		t.Fatalf("frame says dropped=%d, hub dropped %d frames for this client", got.Dropped, dropped)
	}
}

func TestSlowCompletionClientIsDisconnected(t *testing.T) {
	t.Parallel()
	b := setup(t, events.Config{CompletionBuffer: 4, WriteTimeout: 10 * time.Second})
	dialWith(t, stalledDialer, "ws"+strings.TrimPrefix(b.srv.URL, "http")+"/ws/completions")
	meshtest.Eventually(t, 5*time.Second, func() bool { return b.hub.Counters().CompletionClients == 1 }, "client registered")
	meshtest.Eventually(t, 30*time.Second, func() bool {
		b.hub.Ingest(bigEvents(200))
		return b.hub.Counters().CompletionClients == 0
	}, "the stalled load generator is disconnected")
	if c := b.hub.Counters(); c.Disconnects["slow"] != 1 || c.MaxQueued > 4 {
		t.Fatalf("counters = %+v, want one slow disconnect", c)
	}
}

func TestCloseSendsGoingAway(t *testing.T) {
	t.Parallel()
	b := setup(t, events.Config{})
	c := b.dial(t, "/ws")
	read(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.hub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("read after Close: %v, want close 1001", err)
	}
	if err := b.hub.Accepting(); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("Accepting after Close = %v", err)
	}
}

func TestMaxClients(t *testing.T) {
	t.Parallel()
	b := setup(t, events.Config{MaxClients: 2})
	b.dial(t, "/ws")
	b.dial(t, "/ws/completions")
	meshtest.Eventually(t, 5*time.Second, func() bool { return b.hub.Accepting() != nil }, "hub full")
	if err := b.hub.Accepting(); !errors.Is(err, events.ErrTooManyClients) {
		t.Fatalf("Accepting = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, cfg := range []events.Config{
		{Tick: time.Microsecond},     // shorter than 1ms
		{MaxTickTasks: -1},           // negative cap
		{ClientBuffer: -1},           // negative buffer
		{WriteTimeout: -time.Second}, // negative timeout
	} {
		if _, err := events.NewHub(cfg, nil, nil); err == nil {
			t.Errorf("NewHub(%+v) accepted", cfg)
		}
	}
}

func Example() {
	hub, _ := events.NewHub(events.Config{}, nil, nil)
	id := uuid.MustParse("0b5e1a5c-3f49-4d7e-9f5c-8d0e2a1b4c6d")
	hub.Ingest([]task.Event{
		{ID: id, Role: task.QA, State: task.Active, AtUS: 1},
		{ID: id, Role: task.QA, State: task.Completed, CreatedUS: 0, CompletedUS: 2000, AtUS: 2},
	})
	s := hub.Stats()
	fmt.Printf("%d completed, p50 %.0f ms\n", s.Totals.Completed, s.LatencyMS.P50)
	// Output: 1 completed, p50 2 ms
}
