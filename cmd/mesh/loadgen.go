package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/agentmesh/agentmesh/loadgen"
	"github.com/agentmesh/agentmesh/mesh/task"
)

func init() {
	register("loadgen", "open-loop load generator with HDR latency reports", runLoadgen)
}

// runLoadgen parses the flags into a loadgen.Config and runs it.
func runLoadgen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mesh loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadgen.Config
	var mode, merge string
	var priority int
	var quiet, verbose bool
	cfg.Payload, _ = loadgen.ParseSizeDist(loadgen.DefaultPayload)
	cfg.Roles, _ = loadgen.ParseRoleMix("ARCHITECT,DEVELOPER,QA")

	fs.StringVar(&cfg.Target, "target", loadgen.DefaultTarget, "producer base URL")
	fs.StringVar(&cfg.Token, "token", "", "bearer token for the API and the completion stream")
	fs.StringVar(&mode, "mode", string(loadgen.DefaultMode), "schedule: constant | ramp | steps (open-loop) | max (closed-loop)")
	fs.Float64Var(&cfg.Rate, "rate", loadgen.DefaultRate, "target tasks per second (constant; the end rate of a ramp)")
	fs.Float64Var(&cfg.RampFrom, "ramp-from", 0, "ramp: start rate in tasks per second")
	fs.DurationVar(&cfg.RampOver, "ramp-over", 0, "ramp: time to reach --rate, then hold it (0 = --duration)")
	fs.Var(&cfg.Steps, "steps", "steps: schedule RATE:DURATION,… e.g. 500:10s,1000:10s (--duration defaults to its total)")
	fs.IntVar(&cfg.Clients, "clients", loadgen.DefaultClients, "max: concurrent closed-loop clients")
	fs.DurationVar(&cfg.Duration, "duration", 0, "length of the schedule (0 = 10s unless --requests or --steps bound it)")
	fs.Int64Var(&cfg.Requests, "requests", 0, "stop after this many tasks (0 = no limit)")
	fs.Var(&cfg.Roles, "roles", "role mix ROLE=WEIGHT,… of single tasks")
	fs.Float64Var(&cfg.PipelineFraction, "pipelines", 0, "fraction (0-1) of units submitted as SDLC pipelines")
	fs.Var(&cfg.Payload, "payload", "payload size distribution in bytes: SIZE, MIN-MAX, with =WEIGHT per entry, e.g. 128=9,16384=1")
	fs.IntVar(&priority, "priority", -1, "task priority 0-3 (-1 = the server's default)")
	fs.IntVar(&cfg.Batch, "batch", loadgen.DefaultBatch, "tasks per submit request (>1 uses POST /api/v1/tasks/batch)")
	fs.IntVar(&cfg.Senders, "senders", loadgen.DefaultSenders, "concurrent submit requests and keep-alive connections (open-loop); when all are busy the schedule lag shows it")
	fs.DurationVar(&cfg.RequestTimeout, "timeout", loadgen.DefaultRequestTimeout, "timeout of one HTTP request")
	fs.BoolVar(&cfg.SubmitOnly, "submit-only", false, "measure submit latency only (no completion stream)")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", loadgen.DefaultDrainTimeout, "wait for completions after the last send, then GET-check the rest")
	fs.IntVar(&cfg.MaxPending, "max-pending", loadgen.DefaultMaxPending, "bound on accepted, not yet completed tasks tracked (more are skipped)")
	fs.DurationVar(&cfg.DupWindow, "dup-window", loadgen.DefaultDupWindow, "how long completed ids are kept to count duplicate completions")
	fs.IntVar(&cfg.MaxLostListed, "max-lost-listed", loadgen.DefaultMaxLostListed, "lost tasks listed in the result (all are counted)")
	fs.DurationVar(&cfg.Interval, "interval", loadgen.DefaultInterval, "time-series interval and progress period")
	fs.DurationVar(&cfg.MaxLag, "max-lag", loadgen.DefaultMaxLag, "schedule lag p99 bound; past it the run is flagged")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics on this address while running (e.g. :9102)")
	fs.StringVar(&cfg.ResultPath, "out", "", "write the JSON result to this file (- = stdout, the text report then goes to stderr)")
	fs.StringVar(&cfg.HDRLogPath, "hdr-log", "", "write the interval histograms to this file in HdrHistogram log format")
	fs.StringVar(&merge, "merge", "", "send nothing: merge these comma-separated JSON results and report them")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the random choices (roles, sizes, pipelines)")
	fs.BoolVar(&quiet, "quiet", false, "no progress line on stderr")
	fs.BoolVar(&verbose, "v", false, "log the run's steps on stderr")
	pprofAddr := fs.String("pprof-addr", "", "serve Go's /debug/pprof/ profiles here while running, e.g. 127.0.0.1:6062")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: mesh loadgen [flags]\n\n"+
			"Sends open-loop load to a producer and measures every task from its intended send time\n"+
			"to its completion on /ws/completions (HDR histograms; no coordinated omission).\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Mode = loadgen.Mode(mode)
	if priority >= 0 {
		p := task.Priority(priority)
		cfg.Priority = &p
	}
	if merge != "" {
		cfg.Merge = strings.Split(merge, ",")
	}
	cfg.Report = stdout
	if !quiet {
		cfg.Progress = stderr
	}
	if verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	if err := servePprof(*pprofAddr, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return err
	}
	_, err := loadgen.Run(ctx, cfg)
	return err
}
