package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/loadgen"
)

// The CI performance gate, in two stages.
//
// Stage 1, exact counters: one fixed run (GateConfig.CounterTasks single
// tasks at CounterRate against a private redis-server on a free port and a
// private PostgreSQL database created for the gate) counts the work done
// per task: Redis commands (INFO commandstats delta over the measured
// phase: only the mesh talks to that server), PostgreSQL transactions and
// row writes (pg_stat_database of the private database, from before the
// processes start to after they stopped, so every backend has flushed its
// statistics), and Go allocations (go_memstats_mallocs_total and
// alloc_bytes of the producer and worker, from their /metrics). They are
// compared with bench/gate/expected.json; a counter above its expected
// value by more than its tolerance fails the gate with a message naming
// it. These figures do not depend on the machine's speed, only on timing
// through the batch sizes, so their tolerances are small.
//
// Stage 2, trials: alternating closed-loop trials (ABBA order) of the
// current build and the baseline — the base revision built from git
// (HEAD~1 by default) into a temporary directory, or, when that is not
// possible, the committed baseline's throughput/ceiling ratios compared
// with the current build's throughput over the ceiling measured in this
// gate run (a ratio of ratios). The gate fails only on a large and
// significant regression: the median drops by more than Threshold AND a
// one-sided Mann-Whitney test says p < Alpha. With 4 trials per side the
// smallest attainable one-sided p is 1/70 ≈ 0.014; with 3 it would be
// 1/20 = 0.05, never below Alpha, which is why the default is 4.

// GateConfig configures the gate.
type GateConfig struct {
	// Binary is the current build. Defaults to os.Executable().
	Binary string
	// Base is the baseline: "auto" (build HEAD~1, else the committed
	// baseline), "self" (the current build against itself: measures false
	// alarms), "committed", or a git revision to build. Defaults to auto.
	Base string
	// RepoDir is the git work tree to build base revisions from. Defaults
	// to the current directory.
	RepoDir string
	// RedisURL and DatabaseURL are the shared servers (the private
	// database of stage 1 is created on the latter).
	RedisURL    string
	DatabaseURL string
	// Expected and Baseline are the committed files. Default
	// bench/gate/expected.json and bench/gate/baseline.json.
	Expected string
	Baseline string
	// CounterTasks and CounterRate shape stage 1. Defaults 3000 and 1000/s.
	CounterTasks int64
	CounterRate  float64
	// Trials per side, TrialDuration and TrialWarmup shape stage 2.
	// Defaults 4, 8s, 2s.
	Trials        int
	TrialDuration time.Duration
	TrialWarmup   time.Duration
	// Threshold is the relative drop of the median that counts as large.
	// Defaults to 0.25.
	Threshold float64
	// Repeat runs stage 2 this many times and reports how many would have
	// failed (the false-alarm rate with Base "self"). Defaults to 1.
	Repeat int
	// SkipCounters and SkipTrials leave a stage out.
	SkipCounters, SkipTrials bool
	// UpdateExpected rewrites Expected with the measured counters;
	// UpdateBaseline rewrites Baseline with the current build's ratios.
	UpdateExpected, UpdateBaseline bool
	Progress                       io.Writer
}

