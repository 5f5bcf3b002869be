package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/agentmesh/agentmesh/loadgen"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// synthHist encodes a histogram of n values (µs) spread over lo..hi,
// skewed towards lo, as a loadgen result histogram.
func synthHist(t testing.TB, n int, lo, hi int64) *loadgen.Histogram {
	h := hdr.New(1, 3_600_000_000, 3)
	for i := range n {
		f := float64(i) / float64(n)
		_ = h.RecordValue(lo + int64(float64(hi-lo)*f*f*f*f))
	}
	enc, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	return &loadgen.Histogram{Count: h.TotalCount(), HDR: string(enc)}
}

// synthResult is a small, fixed result exercising every part of the report.
func synthResult(t testing.TB) *Result {
	start := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	lg := &loadgen.Result{Schema: loadgen.Schema, Generators: 1, Mode: loadgen.OpenLoop, Schedule: "constant 750/s",
		Target: "http://127.0.0.1:8080", Batch: 1, EndToEnd: true, Start: start, SendEnd: start.Add(10 * time.Second),
		End: start.Add(10*time.Second + 40*time.Millisecond), TargetRate: 750, AchievedRate: 749.9, Throughput: 747,
		MaxLagUS: 10000,
		Tasks:    loadgen.TaskCounts{Scheduled: 7500, Sent: 7500, Accepted: 7498, Rejected: 2, Completed: 7498},
		HTTP:     loadgen.HTTPCounts{Requests: 7500, StatusCodes: map[string]int64{"202": 7498, "429": 2}},
		Errors:   []loadgen.ErrorCount{{Error: "429 overloaded", Count: 2}},
		Latency: loadgen.Latencies{Corrected: synthHist(t, 7498, 900, 40000), Service: synthHist(t, 7498, 800, 30000),
			Submit: synthHist(t, 7498, 300, 9000), ScheduleLag: synthHist(t, 7500, 1, 300)}}
	for i := range 10 {
		s := start.Add(time.Duration(i) * time.Second)
		lg.Series = append(lg.Series, loadgen.Interval{StartMS: s.UnixMilli(), EndMS: s.Add(time.Second).UnixMilli(),
			TargetRate: 750, Sent: 750, Accepted: 750 - int64(i%3), Errors: int64(i % 3), Completed: 748 + int64(i%2),
			Latency: loadgen.Latencies{Corrected: synthHist(t, 750, 900, 5000+int64(i)*3000)}})
	}
	// Round-trip through JSON so the histograms are decoded as in a real run.
	b, err := json.Marshal(lg)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := loadgen.DecodeResult(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := LoadScenario("", "seed-750", true)
	if err != nil {
		t.Fatal(err)
	}
	var samples []Sample
	for i := range 30 {
		samples = append(samples, Sample{TMS: int64(i) * 500, RSS: uint64(30+i/3) << 20, CPU: 0.25})
	}
	r := &Result{Schema: ResultSchema, Scenario: sc, Quick: true, Started: start.Add(-5 * time.Second),
		Finished: start.Add(12 * time.Second), Rate: 750,
		Env: Env{CPUModel: "Test CPU", Cores: 2, MemBytes: 8 << 30, GoVersion: "go1.26.8", Redis: "7.0.15",
			Postgres: "15.20", Revision: "0123456789abcdef", Dirty: true, Binary: "mesh", LoadAvg: "0.50 0.40 0.30"},
		Ceiling: &Ceiling{Batched: &CeilingResult{Mode: CeilingBatched, TasksPerSec: 40000, Tasks: 200000, Seconds: 5,
			P50MS: 30, P99MS: 70, MeanClaim: 180, MaxBatch: 200, Inserters: 2, Claimers: 4},
			Single: &CeilingResult{Mode: CeilingSingle, TasksPerSec: 4000, P50MS: 7, P99MS: 20, Concurrency: 32}},
		Load: &LoadResult{dec},
		Processes: []ProcessInfo{
			{Name: "producer-1", Kind: "producer", Args: []string{"producer", "--addr", "127.0.0.1:1"}, Samples: samples, MaxRSS: 39 << 20, MeanCPU: 0.25,
				Stop: &StopRecord{Seconds: 0.2, ExitCode: 0}},
			{Name: "worker-1", Kind: "worker", Args: []string{"worker", "--work", "0"}, Samples: samples, MaxRSS: 39 << 20, MeanCPU: 0.25,
				Stop: &StopRecord{Seconds: 0.4, ExitCode: 0}},
			{Name: "postgres", Kind: "postgres", Samples: []Sample{{TMS: 0, CPU: 0}, {TMS: 500, CPU: 0.8}}, MeanCPU: 0.8},
		},
		Mesh: &MeshMetrics{Latency: &MeshLatency{Count: 7498, P50MS: 1.2, P90MS: 2.4, P99MS: 9.8, P999MS: 24},
			Counters: map[string]float64{"worker_tasks_completed": 7498, "claim_batch_mean": 1.7}},
		Faults:   []FaultEvent{{Kind: FaultKillWorker, AtMS: 4000, Target: "worker-1 → worker-2", DownMS: 1000, RecoveredMS: 1400}},
		Leftover: &Depth{},
		Steps: []SearchStep{{Rate: 500, Pass: true, Summary: Summary{P99MS: 4, TasksPerSec: 499}},
			{Rate: 750, Pass: true, Summary: Summary{P99MS: 9, TasksPerSec: 747}},
			{Rate: 1000, Pass: false, Failed: []string{"p99 end to end: 31 ms (want ≤ 10 ms)"}, Summary: Summary{P99MS: 31, TasksPerSec: 990}}},
		Notes: []string{"a synthetic result for the golden tests"},
	}
	r.Summary = summarize(dec, r.Ceiling.TasksPerSec())
	r.Summary.RSSMaxBytes = 39 << 20
	r.Summary.CPU = map[string]float64{"producer": 0.25, "worker": 0.25, "postgres": 0.8}
	r.Checks = []Check{{Name: "p99 end to end", Want: "≤ 10 ms", Got: "9.90 ms", Pass: true},
		{Name: "error ratio", Want: "≤ 0", Got: "0.0002667 (2 of 7500)", Pass: false}}
	return r
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bench -run Golden -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test ./bench -run Golden -update to accept):\n%s", name, firstDiff(string(want), got))
	}
}

