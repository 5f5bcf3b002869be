package events

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// Defaults of Config.
const (
	DefaultTick             = 100 * time.Millisecond
	DefaultMaxTickTasks     = 2000
	DefaultRecentTasks      = 200
	DefaultSeenTasks        = 1 << 16
	DefaultClientBuffer     = 8
	DefaultMaxDrops         = 50
	DefaultWriteTimeout     = 5 * time.Second
	DefaultPingInterval     = 20 * time.Second
	DefaultCompletionBuffer = 1024
	DefaultMaxClients       = 1000
	DefaultLatencyWindow    = 10 * time.Second
)

// ErrClosed is returned by Serve and ServeCompletions after Close.
var ErrClosed = errors.New("events: hub closed")

// ErrTooManyClients is returned when Config.MaxClients are connected.
var ErrTooManyClients = errors.New("events: too many WebSocket clients")

// Config configures a Hub.
type Config struct {
	// Tick is the coalescing period: one frame per client per tick. Defaults to 100 ms.
	Tick time.Duration
	// MaxTickTasks caps the distinct tasks one frame carries. Defaults to 2000.
	MaxTickTasks int
	// RecentTasks is how many tasks a snapshot carries. Defaults to 200.
	RecentTasks int
	// SeenTasks sizes one generation of the freshness index. Defaults to 65536.
	SeenTasks int
	// ClientBuffer is a dashboard client's send buffer, in frames. Defaults to 8.
	ClientBuffer int
	// MaxDrops disconnects a dashboard client after this many frames in a
	// row were dropped for it. Defaults to 50.
	MaxDrops int
	// WriteTimeout bounds every write to a client. Defaults to 5 s.
	WriteTimeout time.Duration
	// PingInterval is how often clients are pinged; a client that has not
	// answered (or sent anything) for 3 intervals is disconnected. Defaults to 20 s.
	PingInterval time.Duration
	// CompletionBuffer is a completion-stream client's send buffer, in
	// messages; when it is full the client is disconnected. Defaults to 1024.
	CompletionBuffer int
	// MaxClients bounds the connected clients of both streams together. Defaults to 1000.
	MaxClients int
	// LatencyWindow is the span of Stats.latency_ms. Defaults to 10 s.
	LatencyWindow time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Tick = cmp.Or(c.Tick, DefaultTick)
	c.MaxTickTasks = cmp.Or(c.MaxTickTasks, DefaultMaxTickTasks)
	c.RecentTasks = cmp.Or(c.RecentTasks, DefaultRecentTasks)
	c.SeenTasks = cmp.Or(c.SeenTasks, DefaultSeenTasks)
	c.ClientBuffer = cmp.Or(c.ClientBuffer, DefaultClientBuffer)
	c.MaxDrops = cmp.Or(c.MaxDrops, DefaultMaxDrops)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, DefaultWriteTimeout)
	c.PingInterval = cmp.Or(c.PingInterval, DefaultPingInterval)
	c.CompletionBuffer = cmp.Or(c.CompletionBuffer, DefaultCompletionBuffer)
	c.MaxClients = cmp.Or(c.MaxClients, DefaultMaxClients)
	c.LatencyWindow = cmp.Or(c.LatencyWindow, DefaultLatencyWindow)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports a Config (after WithDefaults) that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Tick < time.Millisecond:
		return fmt.Errorf("events: tick %s is shorter than 1ms", c.Tick)
	case c.MaxTickTasks < 1 || c.RecentTasks < 1 || c.SeenTasks < 1:
		return fmt.Errorf("events: MaxTickTasks, RecentTasks and SeenTasks must be positive")
	case c.ClientBuffer < 1 || c.CompletionBuffer < 1 || c.MaxDrops < 1 || c.MaxClients < 1:
		return fmt.Errorf("events: ClientBuffer, CompletionBuffer, MaxDrops and MaxClients must be positive")
	case c.WriteTimeout <= 0 || c.PingInterval <= 0 || c.LatencyWindow < latencySlots*time.Millisecond:
		return fmt.Errorf("events: WriteTimeout, PingInterval and LatencyWindow must be positive")
	}
	return nil
}

