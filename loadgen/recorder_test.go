package loadgen

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// TestSeriesStaysBounded: a run planned longer than maxSeries intervals gets
// a coarser series, and one that outlives its plan halves its resolution
// as it goes, so the series never grows past a few thousand points.
func TestSeriesStaysBounded(t *testing.T) {
	t.Parallel()
	r := newRecorder(recorderConfig{start: synthStart, e2e: true, interval: time.Second, earlyKeep: time.Second,
		dupWindow: time.Second, planned: 3 * maxSeries * time.Second})
	if r.seriesEvery != 4*time.Second {
		t.Fatalf("series every %v for a run of 3×maxSeries s, want 4s", r.seriesEvery)
	}
	r = newRecorder(recorderConfig{start: synthStart.Add(300 * time.Millisecond), e2e: true, interval: time.Second,
		earlyKeep: time.Second, dupWindow: time.Second})
	r.maxSeries = 10
	const seconds = 40
	for s := 1; s <= seconds; s++ {
		r.onSubmit(&submitRecord{units: []unit{{intended: int64(s) * 1e9}}, sent: int64(s) * 1e9, done: int64(s)*1e9 + 1e6,
			status: 202, accepted: true, ids: []uuid.UUID{uuid.New()}})
		r.rotate(synthStart.Add(time.Duration(s) * time.Second))
	}
	res := r.result(runInfo{mode: OpenLoop, end: synthStart.Add(seconds*time.Second + 500*time.Millisecond)})
	// 10 points of 1s (the first from 0.3s), 5 of 2s, then 5 of 4s.
	if n := len(res.Series); n != 10+5+5 {
		t.Errorf("%d points for %d intervals, want 20", n, seconds)
	}
	var sent int64
	prevEnd := res.Series[0].StartMS
	for _, p := range res.Series {
		sent += p.Sent
		if p.StartMS != prevEnd {
			t.Fatalf("point %+v does not start where the last ended (%d)", p, prevEnd)
		}
		prevEnd = p.EndMS
	}
	if sent != seconds || res.Series[0].StartMS != synthStart.Add(300*time.Millisecond).UnixMilli() {
		t.Errorf("series sent %d (want %d), starts at %d", sent, seconds, res.Series[0].StartMS)
	}
	if last := res.Series[len(res.Series)-1]; last.EndMS-last.StartMS != 4000 {
		t.Errorf("last point spans %dms", last.EndMS-last.StartMS)
	}
}

// TestTerminalKey: which events complete what.
func TestTerminalKey(t *testing.T) {
	t.Parallel()
	id, pid := uuid.New(), uuid.New()
	tests := []struct {
		ev   task.Event
		key  uuid.UUID
		dead bool
		ok   bool
	}{
		{task.Event{ID: id, State: task.Completed}, id, false, true},
		{task.Event{ID: id, State: task.Dead}, id, true, true},
		{task.Event{ID: id, State: task.Failed}, uuid.Nil, false, false},                                                    // retried later
		{task.Event{ID: id, State: task.Active}, uuid.Nil, false, false},                                                    // not terminal
		{task.Event{ID: id, State: task.Completed, Role: task.Architect, PipelineID: pid.String()}, uuid.Nil, false, false}, // the pipeline goes on
		{task.Event{ID: id, State: task.Completed, Role: task.QA, PipelineID: pid.String()}, pid, false, true},
		{task.Event{ID: id, State: task.Dead, Role: task.Developer, PipelineID: pid.String()}, pid, true, true}, // a dead stage ends it
		{task.Event{ID: id, State: task.Completed, Role: task.QA, PipelineID: "junk"}, uuid.Nil, false, false},
	}
	for i, tt := range tests {
		key, dead, ok := terminalKey(&tt.ev)
		if key != tt.key || dead != tt.dead || ok != tt.ok {
			t.Errorf("%d: terminalKey = %v, %v, %v; want %v, %v, %v", i, key, dead, ok, tt.key, tt.dead, tt.ok)
		}
	}
}

// TestEarlyEventsExpire: events of tasks this run never submitted age out
// and count as unmatched, so they cannot accumulate.
func TestEarlyEventsExpire(t *testing.T) {
	t.Parallel()
	r := newRecorder(recorderConfig{start: synthStart, e2e: true, interval: time.Second, earlyKeep: 2 * time.Second,
		dupWindow: time.Minute})
	for s := range 10 {
		evs := make([]task.Event, 100)
		for i := range evs {
			evs[i] = task.Event{ID: uuid.New(), State: task.Completed}
		}
		r.onEvents(eventBatch{at: int64(s) * 1e9, events: evs})
		r.rotate(synthStart.Add(time.Duration(s+1) * time.Second))
		if n := r.early.len(); n > 500 {
			t.Fatalf("after %ds %d early events are kept, want at most 2 generations of 2s", s+1, n)
		}
	}
	res := r.result(runInfo{mode: OpenLoop, end: synthStart.Add(11 * time.Second)})
	if res.Tasks.Unmatched != 1000 {
		t.Errorf("unmatched %d, want 1000", res.Tasks.Unmatched)
	}
}

// TestLateEventIsNoDuplicate: a unit the drain's GET found completed may
// still see its own completion event afterwards; that one is not a second
// completion, a further one is.
func TestLateEventIsNoDuplicate(t *testing.T) {
	t.Parallel()
	r := newRecorder(recorderConfig{start: synthStart, e2e: true, interval: time.Second, earlyKeep: time.Second,
		dupWindow: time.Minute})
	id := uuid.New()
	r.pending[id] = pendingEntry{intended: 1e9, sent: 1e9}
	r.onCheck(checkResult{id: id, state: string(task.Completed), completedAt: synthStart.Add(2 * time.Second)})
	ev := task.Event{ID: id, State: task.Completed}
	r.onEvents(eventBatch{at: 3e9, events: []task.Event{ev}})
	if r.tasks.Late != 1 || r.tasks.Completed != 1 || r.tasks.Duplicates != 0 {
		t.Fatalf("late %d completed %d duplicates %d after the late event; want 1, 1, 0", r.tasks.Late, r.tasks.Completed, r.tasks.Duplicates)
	}
	r.onEvents(eventBatch{at: 4e9, events: []task.Event{ev}})
	if r.tasks.Duplicates != 1 {
		t.Fatalf("duplicates %d after a second event, want 1", r.tasks.Duplicates)
	}
}
