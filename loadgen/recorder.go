package loadgen

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// unit is one scheduled unit of load: a single task or a whole pipeline.
type unit struct {
	intended int64 // intended send time, ns since the start
	role     task.Role
	size     int32
	pipeline bool
}

// submitRecord is what a sender reports about one request.
type submitRecord struct {
	units    []unit
	due      int64 // intended send time of the request (its last unit's)
	sent     int64 // actual send time
	done     int64 // answer received
	status   int   // 0: no answer
	err      string
	ids      []uuid.UUID // accepted: one per unit (the pipeline id for a pipeline)
	arch     uuid.UUID   // a pipeline's ARCHITECT task
	waiter   *waiter
	bytesOut int64
	bytesIn  int64
	skipped  bool // not sent: the pending limit was reached
	pipeline bool // a POST /api/v1/pipelines
	accepted bool // answered 2xx with a well-formed body
}

// waiter lets a closed-loop client wait for the completion of what it sent.
// The client sets remaining before handing the record over; from then on only
// the recorder touches it.
type waiter struct {
	remaining int
	done      chan struct{}
}

// eventBatch is one message of the completion stream and when it arrived.
type eventBatch struct {
	at     int64
	events []task.Event
}

// checkResult is the answer of GET /api/v1/tasks/{id} for a unit still
// pending after the drain timeout.
type checkResult struct {
	id          uuid.UUID
	state       string // task state, "not_found", or "error: …"
	completedAt time.Time
}

// pendingEntry is an accepted unit waiting for its completion.
type pendingEntry struct {
	intended int64
	sent     int64
	arch     uuid.UUID
	pipeline bool
	waiter   *waiter
}

type earlyEvent struct {
	at   int64
	dead bool
}

// The histograms of a recorder, in Latencies order.
const (
	hCorrected = iota
	hService
	hSubmit
	hLag
	numHists
)

var histTags = [numHists]string{"corrected", "service", "submit", "schedule_lag"}

type intervalCounts struct {
	sent, accepted, errors, completed, dead int64
}

// recorder owns every measurement of a run. All its methods run on one
// goroutine (loop), fed by channels, so nothing in it needs a lock and one
// set of histograms suffices.
type recorder struct {
	start    time.Time
	e2e      bool
	interval time.Duration
	maxLost  int
	maxLagUS int64
	pacer    Pacer // nil when closed-loop
	m        *metrics
	hlog     *hdr.HistogramLogWriter
	progress io.Writer
	pendingN *atomic.Int64

	total     [numHists]*hdr.Histogram
	ival      [numHists]*hdr.Histogram
	ivalStart time.Time
	ivc       intervalCounts
	// The series: points of seriesEvery (Interval, doubled when the run
	// is planned longer than maxSeries intervals).
	series      []Interval
	seriesEvery time.Duration
	maxSeries   int
	sacc        seriesAcc

	tasks      TaskCounts
	requests   int64
	bytesOut   int64
	bytesIn    int64
	statuses   map[int]int64
	errs       map[string]int64
	lastSend   int64
	lastDone   int64
	reconnects int64

	pending map[uuid.UUID]pendingEntry
	early   *generations[uuid.UUID, earlyEvent]
	done    *generations[uint64, bool] // completed units; true: found by GET, its event not yet seen
	lost    []LostTask
	drained []chan struct{}
}

type recorderConfig struct {
	start     time.Time
	e2e       bool
	interval  time.Duration
	maxLost   int
	maxLag    time.Duration
	earlyKeep time.Duration
	dupWindow time.Duration
	planned   time.Duration // the run's expected length, 0 if unknown
	pacer     Pacer
	m         *metrics
	hlog      *hdr.HistogramLogWriter
	progress  io.Writer
}