// Hub coalesces events into per-tick frames for dashboard clients and
// forwards terminal events to load generators. Create it with NewHub, feed
// it with Ingest (usually from a Subscriber), run its ticker with Run, and
// Close it to disconnect every client with a close frame.
type Hub struct {
	cfg    Config
	gauges Gauges
	m      *metrics.Producer
	log    *slog.Logger

	// mu guards the aggregate state and the dashboard client set.
	mu      sync.Mutex
	totals  Totals
	events  uint64 // raw events seen
	tick    *tickSet
	spare   *tickSet
	recent  *recentRing
	seen    *seenIndex
	latency *latencyWindow
	rates   rates
	clients map[*client]struct{}
	closed  bool
	seq     uint64

	// fwdMu orders completion forwarding and guards the completion clients.
	fwdMu       sync.Mutex
	completions map[*client]struct{}

	// Owned by the tick goroutine.
	lastStats    []byte
	lastWorkers  uint64
	sentWorkers  bool
	clientsCache []*client

	wg        sync.WaitGroup // client pumps
	nclients  atomic.Int64
	counters  hubCounters
	closeOnce sync.Once
}

// hubCounters are for tests and debugging (Hub.Counters).
type hubCounters struct {
	frames, dropped, ticks, completionMsgs atomic.Uint64
	disconnects                            sync.Map // reason → *atomic.Uint64
}

// Counters is a point-in-time view of the hub's bookkeeping.
type Counters struct {
	// Clients and CompletionClients are connected now.
	Clients, CompletionClients int
	// Frames written to dashboard clients; Dropped frames not queued.
	Frames, Dropped uint64
	// Ticks that produced a frame.
	Ticks uint64
	// CompletionMessages queued for load generators (summed over clients).
	CompletionMessages uint64
	// MaxQueued is the fullest send buffer of any connected client now.
	MaxQueued int
	// Disconnects by reason (closed, slow, write_error, shutdown).
	Disconnects map[string]uint64
}

// NewHub returns a Hub. g may be nil (no depth, admission or workers) and m
// may be nil (no metrics).
func NewHub(cfg Config, g Gauges, m *metrics.Producer) (*Hub, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if g == nil {
		g = noGauges{}
	}
	now := cfg.Now()
	return &Hub{
		cfg: cfg, gauges: g, m: m, log: cfg.Logger,
		tick: newTickSet(cfg.MaxTickTasks), spare: newTickSet(cfg.MaxTickTasks),
		recent: newRecentRing(cfg.RecentTasks), seen: newSeenIndex(cfg.SeenTasks),
		latency: newLatencyWindow(cfg.LatencyWindow, now),
		clients: map[*client]struct{}{}, completions: map[*client]struct{}{},
	}, nil
}

// Config returns the hub's configuration, defaults filled.
func (h *Hub) Config() Config { return h.cfg }

// CountSubmissions adds this producer's submission outcomes to the totals.
func (h *Hub) CountSubmissions(submitted, accepted, rejected int) {
	h.mu.Lock()
	h.totals.Submitted += uint64(submitted)
	h.totals.Accepted += uint64(accepted)
	h.totals.Rejected += uint64(rejected)
	h.mu.Unlock()
}

// Ingest takes one message's events: terminal ones go to the completion
// stream at once, all of them into the totals, and the fresh ones into the
// current tick and the recent ring. Calls must not overlap if the completion
// stream is to keep the order of arrival (one Subscriber makes one caller).
func (h *Hub) Ingest(evs []task.Event) {
	if len(evs) == 0 {
		return
	}
	h.m.Events(len(evs))
	h.forwardCompletions(evs)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events += uint64(len(evs))
	h.tick.raw += len(evs)
	for i := range evs {
		e := &evs[i]
		h.count(e)
		if !h.seen.fresh(e) {
			continue
		}
		h.recent.put(*e)
		h.tick.put(*e)
	}
}

// count adds one event to the totals and the latency window.
func (h *Hub) count(e *task.Event) {
	switch e.State {
	case task.Completed:
		h.totals.Completed++
		if e.CompletedUS > 0 && e.CompletedUS >= e.CreatedUS {
			h.latency.record(e.CompletedUS - e.CreatedUS)
		}
	case task.Failed:
		h.totals.Failed++
	case task.Dead:
		h.totals.Dead++
	case task.Active:
		if e.Attempts > 1 {
			h.totals.Retried++
		}
	}
}

// Stats returns the current aggregate view.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.statsLocked(h.cfg.Now())
}

func (h *Hub) statsLocked(now time.Time) Stats {
	h.latency.advance(now)
	cur := rateSample{at: now, submitted: h.totals.Submitted, completed: h.totals.Completed, event: h.events}
	return Stats{
		TsMS: now.UnixMilli(), Totals: h.totals, Rates: h.rates.over(cur),
		LatencyMS: h.latency.percentiles(), Depth: h.gauges.Depth(), Admission: h.gauges.Admission(),
	}
}

