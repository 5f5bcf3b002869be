package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/loadgen"
)

// ResultSchema names the JSON result format.
const ResultSchema = "agentmesh.chaos.result/v1"

// Result is one chaos run: its settings, every fault and its recovery, the
// load generator's ledger, the event ledger and the audit.
type Result struct {
	Schema  string        `json:"schema"`
	Started time.Time     `json:"started"`
	Config  ResultConfig  `json:"config"`
	Faults  []FaultEvent  `json:"faults"`
	ByKind  []KindSummary `json:"by_kind"`
	Load    LoadSummary   `json:"load"`
	Events  Events        `json:"events"`
	Audit   Audit         `json:"audit"`
	// Problems gathers every violated invariant (audit, ledgers, faults
	// that failed to inject or recover); Pass is true when it is empty.
	Problems []string `json:"problems"`
	Pass     bool     `json:"pass"`
	// Command reproduces the run.
	Command string `json:"command,omitempty"`
}

// ResultConfig is the run's settings as reported.
type ResultConfig struct {
	Rate       float64  `json:"rate"`
	Duration   string   `json:"duration"`
	Pipelines  float64  `json:"pipelines"`
	Workers    int      `json:"workers"`
	Work       string   `json:"work"`
	Lease      string   `json:"lease"`
	Heartbeat  string   `json:"heartbeat"`
	StaleAfter string   `json:"stale_after"`
	PauseFor   string   `json:"pause_for"`
	Down       string   `json:"down"`
	Gap        string   `json:"gap"`
	Faults     []Kind   `json:"faults"`
	Seed       uint64   `json:"seed"`
	Backends   []string `json:"backends"`
}

// KindSummary aggregates the faults of one kind.
type KindSummary struct {
	Kind          Kind  `json:"kind"`
	Count         int   `json:"count"`
	Failed        int   `json:"failed"`
	Affected      int64 `json:"affected"`
	RecoveryP50MS int64 `json:"recovery_p50_ms"`
	RecoveryMaxMS int64 `json:"recovery_max_ms"`
	FlowMaxMS     int64 `json:"flow_max_ms"`
}

// LoadSummary is the load generator's ledger.
type LoadSummary struct {
	loadgen.TaskCounts
	StatusCodes      map[string]int64 `json:"status_codes"`
	StreamReconnects int64            `json:"stream_reconnects"`
	P50E2EMS         float64          `json:"p50_e2e_ms"`
	P99E2EMS         float64          `json:"p99_e2e_ms"`
	MaxE2EMS         float64          `json:"max_e2e_ms"`
	Throughput       float64          `json:"throughput"`

	series []loadgen.Interval
}

func newResult(c Config, redisURL, pgURL string) *Result {
	return &Result{Schema: ResultSchema, Config: ResultConfig{
		Rate: c.Rate, Duration: c.Duration.String(), Pipelines: c.Pipelines, Workers: c.Workers, Work: c.Work,
		Lease: c.Lease.String(), Heartbeat: c.Heartbeat.String(), StaleAfter: c.StaleAfter.String(),
		PauseFor: c.PauseFor.String(), Down: c.Down.String(), Gap: c.Gap.String(), Faults: c.Faults, Seed: c.Seed,
		Backends: []string{"private redis-server (no persistence)", "private PostgreSQL cluster (initdb + pg_ctl, fsync on)"},
	}}
}

func summariseLoad(r *loadgen.Result) LoadSummary {
	s := LoadSummary{TaskCounts: r.Tasks, StatusCodes: r.HTTP.StatusCodes, StreamReconnects: r.StreamReconnects,
		Throughput: r.Throughput, series: r.Series}
	if h := r.Latency.Corrected; h != nil {
		s.P50E2EMS, s.P99E2EMS, s.MaxE2EMS = float64(h.P50US)/1000, float64(h.P99US)/1000, float64(h.MaxUS)/1000
	}
	return s
}