// WithDefaults returns c with zero fields set to their defaults.
func (c GateConfig) WithDefaults() GateConfig {
	if c.Binary == "" {
		c.Binary, _ = os.Executable()
	}
	c.Base = cmp.Or(c.Base, "auto")
	c.RepoDir = cmp.Or(c.RepoDir, ".")
	c.Expected = cmp.Or(c.Expected, filepath.Join("bench", "gate", "expected.json"))
	c.Baseline = cmp.Or(c.Baseline, filepath.Join("bench", "gate", "baseline.json"))
	c.CounterTasks = cmp.Or(c.CounterTasks, 3000)
	c.CounterRate = cmp.Or(c.CounterRate, 1000)
	c.Trials = cmp.Or(c.Trials, 4)
	c.TrialDuration = cmp.Or(c.TrialDuration, 8*time.Second)
	c.TrialWarmup = cmp.Or(c.TrialWarmup, 2*time.Second)
	c.Threshold = cmp.Or(c.Threshold, 0.25)
	c.Repeat = cmp.Or(c.Repeat, 1)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// Expected is the committed file of expected counters.
type Expected struct {
	// Comment explains the file.
	Comment  string                   `json:"comment,omitempty"`
	Counters map[string]ExpectedValue `json:"counters"`
}

// ExpectedValue is one expected counter: the measured value may exceed
// Value by Tolerance (relative) plus Abs before the gate fails.
type ExpectedValue struct {
	Value     float64 `json:"value"`
	Tolerance float64 `json:"tolerance"`
	Abs       float64 `json:"abs,omitempty"`
}

// Limit is the largest passing value.
func (e ExpectedValue) Limit() float64 { return e.Value*(1+e.Tolerance) + e.Abs }

// Baseline is the committed baseline of stage 2.
type Baseline struct {
	Comment  string `json:"comment,omitempty"`
	Revision string `json:"revision"`
	Env      Env    `json:"env"`
	// Ratios are the throughput/ceiling ratios of the baseline's trials.
	Ratios []float64 `json:"ratios"`
}

// CounterCheck is one stage-1 counter.
type CounterCheck struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Expected float64 `json:"expected"`
	Limit    float64 `json:"limit"`
	Pass     bool    `json:"pass"`
	Note     string  `json:"note,omitempty"`
}

// TrialReport is one stage-2 comparison.
type TrialReport struct {
	// Base describes the baseline ("HEAD~1 (abc123)", "committed …", "self").
	Base string `json:"base"`
	// Metric is "tasks/s" or "throughput/ceiling" (committed baseline).
	Metric     string    `json:"metric"`
	Current    []float64 `json:"current"`
	Baseline   []float64 `json:"baseline"`
	MedianCur  float64   `json:"median_current"`
	MedianBase float64   `json:"median_baseline"`
	// Change is (current − baseline) / baseline of the medians.
	Change     float64 `json:"change"`
	P          float64 `json:"p"`
	Regression bool    `json:"regression"`
	Why        string  `json:"why"`
}

// GateReport is what the gate measured and decided.
type GateReport struct {
	Counters      []CounterCheck     `json:"counters,omitempty"`
	RedisCommands map[string]float64 `json:"redis_commands_per_task,omitempty"`
	CountersPass  bool               `json:"counters_pass"`
	Ceiling       *CeilingResult     `json:"ceiling,omitempty"`
	Trials        []TrialReport      `json:"trials,omitempty"`
	// FalseAlarms counts the repeats that found a regression.
	FalseAlarms int     `json:"false_alarms"`
	Pass        bool    `json:"pass"`
	Seconds     float64 `json:"seconds"`
}

// Gate runs the gate.
type Gate struct {
	cfg GateConfig
}

// NewGate returns a gate.
func NewGate(cfg GateConfig) *Gate { return &Gate{cfg: cfg.WithDefaults()} }

func (g *Gate) progress(format string, args ...any) {
	fmt.Fprintf(g.cfg.Progress, "gate: "+format+"\n", args...)
}

// Run runs the stages and returns the report; Pass says whether CI passes.
func (g *Gate) Run(ctx context.Context) (*GateReport, error) {
	start := time.Now()
	rep := &GateReport{CountersPass: true, Pass: true}
	defer func() { rep.Seconds = time.Since(start).Seconds() }()
	if !g.cfg.SkipCounters {
		if err := g.counters(ctx, rep); err != nil {
			rep.Pass = false
			return rep, fmt.Errorf("stage 1 (counters): %w", err)
		}
		rep.Pass = rep.CountersPass
	}
	if !g.cfg.SkipTrials {
		if err := g.trials(ctx, rep); err != nil {
			rep.Pass = false
			return rep, fmt.Errorf("stage 2 (trials): %w", err)
		}
	}
	return rep, nil
}

// counterScenario is stage 1's fixed run: CounterTasks single tasks
// submitted in batches of 100 (submit only) while the worker is stopped,
// then drained by the worker from a full backlog.
func (g *Gate) counterScenario() *Scenario {
	s := Scenario{Name: "gate-counters", Description: "gate stage 1: a fixed backlog, drained and counted",
		Load: Load{Mode: "constant", Rate: 20000, Requests: g.cfg.CounterTasks, Batch: 100, Roles: "ARCHITECT,DEVELOPER,QA",
			Payload: "256", Args: []string{"--submit-only"}},
		Backends: Backends{Redis: BackendPrivate}, SLO: SLO{ZeroLoss: true}, DrainTimeout: Duration(30 * time.Second)}
	s = s.WithDefaults()
	return &s
}

