package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/agentmesh/agentmesh/loadgen"
)

// ResultSchema names the JSON format of a bench result; DecodeResult
// rejects any other.
const ResultSchema = "agentmesh.bench.result/v1"

// Result is everything one scenario run measured. Its JSON form is the
// result file results/<scenario>/<timestamp>-<rev>.json.
type Result struct {
	Schema string `json:"schema"`
	// Scenario is the full scenario as run (patches and defaults applied).
	Scenario *Scenario `json:"scenario"`
	// Variant names the variant of a multi-variant scenario.
	Variant string `json:"variant,omitempty"`
	// Namespace is the PostgreSQL schema and Redis key prefix the run used
	// (dropped after it).
	Namespace Namespace `json:"namespace"`
	// Quick marks a run with the scenario's quick patch applied.
	Quick    bool      `json:"quick,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Env      Env       `json:"env"`
	// Ceiling is the bare-pipeline ceiling measured in the same bench run.
	Ceiling *Ceiling `json:"ceiling,omitempty"`
	// Rate is the rate the measured phase targeted (units per second; for
	// a search, the sustainable rate found; 0 in closed loop).
	Rate float64 `json:"rate"`
	// Load is the load generator's result of the measured phase (several
	// generators merged), with full HDR histograms and time series; for a
	// search, the highest passing step.
	Load *LoadResult `json:"load,omitempty"`
	// Steps are the steps of a search, in the order run.
	Steps []SearchStep `json:"steps,omitempty"`
	// Processes are the processes of the run with their RSS/CPU series.
	Processes []ProcessInfo `json:"processes"`
	// Mesh is what the mesh's own /metrics said (deltas over the measured
	// phase).
	Mesh *MeshMetrics `json:"mesh,omitempty"`
	// Faults are the faults injected (chaos).
	Faults []FaultEvent `json:"faults,omitempty"`
	// Audit is what PostgreSQL says about the units the load generator
	// reported lost.
	Audit *Audit `json:"audit,omitempty"`
	// Leftover is what remained in the Redis queues after the drain.
	Leftover *Depth   `json:"leftover,omitempty"`
	Summary  Summary  `json:"summary"`
	Checks   []Check  `json:"checks"`
	Pass     bool     `json:"pass"`
	Notes    []string `json:"notes,omitempty"`
	// Error is set when the run failed before it could measure.
	Error string `json:"error,omitempty"`
}

// Namespace isolates a run on shared servers.
type Namespace struct {
	Schema string `json:"pg_schema"`
	Prefix string `json:"redis_prefix"`
}

// LoadResult wraps a loadgen result so that decoding a bench result
// rebuilds (and checks) its histograms with the loadgen package's decoder.
type LoadResult struct{ *loadgen.Result }

// MarshalJSON writes the loadgen result.
func (l LoadResult) MarshalJSON() ([]byte, error) { return json.Marshal(l.Result) }

// UnmarshalJSON decodes with loadgen.DecodeResult.
func (l *LoadResult) UnmarshalJSON(b []byte) error {
	r, err := loadgen.DecodeResult(bytes.NewReader(b))
	if err != nil {
		return err
	}
	l.Result = r
	return nil
}

// SearchStep is one rate tried by a search.
type SearchStep struct {
	Rate    float64  `json:"rate"`
	Pass    bool     `json:"pass"`
	Failed  []string `json:"failed,omitempty"`
	Summary Summary  `json:"summary"`
	// Load is the step's load result without its time series.
	Load *LoadResult `json:"load,omitempty"`
}

// ProcessInfo is one process of the run.
type ProcessInfo struct {
	Name string `json:"name"`
	// Kind is producer, worker, loadgen, redis, or postgres (all server
	// processes together; CPU only).
	Kind string `json:"kind"`
	// Args are the command-line arguments (mesh subcommand and flags).
	Args    []string `json:"args,omitempty"`
	Samples []Sample `json:"samples"`
	MaxRSS  uint64   `json:"max_rss_bytes"`
	// MeanCPU is cores used on average over the samples.
	MeanCPU float64 `json:"mean_cpu"`
	// Stop is how the process stopped (absent for backends not ours).
	Stop *StopRecord `json:"stop,omitempty"`
}

// StopRecord is StopInfo in JSON.
type StopRecord struct {
	Seconds  float64 `json:"seconds"`
	Killed   bool    `json:"killed"`
	ExitCode int     `json:"exit_code"`
}

// MeshMetrics are deltas of the mesh's own metrics over the measured phase,
// summed over its processes.
type MeshMetrics struct {
	// Latency is agentmesh_task_latency_seconds (created_at → completed_at).
	Latency *MeshLatency `json:"latency,omitempty"`
	// Counters holds named deltas and derived ratios (see the report).
	Counters map[string]float64 `json:"counters"`
}

// MeshLatency summarises a classic Prometheus histogram (interpolated
// quantiles: accurate to the bucket bounds only).
type MeshLatency struct {
	Count   float64  `json:"count"`
	P50MS   float64  `json:"p50_ms"`
	P90MS   float64  `json:"p90_ms"`
	P99MS   float64  `json:"p99_ms"`
	P999MS  float64  `json:"p999_ms"`
	Buckets []Bucket `json:"buckets"`
}

// Audit checks the load generator's lost units against the system of
// record. The generator can only GET a pipeline's first stage, and misses
// completion events published while a producer was down, so some units it
// calls lost did complete.
type Audit struct {
	// Checked is how many lost units were looked up (the generator lists at
	// most 1000).
	Checked int64 `json:"checked"`
	// Completed finished (every stage, for a pipeline) in PostgreSQL;
	// Dead were dead-lettered; Open are still pending, active or failed;
	// Missing are not in the table at all.
	Completed int64 `json:"completed"`
	Dead      int64 `json:"dead"`
	Open      int64 `json:"open"`
	Missing   int64 `json:"missing"`
	// Lost is the loss after the audit: Open + Missing + the lost units
	// the generator did not list.
	Lost int64 `json:"lost"`
}

// FaultEvent is one injected fault.
type FaultEvent struct {
	Kind   string `json:"kind"`
	AtMS   int64  `json:"at_ms"`
	Target string `json:"target"`
	// DownMS is the outage; RecoveredMS the time from the fault until the
	// replacement answered (readiness), when measured.
	DownMS      int64  `json:"down_ms"`
	RecoveredMS int64  `json:"recovered_ms,omitempty"`
	Error       string `json:"error,omitempty"`
}

// Summary is the headline figures of a run.
type Summary struct {
	// TargetRate is units per second scheduled (0: closed loop).
	TargetRate float64 `json:"target_rate"`
	// Throughput is units completed per second (a pipeline is one unit);
	// TasksPerSec counts every task (a pipeline is three).
	Throughput  float64 `json:"throughput"`
	TasksPerSec float64 `json:"tasks_per_s"`
	// CeilingRatio is TasksPerSec over the same-run batched ceiling.
	CeilingRatio float64 `json:"ceiling_ratio"`
	// End-to-end latency (intended send → completion seen), milliseconds.
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
	// SubmitP99MS is the p99 of intended send → 2xx.
	SubmitP99MS float64 `json:"submit_p99_ms"`
	Scheduled   int64   `json:"scheduled"`
	Accepted    int64   `json:"accepted"`
	Completed   int64   `json:"completed"`
	Dead        int64   `json:"dead"`
	// Errors counts rejected + no answer + skipped; Rejected the 429/503.
	Errors     int64   `json:"errors"`
	Rejected   int64   `json:"rejected_429_503"`
	ErrorRatio float64 `json:"error_ratio"`
	Lost       int64   `json:"lost"`
	Duplicates int64   `json:"duplicates"`
	Unresolved int64   `json:"unresolved"`
	// RSSMaxBytes is the peak RSS of any mesh process (producer, worker).
	RSSMaxBytes uint64 `json:"rss_max_bytes"`
	// CPU is cores used on average, by kind (producer, worker, loadgen,
	// redis, postgres).
	CPU map[string]float64 `json:"cpu,omitempty"`
}

// Check is one SLO check.
type Check struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Pass bool   `json:"pass"`
}

// DecodeResult reads a bench result, checks its schema and rebuilds its
// histograms. It is safe on untrusted input.
func DecodeResult(r io.Reader) (*Result, error) {
	var res Result
	dec := json.NewDecoder(io.LimitReader(r, 1<<30))
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("decoding bench result: %w", err)
	}
	if res.Schema != ResultSchema {
		return nil, fmt.Errorf("decoding bench result: schema %q, want %q", res.Schema, ResultSchema)
	}
	if res.Scenario == nil {
		return nil, errors.New("decoding bench result: no scenario")
	}
	for _, p := range res.Processes {
		for _, s := range p.Samples {
			if math.IsNaN(s.CPU) || s.CPU < 0 {
				return nil, fmt.Errorf("decoding bench result: process %s: bad cpu sample", p.Name)
			}
		}
	}
	return &res, nil
}

// ReadResultFile decodes the bench result at path.
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

// WriteJSON writes the result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(r)
}

// Title is "<scenario>" or "<scenario>/<variant>", with " (quick)".
func (r *Result) Title() string {
	t := r.Scenario.Name
	if r.Variant != "" {
		t += "/" + r.Variant
	}
	if r.Quick {
		t += " (quick)"
	}
	return t
}

// RateLabel is the rate for tables: units/s, "burst N", or "closed loop".
func (r *Result) RateLabel() string {
	switch {
	case r.Scenario.Load.Requests > 0 && r.Scenario.Search == nil:
		return fmt.Sprintf("burst %d", r.Scenario.Load.Requests)
	case r.Rate == 0 && r.Load != nil && r.Load.Mode == loadgen.ClosedLoop:
		return "closed loop"
	}
	return fmtRate(r.Rate)
}

// summarize computes the headline figures from a load result.
func summarize(l *loadgen.Result, ceiling float64) Summary {
	if l == nil {
		return Summary{}
	}
	t := l.Tasks
	s := Summary{TargetRate: l.TargetRate, Throughput: l.Throughput,
		Scheduled: t.Scheduled, Accepted: t.Accepted, Completed: t.Completed, Dead: t.Dead,
		Errors: t.Rejected + t.Errors + t.Skipped, Lost: t.Lost, Duplicates: t.Duplicates, Unresolved: t.Unresolved}
	s.Rejected = l.HTTP.StatusCodes["429"] + l.HTTP.StatusCodes["503"]
	if t.Scheduled > 0 {
		s.ErrorRatio = float64(s.Errors) / float64(t.Scheduled)
	}
	s.TasksPerSec = l.Throughput * (1 + 2*l.PipelineFraction)
	if ceiling > 0 {
		s.CeilingRatio = s.TasksPerSec / ceiling
	}
	if c := l.Latency.Corrected; c != nil {
		s.P50MS, s.P90MS, s.P99MS = us2ms(c.P50US), us2ms(c.P90US), us2ms(c.P99US)
		s.P999MS, s.MaxMS = us2ms(c.P999US), us2ms(c.MaxUS)
	}
	if sub := l.Latency.Submit; sub != nil {
		s.SubmitP99MS = us2ms(sub.P99US)
	}
	return s
}

func us2ms(us int64) float64 { return float64(us) / 1000 }
