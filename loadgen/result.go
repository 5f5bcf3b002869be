package loadgen

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"
)

// Schema names the JSON result format; DecodeResult rejects any other.
const Schema = "agentmesh.loadgen.result/v1"

// Run modes as they appear in results and reports.
const (
	OpenLoop   = "open-loop"
	ClosedLoop = "closed-loop"
)

// Result is everything one run (or several merged runs) measured. Its JSON
// form is the result file; the schema is documented in the package comment.
type Result struct {
	Schema string `json:"schema"`
	// Generators is how many load generator runs this result merges.
	Generators int `json:"generators"`
	// Mode is "open-loop" or "closed-loop".
	Mode string `json:"mode"`
	// Schedule describes the pacer ("constant 1000/s") or the clients.
	Schedule string `json:"schedule"`
	Target   string `json:"target"`
	// Batch is the tasks per submit request; PipelineFraction the share of
	// units submitted as pipelines.
	Batch            int     `json:"batch"`
	PipelineFraction float64 `json:"pipeline_fraction"`
	// EndToEnd is false when only submit latency was measured.
	EndToEnd bool `json:"end_to_end"`
	// Interrupted is true when the run was cancelled before its end.
	Interrupted bool `json:"interrupted,omitempty"`

	// Start is when the schedule started, SendEnd when the last request
	// left, End when the run finished measuring (after the drain).
	Start   time.Time `json:"start"`
	SendEnd time.Time `json:"send_end"`
	End     time.Time `json:"end"`
	// TargetRate is the scheduled tasks per second (0 when closed-loop);
	// AchievedRate the tasks per second actually sent; Throughput the
	// completed tasks per second (accepted when not end to end) from Start
	// to the last completion. Merged results add them up.
	TargetRate   float64 `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	Throughput   float64 `json:"throughput"`
	// MaxLagUS is the schedule lag p99 bound the run was checked against.
	MaxLagUS int64 `json:"max_lag_us"`
	// StreamReconnects counts reconnections of the completion stream.
	StreamReconnects int64 `json:"stream_reconnects"`

	Tasks  TaskCounts   `json:"tasks"`
	HTTP   HTTPCounts   `json:"http"`
	Errors []ErrorCount `json:"errors"`
	// Latency holds the four full histograms.
	Latency Latencies `json:"latency"`
	// Lost lists tasks never seen completing (at most the run's
	// MaxLostListed each); Tasks.Lost counts them all.
	Lost []LostTask `json:"lost"`
	// Series is one entry per interval, aligned to wall-clock multiples of
	// the interval so the series of several generators line up.
	Series []Interval `json:"series"`
	// Warnings are the loud ones: generator bottleneck, lost, duplicates.
	Warnings []string `json:"warnings"`
}

// TaskCounts counts units: a single task or a whole pipeline is one unit.
type TaskCounts struct {
	Scheduled int64 `json:"scheduled"` // due by the schedule (or started, closed-loop)
	Sent      int64 `json:"sent"`      // carried by a request that left
	Skipped   int64 `json:"skipped"`   // not sent: the pending limit was reached
	Accepted  int64 `json:"accepted"`  // answered 2xx
	Rejected  int64 `json:"rejected"`  // answered with another status
	Errors    int64 `json:"errors"`    // no answer (transport error, timeout, bad body)
	Completed int64 `json:"completed"` // seen completing (or found completed by GET)
	Dead      int64 `json:"dead"`      // seen dead-lettered
	// Late counts completions found by GET after the drain timeout instead
	// of seen on the stream (included in Completed or Dead).
	Late int64 `json:"late"`
	// Lost counts accepted units neither seen completing nor found
	// completed by GET.
	Lost int64 `json:"lost"`
	// Unresolved counts accepted units still pending when an interrupted
	// run stopped (not checked, not counted lost).
	Unresolved int64 `json:"unresolved"`
	// Duplicates counts completion events for units already completed
	// (must be 0: exactly one completion record).
	Duplicates int64 `json:"duplicates"`
	// Unmatched counts terminal events of tasks this run did not submit.
	Unmatched int64 `json:"unmatched"`
}

// HTTPCounts counts submit requests (a batch is one request).
type HTTPCounts struct {
	Requests int64 `json:"requests"`
	// StatusCodes counts answers by status; "0" is no answer.
	StatusCodes map[string]int64 `json:"status_codes"`
	BytesOut    int64            `json:"bytes_out"`
	BytesIn     int64            `json:"bytes_in"`
}

// ErrorCount is one distinct error and how often it happened.
type ErrorCount struct {
	Error string `json:"error"`
	Count int64  `json:"count"`
}

// Latencies are the histograms of a run, all in microseconds:
//   - Corrected: completion − intended send time (the headline);
//   - Service: completion − actual send (what a closed-loop tool reports);
//   - Submit: 2xx received − intended send time, per task;
//   - ScheduleLag: actual send − intended send time, per request.
type Latencies struct {
	Corrected   *Histogram `json:"corrected"`
	Service     *Histogram `json:"service"`
	Submit      *Histogram `json:"submit"`
	ScheduleLag *Histogram `json:"schedule_lag"`
}

func (l *Latencies) all() []**Histogram {
	return []**Histogram{&l.Corrected, &l.Service, &l.Submit, &l.ScheduleLag}
}

// LostTask is one unit never seen completing.
type LostTask struct {
	// ID is the task id (the pipeline id for a pipeline).
	ID string `json:"id"`
	// Kind is "task" or "pipeline".
	Kind string `json:"kind"`
	// Intended is the unit's intended send time.
	Intended time.Time `json:"intended"`
	// State is what GET /api/v1/tasks/{id} said ("pending", "not_found", …).
	State string `json:"state"`
}

// Interval is one point of the time series.
type Interval struct {
	StartMS    int64     `json:"start_ms"` // unix milliseconds
	EndMS      int64     `json:"end_ms"`
	TargetRate float64   `json:"target_rate"`
	Sent       int64     `json:"sent"`
	Accepted   int64     `json:"accepted"`
	Errors     int64     `json:"errors"` // rejected + errors + skipped
	Completed  int64     `json:"completed"`
	Dead       int64     `json:"dead"`
	Latency    Latencies `json:"latency"`
}

// Rate is the tasks sent per second in the interval.
func (iv *Interval) Rate() float64 {
	d := float64(iv.EndMS-iv.StartMS) / 1000
	if d <= 0 {
		return 0
	}
	return float64(iv.Sent) / d
}

// DecodeResult reads one JSON result, checks it and rebuilds its
// histograms. It is safe on untrusted input.
func DecodeResult(r io.Reader) (*Result, error) {
	var res Result
	dec := json.NewDecoder(io.LimitReader(r, 1<<30))
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("decoding result: %w", err)
	}
	if res.Schema != Schema {
		return nil, fmt.Errorf("decoding result: schema %q, want %q", res.Schema, Schema)
	}
	if err := res.check(); err != nil {
		return nil, fmt.Errorf("decoding result: %w", err)
	}
	return &res, nil
}

// ReadResultFile decodes the result file at path.
func ReadResultFile(path string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := DecodeResult(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

// check validates a decoded result and decodes its histograms.
func (r *Result) check() error {
	if r.Generators < 1 {
		return errors.New("generators must be at least 1")
	}
	if r.Mode != OpenLoop && r.Mode != ClosedLoop {
		return fmt.Errorf("mode %q, want %q or %q", r.Mode, OpenLoop, ClosedLoop)
	}
	for _, n := range []int64{r.Tasks.Scheduled, r.Tasks.Sent, r.Tasks.Skipped, r.Tasks.Accepted,
		r.Tasks.Rejected, r.Tasks.Errors, r.Tasks.Completed, r.Tasks.Dead, r.Tasks.Late,
		r.Tasks.Lost, r.Tasks.Unresolved, r.Tasks.Duplicates, r.Tasks.Unmatched,
		r.HTTP.Requests, r.HTTP.BytesIn, r.HTTP.BytesOut} {
		if n < 0 {
			return errors.New("counts must not be negative")
		}
	}
	for code, n := range r.HTTP.StatusCodes {
		if _, err := strconv.Atoi(code); err != nil || n < 0 {
			return fmt.Errorf("status code %q: want a number and a non-negative count", code)
		}
	}
	if err := r.Latency.decode(true); err != nil {
		return err
	}
	for i := range r.Series {
		if err := r.Series[i].Latency.decode(false); err != nil {
			return fmt.Errorf("series[%d]: %w", i, err)
		}
	}
	return nil
}

func (l *Latencies) decode(keep bool) error {
	for i, p := range l.all() {
		if *p == nil {
			*p = &Histogram{}
		}
		if err := (*p).decode(keep); err != nil {
			return fmt.Errorf("latency %s: %w", latencyNames[i], err)
		}
	}
	return nil
}

var latencyNames = []string{"corrected", "service", "submit", "schedule_lag"}

// WriteJSON writes the result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Merge combines the results of several generators that ran at the same
// time (distributed load) into the result of one big run: counts and
// status codes add up, histograms merge exactly, rates add up, series merge
// interval by interval. Merge(r) of a single result returns an equal copy.
func Merge(results ...*Result) (*Result, error) {
	if len(results) == 0 {
		return nil, errors.New("merge: no results")
	}
	out := &Result{Schema: Schema, HTTP: HTTPCounts{StatusCodes: map[string]int64{}}}
	first := results[0]
	out.Mode, out.Schedule, out.Target = first.Mode, first.Schedule, first.Target
	out.Batch, out.PipelineFraction, out.EndToEnd = first.Batch, first.PipelineFraction, first.EndToEnd
	out.MaxLagUS = first.MaxLagUS
	errs := map[string]int64{}
	var lats []*Latencies
	for i, r := range results {
		if r.Mode != first.Mode {
			return nil, fmt.Errorf("merge: result %d is %s, result 0 is %s", i, r.Mode, first.Mode)
		}
		out.add(r)
		for _, e := range r.Errors {
			errs[e.Error] += e.Count
		}
		lats = append(lats, &r.Latency)
	}
	out.Latency = mergeLatencies(lats, true)
	out.Errors = errorList(errs)
	sortLost(out.Lost)
	out.Series = mergeSeries(results)
	out.Warnings = out.warnings()
	return out, nil
}

// add folds r's counts, times and lists into out.
func (out *Result) add(r *Result) {
	out.Generators += r.Generators
	out.Interrupted = out.Interrupted || r.Interrupted
	out.Start = earliest(out.Start, r.Start)
	out.SendEnd = latest(out.SendEnd, r.SendEnd)
	out.End = latest(out.End, r.End)
	out.TargetRate += r.TargetRate
	out.AchievedRate += r.AchievedRate
	out.Throughput += r.Throughput
	out.StreamReconnects += r.StreamReconnects
	t, s := &out.Tasks, r.Tasks
	t.Scheduled += s.Scheduled
	t.Sent += s.Sent
	t.Skipped += s.Skipped
	t.Accepted += s.Accepted
	t.Rejected += s.Rejected
	t.Errors += s.Errors
	t.Completed += s.Completed
	t.Dead += s.Dead
	t.Late += s.Late
	t.Lost += s.Lost
	t.Unresolved += s.Unresolved
	t.Duplicates += s.Duplicates
	t.Unmatched += s.Unmatched
	out.HTTP.Requests += r.HTTP.Requests
	out.HTTP.BytesIn += r.HTTP.BytesIn
	out.HTTP.BytesOut += r.HTTP.BytesOut
	for c, n := range r.HTTP.StatusCodes {
		out.HTTP.StatusCodes[c] += n
	}
	out.Lost = append(out.Lost, r.Lost...)
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func mergeLatencies(ls []*Latencies, keep bool) Latencies {
	var out Latencies
	for i, p := range out.all() {
		xs := make([]*Histogram, 0, len(ls))
		for _, l := range ls {
			xs = append(xs, *l.all()[i])
		}
		*p = mergeHistograms(keep, xs...)
	}
	return out
}

func mergeSeries(results []*Result) []Interval {
	byStart := map[int64][]*Interval{}
	for _, r := range results {
		for i := range r.Series {
			iv := &r.Series[i]
			byStart[iv.StartMS] = append(byStart[iv.StartMS], iv)
		}
	}
	out := make([]Interval, 0, len(byStart))
	for _, start := range slices.Sorted(maps.Keys(byStart)) {
		ivs := byStart[start]
		m := Interval{StartMS: start}
		lats := make([]*Latencies, 0, len(ivs))
		for _, iv := range ivs {
			m.EndMS = max(m.EndMS, iv.EndMS)
			m.TargetRate += iv.TargetRate
			m.Sent += iv.Sent
			m.Accepted += iv.Accepted
			m.Errors += iv.Errors
			m.Completed += iv.Completed
			m.Dead += iv.Dead
			lats = append(lats, &iv.Latency)
		}
		m.Latency = mergeLatencies(lats, false)
		out = append(out, m)
	}
	return out
}

// sortLost orders lost tasks by intended time, then id.
func sortLost(l []LostTask) {
	slices.SortFunc(l, func(a, b LostTask) int {
		return cmp.Or(a.Intended.Compare(b.Intended), cmp.Compare(a.ID, b.ID))
	})
}

// maxErrors bounds the distinct errors a result keeps.
const maxErrors = 100

// errorList sorts errors by count (descending), then text.
func errorList(m map[string]int64) []ErrorCount {
	out := make([]ErrorCount, 0, len(m))
	for e, n := range m {
		out = append(out, ErrorCount{Error: e, Count: n})
	}
	slices.SortFunc(out, func(a, b ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Error, b.Error))
	})
	return out
}
