package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/chaos"
)

func init() {
	register("chaos", "chaos under load: kill/pause workers, producer, Redis, PostgreSQL; then audit (issue 8)", runChaos)
}

// runChaos parses the flags into a chaos.Config, runs it and writes
// <out>/<UTC stamp>.json and .md. It fails when the audit fails.
func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mesh chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg chaos.Config
	var faults, out string
	var short bool
	fs.Float64Var(&cfg.Rate, "rate", chaos.DefaultRate, "load: units per second (constant, open loop)")
	fs.DurationVar(&cfg.Duration, "duration", chaos.DefaultDuration, "load: length")
	fs.BoolVar(&short, "short", false, "the short form: 200/s for 40s, 2 workers doing 5ms-50ms, 1s gaps (what `go test ./chaos` runs)")
	fs.Float64Var(&cfg.Pipelines, "pipelines", chaos.DefaultPipelines, "share of units sent as pipelines (negative: none)")
	fs.IntVar(&cfg.Workers, "workers", chaos.DefaultWorkers, "worker processes")
	fs.StringVar(&cfg.Work, "work", chaos.DefaultWork, "workers' simulated work (--work)")
	fs.DurationVar(&cfg.Lease, "lease", chaos.DefaultLease, "workers' --lease (short, so recovery is fast)")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", chaos.DefaultHeartbeat, "workers' --heartbeat")
	fs.DurationVar(&cfg.StaleAfter, "stale-after", chaos.DefaultStaleAfter, "workers' --stale-after (re-push of committed, unpushed tasks)")
	fs.StringVar(&faults, "faults", "", "comma-separated fault kinds (default all: kill_worker,kill_producer,restart_redis,restart_postgres,pause_worker)")
	fs.DurationVar(&cfg.FirstAt, "first-at", chaos.DefaultFirstAt, "first fault after the load starts")
	fs.DurationVar(&cfg.Gap, "gap", chaos.DefaultGap, "mean pause between a recovery and the next fault (uniform ±50%)")
	fs.DurationVar(&cfg.Tail, "tail", chaos.DefaultTail, "fault-free time at the end of the load")
	fs.DurationVar(&cfg.Down, "down", chaos.DefaultDown, "how long a killed process or server stays down")
	fs.DurationVar(&cfg.PauseFor, "pause-for", 0, "how long a worker stays SIGSTOPped (default 2 × --lease)")
	fs.DurationVar(&cfg.RecoverTimeout, "recover-timeout", chaos.DefaultRecoverTimeout, "bound on one fault's recovery")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", chaos.DefaultDrainTimeout, "bound on the drain after the load")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the fault schedule and the load (0: from the clock)")
	fs.StringVar(&out, "out", "results/chaos", "directory for <UTC stamp>.json and .md (empty: none); logs go to <out>/tmp/<stamp>/")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if short {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		applyShort(&cfg, set)
	}
	for _, f := range strings.Split(faults, ",") {
		if f = strings.TrimSpace(f); f != "" {
			k, err := chaos.ParseKind(f)
			if err != nil {
				return err
			}
			cfg.Faults = append(cfg.Faults, k)
		}
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Binary = bin
	stamp := time.Now().UTC().Format("20060102T150405Z")
	cfg.Dir = filepath.Join(cmp.Or(out, os.TempDir()), "tmp", stamp)
	cfg.Progress = stderr
	res, err := chaos.Run(ctx, cfg)
	if err != nil {
		return err
	}
	res.Command = "bin/mesh chaos " + strings.Join(args, " ")
	if out != "" {
		if err := writeChaos(out, stamp, res); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "chaos: wrote %s.{json,md}\n", filepath.Join(out, stamp))
	}
	if err := res.WriteMarkdown(stdout); err != nil {
		return err
	}
	if !res.Pass {
		return fmt.Errorf("audit failed: %s", strings.Join(res.Problems, "; "))
	}
	return nil
}

// applyShort sets the short form's values on flags not given explicitly.
func applyShort(cfg *chaos.Config, set map[string]bool) {
	def := func(name string, f func()) {
		if !set[name] {
			f()
		}
	}
	def("rate", func() { cfg.Rate = 200 })
	def("duration", func() { cfg.Duration = 40 * time.Second })
	def("workers", func() { cfg.Workers = 2 })
	def("work", func() { cfg.Work = "5ms-50ms" })
	def("first-at", func() { cfg.FirstAt = 3 * time.Second })
	def("gap", func() { cfg.Gap = time.Second })
	def("down", func() { cfg.Down = 500 * time.Millisecond })
	def("tail", func() { cfg.Tail = 3 * time.Second })
}

func writeChaos(dir, stamp string, res *chaos.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for ext, write := range map[string]func(io.Writer) error{".json": res.WriteJSON, ".md": res.WriteMarkdown} {
		f, err := os.Create(filepath.Join(dir, stamp+ext))
		if err != nil {
			return err
		}
		if err := write(f); err != nil {
			_ = f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
