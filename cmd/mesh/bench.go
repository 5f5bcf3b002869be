package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentmesh/agentmesh/bench"
)

func init() {
	register("bench", "benchmarks: run scenarios, the pipeline ceiling, compare results, the CI gate", runBench)
}

// benchSubcommands are `mesh bench <sub>`.
var benchSubcommands = map[string]struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}{
	"run":     {"run scenarios (all, or --scenario name[,name…]) and write results/", runBenchRun},
	"ceiling": {"measure the bare-pipeline ceiling (tasks/s) against Redis and PostgreSQL", runBenchCeiling},
	"compare": {"compare results: A.json B.json, or directories/globs of trials per side", runBenchCompare},
	"gate":    {"the CI performance gate: exact counters, then trials against a baseline", runBenchGate},
	"report":  {"re-render the Markdown report and SVG plots of result files", runBenchReport},
	"list":    {"list the built-in scenarios", runBenchList},
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, "usage: mesh bench <run|ceiling|compare|gate|report|list> [flags]")
		for _, name := range []string{"run", "ceiling", "compare", "gate", "report", "list"} {
			fmt.Fprintf(stderr, "  %-8s %s\n", name, benchSubcommands[name].summary)
		}
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub, ok := benchSubcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "mesh bench: unknown subcommand %q\n", args[0])
		return errUsage
	}
	return sub.run(ctx, args[1:], stdout, stderr)
}

// benchBackends are the shared servers' URLs (the environment Taskfile's
// services step exports).
type benchBackends struct{ redisURL, databaseURL string }