func newRecorder(c recorderConfig) *recorder {
	r := &recorder{
		start: c.start, e2e: c.e2e, interval: c.interval, maxLost: c.maxLost,
		maxLagUS: c.maxLag.Microseconds(), pacer: c.pacer, m: c.m, hlog: c.hlog,
		progress: c.progress, pendingN: new(atomic.Int64),
		ivalStart: c.start,
		statuses:  map[int]int64{},
		errs:      map[string]int64{},
		pending:   map[uuid.UUID]pendingEntry{},
		early:     newGenerations[uuid.UUID, earlyEvent](c.earlyKeep),
		done:      newGenerations[uint64, bool](c.dupWindow),
	}
	if r.progress == nil {
		r.progress = io.Discard
	}
	for i := range numHists {
		r.total[i], r.ival[i], r.sacc.h[i] = newHist(), newHist(), newHist()
	}
	r.seriesEvery, r.maxSeries = c.interval, maxSeries
	for c.planned/r.seriesEvery > maxSeries {
		r.seriesEvery *= 2
	}
	r.sacc.iv.StartMS = c.start.UnixMilli()
	return r
}

func (r *recorder) record(i int, ns int64) {
	recordNS(r.total[i], ns)
	recordNS(r.ival[i], ns)
}

// onSubmit accounts for one request.
func (r *recorder) onSubmit(rec *submitRecord) {
	n := int64(len(rec.units))
	if rec.skipped {
		r.tasks.Skipped += n
		r.ivc.errors += n
		r.addError("not sent: pending limit reached (max-pending)", n)
		r.m.outcome("skipped", n)
		return
	}
	r.tasks.Sent += n
	r.ivc.sent += n
	r.requests++
	r.bytesOut += rec.bytesOut
	r.bytesIn += rec.bytesIn
	r.lastSend = max(r.lastSend, rec.sent)
	r.statuses[rec.status]++
	r.record(hLag, rec.sent-rec.due)
	r.m.lag(rec.sent - rec.due)
	switch {
	case rec.accepted:
		r.accept(rec)
	case rec.status == 0 || (rec.status >= 200 && rec.status < 300):
		r.tasks.Errors += n
		r.ivc.errors += n
		r.addError(rec.err, 1)
		r.m.outcome("error", n)
	default:
		r.tasks.Rejected += n
		r.ivc.errors += n
		r.addError(rec.err, 1)
		r.m.outcome("rejected", n)
	}
}

func (r *recorder) accept(rec *submitRecord) {
	n := int64(len(rec.units))
	r.tasks.Accepted += n
	r.ivc.accepted += n
	r.m.outcome("accepted", n)
	for _, u := range rec.units {
		r.record(hSubmit, rec.done-u.intended)
		r.m.latency("submit", rec.done-u.intended)
	}
	if !r.e2e {
		r.lastDone = max(r.lastDone, rec.done)
		return
	}
	for i, id := range rec.ids {
		e := pendingEntry{intended: rec.units[i].intended, sent: rec.sent, waiter: rec.waiter,
			pipeline: rec.pipeline, arch: rec.arch}
		if ev, ok := r.early.get(id); ok { // the completion beat the answer
			r.early.del(id)
			r.complete(id, e, ev.at, ev.dead, false)
			continue
		}
		r.pending[id] = e
	}
	r.pendingN.Store(int64(len(r.pending)))
}

// onEvents matches terminal events to pending units.
func (r *recorder) onEvents(b eventBatch) {
	for i := range b.events {
		ev := &b.events[i]
		key, dead, ok := terminalKey(ev)
		if !ok {
			continue
		}
		if e, found := r.pending[key]; found {
			delete(r.pending, key)
			r.complete(key, e, b.at, dead, false)
			continue
		}
		if byGet, seen := r.done.get(key64(key)); seen {
			if byGet {
				// The completion a GET found after the drain: its own event,
				// arriving late, is no second completion.
				r.done.put(key64(key), false)
				continue
			}
			r.tasks.Duplicates++
			continue
		}
		if _, seen := r.early.get(key); seen {
			r.tasks.Duplicates++
			continue
		}
		r.early.put(key, earlyEvent{at: b.at, dead: dead})
	}
	r.pendingN.Store(int64(len(r.pending)))
	r.notifyDrained()
}

// terminalKey returns the id a terminal event completes: the task id, or for
// a pipeline stage the pipeline id, when the QA stage completed or any stage
// died. Other events complete nothing of ours.
func terminalKey(ev *task.Event) (uuid.UUID, bool, bool) {
	if !ev.State.Terminal() {
		return uuid.UUID{}, false, false
	}
	dead := ev.State == task.Dead
	if ev.PipelineID == "" {
		return ev.ID, dead, true
	}
	if !dead && ev.Role != task.QA {
		return uuid.UUID{}, false, false
	}
	pid, err := uuid.Parse(ev.PipelineID)
	if err != nil {
		return uuid.UUID{}, false, false
	}
	return pid, dead, true
}