// The counts are taken at full batching on purpose: at a low rate every
// claim, statement and publish carries one or two tasks and the counts per
// task follow the machine's timing (they varied 2× between runs here);
// from a full backlog the per-batch costs amortise and what remains is the
// per-task work a change can add (an extra round trip or statement per
// task shows at once).

// counters runs stage 1.
func (g *Gate) counters(ctx context.Context, rep *GateReport) error {
	dbName := uniqueName("bench_gate")
	dbURL, err := withDatabase(g.cfg.DatabaseURL, dbName)
	if err != nil {
		return err
	}
	if err := adminExec(ctx, g.cfg.DatabaseURL, "CREATE DATABASE "+pgx.Identifier{dbName}.Sanitize()); err != nil {
		return fmt.Errorf("creating the gate's database: %w", err)
	}
	defer func() {
		_ = adminExec(context.WithoutCancel(ctx), g.cfg.DatabaseURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{dbName}.Sanitize()+" WITH (FORCE)")
	}()
	pgBefore, err := dbStats(ctx, g.cfg.DatabaseURL, dbName)
	if err != nil {
		return err
	}
	o, err := New(ctx, Config{Binary: g.cfg.Binary, RedisURL: g.cfg.RedisURL, DatabaseURL: dbURL, Progress: g.cfg.Progress, Quiet: true})
	if err != nil {
		return err
	}
	defer o.Close()
	var cmdBefore, cmdAfter, pgAfter map[string]int64
	var hookErr error
	o.hooks = runHooks{
		measure: func(ctx context.Context, r *scenarioRun) error {
			var err error
			cmdBefore, cmdAfter, err = g.drainBacklog(ctx, r)
			return err
		},
		afterStop: func(ctx context.Context, r *scenarioRun) {
			pgAfter, hookErr = settledDBStats(ctx, g.cfg.DatabaseURL, dbName)
		},
	}
	g.progress("stage 1: a backlog of %d tasks against a private redis-server and database %s", g.cfg.CounterTasks, dbName)
	res, err := o.Run(ctx, Run{Scenario: g.counterScenario()})
	if err != nil {
		return err
	}
	if hookErr != nil {
		return hookErr
	}
	if !res.Pass {
		return fmt.Errorf("the counting run itself failed its checks: %v", failedChecks(res))
	}
	measured := counterValues(res, cmdBefore, cmdAfter, pgBefore, pgAfter, rep)
	return g.checkCounters(measured, rep)
}

// drainBacklog stops the workers (SIGSTOP), submits the tasks, resumes the
// workers and waits until they completed them all, reading Redis's command
// counters before and after. While it waits it reads only the workers'
// /metrics: the producer's scrape-time collector would talk to Redis.
func (g *Gate) drainBacklog(ctx context.Context, r *scenarioRun) (before, after map[string]int64, err error) {
	scrapeBefore := r.scrapeAll(ctx)
	if before, err = redisCommandStats(ctx, r.rdb); err != nil {
		return nil, nil, err
	}
	r.mainStart = time.Since(r.start)
	for _, w := range r.workers {
		if err := w.proc.Signal(syscall.SIGSTOP); err != nil {
			return nil, nil, err
		}
	}
	l, err := r.runPhase(ctx, phase{name: "submit", rate: r.sc.Load.Rate, requests: r.sc.Load.Requests, series: true})
	for _, w := range r.workers {
		_ = w.proc.Signal(syscall.SIGCONT)
	}
	if err != nil {
		return nil, nil, err
	}
	n := float64(l.Tasks.Accepted)
	completed := func() float64 {
		var sum float64
		for _, w := range r.workers {
			ms, err := Scrape(ctx, "http://"+w.addr+"/metrics")
			if err != nil {
				return -1
			}
			sum += ms.Sum("agentmesh_worker_tasks_total", "outcome", "completed")
		}
		return sum - scrapeBefore.Sum("agentmesh_worker_tasks_total", "outcome", "completed")
	}
	wctx, cancel := context.WithTimeout(ctx, r.sc.DrainTimeout.D())
	defer cancel()
	if err := pollUntil(wctx, func() bool { return completed() >= n }); err != nil {
		return nil, nil, fmt.Errorf("the workers did not complete the %d tasks within %s: %w", int64(n), r.sc.DrainTimeout, err)
	}
	r.mainEnd = time.Since(r.start)
	if after, err = redisCommandStats(ctx, r.rdb); err != nil {
		return nil, nil, err
	}
	scrapeAfter := r.scrapeAll(ctx)
	r.res.Load = &LoadResult{l}
	r.res.Summary = summarize(l, 0)
	r.res.Mesh = meshMetrics(scrapeBefore, scrapeAfter, 0)
	r.res.Summary.Completed = int64(r.res.Mesh.Counters["worker_tasks_completed"])
	r.res.Leftover = r.leftover(ctx)
	return before, after, nil
}