func (b *benchBackends) register(fs *flag.FlagSet) {
	fs.StringVar(&b.redisURL, "redis-url", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL (env REDIS_URL)")
	fs.StringVar(&b.databaseURL, "database-url", envOr("DATABASE_URL", "postgres://127.0.0.1:5432/test?sslmode=disable"),
		"PostgreSQL URL (env DATABASE_URL)")
}

func runBenchRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mesh bench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var be benchBackends
	be.register(fs)
	scenarios := fs.String("scenario", "all", "scenarios to run: all, a comma-separated list of names, or paths to .json files")
	quick := fs.Bool("quick", false, "apply each scenario's quick patch (shorter; results are labelled quick)")
	out := fs.String("out", "results", "directory receiving <scenario>/<timestamp>-<rev>.{json,md,svg}; empty writes nothing")
	dir := fs.String("scenario-dir", "", "read scenario names from <dir>/<name>.json instead of the built-in ones")
	duration := fs.Duration("duration", 0, "override every scenario's load duration (e.g. --scenario soak --duration 1h)")
	set := fs.String("set", "", `JSON patch applied to every scenario, e.g. '{"workers":{"count":2}}'`)
	noCeiling := fs.Bool("no-ceiling", false, "skip the bare-pipeline ceiling (ratios are then 0)")
	ceilingDur := fs.Duration("ceiling-duration", 5*time.Second, "how long the ceiling is measured")
	single := fs.Bool("ceiling-single", true, "also measure the one-round-trip-per-operation ceiling (reference only)")
	quiet := fs.Bool("quiet", false, "no per-second load generator lines")
	keep := fs.Bool("keep", false, "keep each run's PostgreSQL schema and Redis keys (debugging)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var patches [][]byte
	if *duration > 0 {
		patches = append(patches, []byte(fmt.Sprintf(`{"load":{"duration":%q}}`, duration.String())))
	}
	if *set != "" {
		patches = append(patches, []byte(*set))
	}
	ss, err := loadScenarios(*dir, *scenarios, *quick, patches)
	if err != nil {
		return err
	}
	o, err := bench.New(ctx, bench.Config{RedisURL: be.redisURL, DatabaseURL: be.databaseURL, OutDir: *out,
		Quick: *quick, Keep: *keep, NoCeiling: *noCeiling, CeilingSingle: *single, Progress: stderr, Quiet: *quiet,
		Ceiling: bench.CeilingConfig{Duration: *ceilingDur}})
	if err != nil {
		return err
	}
	defer o.Close()
	env := o.Env()
	fmt.Fprintf(stderr, "bench: %s, %d cores; %s; Redis %s; PostgreSQL %s; revision %s\n",
		env.CPUModel, env.Cores, env.GoVersion, env.Redis, env.Postgres, env.ShortRev())
	if !*noCeiling {
		if _, err := o.MeasureCeiling(ctx); err != nil {
			return fmt.Errorf("measuring the ceiling: %w", err)
		}
	}
	results, err := o.RunAll(ctx, ss)
	printSummary(stdout, results)
	if *out != "" && len(results) > 0 {
		if ierr := bench.WriteIndex(*out); ierr != nil {
			fmt.Fprintf(stderr, "bench: writing %s/README.md: %v\n", *out, ierr)
		}
	}
	if err != nil {
		return err
	}
	for _, r := range results {
		if !r.Pass {
			return errors.New("some scenarios missed their service levels (see the table)")
		}
	}
	return nil
}

// loadScenarios reads the named scenarios ("all": every built-in one not
// marked manual).
func loadScenarios(dir, names string, quick bool, patches [][]byte) ([]*bench.Scenario, error) {
	all := names == "all"
	var list []string
	if all {
		list = bench.AllNames()
		if dir != "" {
			files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			list = list[:0]
			for _, f := range files {
				list = append(list, strings.TrimSuffix(filepath.Base(f), ".json"))
			}
		}
	} else {
		list = strings.Split(names, ",")
	}
	var out []*bench.Scenario
	for _, n := range list {
		s, err := bench.LoadScenario(dir, strings.TrimSpace(n), quick, patches...)
		if err != nil {
			return nil, err
		}
		if all && s.Manual {
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("no scenario to run")
	}
	return out, nil
}

// printSummary prints one row per result.
func printSummary(w io.Writer, results []*bench.Result) {
	if len(results) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trate/s\ttasks/s\t% ceiling\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\terrors\tlost\tdup\tRSS max\tSLO\t")
	for _, r := range results {
		s := r.Summary
		verdict := "PASS"
		if !r.Pass {
			verdict = "FAIL"
			for _, c := range r.Checks {
				if !c.Pass {
					verdict += " (" + c.Name + ")"
					break
				}
			}
			if r.Error != "" {
				verdict += " (error)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%.2f\t%.2f\t%.2f\t%.1f\t%d\t%d\t%d\t%.0f MiB\t%s\t\n", r.Title(), r.RateLabel(),
			s.TasksPerSec, 100*s.CeilingRatio, s.P50MS, s.P99MS, s.P999MS, s.MaxMS, s.Errors, s.Lost, s.Duplicates,
			float64(s.RSSMaxBytes)/(1<<20), verdict)
	}
	_ = tw.Flush()
}

func runBenchCeiling(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mesh bench ceiling", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var be benchBackends
	be.register(fs)
	var cfg bench.CeilingConfig
	mode := fs.String("mode", "both", "batched, single, or both")
	fs.DurationVar(&cfg.Duration, "duration", bench.DefaultCeilingDuration, "measured time")
	fs.DurationVar(&cfg.Warmup, "warmup", bench.DefaultCeilingWarmup, "time before measuring")
	fs.IntVar(&cfg.MaxBatch, "batch", bench.DefaultCeilingBatch, "max tasks per statement / claim")
	fs.IntVar(&cfg.Inserters, "inserters", bench.DefaultCeilingInserter, "batched: concurrent insert loops")
	fs.IntVar(&cfg.Claimers, "claimers", bench.DefaultCeilingClaimers, "batched: concurrent claim loops")
	fs.IntVar(&cfg.Concurrency, "concurrency", bench.DefaultCeilingSingle, "single: concurrent loops")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.RedisURL, cfg.DatabaseURL = be.redisURL, be.databaseURL
	modes := []string{bench.CeilingBatched, bench.CeilingSingle}
	if *mode != "both" {
		modes = []string{*mode}
	}
	var results []*bench.CeilingResult
	for _, m := range modes {
		cfg.Mode = m
		fmt.Fprintf(stderr, "bench: ceiling %s for %s…\n", m, cfg.Duration)
		r, err := bench.MeasureCeiling(ctx, cfg)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	if *asJSON {
		return writeJSON(stdout, results)
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\ttasks/s\ttasks\tp50 ms\tp99 ms\tmean claim")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.0f\t%d\t%.1f\t%.1f\t%.0f\n", r.Mode, r.TasksPerSec, r.Tasks, r.P50MS, r.P99MS, r.MeanClaim)
	}
	return tw.Flush()
}

func runBenchReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mesh bench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: mesh bench report RESULT.json…")
		return errUsage
	}
	for _, path := range fs.Args() {
		r, err := bench.ReadResultFile(path)
		if err != nil {
			return err
		}
		stem := strings.TrimSuffix(filepath.Base(path), ".json")
		paths, err := bench.WriteResultFiles(filepath.Dir(filepath.Dir(path)), r, stem)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, strings.Join(paths, "\n"))
	}
	return nil
}