// key64 is the random low half of an id: enough to recognise a duplicate.
func key64(id uuid.UUID) uint64 { return binary.LittleEndian.Uint64(id[8:]) }

// complete records a unit's completion at offset at (ns). Late completions
// (found by GET) go into the totals, not into the interval they were found in.
func (r *recorder) complete(id uuid.UUID, e pendingEntry, at int64, dead, late bool) {
	r.done.put(key64(id), late)
	r.lastDone = max(r.lastDone, at)
	if late {
		r.tasks.Late++
	}
	if dead {
		r.tasks.Dead++
		r.ivc.dead++
		r.m.outcome("dead", 1)
	} else {
		r.tasks.Completed++
		r.m.outcome("completed", 1)
		if late {
			recordNS(r.total[hCorrected], at-e.intended)
			recordNS(r.total[hService], at-e.sent)
		} else {
			r.ivc.completed++
			r.record(hCorrected, at-e.intended)
			r.record(hService, at-e.sent)
		}
		r.m.latency("corrected", at-e.intended)
		r.m.latency("service", at-e.sent)
	}
	if w := e.waiter; w != nil {
		if w.remaining--; w.remaining == 0 {
			close(w.done)
		}
	}
}

// onCheck settles a unit still pending after the drain with what GET said.
func (r *recorder) onCheck(c checkResult) {
	e, ok := r.pending[c.id]
	if !ok {
		return // its event arrived meanwhile
	}
	delete(r.pending, c.id)
	r.pendingN.Store(int64(len(r.pending)))
	switch {
	case c.state == string(task.Dead):
		r.complete(c.id, e, c.completedAt.Sub(r.start).Nanoseconds(), true, true)
	case c.state == string(task.Completed) && !e.pipeline && !c.completedAt.IsZero():
		r.complete(c.id, e, c.completedAt.Sub(r.start).Nanoseconds(), false, true)
	default:
		state := c.state
		if e.pipeline {
			state = "ARCHITECT stage " + state + "; later stages not seen"
		}
		r.markLost(c.id, e, state)
	}
	r.notifyDrained()
}

func (r *recorder) markLost(id uuid.UUID, e pendingEntry, state string) {
	r.tasks.Lost++
	r.m.lostOne()
	if len(r.lost) >= r.maxLost {
		return
	}
	kind := "task"
	if e.pipeline {
		kind = "pipeline"
	}
	r.lost = append(r.lost, LostTask{ID: id.String(), Kind: kind, State: state,
		Intended: r.start.Add(time.Duration(e.intended)).UTC()})
}

// pendingChecks lists the units still pending, for the GET checks.
func (r *recorder) pendingChecks() []checkItem {
	out := make([]checkItem, 0, len(r.pending))
	for id, e := range r.pending {
		c := checkItem{key: id, get: id}
		if e.pipeline {
			c.get = e.arch
		}
		out = append(out, c)
	}
	return out
}

// whenDrained closes ch once nothing is pending.
func (r *recorder) whenDrained(ch chan struct{}) {
	r.drained = append(r.drained, ch)
	r.notifyDrained()
}

func (r *recorder) notifyDrained() {
	if len(r.pending) > 0 || len(r.drained) == 0 {
		return
	}
	for _, ch := range r.drained {
		close(ch)
	}
	r.drained = nil
}

func (r *recorder) addError(e string, n int64) {
	if e == "" {
		e = "unknown error"
	}
	if _, ok := r.errs[e]; !ok && len(r.errs) >= maxErrors {
		e = "other errors"
	}
	r.errs[e] += n
}