// trialFailures are the failed checks that invalidate a throughput trial.
// Ids left in a processing list after the drain are reported, not fatal:
// they do not change the throughput, and the gate measures performance
// (the scenarios' zero-loss checks catch them).
func trialFailures(r *Result) []string {
	var out []string
	for _, c := range r.Checks {
		switch {
		case c.Pass:
		case c.Name == checkQueuesEmpty:
			fmt.Fprintf(os.Stderr, "gate: warning: %s: %s\n", c.Name, c.Got)
		default:
			out = append(out, c.Name+": "+c.Got)
		}
	}
	if r.Error != "" {
		out = append(out, r.Error)
	}
	return out
}

func failedChecks(r *Result) []string {
	var out []string
	for _, c := range r.Checks {
		if !c.Pass {
			out = append(out, c.Name+": "+c.Got)
		}
	}
	return out
}

// counterValues computes the per-task counters of stage 1.
func counterValues(res *Result, cmdBefore, cmdAfter, pgBefore, pgAfter map[string]int64, rep *GateReport) map[string]float64 {
	tasks := float64(res.Summary.Completed)
	out := map[string]float64{}
	rep.RedisCommands = map[string]float64{}
	var total int64
	for cmd, n := range cmdAfter {
		if cmd == "info" {
			continue // the gate's own INFO calls
		}
		d := n - cmdBefore[cmd]
		if d <= 0 {
			continue
		}
		total += d
		rep.RedisCommands[cmd] = round3(float64(d) / tasks)
	}
	out["redis_commands_per_task"] = round3(float64(total) / tasks)
	for _, k := range []string{"xact_commit", "tup_inserted", "tup_updated", "tup_deleted"} {
		out["pg_"+k+"_per_task"] = round3(float64(pgAfter[k]-pgBefore[k]) / tasks)
	}
	if res.Mesh != nil {
		out["mallocs_per_task"] = res.Mesh.Counters["mallocs_per_task"]
		out["alloc_bytes_per_task"] = res.Mesh.Counters["alloc_bytes_per_task"]
	}
	return out
}

// checkCounters compares the measured counters with the expected ones.
func (g *Gate) checkCounters(measured map[string]float64, rep *GateReport) error {
	exp, err := readExpected(g.cfg.Expected)
	if err != nil && !g.cfg.UpdateExpected {
		return err
	}
	if exp == nil {
		exp = &Expected{Counters: map[string]ExpectedValue{}}
	}
	for _, name := range slices.Sorted(maps.Keys(measured)) {
		v := measured[name]
		e, ok := exp.Counters[name]
		c := CounterCheck{Name: name, Value: v, Expected: e.Value, Limit: e.Limit(), Pass: true}
		switch {
		case !ok:
			c.Note = "not in expected.json (not checked)"
		case v > e.Limit():
			c.Pass = false
			c.Note = fmt.Sprintf("REGRESSION: %.3f per task is above %.3f (expected %.3f + %.0f%%): the mesh now does more work per task",
				v, e.Limit(), e.Value, 100*e.Tolerance)
		case v < e.Value*(1-e.Tolerance)-e.Abs:
			c.Note = "improved past the tolerance: update expected.json (mesh bench gate --update-expected)"
		}
		rep.Counters = append(rep.Counters, c)
		rep.CountersPass = rep.CountersPass && c.Pass
	}
	if g.cfg.UpdateExpected {
		for name, v := range measured {
			e := exp.Counters[name]
			e.Value = v
			if e.Tolerance == 0 {
				e.Tolerance = 0.15
			}
			exp.Counters[name] = e
		}
		return writeJSONFile(g.cfg.Expected, exp)
	}
	return nil
}

