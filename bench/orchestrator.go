package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config configures an Orchestrator.
type Config struct {
	// Binary is the mesh binary whose producer, worker and loadgen
	// subcommands run as child processes. Defaults to os.Executable().
	Binary string
	// LoadgenBinary runs `loadgen` when set (the gate measures a base
	// build's mesh with the current build's load generator).
	LoadgenBinary string
	// RedisURL and DatabaseURL are the shared servers.
	RedisURL    string
	DatabaseURL string
	// OutDir receives results/<scenario>/…; empty writes nothing.
	OutDir string
	// Quick marks results as quick (the scenarios were loaded with their
	// quick patch).
	Quick bool
	// Ceiling configures the ceiling measured before the scenarios; with
	// NoCeiling nothing is measured and ratios are 0.
	Ceiling   CeilingConfig
	NoCeiling bool
	// CeilingSingle also measures the one-round-trip-per-operation variant.
	CeilingSingle bool
	// SampleInterval is the RSS/CPU sampling period. Defaults to 500ms.
	SampleInterval time.Duration
	// Progress receives progress lines. Defaults to io.Discard.
	Progress io.Writer
	// Quiet drops the load generator's per-second lines from Progress.
	Quiet bool
	// Keep leaves each run's schema and keys in place (for debugging).
	Keep bool
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Binary == "" {
		c.Binary, _ = os.Executable()
	}
	c.LoadgenBinary = cmp.Or(c.LoadgenBinary, c.Binary)
	c.SampleInterval = cmp.Or(c.SampleInterval, 500*time.Millisecond)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// Orchestrator runs scenarios: it owns the shared backends' client, the
// ceiling measured once per bench run, and the sustainable rates found so
// far (for scenarios whose rate derives from another's).
type Orchestrator struct {
	cfg     Config
	rdb     redis.UniversalClient
	ceiling *Ceiling
	env     Env

	mu          sync.Mutex
	sustainable map[string]float64
	progressMu  sync.Mutex
	// hooks run around the measured phase (the gate's counters).
	hooks runHooks
}

// runHooks are called around the measured phase of every run: beforeMain
// after the mesh's metrics were scraped, afterMain as soon as the load
// generators finished (before the second scrape), afterStop once every
// process stopped.
type runHooks struct {
	beforeMain, afterMain, afterStop func(ctx context.Context, r *scenarioRun)
	// measure, when set, replaces the warmup and measured phases.
	measure func(ctx context.Context, r *scenarioRun) error
}

// New checks that the backends answer and returns an Orchestrator. Close it.
func New(ctx context.Context, cfg Config) (*Orchestrator, error) {
	cfg = cfg.WithDefaults()
	if cfg.Binary == "" {
		return nil, errors.New("bench: no mesh binary")
	}
	rdb, err := OpenRedis(cfg.RedisURL, 8)
	if err != nil {
		return nil, err
	}
	if err := CheckBackends(ctx, rdb, cfg.DatabaseURL); err != nil {
		_ = rdb.Close()
		return nil, err
	}
	o := &Orchestrator{cfg: cfg, rdb: rdb, sustainable: map[string]float64{}}
	o.env = CaptureEnv(ctx, cfg.Binary, rdb, cfg.DatabaseURL)
	return o, nil
}

// Close releases the Redis client.
func (o *Orchestrator) Close() error { return o.rdb.Close() }

// Env is the captured environment.
func (o *Orchestrator) Env() Env { return o.env }

// progress prints one line.
func (o *Orchestrator) progress(format string, args ...any) {
	o.progressMu.Lock()
	defer o.progressMu.Unlock()
	fmt.Fprintf(o.cfg.Progress, "bench: "+format+"\n", args...)
}

// MeasureCeiling measures the ceiling (batched, and single when
// configured) and keeps it for the scenario results.
func (o *Orchestrator) MeasureCeiling(ctx context.Context) (*Ceiling, error) {
	c := &Ceiling{}
	cfg := o.cfg.Ceiling
	cfg.RedisURL, cfg.DatabaseURL = o.cfg.RedisURL, o.cfg.DatabaseURL
	cfg.Mode = CeilingBatched
	cfg = cfg.WithDefaults()
	o.progress("ceiling: bare pipeline, batched (≤%d per statement), %s…", cfg.MaxBatch, cfg.Duration)
	b, err := MeasureCeiling(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c.Batched = b
	o.progress("ceiling: batched %s tasks/s (mean claim %.0f, p99 %.1f ms)", fmtRate(b.TasksPerSec), b.MeanClaim, b.P99MS)
	if o.cfg.CeilingSingle {
		cfg.Mode = CeilingSingle
		o.progress("ceiling: bare pipeline, one round trip per operation, %s…", cfg.Duration)
		s, err := MeasureCeiling(ctx, cfg)
		if err != nil {
			return nil, err
		}
		c.Single = s
		o.progress("ceiling: single %s tasks/s (p99 %.1f ms)", fmtRate(s.TasksPerSec), s.P99MS)
	}
	o.ceiling = c
	return c, nil
}

// SetCeiling uses c as the same-run ceiling.
func (o *Orchestrator) SetCeiling(c *Ceiling) { o.ceiling = c }

// RunAll runs the scenarios in order (each variant of each), writes every
// result and returns them. A scenario that fails to run is reported in its
// result's Error and the next one runs; ctx's end stops everything.
func (o *Orchestrator) RunAll(ctx context.Context, ss []*Scenario) ([]*Result, error) {
	var out []*Result
	for _, s := range Order(ss) {
		runs, err := s.Expand()
		if err != nil {
			return out, err
		}
		for _, run := range runs {
			if ctx.Err() != nil {
				return out, context.Cause(ctx)
			}
			res, err := o.Run(ctx, run)
			if res != nil {
				out = append(out, res)
			}
			if err != nil {
				o.progress("%s: FAILED: %v", titleOf(run), err)
			}
		}
	}
	return out, nil
}

func titleOf(run Run) string {
	if run.Variant != "" {
		return run.Scenario.Name + "/" + run.Variant
	}
	return run.Scenario.Name
}

// Run runs one scenario run and writes its result files. The returned
// result is non-nil whenever the run got as far as starting processes.
func (o *Orchestrator) Run(ctx context.Context, run Run) (*Result, error) {
	r, err := o.newRun(run)
	if err != nil {
		return nil, err
	}
	res, err := r.execute(ctx)
	if res == nil {
		return nil, err
	}
	if err != nil {
		res.Error = err.Error()
		res.Pass = false
	}
	if res.Scenario.Search != nil {
		o.mu.Lock()
		o.sustainable[res.Scenario.Name] = res.Rate
		o.mu.Unlock()
	}
	if o.cfg.OutDir != "" && res.Load != nil {
		paths, werr := WriteResultFiles(o.cfg.OutDir, res, r.stem)
		if werr != nil {
			return res, errors.Join(err, werr)
		}
		o.progress("%s: wrote %s", titleOf(run), paths[0])
	}
	return res, err
}

// rateFrom resolves a RateFrom: the same bench run's search, else the
// newest result of that scenario under OutDir.
func (o *Orchestrator) rateFrom(rf *RateFrom) (float64, string) {
	o.mu.Lock()
	r, ok := o.sustainable[rf.Scenario]
	o.mu.Unlock()
	if ok && r > 0 {
		return r * rf.Factor, "this run's " + rf.Scenario
	}
	if o.cfg.OutDir == "" {
		return 0, ""
	}
	files, _ := filepath.Glob(filepath.Join(o.cfg.OutDir, rf.Scenario, "*.json"))
	sort.Sort(sort.Reverse(sort.StringSlice(files)))
	for _, f := range files {
		res, err := ReadResultFile(f)
		if err == nil && res.Rate > 0 && res.Scenario.Search != nil {
			return res.Rate * rf.Factor, filepath.Base(f)
		}
	}
	return 0, ""
}

// stemFor is "<UTC timestamp>-<rev>[-<variant>]".
func stemFor(t time.Time, env *Env, variant string) string {
	stem := t.UTC().Format("20060102T150405Z") + "-" + env.ShortRev()
	if variant != "" {
		stem += "-" + variant
	}
	return stem
}

func fmtRate(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 10:
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.2f", r)
}

// joinArgs renders args for a log line.
func joinArgs(args []string) string { return strings.Join(args, " ") }
