package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentmesh/agentmesh/mesh/maintenance"
	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/task"
	"github.com/agentmesh/agentmesh/mesh/worker"
)

func init() {
	register("worker", "run a worker node (claims, runs and records tasks of its roles)", runWorker)
}

// workerFlags are the worker settings, shared by `mesh worker` and `mesh dev`.
type workerFlags struct {
	id, roles, work, rssLimit, rssSoft string
	concurrency                        int
	failRate                           float64
	claimBatch, finishBatch, flushers  int
	lease, heartbeat, shutdown         time.Duration
	retryBase, retryMax, staleAfter    time.Duration
	noMaintenance                      bool
}

func (f *workerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.id, "id", envOr("MESH_WORKER_ID", ""), "unique worker id (env MESH_WORKER_ID; default <hostname>-<pid>-<random>)")
	fs.StringVar(&f.roles, "roles", envOr("MESH_ROLES", "all"),
		"roles to serve: all, or a list like ARCHITECT,QA or ARCHITECT=32,QA=8 with per-role concurrency (env MESH_ROLES)")
	fs.IntVar(&f.concurrency, "concurrency", worker.DefaultConcurrency, "tasks run at once per role, unless --roles sets it")
	fs.StringVar(&f.work, "work", envOr("MESH_WORK", "0"),
		"simulated work per task: 0, 20ms, 10ms-80ms (uniform), exp:20ms; per role: ARCHITECT=50ms,DEVELOPER=exp:20ms (env MESH_WORK)")
	fs.Float64Var(&f.failRate, "fail-rate", 0, "probability that a simulated attempt fails")
	fs.IntVar(&f.claimBatch, "claim-batch", worker.DefaultClaimBatch, "max task ids moved per claim round trip")
	fs.IntVar(&f.finishBatch, "finish-batch", worker.DefaultFinishBatch, "max outcomes recorded per PostgreSQL statement")
	fs.IntVar(&f.flushers, "flushers", worker.DefaultFlushers, "finish statements in flight at once")
	fs.DurationVar(&f.lease, "lease", worker.DefaultLeaseTTL, "lease: claims of a worker silent this long are reaped")
	fs.DurationVar(&f.heartbeat, "heartbeat", worker.DefaultHeartbeatInterval, "heartbeat interval (shorter than --lease)")
	if fs.Lookup("shutdown-timeout") == nil { // mesh dev shares the producer's
		fs.DurationVar(&f.shutdown, "shutdown-timeout", worker.DefaultShutdownTimeout, "how long in-flight work may finish after SIGTERM")
	}
	fs.DurationVar(&f.retryBase, "retry-base", worker.DefaultRetryBase, "first retry backoff (doubles per attempt, with jitter)")
	fs.DurationVar(&f.retryMax, "retry-max", worker.DefaultRetryMax, "longest retry backoff")
	fs.StringVar(&f.rssLimit, "rss-limit", envOr("MESH_RSS_LIMIT", "512MiB"), "RSS at which HealthScore reaches 0 (env MESH_RSS_LIMIT)")
	fs.StringVar(&f.rssSoft, "rss-soft-limit", envOr("MESH_RSS_SOFT_LIMIT", ""),
		"RSS over which the worker stops claiming (env MESH_RSS_SOFT_LIMIT; default 80% of --rss-limit)")
	fs.DurationVar(&f.staleAfter, "stale-after", maintenance.DefaultStaleAfter, "re-push pending rows untouched this long")
	fs.BoolVar(&f.noMaintenance, "no-maintenance", false, "do not campaign for the maintenance leadership (reaper, promoter, recoverer)")
}