// Run ticks until ctx ends, sending one batch frame per tick to every
// dashboard client when anything changed. It does not close the clients:
// Close does.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTicker(h.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.Tick()
		}
	}
}

// Tick builds and sends one tick's frame now. Run calls it every
// Config.Tick; tests may call it directly.
func (h *Hub) Tick() {
	now := h.cfg.Now()
	h.mu.Lock()
	ts := h.tick
	h.tick, h.spare = h.spare, ts
	stats := h.statsLocked(now)
	h.rates.add(rateSample{at: now, submitted: h.totals.Submitted, completed: h.totals.Completed, event: h.events})
	clients := h.clientsCache[:0]
	for c := range h.clients {
		clients = append(clients, c)
	}
	h.clientsCache = clients
	h.mu.Unlock()
	defer ts.reset()

	workers, wv := h.gauges.Workers()
	workersChanged := wv != h.lastWorkers || !h.sentWorkers
	statsKey := encodeStatsKey(stats)
	if ts.raw == 0 && !workersChanged && bytes.Equal(statsKey, h.lastStats) {
		return
	}
	h.lastStats = statsKey
	h.seq++
	b := Batch{Type: TypeBatch, Seq: h.seq, Stats: stats, Tasks: ts.evs, Events: ts.raw, Omitted: ts.omittedTasks()}
	if b.Tasks == nil {
		b.Tasks = []task.Event{}
	}
	if workersChanged {
		b.Workers = nonNilWorkers(workers)
		h.lastWorkers, h.sentWorkers = wv, true
	}
	data, err := json.Marshal(b)
	if err != nil {
		h.log.Error("encoding a batch frame", slog.Any("err", err))
		return
	}
	h.counters.ticks.Add(1)
	h.m.WSTick(ts.raw)
	h.broadcast(clients, data)
}

// encodeStatsKey encodes stats without their timestamp, to tell whether
// anything changed since the last frame.
func encodeStatsKey(s Stats) []byte {
	s.TsMS = 0
	b, _ := json.Marshal(s)
	return b
}

func nonNilWorkers(ws []queue.WorkerInfo) []queue.WorkerInfo {
	if ws == nil {
		return []queue.WorkerInfo{}
	}
	return ws
}

// broadcast queues data (a Batch encoded with Dropped 0, so ending in
// `"dropped":0}`) for every client: clients that dropped nothing share one
// prepared message; the others share the same bytes up to "dropped" and get
// only their own few-byte tail, so a slow client's buffer holds no copies.
func (h *Hub) broadcast(clients []*client, data []byte) {
	if len(clients) == 0 {
		return
	}
	shared, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
	if err != nil {
		h.log.Error("preparing a batch frame", slog.Any("err", err))
		return
	}
	prefix := data[: len(data)-len("0}") : len(data)-len("0}")]
	for _, c := range clients {
		m := outMsg{pm: shared}
		if d := c.dropped.Load(); d > 0 {
			m = outMsg{data: prefix, tail: append(strconv.AppendUint(nil, d, 10), '}')}
		}
		h.offer(c, m)
	}
}

// offer queues m for a dashboard client, or drops it and, after MaxDrops
// drops in a row, disconnects the client.
func (h *Hub) offer(c *client, m outMsg) {
	select {
	case c.send <- m:
		c.consecutive = 0
	default:
		c.dropped.Add(1)
		c.consecutive++
		h.counters.dropped.Add(1)
		h.m.WSDropped()
		if c.consecutive >= h.cfg.MaxDrops {
			c.kick(reasonSlow)
		}
	}
}

// forwardCompletions sends the terminal events of one message to every
// completion client, encoded once.
func (h *Hub) forwardCompletions(evs []task.Event) {
	h.fwdMu.Lock()
	defer h.fwdMu.Unlock()
	if len(h.completions) == 0 {
		return
	}
	var terminal []task.Event
	for i := range evs {
		if evs[i].State.Terminal() {
			terminal = append(terminal, evs[i])
		}
	}
	if len(terminal) == 0 {
		return
	}
	data, err := json.Marshal(Completions{Type: TypeCompletions, Events: terminal})
	if err != nil {
		h.log.Error("encoding a completions message", slog.Any("err", err))
		return
	}
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
	if err != nil {
		h.log.Error("preparing a completions message", slog.Any("err", err))
		return
	}
	for c := range h.completions {
		select {
		case c.send <- outMsg{pm: pm}:
			h.counters.completionMsgs.Add(1)
		default:
			c.kick(reasonSlow)
		}
	}
}

