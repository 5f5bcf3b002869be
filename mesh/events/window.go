package events

import (
	"container/list"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// latencyWindow is the rolling mesh-latency window: one HDR histogram (µs,
// 2 significant figures, up to 1 hour) per slot, rotated every slot
// duration, merged for percentiles. Its size is fixed whatever the rate.
type latencyWindow struct {
	h       *hdrhistogram.WindowedHistogram
	slot    time.Duration
	rotated time.Time
	count   int64
}

const latencySlots = 10

func newLatencyWindow(window time.Duration, now time.Time) *latencyWindow {
	return &latencyWindow{
		h:       hdrhistogram.NewWindowed(latencySlots, 1, int64(time.Hour/time.Microsecond), 2),
		slot:    window / latencySlots,
		rotated: now,
	}
}

// advance rotates out the slots that ended before now.
func (w *latencyWindow) advance(now time.Time) {
	for i := 0; now.Sub(w.rotated) >= w.slot && i <= latencySlots; i++ {
		w.h.Rotate()
		w.rotated = w.rotated.Add(w.slot)
	}
	if now.Sub(w.rotated) >= w.slot { // idle for longer than the window
		w.rotated = now
	}
}

func (w *latencyWindow) record(us int64) {
	_ = w.h.Current.RecordValue(max(us, 1)) // values past the range are dropped
}

// percentiles returns p50, p90, p99 in milliseconds.
func (w *latencyWindow) percentiles() Latency {
	m := w.h.Merge()
	if m.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(q float64) float64 { return float64(m.ValueAtQuantile(q)) / 1000 }
	return Latency{P50: ms(50), P90: ms(90), P99: ms(99)}
}

// rateSample is one tick's cumulative counters.
type rateSample struct {
	at                          time.Time
	submitted, completed, event uint64
}

// rates keeps the samples of the last couple of seconds in a small ring.
type rates struct {
	ring [32]rateSample
	n    int // samples written
}

func (r *rates) add(s rateSample) {
	r.ring[r.n%len(r.ring)] = s
	r.n++
}

// over returns the rates between the newest sample at least a second older
// than cur (or the oldest kept) and cur.
func (r *rates) over(cur rateSample) Rates {
	var base *rateSample
	kept := min(r.n, len(r.ring))
	for i := 1; i <= kept; i++ {
		s := &r.ring[(r.n-i)%len(r.ring)]
		base = s
		if cur.at.Sub(s.at) >= time.Second {
			break
		}
	}
	if base == nil {
		return Rates{}
	}
	dt := cur.at.Sub(base.at).Seconds()
	if dt <= 0 {
		return Rates{}
	}
	per := func(a, b uint64) float64 { return float64(a-b) / dt }
	return Rates{
		SubmittedPerS: per(cur.submitted, base.submitted),
		CompletedPerS: per(cur.completed, base.completed),
		EventsPerS:    per(cur.event, base.event),
	}
}

// recentRing holds the latest event of the most recently changed tasks,
// at most max of them, newest first.
type recentRing struct {
	max   int
	order *list.List // of task.Event, front = newest
	byID  map[uuid.UUID]*list.Element
}

func newRecentRing(max int) *recentRing {
	return &recentRing{max: max, order: list.New(), byID: make(map[uuid.UUID]*list.Element, max)}
}

func (r *recentRing) put(e task.Event) {
	if el, ok := r.byID[e.ID]; ok {
		el.Value = e
		r.order.MoveToFront(el)
		return
	}
	if r.order.Len() >= r.max {
		old := r.order.Back()
		delete(r.byID, old.Value.(task.Event).ID)
		old.Value = e // reuse the element
		r.order.MoveToFront(old)
		r.byID[e.ID] = old
		return
	}
	r.byID[e.ID] = r.order.PushFront(e)
}

// events returns the ring's events, newest first.
func (r *recentRing) events() []task.Event {
	out := make([]task.Event, 0, r.order.Len())
	for el := r.order.Front(); el != nil; el = el.Next() {
		out = append(out, el.Value.(task.Event))
	}
	return out
}

// seenIndex remembers the newest AtUS seen per task id, for two generations
// of at most cap ids each: when the current generation is full it becomes
// the old one and the previous old one is forgotten. Memory is bounded by
// 2·cap entries; an id forgotten this way simply accepts its next event.
type seenIndex struct {
	cap      int
	cur, old map[uuid.UUID]int64
}

func newSeenIndex(cap int) *seenIndex {
	return &seenIndex{cap: cap, cur: make(map[uuid.UUID]int64, cap)}
}

// fresh reports whether e is at least as new as every event seen for its
// task, and records it if so.
func (s *seenIndex) fresh(e *task.Event) bool {
	prev, ok := s.cur[e.ID]
	if !ok {
		prev, ok = s.old[e.ID]
	}
	if ok && e.AtUS < prev {
		return false
	}
	if len(s.cur) >= s.cap {
		if _, in := s.cur[e.ID]; !in {
			s.old, s.cur = s.cur, make(map[uuid.UUID]int64, s.cap)
		}
	}
	s.cur[e.ID] = e.AtUS
	return true
}

// tickSet is the coalescing map of one tick: the latest event per task id,
// in order of first appearance, at most max ids.
type tickSet struct {
	max     int
	evs     []task.Event
	idx     map[uuid.UUID]int
	raw     int // events the tick covered
	omitted int // distinct tasks left out because the set was full
	skipped map[uuid.UUID]struct{}
}

func newTickSet(max int) *tickSet {
	return &tickSet{max: max, idx: make(map[uuid.UUID]int, max), skipped: map[uuid.UUID]struct{}{}}
}

func (t *tickSet) put(e task.Event) {
	if i, ok := t.idx[e.ID]; ok {
		t.evs[i] = e
		return
	}
	if len(t.evs) >= t.max {
		if _, ok := t.skipped[e.ID]; !ok && len(t.skipped) < t.max {
			t.skipped[e.ID] = struct{}{}
		}
		t.omitted++
		return
	}
	t.idx[e.ID] = len(t.evs)
	t.evs = append(t.evs, e)
}

// omittedTasks is the number of distinct tasks left out (approximate past max).
func (t *tickSet) omittedTasks() int {
	if len(t.skipped) < t.max {
		return len(t.skipped)
	}
	return t.omitted
}

func (t *tickSet) reset() {
	t.evs = t.evs[:0]
	clear(t.idx)
	clear(t.skipped)
	t.raw, t.omitted = 0, 0
}