func readExpected(path string) (*Expected, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the expected counters: %w", err)
	}
	var e Expected
	if err := strictDecode(b, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &e, nil
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// withDatabase returns url with its database replaced by name.
func withDatabase(dbURL, name string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("the gate needs a postgres:// URL, got %q", dbURL)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func adminExec(ctx context.Context, dbURL, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// dbStats reads the counters of database name from pg_stat_database
// (through a connection to another database, so they are not disturbed).
func dbStats(ctx context.Context, adminURL, name string) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var xact, ins, upd, del int64
	err = conn.QueryRow(ctx, `SELECT xact_commit, tup_inserted, tup_updated, tup_deleted
		FROM pg_stat_database WHERE datname = $1`, name).Scan(&xact, &ins, &upd, &del)
	if errors.Is(err, pgx.ErrNoRows) {
		return map[string]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading pg_stat_database: %w", err)
	}
	return map[string]int64{"xact_commit": xact, "tup_inserted": ins, "tup_updated": upd, "tup_deleted": del}, nil
}

// settledDBStats reads dbStats until two reads 300 ms apart agree: backends
// flush their statistics as they exit, a moment after their clients left.
func settledDBStats(ctx context.Context, adminURL, name string) (map[string]int64, error) {
	prev, err := dbStats(ctx, adminURL, name)
	if err != nil {
		return nil, err
	}
	for range 20 {
		if err := SleepCtx(ctx, 300*time.Millisecond); err != nil {
			return nil, err
		}
		cur, err := dbStats(ctx, adminURL, name)
		if err != nil {
			return nil, err
		}
		if maps.Equal(cur, prev) {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// trialScenario is one stage-2 trial: the closed-loop maximum.
func (g *Gate) trialScenario() *Scenario {
	s := Scenario{Name: "gate-trial", Description: "gate stage 2: closed-loop throughput",
		Load:   Load{Mode: string(loadgen.ModeMax), Clients: 32, Batch: 10, Duration: Duration(g.cfg.TrialDuration), Payload: "256"},
		Warmup: Duration(g.cfg.TrialWarmup), SLO: SLO{ZeroLoss: true}, DrainTimeout: Duration(20 * time.Second)}
	s = s.WithDefaults()
	return &s
}

// trials runs stage 2 (Repeat times).
func (g *Gate) trials(ctx context.Context, rep *GateReport) error {
	base, label, cleanup, err := g.baseBinary(ctx)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		return err
	}
	cur, err := New(ctx, Config{Binary: g.cfg.Binary, RedisURL: g.cfg.RedisURL, DatabaseURL: g.cfg.DatabaseURL,
		NoCeiling: true, Progress: g.cfg.Progress, Quiet: true, Ceiling: CeilingConfig{Duration: 3 * time.Second}})
	if err != nil {
		return err
	}
	defer cur.Close()
	g.progress("stage 2: ceiling…")
	ceil, err := cur.MeasureCeiling(ctx)
	if err != nil {
		return err
	}
	rep.Ceiling = ceil.Batched
	var other *Orchestrator
	var committed *Baseline
	if base != "" {
		if other, err = New(ctx, Config{Binary: base, LoadgenBinary: g.cfg.Binary, RedisURL: g.cfg.RedisURL,
			DatabaseURL: g.cfg.DatabaseURL, NoCeiling: true, Progress: g.cfg.Progress, Quiet: true}); err != nil {
			return err
		}
		defer other.Close()
		other.SetCeiling(ceil)
	} else if committed, err = readBaseline(g.cfg.Baseline); err != nil && !g.cfg.UpdateBaseline {
		return err
	}
	for i := range g.cfg.Repeat {
		tr, err := g.trialRound(ctx, cur, other, committed, label)
		if err != nil {
			return err
		}
		rep.Trials = append(rep.Trials, *tr)
		if tr.Regression {
			rep.FalseAlarms++
		}
		g.progress("round %d/%d: %s", i+1, g.cfg.Repeat, tr.Why)
	}
	if g.cfg.Repeat == 1 && len(rep.Trials) == 1 && rep.Trials[0].Regression {
		rep.Pass = false
	}
	if g.cfg.UpdateBaseline && len(rep.Trials) > 0 {
		tr := rep.Trials[len(rep.Trials)-1]
		env := cur.Env()
		b := Baseline{Comment: "gate stage 2 fallback: throughput/ceiling ratios of closed-loop trials (mesh bench gate --update-baseline)",
			Revision: env.ShortRev(), Env: env, Ratios: tr.Current}
		if tr.Metric != "throughput/ceiling" {
			b.Ratios = ratios(tr.Current, ceil.Batched.TasksPerSec)
		}
		return writeJSONFile(g.cfg.Baseline, b)
	}
	return nil
}

func ratios(v []float64, ceil float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = round3(x / ceil)
	}
	return out
}

// trialRound runs Trials trials of each side in ABBA order (or only the
// current side against the committed baseline) and decides.
func (g *Gate) trialRound(ctx context.Context, cur, other *Orchestrator, committed *Baseline, label string) (*TrialReport, error) {
	tr := &TrialReport{Base: label, Metric: "tasks/s"}
	runOne := func(o *Orchestrator, side string) (float64, error) {
		res, err := o.Run(ctx, Run{Scenario: g.trialScenario()})
		if err != nil {
			return 0, fmt.Errorf("%s trial: %w", side, err)
		}
		if failed := trialFailures(res); len(failed) > 0 {
			return 0, fmt.Errorf("%s trial failed its checks: %v", side, failed)
		}
		g.progress("  %s: %s tasks/s (p99 %.1f ms)", side, fmtRate(res.Summary.TasksPerSec), res.Summary.P99MS)
		return res.Summary.TasksPerSec, nil
	}
	for i := range g.cfg.Trials {
		order := []bool{true, false} // current first, then base; ABBA: flip every other pair
		if i%2 == 1 || other == nil {
			order = []bool{false, true}
		}
		for _, isCur := range order {
			if !isCur && other == nil {
				continue
			}
			o, side := cur, "current"
			if !isCur {
				o, side = other, "baseline"
			}
			v, err := runOne(o, side)
			if err != nil {
				return nil, err
			}
			if isCur {
				tr.Current = append(tr.Current, v)
			} else {
				tr.Baseline = append(tr.Baseline, v)
			}
		}
	}
	if other == nil {
		if committed == nil {
			tr.Why = "no baseline to compare with (recorded the current ratios)"
			tr.Metric = "throughput/ceiling"
			tr.Current = ratios(tr.Current, cur.ceiling.TasksPerSec())
			return tr, nil
		}
		tr.Metric = "throughput/ceiling"
		tr.Current = ratios(tr.Current, cur.ceiling.TasksPerSec())
		tr.Baseline = committed.Ratios
	}
	g.decide(tr)
	return tr, nil
}

// decide flags a regression: the median dropped by more than Threshold and
// the one-sided rank test says p < Alpha.
func (g *Gate) decide(tr *TrialReport) {
	tr.MedianCur, tr.MedianBase = Median(tr.Current), Median(tr.Baseline)
	tr.Change = relChange(tr.MedianBase, tr.MedianCur)
	tr.P = MannWhitneyU(tr.Current, tr.Baseline, Less).P
	large := tr.Change < -g.cfg.Threshold
	significant := tr.P < Alpha
	tr.Regression = large && significant
	tr.Why = fmt.Sprintf("%s: current median %s vs %s %s (%+.1f%%), one-sided p = %.3f → ", tr.Metric,
		fmtTick(tr.MedianCur), tr.Base, fmtTick(tr.MedianBase), 100*tr.Change, tr.P)
	switch {
	case tr.Regression:
		tr.Why += fmt.Sprintf("REGRESSION (drop > %.0f%% and p < %.2f)", 100*g.cfg.Threshold, Alpha)
	case large:
		tr.Why += "large drop but not significant: pass"
	default:
		tr.Why += "pass"
	}
}

func readBaseline(path string) (*Baseline, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the committed baseline: %w", err)
	}
	var bl Baseline
	if err := json.Unmarshal(b, &bl); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(bl.Ratios) < 2 {
		return nil, fmt.Errorf("%s: fewer than 2 ratios", path)
	}
	return &bl, nil
}

// baseBinary resolves the baseline: a built binary and its label, or ""
// for the committed baseline.
func (g *Gate) baseBinary(ctx context.Context) (bin, label string, cleanup func(), err error) {
	switch g.cfg.Base {
	case "self":
		return g.cfg.Binary, "itself (false-alarm measurement)", nil, nil
	case "committed":
		return "", "committed baseline", nil, nil
	}
	rev := g.cfg.Base
	if rev == "auto" {
		rev = "HEAD~1"
	}
	dir, err := os.MkdirTemp("", "mesh-gate-base-")
	if err != nil {
		return "", "", nil, err
	}
	cleanup = func() { _ = os.RemoveAll(dir) }
	full, berr := g.buildRevision(ctx, rev, dir)
	if berr == nil {
		return filepath.Join(dir, baseBinaryName), fmt.Sprintf("%s (%.12s)", rev, full), cleanup, nil
	}
	if g.cfg.Base != "auto" {
		return "", "", cleanup, berr
	}
	g.progress("cannot use %s as the baseline (%v): comparing with the committed baseline", rev, berr)
	return "", "committed baseline", cleanup, nil
}

// baseBinaryName is the baseline binary in the export directory (not
// "mesh": the repository has a mesh/ directory there).
const baseBinaryName = "mesh-base.bin"

// buildRevision exports rev with git archive into dir, builds its mesh
// binary there and checks that it has the subcommands a trial needs.
func (g *Gate) buildRevision(ctx context.Context, rev, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", g.cfg.RepoDir, "rev-parse", "--verify", rev+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("git rev-parse %s: %w", rev, err)
	}
	full := strings.TrimSpace(string(out))
	g.progress("building the baseline %s (%.12s)…", rev, full)
	archive := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("git -C %q archive --format=tar %s | tar -x -C %q", g.cfg.RepoDir, full, dir))
	if b, err := archive.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git archive: %w: %s", err, b)
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, baseBinaryName), "./cmd/mesh")
	build.Dir = dir
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, lastLines(string(b), 5))
	}
	for _, sub := range []string{"producer", "worker"} {
		if err := exec.CommandContext(ctx, filepath.Join(dir, baseBinaryName), sub, "--help").Run(); err != nil {
			return "", fmt.Errorf("the baseline has no working `mesh %s`: %w", sub, err)
		}
	}
	return full, nil
}

