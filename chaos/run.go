package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/bench"
	"github.com/agentmesh/agentmesh/loadgen"
)

// run is one chaos run's state.
type run struct {
	cfg   Config
	log   *slog.Logger
	rng   *rand.Rand
	procs bench.Procs
	redis *bench.PrivateRedis
	pg    *Postgres
	rdb   redis.UniversalClient
	db    *pgxpool.Pool
	aud   *auditor
	led   *ledger

	mu       sync.Mutex
	producer *bench.Proc
	addr     string
	workers  []*workerProc
	nWorkers int
	pgKills  int
}

// workerProc is one running worker process.
type workerProc struct {
	id, name, metrics string
	proc              *bench.Proc
}

// Run starts the private backends and the mesh, runs the load while it
// injects faults, drains, audits and stops everything. The result is
// returned even when the audit fails (Result.Pass is false then); an error
// means the run itself could not be carried out.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// Absolute: redis-server resolves its --logfile after moving to --dir.
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, log: cfg.Logger, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	defer r.shutdown()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	return r.execute(ctx)
}

func (r *run) progress(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, "chaos: "+format+"\n", args...)
}

// setup starts Redis, PostgreSQL, the producer and the workers.
func (r *run) setup(ctx context.Context) error {
	var err error
	if r.redis, err = bench.StartPrivateRedis(ctx, r.cfg.Dir, 1, &r.procs); err != nil {
		return fmt.Errorf("starting a private Redis: %w", err)
	}
	if r.pg, err = StartPostgres(ctx, ""); err != nil {
		return fmt.Errorf("starting a private PostgreSQL: %w", err)
	}
	r.progress("private redis %s, private postgres %s (data in %s)", r.redis.URL, r.pg.URL, r.pg.Dir)
	if r.rdb, err = bench.OpenRedis(r.redis.URL, 8); err != nil {
		return err
	}
	pcfg, err := pgxpool.ParseConfig(r.pg.URL)
	if err != nil {
		return err
	}
	pcfg.MaxConns = 4
	if r.db, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return err
	}
	r.aud = &auditor{db: r.db, schema: DefaultSchema}
	port, err := bench.FreePort()
	if err != nil {
		return err
	}
	r.addr = "127.0.0.1:" + strconv.Itoa(port)
	if err := r.startProducer(ctx); err != nil {
		return err
	}
	for range r.cfg.Workers {
		if _, err := r.startWorker(ctx); err != nil {
			return err
		}
	}
	r.led = startLedger(ctx, r.rdb, DefaultPrefix)
	return nil
}

// env is the environment of every mesh process.
func (r *run) env() []string {
	return []string{"REDIS_URL=" + r.redis.URL, "DATABASE_URL=" + r.pg.URL, "MESH_SCHEMA=" + DefaultSchema,
		"MESH_PREFIX=" + DefaultPrefix, "MESH_LOG_LEVEL=info", "MESH_API_TOKEN="}
}