// finish attributes the producer faults' failed submissions, aggregates the
// faults per kind and decides Pass.
func (res *Result) finish() {
	for i := range res.Faults {
		ev := &res.Faults[i]
		if ev.Kind == KillProducer {
			ev.Affected = errorsBetween(res.Load.series, ev.at, ev.back.Add(time.Second))
		}
	}
	for _, k := range res.Config.Faults {
		ks := KindSummary{Kind: k}
		var rec []int64
		for _, ev := range res.Faults {
			if ev.Kind != k {
				continue
			}
			ks.Count++
			ks.Affected += ev.Affected
			if ev.Error != "" {
				ks.Failed++
			}
			rec = append(rec, ev.RecoveryMS)
			ks.FlowMaxMS = max(ks.FlowMaxMS, ev.FlowMS)
		}
		if len(rec) > 0 {
			slices.Sort(rec)
			ks.RecoveryP50MS, ks.RecoveryMaxMS = rec[(len(rec)-1)/2], rec[len(rec)-1]
		}
		res.ByKind = append(res.ByKind, ks)
	}
	res.Problems = append(res.Problems, res.Audit.Problems...)
	l := res.Load
	lc := res.Audit.Lost
	// A unit the load generator could not confirm but PostgreSQL holds
	// terminal was not lost: its events were missed (see LostCheck).
	if trulyLost := l.Lost - int64(lc.Terminal); trulyLost > 0 || len(lc.Missing)+len(lc.NotTerminal) > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("load generator: %d lost, of which %d are not terminal in PostgreSQL (%v) and %d missing (%v)",
			l.Lost, len(lc.NotTerminal), lc.NotTerminal, len(lc.Missing), lc.Missing))
	}
	if l.Duplicates > 0 || l.Unresolved > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("load generator: %d duplicate completions, %d unresolved", l.Duplicates, l.Unresolved))
	}
	if l.Accepted == 0 {
		res.Problems = append(res.Problems, "load generator: nothing was accepted")
	}
	if res.Audit.Rows < l.Accepted {
		res.Problems = append(res.Problems, fmt.Sprintf("PostgreSQL holds %d tasks, fewer than the %d units answered 2xx", res.Audit.Rows, l.Accepted))
	}
	if e := res.Events; e.Duplicates > 0 || e.CompletedAndDead > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("events channel: %d duplicate completions, %d tasks both completed and dead", e.Duplicates, e.CompletedAndDead))
	}
	for _, ev := range res.Faults {
		if ev.Error != "" {
			res.Problems = append(res.Problems, fmt.Sprintf("%s on %s at %d ms: %s", ev.Kind, ev.Target, ev.AtMS, ev.Error))
		}
	}
	res.Pass = len(res.Problems) == 0
}

// errorsBetween sums the load generator's failed submissions in the
// intervals overlapping [from, to].
func errorsBetween(series []loadgen.Interval, from, to time.Time) int64 {
	var n int64
	for _, iv := range series {
		if iv.EndMS > from.UnixMilli() && iv.StartMS < to.UnixMilli() {
			n += iv.Errors
		}
	}
	return n
}

// Count is how many faults of kind k were injected.
func (res *Result) Count(k Kind) int {
	for _, ks := range res.ByKind {
		if ks.Kind == k {
			return ks.Count
		}
	}
	return 0
}