func lastLines(s string, n int) string {
	lines := splitLines(strings.TrimSpace(s))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WriteGateReport prints the report.
func WriteGateReport(w io.Writer, rep *GateReport) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if len(rep.Counters) > 0 {
		fmt.Fprintln(tw, "counter (per task)\tmeasured\texpected\tlimit\t")
		for _, c := range rep.Counters {
			mark := "ok"
			if !c.Pass {
				mark = "FAIL"
			}
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%s %s\n", c.Name, c.Value, c.Expected, c.Limit, mark, c.Note)
		}
		fmt.Fprintln(tw)
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(rep.RedisCommands)) {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, rep.RedisCommands[k]))
		}
		fmt.Fprintf(tw, "redis commands per task by command: %s\n\n", strings.Join(parts, ", "))
	}
	for i, t := range rep.Trials {
		fmt.Fprintf(tw, "trials round %d: %s\n  current %v\n  baseline %v\n", i+1, t.Why, fmtList(t.Current), fmtList(t.Baseline))
	}
	if len(rep.Trials) > 1 {
		fmt.Fprintf(tw, "\n%d of %d rounds would have failed the gate\n", rep.FalseAlarms, len(rep.Trials))
	}
	verdict := "PASS"
	if !rep.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(tw, "\ngate: %s in %.0fs\n", verdict, rep.Seconds)
	return tw.Flush()
}

func fmtList(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		if math.Abs(x) < 10 {
			parts[i] = fmt.Sprintf("%.3f", x)
		} else {
			parts[i] = fmt.Sprintf("%.0f", x)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}