// Serve runs a dashboard client on an upgraded connection: a snapshot
// first, then a batch frame per tick. It returns at once; the client's
// pumps run until it disconnects or the hub closes. On error the caller
// still owns conn.
func (h *Hub) Serve(conn *websocket.Conn) error {
	c := newClient(h, conn, metrics.StreamUI, h.cfg.ClientBuffer)
	h.mu.Lock()
	if err := h.admit(); err != nil {
		h.mu.Unlock()
		return err
	}
	snap, err := json.Marshal(h.snapshotLocked())
	if err != nil {
		h.nclients.Add(-1)
		h.wg.Add(-2)
		h.mu.Unlock()
		return fmt.Errorf("encoding a snapshot: %w", err)
	}
	c.send <- outMsg{data: snap} // first in an empty buffer: cannot block
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	h.start(c)
	return nil
}

// ServeCompletions runs a load generator's completion-stream client.
func (h *Hub) ServeCompletions(conn *websocket.Conn) error {
	c := newClient(h, conn, metrics.StreamCompletions, h.cfg.CompletionBuffer)
	h.mu.Lock() // held while registering, so Close sees the client
	defer h.mu.Unlock()
	if err := h.admit(); err != nil {
		return err
	}
	h.fwdMu.Lock()
	h.completions[c] = struct{}{}
	h.fwdMu.Unlock()
	h.start(c)
	return nil
}

// admit reserves a client slot and its two pumps in the WaitGroup; h.mu
// is held, so Close (which sets closed under h.mu) never waits on a
// counter that may still grow.
func (h *Hub) admit() error {
	if h.closed {
		return ErrClosed
	}
	if h.nclients.Load() >= int64(h.cfg.MaxClients) {
		return ErrTooManyClients
	}
	h.nclients.Add(1)
	h.wg.Add(2)
	return nil
}

func (h *Hub) start(c *client) {
	h.m.WSClients(c.stream, 1)
	go c.writeLoop()
	go c.readLoop()
}

func (h *Hub) snapshotLocked() Snapshot {
	workers, _ := h.gauges.Workers()
	return Snapshot{Type: TypeSnapshot, Stats: h.statsLocked(h.cfg.Now()),
		Workers: nonNilWorkers(workers), Tasks: h.recent.events()}
}

// remove forgets a client whose pumps ended.
func (h *Hub) remove(c *client) {
	if c.stream == metrics.StreamCompletions {
		h.fwdMu.Lock()
		delete(h.completions, c)
		h.fwdMu.Unlock()
	} else {
		h.mu.Lock()
		delete(h.clients, c)
		h.mu.Unlock()
	}
	h.nclients.Add(-1)
	reason := c.reasonOr(reasonClosed)
	h.m.WSClients(c.stream, -1)
	h.m.WSDisconnect(c.stream, reason)
	v, _ := h.counters.disconnects.LoadOrStore(reason, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
}

// Close disconnects every client with a close frame ("going away") and
// waits for their pumps, at most until ctx ends. New clients are refused.
func (h *Hub) Close(ctx context.Context) error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		for c := range h.clients {
			c.kick(reasonShutdown)
		}
		h.mu.Unlock()
		h.fwdMu.Lock()
		for c := range h.completions {
			c.kick(reasonShutdown)
		}
		h.fwdMu.Unlock()
	})
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("closing WebSocket clients: %w", context.Cause(ctx))
	}
}

// Counters returns the hub's bookkeeping now.
func (h *Hub) Counters() Counters {
	c := Counters{Frames: h.counters.frames.Load(), Dropped: h.counters.dropped.Load(),
		Ticks: h.counters.ticks.Load(), CompletionMessages: h.counters.completionMsgs.Load(),
		Disconnects: map[string]uint64{}}
	h.mu.Lock()
	c.Clients = len(h.clients)
	for cl := range h.clients {
		c.MaxQueued = max(c.MaxQueued, len(cl.send))
	}
	h.mu.Unlock()
	h.fwdMu.Lock()
	c.CompletionClients = len(h.completions)
	for cl := range h.completions {
		c.MaxQueued = max(c.MaxQueued, len(cl.send))
	}
	h.fwdMu.Unlock()
	h.counters.disconnects.Range(func(k, v any) bool {
		c.Disconnects[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return c
}

// Accepting reports whether a new client would be taken now: ErrClosed
// after Close, ErrTooManyClients at Config.MaxClients.
func (h *Hub) Accepting() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if h.nclients.Load() >= int64(h.cfg.MaxClients) {
		return ErrTooManyClients
	}
	return nil
}