// rotate closes the interval ending at end (wall clock): it writes it to
// the interval log, adds it to the series, updates the rate gauges, prints
// the progress line, and ages the early and duplicate sets.
func (r *recorder) rotate(end time.Time) {
	now := end.Sub(r.start).Nanoseconds()
	iv := Interval{StartMS: r.ivalStart.UnixMilli(), EndMS: end.UnixMilli(),
		Sent: r.ivc.sent, Accepted: r.ivc.accepted, Errors: r.ivc.errors,
		Completed: r.ivc.completed, Dead: r.ivc.dead}
	if r.pacer != nil {
		mid := (r.ivalStart.Sub(r.start) + end.Sub(r.start)) / 2
		iv.TargetRate = r.pacer.Rate(mid)
	}
	for i, h := range r.ival {
		h.SetStartTimeMs(iv.StartMS)
		h.SetEndTimeMs(iv.EndMS)
		h.SetTag(histTags[i])
		if r.hlog != nil {
			_ = r.hlog.OutputIntervalHistogram(h)
		}
		if h.TotalCount() > 0 { // Merge and Reset walk every bucket: skip them when empty
			r.sacc.h[i].Merge(h)
			h.Reset()
		}
	}
	r.accumulate(&iv)
	r.m.rates(iv.TargetRate, iv.Rate())
	r.printProgress(&iv, end)
	r.ivalStart, r.ivc = end, intervalCounts{}
	r.tasks.Unmatched += int64(r.early.rotate(now))
	r.done.rotate(now)
}

// maxSeries is the length past which the series' resolution halves, so
// that its memory stays bounded however long the run (each point holds
// four encoded histograms, a few KB).
const maxSeries = 3600

// accumulate adds an interval to the series point in progress and closes the
// point at every wall-clock multiple of seriesEvery.
func (r *recorder) accumulate(iv *Interval) {
	a := &r.sacc
	a.iv.Sent += iv.Sent
	a.iv.Accepted += iv.Accepted
	a.iv.Errors += iv.Errors
	a.iv.Completed += iv.Completed
	a.iv.Dead += iv.Dead
	a.targetSum += iv.TargetRate * float64(iv.EndMS-iv.StartMS)
	every := r.seriesEvery.Milliseconds()
	if iv.EndMS/every == a.iv.StartMS/every { // no point boundary in the interval
		return
	}
	r.flushSeries(iv.EndMS)
}

// flushSeries closes the series point in progress at endMS.
func (r *recorder) flushSeries(endMS int64) {
	a := &r.sacc
	p := a.iv
	p.EndMS = endMS
	if d := float64(p.EndMS - p.StartMS); d > 0 {
		p.TargetRate = a.targetSum / d
	}
	hs := make([]*Histogram, numHists)
	for i, h := range a.h {
		hs[i] = newHistogram(h)
		hs[i].h = nil // keep only the encoding
		if h.TotalCount() > 0 {
			h.Reset()
		}
	}
	p.Latency = Latencies{Corrected: hs[hCorrected], Service: hs[hService], Submit: hs[hSubmit], ScheduleLag: hs[hLag]}
	r.series = append(r.series, p)
	a.iv, a.targetSum = Interval{StartMS: endMS}, 0
	if n := len(r.series); n >= r.maxSeries && (n-r.maxSeries)%(r.maxSeries/2) == 0 {
		r.seriesEvery *= 2
	}
}

// seriesAcc is the series point in progress.
type seriesAcc struct {
	iv        Interval
	h         [numHists]*hdr.Histogram
	targetSum float64 // target rate × milliseconds
}

func (r *recorder) printProgress(iv *Interval, end time.Time) {
	secs := float64(iv.EndMS-iv.StartMS) / 1000
	if secs <= 0 || r.progress == io.Discard {
		return
	}
	line := fmt.Sprintf("%7.1fs  ", end.Sub(r.start).Seconds())
	if r.pacer != nil {
		line += fmt.Sprintf("target %s/s  ", fmtCount(iv.TargetRate))
	}
	line += fmt.Sprintf("sent %s/s  accepted %s/s  errors %d",
		fmtCount(iv.Rate()), fmtCount(float64(iv.Accepted)/secs), iv.Errors)
	p99 := r.total[hSubmit].ValueAtQuantile(99)
	name := "submit"
	if r.e2e {
		line += fmt.Sprintf("  completed %s/s  pending %d", fmtCount(float64(iv.Completed)/secs), len(r.pending))
		p99, name = r.total[hCorrected].ValueAtQuantile(99), "corrected"
	}
	line += fmt.Sprintf("  p99 %s %s  lag p99 %s (so far)\n", name, fmtUS(p99), fmtUS(r.total[hLag].ValueAtQuantile(99)))
	_, _ = io.WriteString(r.progress, line)
}