func runBenchList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	for _, n := range bench.AllNames() {
		s, err := bench.LoadScenario("", n, false)
		if err != nil {
			return err
		}
		manual := ""
		if s.Manual {
			manual = " (manual: not in --scenario all)"
		}
		desc := s.Description
		if i := strings.Index(desc, ". "); i > 0 {
			desc = desc[:i+1]
		}
		fmt.Fprintf(tw, "%s\t%s%s\n", n, desc, manual)
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runBenchCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mesh bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mesh bench compare A.json B.json\n"+
			"       mesh bench compare A1.json A2.json … -- B1.json B2.json …\n"+
			"       mesh bench compare DIR_A DIR_B   (every result in each directory is a trial)\n\n"+
			"Per metric: median and spread of each side, the change, a two-sided Mann-Whitney\n"+
			"p-value when both sides have 2+ trials, and a verdict (better, worse, no significant change).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	a, b, err := compareSides(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return errUsage
	}
	ra, err := bench.ReadResultSet(a...)
	if err != nil {
		return err
	}
	rb, err := bench.ReadResultSet(b...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "A: %s\nB: %s\n\n", describeSide(ra), describeSide(rb))
	return bench.WriteComparison(stdout, bench.Compare(ra, rb, bench.CompareMetrics), len(ra), len(rb))
}

// compareSides splits the arguments into two sides: around "--", or
// exactly two arguments.
func compareSides(args []string) ([]string, []string, error) {
	for i, a := range args {
		if a == "--" {
			if i == 0 || i == len(args)-1 {
				break
			}
			return args[:i], args[i+1:], nil
		}
	}
	if len(args) == 2 {
		return args[:1], args[1:], nil
	}
	return nil, nil, errors.New("mesh bench compare: give two results (or directories), or two lists separated by --")
}

func describeSide(rs []*bench.Result) string {
	seen := map[string]bool{}
	var parts []string
	for _, r := range rs {
		k := r.Title() + " @ " + r.Env.ShortRev()
		if !seen[k] {
			seen[k] = true
			parts = append(parts, k)
		}
	}
	return fmt.Sprintf("%d trial(s): %s", len(rs), strings.Join(parts, ", "))
}

func runBenchGate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mesh bench gate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var be benchBackends
	be.register(fs)
	var cfg bench.GateConfig
	fs.StringVar(&cfg.Base, "base", "auto", "baseline: auto (build HEAD~1, else the committed baseline), self, committed, or a git revision")
	fs.StringVar(&cfg.Expected, "expected", "bench/gate/expected.json", "expected counters")
	fs.StringVar(&cfg.Baseline, "baseline", "bench/gate/baseline.json", "committed baseline of throughput/ceiling ratios")
	fs.Int64Var(&cfg.CounterTasks, "counter-tasks", 3000, "stage 1: tasks of the counting run")
	fs.IntVar(&cfg.Trials, "trials", 4, "stage 2: trials per side (4+ for p < 0.05)")
	fs.DurationVar(&cfg.TrialDuration, "trial-duration", 8*time.Second, "stage 2: measured time of one trial")
	fs.Float64Var(&cfg.Threshold, "threshold", 0.25, "stage 2: relative drop of the median that counts as a regression")
	fs.IntVar(&cfg.Repeat, "repeat", 1, "run stage 2 this many times and count the rounds that would fail (false alarms with --base self)")
	fs.BoolVar(&cfg.SkipCounters, "skip-counters", false, "skip stage 1")
	fs.BoolVar(&cfg.SkipTrials, "skip-trials", false, "skip stage 2")
	fs.BoolVar(&cfg.UpdateExpected, "update-expected", false, "write the measured counters to --expected")
	fs.BoolVar(&cfg.UpdateBaseline, "update-baseline", false, "write the current build's ratios to --baseline")
	asJSON := fs.String("json", "", "also write the report as JSON to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.RedisURL, cfg.DatabaseURL, cfg.Progress = be.redisURL, be.databaseURL, stderr
	rep, err := bench.NewGate(cfg).Run(ctx)
	if rep != nil {
		_ = bench.WriteGateReport(stdout, rep)
		if *asJSON != "" {
			f, ferr := os.Create(*asJSON)
			if ferr == nil {
				_ = writeJSON(f, rep)
				_ = f.Close()
			}
		}
	}
	if err != nil {
		return err
	}
	if !rep.Pass {
		return errors.New("performance gate failed (see above)")
	}
	return nil
}
