// Package events is the producer's event fan-out: a Subscriber reads the
// Redis events channel (JSON arrays of task.Event published by producers,
// workers and the maintenance loop) and hands every message to a Hub, which
//
//   - forwards every terminal event (completed, dead) at once to the
//     unbatched completion stream of load generators (GET /ws/completions);
//   - coalesces everything else into one frame per tick (100 ms) per
//     dashboard client (GET /ws): the latest event per task id seen in the
//     tick, aggregate counters, rates and a rolling latency window;
//   - keeps a bounded ring of recent tasks for the snapshot a client gets on
//     connect.
//
// # Bounded memory
//
// Every structure is capped: the per-tick map (Config.MaxTickTasks distinct
// tasks; more are counted in the frame's "omitted" and in the totals only),
// the recent ring (Config.RecentTasks), the freshness index that keeps a
// late, older event from overwriting a newer one (two generations of
// Config.SeenTasks ids), the latency window (a fixed-size HDR histogram per
// second), and each client's send buffer (Config.ClientBuffer frames for a
// dashboard, Config.CompletionBuffer messages for a load generator). A frame
// is encoded once per tick and the same bytes are queued for every client;
// a dashboard client whose buffer is full has frames dropped (counted, and
// reported to it in "dropped") and after Config.MaxDrops drops in a row, or
// a write that misses Config.WriteTimeout, it is disconnected. A load
// generator whose buffer is full is disconnected at once: the completion
// stream never drops a message silently.
//
// # Order
//
// Events of one task can arrive out of order (the producer's "pending" may
// reach Redis after the worker's "active"). The hub orders the events of a
// task by AtUS, the time the transition was observed, and ignores an event
// older than the newest it has seen for that task (in the coalesced frames
// and the snapshot; totals count every event).
package events

import (
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// Stats is the aggregate view served at GET /api/v1/stats and inside every
// WebSocket frame (docs/contracts.md).
type Stats struct {
	TsMS      int64                   `json:"ts_ms"`
	Totals    Totals                  `json:"totals"`
	Rates     Rates                   `json:"rates"`
	LatencyMS Latency                 `json:"latency_ms"`
	Depth     map[task.Role]RoleDepth `json:"depth"`
	Admission Admission               `json:"admission"`
}

// Totals count since the producer started. Submitted, Accepted and Rejected
// are this producer's own submissions; the rest come from the events it saw:
// Completed, Failed (an attempt failed, a retry is scheduled) and Dead count
// events of that state, Retried counts retry attempts that started (active
// events with attempts > 1).
type Totals struct {
	Submitted uint64 `json:"submitted"`
	Accepted  uint64 `json:"accepted"`
	Rejected  uint64 `json:"rejected"`
	Completed uint64 `json:"completed"`
	Failed    uint64 `json:"failed"`
	Retried   uint64 `json:"retried"`
	Dead      uint64 `json:"dead"`
}

// Rates are per second over the last second.
type Rates struct {
	SubmittedPerS float64 `json:"submitted_per_s"`
	CompletedPerS float64 `json:"completed_per_s"`
	EventsPerS    float64 `json:"events_per_s"`
}

// Latency is the mesh latency (created → completed) of the completions seen
// in the last latency window (10 s), in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// RoleDepth is how much work one role holds: pending, active and delayed in
// Redis, dead in PostgreSQL.
type RoleDepth struct {
	Pending int64 `json:"pending"`
	Active  int64 `json:"active"`
	Delayed int64 `json:"delayed"`
	Dead    int64 `json:"dead"`
}

// Admission states.
const (
	StateOpen       = "open"
	StateOverloaded = "overloaded"
	StateUnhealthy  = "unhealthy"
)

// Admission is whether the producer takes submissions: Paused is the
// operator's switch; State the worst of the roles' states, each in Roles.
type Admission struct {
	Paused bool                 `json:"paused"`
	State  string               `json:"state"`
	Roles  map[task.Role]string `json:"roles,omitempty"`
}

// Gauges supplies what the hub does not observe itself: depths, admission
// and workers, which the producer refreshes in the background. Methods are
// called on the tick goroutine and must not block.
type Gauges interface {
	Depth() map[task.Role]RoleDepth
	Admission() Admission
	// Workers returns the live workers and a version that changes whenever
	// the list or any heartbeat in it changed.
	Workers() ([]queue.WorkerInfo, uint64)
}

// noGauges is used when the hub is given none.
type noGauges struct{}

func (noGauges) Depth() map[task.Role]RoleDepth        { return map[task.Role]RoleDepth{} }
func (noGauges) Admission() Admission                  { return Admission{State: StateOpen} }
func (noGauges) Workers() ([]queue.WorkerInfo, uint64) { return nil, 0 }

// Frame types of the dashboard stream and the completion stream.
const (
	TypeSnapshot    = "snapshot"
	TypeBatch       = "batch"
	TypeCompletions = "completions"
)

// Snapshot is the first frame a dashboard client gets.
type Snapshot struct {
	Type    string             `json:"type"`
	Stats   Stats              `json:"stats"`
	Workers []queue.WorkerInfo `json:"workers"`
	// Tasks are the most recently changed tasks, newest first, each in its
	// latest known state.
	Tasks []task.Event `json:"tasks"`
}

// Batch is one tick's frame. On the wire it also carries "dropped": how many
// frames this client missed so far (spliced per client; see encodeBatch).
type Batch struct {
	Type  string `json:"type"`
	Seq   uint64 `json:"seq"`
	Stats Stats  `json:"stats"`
	// Workers is set only when a heartbeat changed since the last frame.
	Workers []queue.WorkerInfo `json:"workers,omitempty"`
	// Tasks holds the latest event per task id seen in the tick.
	Tasks []task.Event `json:"tasks"`
	// Events is how many raw events the tick covered.
	Events int `json:"events"`
	// Omitted counts tasks of the tick left out because the tick held more
	// than Config.MaxTickTasks distinct tasks (they still count in Stats).
	Omitted int `json:"omitted,omitempty"`
	// Dropped is decoded from the wire by clients; the hub splices it.
	Dropped uint64 `json:"dropped"`
}

// Completions is one message of the completion stream.
type Completions struct {
	Type   string       `json:"type"`
	Events []task.Event `json:"events"`
}