// start starts a mesh subcommand logging to Dir/<name>.log.
func (r *run) start(name, kind string, args ...string) (*bench.Proc, error) {
	logf, err := os.OpenFile(filepath.Join(r.cfg.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	p, err := bench.StartProc(bench.ProcSpec{Name: name, Kind: kind, Path: r.cfg.Binary, Args: args, Env: r.env(), Output: logf})
	if err != nil {
		_ = logf.Close()
		return nil, err
	}
	go func() { <-p.Done(); _ = logf.Close() }()
	r.procs.Add(p)
	return p, nil
}

// startProducer starts the producer on r.addr and waits for /readyz.
func (r *run) startProducer(ctx context.Context) error {
	p, err := r.start("producer", "producer", "producer", "--addr", r.addr, "--web-dir", filepath.Join(r.cfg.Dir, "no-web"))
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.producer = p
	r.mu.Unlock()
	return waitHTTP(ctx, p, "http://"+r.addr+"/readyz", 60*time.Second)
}

// startWorker starts the next worker and waits for its /metrics.
func (r *run) startWorker(ctx context.Context) (*workerProc, error) {
	port, err := bench.FreePort()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.nWorkers++
	n := r.nWorkers
	r.mu.Unlock()
	w := &workerProc{id: fmt.Sprintf("chaos-w%d", n), name: fmt.Sprintf("worker-%d", n), metrics: "127.0.0.1:" + strconv.Itoa(port)}
	w.proc, err = r.start(w.name, "worker", "worker", "--id", w.id, "--metrics-addr", w.metrics,
		"--lease", r.cfg.Lease.String(), "--heartbeat", r.cfg.Heartbeat.String(), "--stale-after", r.cfg.StaleAfter.String(),
		"--work", r.cfg.Work, "--rss-limit", "1GiB")
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, w.proc, "http://"+w.metrics+"/metrics", 60*time.Second); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.workers = append(r.workers, w)
	r.mu.Unlock()
	return w, nil
}

// execute runs the load and the faults, then drains and audits.
func (r *run) execute(ctx context.Context) (*Result, error) {
	res := newResult(r.cfg, r.redis.URL, r.pg.URL)
	out := filepath.Join(r.cfg.Dir, "loadgen.json")
	args := []string{"loadgen", "--target", "http://" + r.addr, "--rate", strconv.FormatFloat(r.cfg.Rate, 'g', -1, 64),
		"--duration", r.cfg.Duration.String(), "--pipelines", strconv.FormatFloat(r.cfg.Pipelines, 'g', -1, 64),
		"--timeout", "3s", "--drain-timeout", "60s", "--out", out, "--quiet",
		"--seed", strconv.FormatUint(r.cfg.Seed, 10)}
	lg, err := r.start("loadgen", "loadgen", args...)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	res.Started = t0.UTC()
	r.progress("load: %g units/s for %s (%.0f%% pipelines), %d workers, lease %s, heartbeat %s, stale-after %s",
		r.cfg.Rate, r.cfg.Duration, 100*r.cfg.Pipelines, r.cfg.Workers, r.cfg.Lease, r.cfg.Heartbeat, r.cfg.StaleAfter)
	res.Faults = r.injectFaults(ctx, t0, lg)
	select {
	case <-lg.Done():
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if lg.ExitCode() != 0 && lg.ExitCode() != 1 {
		return nil, fmt.Errorf("loadgen exited with %d (see %s)", lg.ExitCode(), filepath.Join(r.cfg.Dir, "loadgen.log"))
	}
	lr, err := loadgen.ReadResultFile(out)
	if err != nil {
		return nil, fmt.Errorf("reading the load generator's result: %w", err)
	}
	res.Load = summariseLoad(lr)
	r.progress("load done: accepted %d, rejected %d, errors %d, completed %d, dead %d, lost %d, duplicates %d",
		lr.Tasks.Accepted, lr.Tasks.Rejected, lr.Tasks.Errors, lr.Tasks.Completed, lr.Tasks.Dead, lr.Tasks.Lost, lr.Tasks.Duplicates)
	drainStart := time.Now()
	err = pollCtx(ctx, r.cfg.DrainTimeout, func() bool {
		n, err := r.aud.nonTerminal(ctx)
		return err == nil && n == 0
	})
	res.Audit.DrainMS = time.Since(drainStart).Milliseconds()
	if err != nil {
		res.Audit.Problems = append(res.Audit.Problems, fmt.Sprintf("tasks still not terminal %s after the load", r.cfg.DrainTimeout))
	}
	// Let the workers ack what they committed, so Redis is read at rest.
	_ = pollCtx(ctx, 10*time.Second, func() bool {
		d, err := queueDepth(ctx, r.rdb, DefaultPrefix)
		return err == nil && d.Total() == 0
	})
	r.audit(ctx, res)
	if res.Audit.Lost, err = r.aud.checkLost(ctx, lr.Lost); err != nil {
		res.Audit.Problems = append(res.Audit.Problems, err.Error())
	}
	res.Events = r.led.summary()
	res.finish()
	return res, nil
}

// audit fills res.Audit from PostgreSQL and Redis.
func (r *run) audit(ctx context.Context, res *Result) {
	a, err := r.aud.audit(ctx)
	if err != nil {
		res.Audit.Problems = append(res.Audit.Problems, "audit query failed: "+err.Error())
		return
	}
	a.DrainMS, a.Problems = res.Audit.DrainMS, append(res.Audit.Problems, a.Problems...)
	d, err := queueDepth(ctx, r.rdb, DefaultPrefix)
	if err != nil {
		a.Problems = append(a.Problems, "reading Redis depths: "+err.Error())
	}
	a.RedisLeft = d
	if d.Total() != 0 {
		a.Problems = append(a.Problems, fmt.Sprintf("Redis still holds %d ids after the drain (%+v)", d.Total(), d))
	}
	res.Audit = a
}

// shutdown stops every process (load generator, producer, workers, then the
// backends) and closes the clients.
func (r *run) shutdown() {
	if r.led != nil {
		r.led.close()
	}
	r.procs.StopAll(20*time.Second, "loadgen", "producer", "worker", "redis")
	if r.db != nil {
		r.db.Close()
	}
	if r.rdb != nil {
		_ = r.rdb.Close()
	}
	if r.pg != nil {
		r.pg.Stop()
	}
}

// liveWorker picks a random running worker.
func (r *run) liveWorker() *workerProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	var live []*workerProc
	for _, w := range r.workers {
		if !w.proc.Exited() {
			live = append(live, w)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live[r.rng.IntN(len(live))]
}

// dropWorker forgets a worker that was killed.
func (r *run) dropWorker(w *workerProc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, x := range r.workers {
		if x == w {
			r.workers = append(r.workers[:i], r.workers[i+1:]...)
			return
		}
	}
}

// signal sends sig to a process group.
func signal(p *bench.Proc, sig syscall.Signal) error { return p.Signal(sig) }

// waitHTTP polls url until it answers 200, failing early when p exits.
func waitHTTP(ctx context.Context, p *bench.Proc, url string, within time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	err := pollCtx(ctx, within, func() bool {
		if p.Exited() {
			return true
		}
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if p.Exited() {
		return fmt.Errorf("%s exited (%v) before %s answered", p.Spec.Name, p.Err(), url)
	}
	if err != nil {
		return fmt.Errorf("%s: %s did not answer 200 within %s: %w", p.Spec.Name, url, within, err)
	}
	return nil
}

var errNoWorker = errors.New("no running worker")