// WriteJSON writes the result, indented.
func (res *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// WriteMarkdown writes the human summary.
func (res *Result) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	c := res.Config
	verdict := "PASS — nothing lost, nothing completed twice, nothing stuck"
	if !res.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "# Chaos run %s\n\n**%s**\n\n", res.Started.Format(time.RFC3339), verdict)
	fmt.Fprintf(&b, "Load: %g units/s for %s (%.0f %% pipelines), %d workers (`--work %s`), "+
		"`--lease %s --heartbeat %s --stale-after %s` (short on purpose: recovery scales with them), "+
		"worker pauses %s, killed processes down %s, mean gap %s, seed %d. Backends: %s.\n\n",
		c.Rate, c.Duration, 100*c.Pipelines, c.Workers, c.Work, c.Lease, c.Heartbeat, c.StaleAfter,
		c.PauseFor, c.Down, c.Gap, c.Seed, strings.Join(c.Backends, ", "))
	if res.Command != "" {
		fmt.Fprintf(&b, "Reproduce: `%s`\n\n", res.Command)
	}
	b.WriteString("## Faults\n\n| kind | injected | failed to inject/recover | tasks affected | recovery p50 | recovery max | completions flowing again (max) |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, k := range res.ByKind {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s | %s |\n", k.Kind, k.Count, k.Failed, k.Affected,
			ms(k.RecoveryP50MS), ms(k.RecoveryMaxMS), ms(k.FlowMaxMS))
	}
	b.WriteString("\nRecovery = time from the fault until a task submitted after it completed **and** every task the fault hit " +
		"(a worker's active tasks; every unfinished task for Redis/PostgreSQL) was completed or dead-lettered. " +
		"For the producer, *affected* is the submissions that got no answer while it was down (errors, not losses: only a 2xx is a promise).\n\n")
	b.WriteString("| # | at | kind | target | how | down | affected | flow | drained | error |\n|---:|---:|---|---|---|---:|---:|---:|---:|---|\n")
	for i, ev := range res.Faults {
		fmt.Fprintf(&b, "| %d | %.1fs | %s | %s | %s | %s | %d | %s | %s | %s |\n", i+1, float64(ev.AtMS)/1000, ev.Kind, ev.Target,
			ev.Method, ms(ev.DownMS), ev.Affected, ms(ev.FlowMS), ms(ev.DrainMS), ev.Error)
	}
	l := res.Load
	fmt.Fprintf(&b, "\n## Ledgers\n\nLoad generator: %d scheduled, %d sent, **%d accepted (2xx)**, %d rejected, %d without an answer, "+
		"%d completed (%d found by GET after the drain), %d dead, **%d lost, %d duplicate completions**, %d unresolved; "+
		"status codes %v; completion stream reconnects %d; end-to-end p50 %.1f ms, p99 %.1f ms, max %.1f ms (through the faults).\n\n",
		l.Scheduled, l.Sent, l.Accepted, l.Rejected, l.Errors, l.Completed, l.Late, l.Dead, l.Lost, l.Duplicates, l.Unresolved,
		l.StatusCodes, l.StreamReconnects, l.P50E2EMS, l.P99E2EMS, l.MaxE2EMS)
	e := res.Events
	fmt.Fprintf(&b, "Events channel (read from Redis directly): %d messages, %d tasks completed, %d dead, **%d duplicate completions**, %d both completed and dead.\n\n",
		e.Messages, e.Completed, e.Dead, e.Duplicates, e.CompletedAndDead)
	a := res.Audit
	if a := res.Audit.Lost; a.Listed > 0 {
		fmt.Fprintf(&b, "The load generator listed %d units as lost; looked up in PostgreSQL, %d are terminal (completed — a pipeline with all three stages — or dead): "+
			"their completion events were missed while the producer was down, which the completion stream does not replay; not terminal: %v; missing: %v.\n\n",
			a.Listed, a.Terminal, a.NotTerminal, a.Missing)
	}
	fmt.Fprintf(&b, "## Audit (PostgreSQL, after the drain)\n\n%d task rows: %v; dead without a reason %d; inconsistent completed rows %d; "+
		"pipeline stages missing their successor %d; Redis left %+v; drained %s after the load.\n",
		a.Rows, a.ByState, a.DeadWithoutReason, a.CompletedInconsistent, a.BrokenPipelines, a.RedisLeft, ms(a.DrainMS))
	if len(a.DeadReasons) > 0 {
		fmt.Fprintf(&b, "\nDead-letter reasons: %v\n", a.DeadReasons)
	}
	if len(res.Problems) > 0 {
		b.WriteString("\n## Problems\n\n")
		for _, p := range res.Problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(v int64) string {
	if v >= 10_000 {
		return fmt.Sprintf("%.1f s", float64(v)/1000)
	}
	return fmt.Sprintf("%d ms", v)
}