func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(la) || i < len(lb); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n  want " + x + "\n  got  " + y
		}
	}
	return ""
}

func TestReportGolden(t *testing.T) {
	t.Parallel()
	r := synthResult(t)
	var md bytes.Buffer
	if err := WriteMarkdown(&md, r, "synthetic"); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.md", md.String())
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	golden(t, "synthetic.json", js.String())
	plots := Plots(r)
	if len(plots) != 4 {
		t.Fatalf("%d plots, want latency, timeline, rss, search", len(plots))
	}
	for _, p := range plots {
		if !strings.HasPrefix(p.SVG, "<svg ") || !strings.HasSuffix(p.SVG, "</svg>\n") {
			t.Errorf("%s: not an SVG document", p.Suffix)
		}
		golden(t, p.Suffix+".svg", p.SVG)
	}
}

func TestResultRoundTrip(t *testing.T) {
	t.Parallel()
	r := synthResult(t)
	dir := t.TempDir()
	paths, err := WriteResultFiles(dir, r, "synthetic")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 6 || filepath.Base(paths[0]) != "synthetic.json" {
		t.Fatalf("paths %v", paths)
	}
	back, err := ReadResultFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if back.Load.Latency.Corrected.P99US != r.Load.Latency.Corrected.P99US || back.Summary.P99MS != r.Summary.P99MS {
		t.Errorf("round trip changed the result")
	}
	var a, b bytes.Buffer
	_ = WriteMarkdown(&a, r, "s")
	_ = WriteMarkdown(&b, back, "s")
	if a.String() != b.String() {
		t.Errorf("the report of the decoded result differs:\n%s", firstDiff(a.String(), b.String()))
	}
}

// FuzzDecodeResult: any input either decodes into a result the report can
// render, or is refused with an error.
func FuzzDecodeResult(f *testing.F) {
	var buf bytes.Buffer
	if err := synthResult(f).WriteJSON(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"schema":"agentmesh.bench.result/v1","scenario":{"name":"x"}}`))
	f.Add([]byte(`{"schema":"agentmesh.bench.result/v1","scenario":{"name":"x"},"load":{"schema":"agentmesh.loadgen.result/v1","generators":1,"mode":"open-loop"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeResult(bytes.NewReader(data))
		if err != nil {
			return
		}
		var md bytes.Buffer
		if err := WriteMarkdown(&md, r, "fuzz"); err != nil {
			t.Fatalf("rendering a decoded result: %v", err)
		}
		_ = Plots(r)
	})
}