// config turns the flags into a worker.Config.
func (f *workerFlags) config(log *slog.Logger) (worker.Config, error) {
	cfg := worker.Config{ID: f.id, FailRate: f.failRate, ClaimBatch: f.claimBatch, FinishBatch: f.finishBatch,
		Flushers: f.flushers, LeaseTTL: f.lease, HeartbeatInterval: f.heartbeat, ShutdownTimeout: f.shutdown,
		RetryBase: f.retryBase, RetryMax: f.retryMax, Logger: log, Version: version}
	var err error
	if cfg.Roles, err = parseRoles(f.roles, f.concurrency); err != nil {
		return cfg, err
	}
	if cfg.Work, err = parseWorkFlag(f.work); err != nil {
		return cfg, err
	}
	if cfg.Health.Limit, err = parseBytes(f.rssLimit); err != nil {
		return cfg, fmt.Errorf("--rss-limit: %w", err)
	}
	if f.rssSoft != "" {
		if cfg.Health.SoftLimit, err = parseBytes(f.rssSoft); err != nil {
			return cfg, fmt.Errorf("--rss-soft-limit: %w", err)
		}
	}
	return cfg, nil
}

// parseRoles reads "all", "ARCHITECT,QA" or "ARCHITECT=32,QA=8".
func parseRoles(s string, def int) (map[task.Role]int, error) {
	out := map[task.Role]int{}
	if s == "" || s == "all" {
		for _, r := range task.Roles {
			out[r] = def
		}
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, n, hasN := strings.Cut(strings.TrimSpace(part), "=")
		r, err := task.ParseRole(strings.ToUpper(name))
		if err != nil {
			return nil, fmt.Errorf("--roles: %w", err)
		}
		c := def
		if hasN {
			if c, err = strconv.Atoi(n); err != nil || c < 1 {
				return nil, fmt.Errorf("--roles: concurrency %q of %s is not a positive number", n, r)
			}
		}
		out[r] = c
	}
	return out, nil
}

// parseWorkFlag reads one distribution for every role, or ROLE=dist pairs.
func parseWorkFlag(s string) (map[task.Role]worker.Work, error) {
	out := map[task.Role]worker.Work{}
	if !strings.Contains(s, "=") {
		w, err := worker.ParseWork(s)
		if err != nil {
			return nil, fmt.Errorf("--work: %w", err)
		}
		for _, r := range task.Roles {
			out[r] = w
		}
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, dist, _ := strings.Cut(strings.TrimSpace(part), "=")
		r, err := task.ParseRole(strings.ToUpper(name))
		if err != nil {
			return nil, fmt.Errorf("--work: %w", err)
		}
		if out[r], err = worker.ParseWork(dist); err != nil {
			return nil, fmt.Errorf("--work: %w", err)
		}
	}
	return out, nil
}

// parseBytes reads 536870912, 512MiB, 512MB, 1GiB, 64KiB.
func parseBytes(s string) (uint64, error) {
	units := []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), uint64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 512MiB)", s)
	}
	return uint64(n * float64(mult)), nil
}

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mesh worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var bf backendFlags
	var wf workerFlags
	bf.register(fs)
	wf.register(fs)
	metricsAddr := fs.String("metrics-addr", envOr("MESH_METRICS_ADDR", ":9091"), "serve Prometheus /metrics here; empty to disable (env MESH_METRICS_ADDR)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := bf.logger(stderr)
	if err != nil {
		return err
	}
	cfg, err := wf.config(log)
	if err != nil {
		return err
	}
	be, err := bf.open(ctx, log, 30*time.Second)
	if err != nil {
		return err
	}
	defer be.close()
	reg := metrics.NewRegistry()
	wm := metrics.NewWorker(reg)
	if err := serveMetrics(ctx, log, *metricsAddr, reg); err != nil {
		return err
	}
	return runWorkerNode(ctx, be, cfg, &wf, wm, log)
}

// runWorkerNode runs a worker and, unless disabled, the maintenance
// campaign, until ctx ends and the worker has shut down.
func runWorkerNode(ctx context.Context, be *backends, cfg worker.Config, wf *workerFlags, wm *metrics.Worker, log *slog.Logger) error {
	w, err := worker.New(be.queue, be.store, cfg, wm)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	if !wf.noMaintenance {
		mt := maintenance.New(be.queue, be.store, maintenance.Config{ID: w.ID(), StaleAfter: wf.staleAfter, Logger: log}, wm)
		wg.Add(1)
		go func() { defer wg.Done(); mt.Run(ctx) }()
	}
	err = w.Run(ctx)
	wg.Wait()
	return err
}
