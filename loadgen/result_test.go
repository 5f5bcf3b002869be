package loadgen

import (
	"bytes"
	"encoding/binary"
	"flag"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/task"
)

var update = flag.Bool("update", false, "rewrite the golden report and the fuzz seed corpus")

var synthStart = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// synthRun feeds one deterministic run of 3,000 units into one recorder
// and, split round-robin, into parts recorders (as if parts generators had
// shared the load), and returns the results of both.
func synthRun(t testing.TB, parts int) (*Result, []*Result) {
	t.Helper()
	mk := func() *recorder {
		return newRecorder(recorderConfig{start: synthStart, e2e: true, interval: time.Second, maxLost: 100,
			maxLag: 10 * time.Millisecond, earlyKeep: 10 * time.Second, dupWindow: time.Minute,
			pacer: ConstantPacer{PerSecond: 1000}})
	}
	one, split := mk(), make([]*recorder, parts)
	for i := range split {
		split[i] = mk()
	}
	scheduled := make([]int64, parts)
	rng := rand.New(rand.NewPCG(7, 7))
	const ms = int64(time.Millisecond)
	boundary := int64(1)
	for i := range int64(3000) {
		intended := i * ms
		for intended >= boundary*int64(time.Second) { // close intervals at whole seconds
			for _, r := range append([]*recorder{one}, split...) {
				r.rotate(synthStart.Add(time.Duration(boundary) * time.Second))
			}
			boundary++
		}
		var idb [16]byte
		binary.LittleEndian.PutUint64(idb[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(idb[8:], rng.Uint64())
		id := uuid.UUID(idb)
		sent := intended + rng.Int64N(2*ms)
		if i%500 == 250 {
			sent += 40 * ms // the odd late send
		}
		done := sent + 200_000 + rng.Int64N(5*ms)
		rec := &submitRecord{units: []unit{{intended: intended, role: task.QA, size: 256}}, due: intended,
			sent: sent, done: done, status: 202, accepted: true, ids: []uuid.UUID{id}, bytesOut: 300, bytesIn: 420}
		switch {
		case i%50 == 0:
			rec.status, rec.accepted, rec.ids, rec.err = 429, false, nil, "429 Too Many Requests (overloaded)"
		case i%97 == 0:
			rec.status, rec.accepted, rec.ids, rec.err = 0, false, nil, "connection refused"
		}
		ev := task.Event{ID: id, Role: task.QA, State: task.Completed}
		if i%13 == 0 {
			ev.State = task.Dead
		}
		batch := eventBatch{at: done + rng.Int64N(50*ms), events: []task.Event{ev}}
		if i%31 == 0 {
			batch.events = append(batch.events, ev) // a duplicate
		}
		silent := i%101 == 0 || i%103 == 0 // no event: lost, or found late by GET
		part := split[i%int64(parts)]
		scheduled[i%int64(parts)]++
		for _, r := range []*recorder{one, part} {
			switch {
			case silent:
				r.onSubmit(rec)
			case i%11 == 0: // the event beats the answer
				r.onEvents(batch)
				r.onSubmit(rec)
			default:
				r.onSubmit(rec)
				r.onEvents(batch)
			}
		}
	}
	settle := func(r *recorder) {
		for _, c := range r.pendingChecks() {
			res := checkResult{id: c.key, state: "active"}
			if c.key[0]%2 == 0 {
				res.state, res.completedAt = "completed", synthStart.Add(3100*time.Millisecond)
			}
			r.onCheck(res)
		}
	}
	info := runInfo{mode: OpenLoop, schedule: "constant 1000/s", target: "http://mesh.test", batch: 1,
		span: 3 * time.Second, end: synthStart.Add(3200 * time.Millisecond)}
	settle(one)
	info.scheduled = 3000
	whole := one.result(info)
	results := make([]*Result, parts)
	for i, r := range split {
		settle(r)
		info.scheduled = scheduled[i]
		results[i] = r.result(info)
	}
	return whole, results
}

// roundTrip encodes a result to JSON and decodes it.
func roundTrip(t testing.TB, r *Result) *Result {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}
	back, err := DecodeResult(&b)
	if err != nil {
		t.Fatalf("DecodeResult: %v", err)
	}
	return back
}

// TestMergeEqualsOneRun: the results of three generators, each through its
// JSON file, merge into exactly the histograms and counts of one run that
// saw all the load.
func TestMergeEqualsOneRun(t *testing.T) {
	t.Parallel()
	whole, parts := synthRun(t, 3)
	for i := range parts {
		parts[i] = roundTrip(t, parts[i])
	}
	merged, err := Merge(parts...)
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if whole.Tasks.Completed == 0 || whole.Tasks.Lost == 0 || whole.Tasks.Late == 0 || whole.Tasks.Duplicates == 0 ||
		whole.Tasks.Dead == 0 || whole.Tasks.Rejected == 0 || whole.Tasks.Errors == 0 {
		t.Fatalf("the synthetic run misses a case: %+v", whole.Tasks)
	}
	assertSameRun(t, merged, whole)
	if merged.Generators != 3 {
		t.Errorf("generators %d, want 3", merged.Generators)
	}
	if merged.TargetRate != whole.TargetRate {
		t.Errorf("target rate %v, want %v", merged.TargetRate, whole.TargetRate)
	}
	// Merging is associative: (a+b)+c = a+b+c.
	ab, _ := Merge(parts[0], parts[1])
	abc, _ := Merge(roundTrip(t, ab), parts[2])
	assertSameRun(t, abc, whole)
}

func assertSameRun(t *testing.T, got, want *Result) {
	t.Helper()
	if got.Tasks != want.Tasks {
		t.Errorf("tasks\n got %+v\nwant %+v", got.Tasks, want.Tasks)
	}
	if got.HTTP.Requests != want.HTTP.Requests || got.HTTP.BytesIn != want.HTTP.BytesIn ||
		!maps.Equal(got.HTTP.StatusCodes, want.HTTP.StatusCodes) {
		t.Errorf("http %+v, want %+v", got.HTTP, want.HTTP)
	}
	if !reflect.DeepEqual(got.Errors, want.Errors) || !reflect.DeepEqual(got.Lost, want.Lost) {
		t.Errorf("errors or lost differ:\n%v %v\n%v %v", got.Errors, got.Lost, want.Errors, want.Lost)
	}
	for i, name := range latencyNames {
		g, w := *got.Latency.all()[i], *want.Latency.all()[i]
		if !g.HDRHistogram().Equals(w.HDRHistogram()) || g.Count != w.Count || g.P99US != w.P99US {
			t.Errorf("%s: merged histogram (%d values, p99 %d) differs from the single run's (%d, %d)",
				name, g.Count, g.P99US, w.Count, w.P99US)
		}
	}
	if len(got.Series) != len(want.Series) {
		t.Fatalf("%d intervals, want %d", len(got.Series), len(want.Series))
	}
	for i := range got.Series {
		g, w := got.Series[i], want.Series[i]
		if g.StartMS != w.StartMS || g.Sent != w.Sent || g.Completed != w.Completed || g.Errors != w.Errors {
			t.Errorf("interval %d: %+v, want %+v", i, g, w)
		}
		for j, name := range latencyNames {
			if !(*g.Latency.all()[j]).HDRHistogram().Equals((*w.Latency.all()[j]).HDRHistogram()) {
				t.Errorf("interval %d %s histogram differs", i, name)
			}
		}
	}
}

// TestResultRoundTrip: a result survives its JSON form unchanged.
func TestResultRoundTrip(t *testing.T) {
	t.Parallel()
	whole, _ := synthRun(t, 1)
	back := roundTrip(t, whole)
	assertSameRun(t, back, whole)
	if !back.Start.Equal(whole.Start) || back.TargetRate != whole.TargetRate || back.Mode != whole.Mode ||
		!reflect.DeepEqual(back.Warnings, whole.Warnings) {
		t.Errorf("round trip changed the result")
	}
	if _, err := Merge(); err == nil {
		t.Error("Merge() of nothing: no error")
	}
	closed := *back
	closed.Mode = ClosedLoop
	if _, err := Merge(back, &closed); err == nil {
		t.Error("Merge of open- and closed-loop results: no error")
	}
}

// TestReportGolden pins the text report (go test -run Golden -update).
func TestReportGolden(t *testing.T) {
	t.Parallel()
	whole, _ := synthRun(t, 1)
	var b bytes.Buffer
	if err := WriteReport(&b, whole); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("report differs from %s (run with -update if intended):\n%s", golden, b.String())
	}
}
