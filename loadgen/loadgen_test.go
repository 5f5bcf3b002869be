package loadgen

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// run runs cfg against the fake and fails the test on an error.
func run(t *testing.T, cfg Config) (*Result, string) {
	t.Helper()
	var report bytes.Buffer
	cfg.Report = &report
	if testing.Verbose() {
		cfg.Progress = testWriter{t}
	}
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("report:\n%s", report.String())
	return res, report.String()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestStallIsCharged is the coordinated-omission test: at 1,000 tasks/s the
// server stalls for 1 s. With 10 senders the generator cannot send during
// the stall, so a measurement from the actual send (service time: what a
// closed-loop tool reports) hides the stall, while the corrected latency,
// measured from the intended send time, shows it.
//
// It runs alone (not in parallel): it measures time.
func TestStallIsCharged(t *testing.T) {
	fake := newFakeMesh(t, fakeOpts{service: time.Millisecond, pauseAt: 1000, pause: time.Second})
	res, _ := run(t, Config{Target: fake.URL, Rate: 1000, Duration: 3 * time.Second, Senders: 10,
		DrainTimeout: 5 * time.Second})

	if res.Tasks.Completed != 3000 || res.Tasks.Lost != 0 {
		t.Fatalf("completed %d, lost %d; want 3000, 0", res.Tasks.Completed, res.Tasks.Lost)
	}
	corrected, service := res.Latency.Corrected, res.Latency.Service
	// About a third of the requests were due during the stall, waiting from
	// 1 s down to 0: p99 sits near the full second.
	if corrected.P99US < 500_000 || corrected.MaxUS < 900_000 {
		t.Errorf("corrected p99 %s max %s: the stall is not charged", fmtUS(corrected.P99US), fmtUS(corrected.MaxUS))
	}
	if corrected.P90US < 300_000 {
		t.Errorf("corrected p90 %s, want hundreds of ms", fmtUS(corrected.P90US))
	}
	// Only the 10 requests in flight when the server stalled saw it from the
	// actual send: the uncorrected p99 stays under the stall and hides it.
	// (Normally it is a few ms; on a starved machine under -race every
	// latency grows, so the bound is the stall and a quarter of the
	// corrected p99.)
	if service.P99US >= 1_000_000 || service.P99US > corrected.P99US/4 {
		t.Errorf("service p99 %s, want it small (only the 10 requests in flight saw the stall)", fmtUS(service.P99US))
	}
	if service.MaxUS < 900_000 {
		t.Errorf("service max %s: the requests in flight during the stall should show it", fmtUS(service.MaxUS))
	}
	// The generator's own health shows why: the schedule lag.
	if lag := res.Latency.ScheduleLag; lag.P99US < 500_000 {
		t.Errorf("schedule lag p99 %s, want it to show the blocked senders", fmtUS(lag.P99US))
	}
	if !hasWarning(res, "SCHEDULE LAG") {
		t.Errorf("no schedule lag warning in %q", res.Warnings)
	}
	t.Logf("uncorrected (service) p99 %s vs corrected p99 %s", fmtUS(service.P99US), fmtUS(corrected.P99US))
}

// TestHealthyRun: a healthy run is clean and its rates are right. It runs
// alone: it measures time.
func TestHealthyRun(t *testing.T) {
	fake := newFakeMesh(t, fakeOpts{service: 2 * time.Millisecond})
	res, report := run(t, Config{Target: fake.URL, Rate: 500, Duration: time.Second, Interval: 200 * time.Millisecond,
		Payload: SizeDist{{64, 4096, 1}}})
	if res.Tasks.Scheduled != 500 || res.Tasks.Sent != 500 || res.Tasks.Completed != 500 {
		t.Fatalf("tasks %+v, want 500 scheduled, sent, completed", res.Tasks)
	}
	if res.TargetRate != 500 {
		t.Errorf("target rate %v, want 500", res.TargetRate)
	}
	// Achieved: the tasks sent over the span they took to leave (at least the
	// schedule's). How close it comes to 500 depends on the machine's load.
	span := max(res.SendEnd.Sub(res.Start).Seconds(), 1)
	if want := 500 / span; math.Abs(res.AchievedRate-want) > 0.01*want {
		t.Errorf("achieved rate %v, want 500 tasks over %.3fs = %v", res.AchievedRate, span, want)
	}
	if res.Latency.Service.Count != 500 || res.Latency.Service.MinUS < 2000 {
		t.Errorf("service latency %+v, want 500 values of at least the 2ms service time", res.Latency.Service)
	}
	if res.HTTP.StatusCodes["202"] != 500 || res.Tasks.Duplicates != 0 || res.Tasks.Unmatched != 0 {
		t.Errorf("status codes %v, duplicates %d, unmatched %d", res.HTTP.StatusCodes, res.Tasks.Duplicates, res.Tasks.Unmatched)
	}
	if len(res.Series) < 2 { // at least 5 unless the machine starved the recorder
		t.Errorf("%d intervals, want several of 200ms", len(res.Series))
	}
	var sent int64
	for _, iv := range res.Series {
		sent += iv.Sent
	}
	if sent != 500 {
		t.Errorf("the series sent %d in all, want 500", sent)
	}
	for _, want := range []string{"open-loop", "constant 500/s", "Rate", "corrected (completion − intended)", "202:500"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestLostTasks: completions missing from the stream are checked once with
// GET after the drain timeout: completed in the store → a late event, else
// lost and listed.
func TestLostTasks(t *testing.T) {
	t.Parallel()
	fake := newFakeMesh(t, fakeOpts{dropEvery: 10})
	// The drain waits its full timeout (10 tasks never complete): long enough
	// that every other event arrives first, even on a starved CI machine.
	res, report := run(t, Config{Target: fake.URL, Rate: 2000, Requests: 200, DrainTimeout: time.Second})
	// 20 events dropped: 10 found completed by GET (late), 10 still active.
	if res.Tasks.Completed != 190 || res.Tasks.Late != 10 || res.Tasks.Lost != 10 {
		t.Fatalf("completed %d late %d lost %d; want 190, 10, 10", res.Tasks.Completed, res.Tasks.Late, res.Tasks.Lost)
	}
	if res.Latency.Corrected.Count != 190 {
		t.Errorf("corrected count %d, want 190 (late completions included)", res.Latency.Corrected.Count)
	}
	if len(res.Lost) != 10 {
		t.Fatalf("%d lost listed, want 10", len(res.Lost))
	}
	for _, l := range res.Lost {
		if l.State != "active" || l.Kind != "task" || l.ID == "" || l.Intended.IsZero() {
			t.Errorf("lost entry %+v, want an active task with its id and intended time", l)
		}
	}
	if !hasWarning(res, "LOST: 10") || !hasWarning(res, "LATE EVENTS: 10") || !strings.Contains(report, "Lost (10 of 10 listed)") {
		t.Errorf("warnings %q do not report the loss", res.Warnings)
	}
}

// TestBatchesAndPipelines: batch submits carry k tasks each, pipelines
// complete when their QA stage does.
func TestBatchesAndPipelines(t *testing.T) {
	t.Parallel()
	fake := newFakeMesh(t, fakeOpts{service: time.Millisecond})
	res, _ := run(t, Config{Target: fake.URL, Rate: 3000, Requests: 600, Batch: 10, PipelineFraction: 0.2})
	if res.Tasks.Completed != 600 || res.Tasks.Lost != 0 || res.Tasks.Unmatched != 0 {
		t.Fatalf("completed %d lost %d unmatched %d; want 600, 0, 0", res.Tasks.Completed, res.Tasks.Lost, res.Tasks.Unmatched)
	}
	if got := fake.tasks.Load(); got != 600 { // a pipeline counts once
		t.Errorf("fake accepted %d units, want 600", got)
	}
	// About 120 pipeline requests plus 480/10 batches.
	if r := res.HTTP.Requests; r < 140 || r > 230 {
		t.Errorf("%d requests, want about 168 (pipelines alone, tasks in tens)", r)
	}
	if res.Latency.Submit.Count != 600 || res.Latency.ScheduleLag.Count != res.HTTP.Requests {
		t.Errorf("submit count %d (want 600), lag count %d (want one per request)", res.Latency.Submit.Count, res.Latency.ScheduleLag.Count)
	}
}

// TestRejectionsAndDuplicates: non-2xx answers count as rejected by status
// code; a second completion event for a task counts as a duplicate.
func TestRejectionsAndDuplicates(t *testing.T) {
	t.Parallel()
	fake := newFakeMesh(t, fakeOpts{rejectEvery: 5, dupEvery: 4})
	res, report := run(t, Config{Target: fake.URL, Rate: 2000, Requests: 100})
	if res.Tasks.Rejected != 20 || res.Tasks.Accepted != 80 || res.HTTP.StatusCodes["429"] != 20 {
		t.Fatalf("rejected %d accepted %d codes %v; want 20, 80, 429:20", res.Tasks.Rejected, res.Tasks.Accepted, res.HTTP.StatusCodes)
	}
	if res.Tasks.Duplicates != 20 || res.Tasks.Completed != 80 {
		t.Errorf("duplicates %d completed %d; want 20, 80", res.Tasks.Duplicates, res.Tasks.Completed)
	}
	if len(res.Errors) != 1 || res.Errors[0].Error != "429 Too Many Requests (overloaded)" || res.Errors[0].Count != 20 {
		t.Errorf("errors %+v", res.Errors)
	}
	if !strings.Contains(report, "DUPLICATES: 20") {
		t.Errorf("report does not warn about the duplicates")
	}
}

// TestClosedLoop: max mode runs N clients, each waiting for its task's
// completion, and says closed-loop everywhere.
func TestClosedLoop(t *testing.T) {
	t.Parallel()
	fake := newFakeMesh(t, fakeOpts{service: time.Millisecond})
	res, report := run(t, Config{Target: fake.URL, Mode: ModeMax, Clients: 4, Requests: 203, Batch: 2})
	if res.Mode != ClosedLoop || !strings.Contains(report, "closed-loop") || !strings.Contains(report, "coordinated omission") {
		t.Errorf("mode %q; the report must say closed-loop", res.Mode)
	}
	if res.Tasks.Scheduled != 203 || res.Tasks.Completed != 203 || res.TargetRate != 0 {
		t.Errorf("scheduled %d completed %d target %v; want 203, 203, 0", res.Tasks.Scheduled, res.Tasks.Completed, res.TargetRate)
	}
	// Each client has at most one task in flight: the service time is at
	// least the fake's.
	if res.Latency.Service.MinUS < 1000 {
		t.Errorf("service min %dµs, want ≥ 1ms", res.Latency.Service.MinUS)
	}
}

// TestSubmitOnly: without the completion stream only submit latency is
// measured.
func TestSubmitOnly(t *testing.T) {
	t.Parallel()
	fake := newFakeMesh(t, fakeOpts{noStream: true})
	res, report := run(t, Config{Target: fake.URL, Rate: 1000, Requests: 100, SubmitOnly: true, Mode: ModeRamp, RampFrom: 500})
	if res.EndToEnd || res.Tasks.Accepted != 100 || res.Latency.Submit.Count != 100 || res.Latency.Corrected.Count != 0 {
		t.Errorf("result %+v", res.Tasks)
	}
	if strings.Contains(report, "corrected") || !strings.Contains(report, "submit only") {
		t.Errorf("submit-only report shows end-to-end rows:\n%s", report)
	}
}

// TestStreamRequired: an end-to-end run refuses to start without the stream.
func TestStreamRequired(t *testing.T) {
	t.Parallel()
	fake := newFakeMesh(t, fakeOpts{noStream: true})
	_, err := Run(t.Context(), Config{Target: fake.URL, Requests: 1})
	if err == nil || !strings.Contains(err.Error(), "completion stream") {
		t.Fatalf("Run = %v, want a completion stream error", err)
	}
}

// TestInterrupted: cancelling the context stops the run and still reports.
func TestInterrupted(t *testing.T) {
	t.Parallel()
	fake := newFakeMesh(t, fakeOpts{})
	ctx, cancel := context.WithCancel(t.Context())
	var progress bytes.Buffer
	cfg := Config{Target: fake.URL, Rate: 1000, Duration: time.Minute, Progress: &syncWriter{w: &progress, onWrite: cancel},
		Interval: 100 * time.Millisecond}
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !res.Interrupted || res.Tasks.Sent == 0 || res.Tasks.Sent > 30000 || !hasWarning(res, "INTERRUPTED") {
		t.Errorf("interrupted %v sent %d warnings %q", res.Interrupted, res.Tasks.Sent, res.Warnings)
	}
	if res.TargetRate < 950 || res.TargetRate > 1050 {
		t.Errorf("target rate %v over the interrupted span, want about 1000", res.TargetRate)
	}
}

// syncWriter calls onWrite from the third write on (so the run lasts a
// few intervals): a signal, not a sleep.
type syncWriter struct {
	w       *bytes.Buffer
	onWrite func()
	writes  int
}

func (s *syncWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if s.writes++; s.writes >= 3 {
		s.onWrite()
	}
	return n, err
}

// TestOutputs: the JSON result round-trips through a file and the interval
// log holds the run's histograms in HdrHistogram log format.
func TestOutputs(t *testing.T) {
	t.Parallel()
	fake := newFakeMesh(t, fakeOpts{})
	dir := t.TempDir()
	cfg := Config{Target: fake.URL, Rate: 1000, Requests: 300, Interval: 100 * time.Millisecond,
		ResultPath: filepath.Join(dir, "r.json"), HDRLogPath: filepath.Join(dir, "r.hlog")}
	res, _ := run(t, cfg)

	back, err := ReadResultFile(cfg.ResultPath)
	if err != nil {
		t.Fatalf("ReadResultFile: %v", err)
	}
	if !back.Latency.Corrected.HDRHistogram().Equals(res.Latency.Corrected.HDRHistogram()) || back.Tasks != res.Tasks {
		t.Errorf("the result file does not hold the run")
	}

	f, err := os.Open(cfg.HDRLogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := hdr.NewHistogramLogReader(f)
	counts := map[string]int64{}
	for {
		h, err := r.NextIntervalHistogram()
		if err != nil {
			t.Fatalf("reading the interval log: %v", err)
		}
		if h == nil {
			break
		}
		counts[h.Tag()] += h.TotalCount()
	}
	if counts["corrected"] != 300 || counts["submit"] != 300 || counts["schedule_lag"] != 300 {
		t.Errorf("interval log totals %v, want 300 corrected, submit and schedule_lag", counts)
	}

	// Merging the file with itself doubles every count.
	var merged bytes.Buffer
	m, err := Run(t.Context(), Config{Merge: []string{cfg.ResultPath, cfg.ResultPath}, Report: &merged})
	if err != nil {
		t.Fatalf("merge run: %v", err)
	}
	if m.Tasks.Completed != 600 || m.Generators != 2 || !strings.Contains(merged.String(), "2 generators merged") {
		t.Errorf("merged completed %d generators %d", m.Tasks.Completed, m.Generators)
	}
}

func hasWarning(r *Result, prefix string) bool {
	for _, w := range r.Warnings {
		if strings.HasPrefix(w, prefix) {
			return true
		}
	}
	return false
}