// fmtCount renders a rate or count compactly.
func fmtCount(v float64) string {
	if v >= 100 || v == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// generations is a map whose entries live between every and 2·every: two
// generations, the older dropped on rotate. It bounds memory by rate × age.
type generations[K comparable, V any] struct {
	cur, old map[K]V
	every    int64
	since    int64
}

func newGenerations[K comparable, V any](every time.Duration) *generations[K, V] {
	return &generations[K, V]{cur: map[K]V{}, old: map[K]V{}, every: max(int64(every), 1)}
}

func (g *generations[K, V]) get(k K) (V, bool) {
	if v, ok := g.cur[k]; ok {
		return v, true
	}
	v, ok := g.old[k]
	return v, ok
}

func (g *generations[K, V]) put(k K, v V) { g.cur[k] = v }

func (g *generations[K, V]) del(k K) {
	delete(g.cur, k)
	delete(g.old, k)
}

func (g *generations[K, V]) len() int { return len(g.cur) + len(g.old) }

// rotate drops the old generation when it is due and returns how many
// entries it dropped.
func (g *generations[K, V]) rotate(now int64) int {
	if now-g.since < g.every {
		return 0
	}
	dropped := len(g.old)
	g.old, g.cur, g.since = g.cur, make(map[K]V, len(g.cur)), now
	return dropped
}

// runInfo is what the generator adds to the recorder's measurements.
type runInfo struct {
	mode             string
	schedule         string
	target           string
	batch            int
	pipelineFraction float64
	scheduled        int64
	span             time.Duration // the schedule's span (open-loop)
	interrupted      bool
	end              time.Time
}

// result closes the last interval and builds the Result.
func (r *recorder) result(info runInfo) *Result {
	if r.ivc != (intervalCounts{}) || r.ival[hCorrected].TotalCount()+r.ival[hLag].TotalCount() > 0 {
		r.rotate(info.end)
	}
	if r.sacc.iv.StartMS < info.end.UnixMilli() && r.sacc.iv != (Interval{StartMS: r.sacc.iv.StartMS}) {
		r.flushSeries(info.end.UnixMilli())
	}
	r.tasks.Unmatched += int64(r.early.len())
	r.tasks.Unresolved = int64(len(r.pending))
	r.tasks.Scheduled = info.scheduled
	res := &Result{
		Schema: Schema, Generators: 1, Mode: info.mode, Schedule: info.schedule, Target: info.target,
		Batch: info.batch, PipelineFraction: info.pipelineFraction, EndToEnd: r.e2e,
		Interrupted: info.interrupted, Start: r.start.UTC(),
		SendEnd: r.start.Add(time.Duration(r.lastSend)).UTC(), End: info.end.UTC(),
		MaxLagUS: r.maxLagUS, Tasks: r.tasks, StreamReconnects: r.reconnects,
		HTTP:   HTTPCounts{Requests: r.requests, BytesOut: r.bytesOut, BytesIn: r.bytesIn, StatusCodes: map[string]int64{}},
		Errors: errorList(r.errs), Lost: r.lost, Series: r.series,
	}
	sortLost(res.Lost)
	for code, n := range r.statuses {
		res.HTTP.StatusCodes[strconv.Itoa(code)] = n
	}
	hs := make([]*Histogram, numHists)
	for i, h := range r.total {
		hs[i] = newHistogram(h)
	}
	res.Latency = Latencies{Corrected: hs[hCorrected], Service: hs[hService], Submit: hs[hSubmit], ScheduleLag: hs[hLag]}
	r.rates(res, info)
	res.Warnings = res.warnings()
	return res
}

// rates sets the target and achieved send rates and the throughput.
func (r *recorder) rates(res *Result, info runInfo) {
	perSec := func(n int64, d time.Duration) float64 {
		if d <= 0 {
			return 0
		}
		return float64(n) / d.Seconds()
	}
	sendSpan := time.Duration(r.lastSend)
	if info.mode == OpenLoop {
		res.TargetRate = perSec(info.scheduled, info.span)
		sendSpan = max(sendSpan, info.span)
	}
	res.AchievedRate = perSec(r.tasks.Sent, sendSpan)
	done := r.tasks.Accepted
	if r.e2e {
		done = r.tasks.Completed
	}
	res.Throughput = perSec(done, max(time.Duration(r.lastDone), sendSpan))
}
