package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/queue"
)

// stopOrder is the order processes stop in: senders before receivers. The
// load generators stop sending first, then the producers stop accepting,
// then the workers finish what they hold, then the run's own backends go.
var stopOrder = []string{"loadgen", "producer", "worker", "redis"}

// meshProc is a producer or worker process of the run.
type meshProc struct {
	proc *Proc
	name string
	kind string
	args []string
	// addr is the producer's HTTP address or the worker's metrics address.
	addr string
	// id is the worker id.
	id string
}

// scenarioRun is the state of one scenario run.
type scenarioRun struct {
	o     *Orchestrator
	run   Run
	sc    *Scenario
	res   *Result
	stem  string
	dir   string
	start time.Time

	schema   string
	prefix   string
	redisURL string
	rdb      redis.UniversalClient
	priv     *PrivateRedis

	procs   Procs
	sampler *Sampler
	// mainStart and mainEnd bound the measured phase (since start).
	mainStart, mainEnd time.Duration

	mu        sync.Mutex
	producers []*meshProc
	workers   []*meshProc
	retired   []*meshProc
	nWorkers  int
	nLoadgen  int
	stops     map[*Proc]StopInfo
}

func (o *Orchestrator) newRun(run Run) (*scenarioRun, error) {
	now := time.Now()
	r := &scenarioRun{o: o, run: run, sc: run.Scenario, start: now, stops: map[*Proc]StopInfo{}}
	r.stem = stemFor(now, &o.env, run.Variant)
	if o.cfg.OutDir != "" {
		// Absolute: redis-server changes into its --dir before opening its
		// --logfile.
		out, err := filepath.Abs(o.cfg.OutDir)
		if err != nil {
			return nil, err
		}
		r.dir = filepath.Join(out, r.sc.Name, "tmp", r.stem)
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating the run directory: %w", err)
		}
	} else {
		d, err := os.MkdirTemp("", "mesh-bench-")
		if err != nil {
			return nil, err
		}
		r.dir = d
	}
	r.schema, r.prefix = uniqueName("bench"), uniqueName("bench")
	r.res = &Result{Schema: ResultSchema, Scenario: r.sc, Variant: run.Variant, Quick: o.cfg.Quick,
		Started: now.UTC(), Env: o.env, Ceiling: o.ceiling, Namespace: Namespace{Schema: r.schema, Prefix: r.prefix}}
	return r, nil
}

func (r *scenarioRun) title() string { return titleOf(r.run) }

func (r *scenarioRun) progress(format string, args ...any) {
	r.o.progress(r.title()+": "+format, args...)
}

func (r *scenarioRun) note(format string, args ...any) {
	r.res.Notes = append(r.res.Notes, fmt.Sprintf(format, args...))
}

// execute runs the phases; whatever happens, every process is stopped and
// the schema and keys are removed before it returns.
func (r *scenarioRun) execute(ctx context.Context) (res *Result, err error) {
	if r.o.cfg.OutDir == "" {
		defer os.RemoveAll(r.dir)
	}
	if err := r.resolveRate(); err != nil {
		return nil, err
	}
	r.progress("%s", r.sc.Description)
	sctx, stopSampling := context.WithCancel(ctx)
	defer func() {
		stopSampling()
		r.stopAll()
		r.cleanup()
		r.collectProcesses()
		r.res.Finished = time.Now().UTC()
	}()
	if err := r.setup(ctx); err != nil {
		return r.res, err
	}
	go r.sampler.Run(sctx)
	if err := r.startMesh(ctx); err != nil {
		return r.res, err
	}
	// Extra samples at the edges, so a phase shorter than the sampling
	// interval (a burst) still has readings.
	r.sampler.SampleOnce(time.Now())
	measure := r.measure
	if m := r.o.hooks.measure; m != nil {
		measure = func(ctx context.Context) error { return m(ctx, r) }
	}
	if err := measure(ctx); err != nil {
		return r.res, err
	}
	r.sampler.SampleOnce(time.Now())
	stopSampling()
	r.stopAll()
	r.collectProcesses()
	r.evaluate()
	if h := r.o.hooks.afterStop; h != nil {
		h(ctx, r)
	}
	return r.res, nil
}

// resolveRate applies RateFrom.
func (r *scenarioRun) resolveRate() error {
	rf := r.sc.RateFrom
	if rf == nil {
		return nil
	}
	rate, from := r.o.rateFrom(rf)
	if rate <= 0 {
		r.note("rate: no %s result found; using the scenario's fallback rate %s/s", rf.Scenario, fmtRate(r.sc.Load.Rate))
		return nil
	}
	if rate < rf.Min {
		r.note("rate: %g × the sustainable rate of %s = %s/s, raised to the minimum %s/s", rf.Factor, from, fmtRate(rate), fmtRate(rf.Min))
		rate = rf.Min
	} else {
		r.note("rate: %g × the sustainable rate of %s = %s/s", rf.Factor, from, fmtRate(rate))
	}
	r.sc.Load.Rate = rate
	return nil
}

// setup opens the run's backends.
func (r *scenarioRun) setup(ctx context.Context) error {
	r.redisURL = r.o.cfg.RedisURL
	if r.sc.Backends.Postgres == BackendPrivate {
		return errors.New("backends.postgres: private PostgreSQL clusters are not implemented by this orchestrator yet")
	}
	if r.sc.Backends.Redis == BackendPrivate {
		r.progress("starting a private Redis (%d master(s))", r.sc.Backends.RedisMasters)
		pr, err := StartPrivateRedis(ctx, r.dir, r.sc.Backends.RedisMasters, &r.procs)
		if err != nil {
			return fmt.Errorf("private Redis: %w", err)
		}
		r.priv, r.redisURL = pr, pr.URL
	}
	rdb, err := OpenRedis(r.redisURL, 8)
	if err != nil {
		return err
	}
	r.rdb = rdb
	r.sampler = NewSampler(r.start, r.o.cfg.SampleInterval)
	r.watchBackends(ctx)
	return nil
}

// watchBackends samples the Redis server(s) when they run on this machine,
// and PostgreSQL's server processes (CPU only).
func (r *scenarioRun) watchBackends(ctx context.Context) {
	if r.priv != nil {
		for _, p := range r.priv.Procs {
			r.sampler.Watch(Target{Name: p.Spec.Name, Kind: "redis", Pid: p.Pid()})
		}
	} else if c, ok := r.rdb.(*redis.Client); ok {
		info, err := c.Info(ctx, "server").Result()
		if pid, perr := strconv.Atoi(infoField(info, "process_id")); err == nil && perr == nil {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); len(comm) > 0 {
				r.sampler.Watch(Target{Name: "redis", Kind: "redis", Pid: pid})
			}
		}
	}
	if len(pidsByComm("postgres")) > 0 {
		r.sampler.Watch(Target{Name: "postgres", Kind: "postgres", Comm: "postgres"})
	}
}

// env is the environment every mesh process gets.
func (r *scenarioRun) env() []string {
	return []string{"REDIS_URL=" + r.redisURL, "DATABASE_URL=" + r.o.cfg.DatabaseURL,
		"MESH_SCHEMA=" + r.schema, "MESH_PREFIX=" + r.prefix, "MESH_LOG_LEVEL=info"}
}

// startMesh starts the producers, then the workers, and waits until every
// producer is ready and every worker heartbeats.
func (r *scenarioRun) startMesh(ctx context.Context) error {
	for i := range r.sc.Producer.Count {
		p, err := r.startProducer(ctx, i, "")
		if err != nil {
			return err
		}
		r.producers = append(r.producers, p)
	}
	var ws []*meshProc
	for range r.sc.Workers.Count {
		w, err := r.startWorker()
		if err != nil {
			return err
		}
		ws = append(ws, w)
	}
	for _, w := range ws {
		if err := r.waitWorker(ctx, w); err != nil {
			return err
		}
	}
	addrs := make([]string, len(r.producers))
	for i, p := range r.producers {
		addrs[i] = p.addr
	}
	r.progress("mesh up: producer(s) %v, %d worker(s), schema %s, prefix %s", addrs, len(ws), r.schema, r.prefix)
	return nil
}

// startProducer starts producer i on addr (a fresh port when empty) and
// waits for /readyz.
func (r *scenarioRun) startProducer(ctx context.Context, i int, addr string) (*meshProc, error) {
	if addr == "" {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		addr = "127.0.0.1:" + strconv.Itoa(port)
	}
	args := []string{"producer", "--addr", addr}
	if n := r.sc.Producer.PGConns; n > 0 {
		args = append(args, "--pg-conns", strconv.Itoa(n))
	}
	args = append(args, r.sc.Producer.Args...)
	mp := &meshProc{name: "producer-" + strconv.Itoa(i+1), kind: "producer", args: args, addr: addr}
	if err := r.startMeshProc(mp); err != nil {
		return nil, err
	}
	if err := r.waitHTTP(ctx, mp, "http://"+addr+"/readyz", 60*time.Second); err != nil {
		return nil, err
	}
	return mp, nil
}

// startWorker starts the next worker process (a fresh id and metrics port).
func (r *scenarioRun) startWorker() (*meshProc, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.nWorkers++
	n := r.nWorkers
	r.mu.Unlock()
	w := r.sc.Workers
	mp := &meshProc{name: "worker-" + strconv.Itoa(n), kind: "worker", addr: "127.0.0.1:" + strconv.Itoa(port),
		id: fmt.Sprintf("bench-%s-w%d", r.prefix[len(r.prefix)-6:], n)}
	args := []string{"worker", "--metrics-addr", mp.addr, "--id", mp.id}
	add := func(flag string, v int) {
		if v > 0 {
			args = append(args, flag, strconv.Itoa(v))
		}
	}
	add("--concurrency", w.Concurrency)
	add("--claim-batch", w.ClaimBatch)
	add("--finish-batch", w.FinishBatch)
	add("--flushers", w.Flushers)
	add("--pg-conns", w.PGConns)
	if w.Roles != "" {
		args = append(args, "--roles", w.Roles)
	}
	if w.Work != "" {
		args = append(args, "--work", w.Work)
	}
	if w.FailRate > 0 {
		args = append(args, "--fail-rate", strconv.FormatFloat(w.FailRate, 'g', -1, 64))
	}
	if w.RSSLimit != "" {
		args = append(args, "--rss-limit", w.RSSLimit)
	}
	mp.args = append(args, w.Args...)
	if err := r.startMeshProc(mp); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.workers = append(r.workers, mp)
	r.mu.Unlock()
	return mp, nil
}

// startMeshProc starts a mesh subcommand with its output in the run's log
// directory, and watches it.
func (r *scenarioRun) startMeshProc(mp *meshProc) error {
	logf, err := os.OpenFile(filepath.Join(r.dir, mp.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p, err := StartProc(ProcSpec{Name: mp.name, Kind: mp.kind, Path: r.o.cfg.Binary, Args: mp.args,
		Env: r.env(), Output: logf})
	if err != nil {
		_ = logf.Close()
		return err
	}
	go func() { <-p.Done(); _ = logf.Close() }()
	mp.proc = p
	r.procs.Add(p)
	r.sampler.Watch(Target{Name: mp.name, Kind: mp.kind, Pid: p.Pid()})
	return nil
}

// waitHTTP polls url until it answers 200, failing early when the process
// exits.
func (r *scenarioRun) waitHTTP(ctx context.Context, mp *meshProc, url string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	err := pollUntil(ctx, func() bool {
		if mp.proc.Exited() {
			return true
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if mp.proc.Exited() {
		return fmt.Errorf("%s exited (%v) before it was ready; its log:\n%s", mp.name, mp.proc.Err(), r.logTail(mp.name, 20))
	}
	if err != nil {
		return fmt.Errorf("%s: %s did not answer 200 within %s; its log:\n%s", mp.name, url, within, r.logTail(mp.name, 20))
	}
	return nil
}

// waitWorker waits for the worker's /metrics and its first heartbeat.
func (r *scenarioRun) waitWorker(ctx context.Context, w *meshProc) error {
	if err := r.waitHTTP(ctx, w, "http://"+w.addr+"/metrics", 60*time.Second); err != nil {
		return err
	}
	q := queue.New(r.rdb, queue.Config{Prefix: r.prefix})
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err := pollUntil(hctx, func() bool {
		infos, err := q.Workers(hctx)
		return err == nil && slices.ContainsFunc(infos, func(i queue.WorkerInfo) bool { return i.ID == w.id })
	})
	if err != nil && ctx.Err() == nil {
		r.note("%s: no heartbeat seen within 15s of its start", w.name)
		return nil
	}
	return err
}

// logTail is the last n lines of a process's log.
func (r *scenarioRun) logTail(name string, n int) string {
	b, _ := os.ReadFile(filepath.Join(r.dir, name+".log"))
	lines := splitLines(string(b))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := ""
	for _, l := range lines {
		out += "    " + l + "\n"
	}
	return out
}

// stopAll stops every process still running, in stopOrder.
func (r *scenarioRun) stopAll() {
	infos := r.procs.StopAll(r.sc.StopTimeout.D(), stopOrder...)
	r.mu.Lock()
	for p, i := range infos {
		r.stops[p] = i
	}
	r.mu.Unlock()
	var killed []string
	for p, i := range infos {
		if i.Killed {
			killed = append(killed, p.Spec.Name)
		}
	}
	if len(killed) > 0 {
		slices.Sort(killed)
		r.note("SIGKILL after the %s stop bound: %v", r.sc.StopTimeout, killed)
	}
}

// cleanup removes the run's schema and keys (on the shared servers).
func (r *scenarioRun) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r.o.cfg.Keep {
		r.progress("kept schema %s and keys %s:* (--keep)", r.schema, r.prefix)
		if r.rdb != nil {
			_ = r.rdb.Close()
			r.rdb = nil
		}
		return
	}
	if err := dropSchema(ctx, r.o.cfg.DatabaseURL, r.schema); err != nil {
		r.note("dropping schema %s: %v", r.schema, err)
	}
	if r.rdb != nil {
		if r.priv == nil {
			if err := DeleteKeys(ctx, r.rdb, r.prefix+":"); err != nil {
				r.note("deleting keys %s:*: %v", r.prefix, err)
			}
		}
		_ = r.rdb.Close()
		r.rdb = nil
	}
}

// collectProcesses turns the sampler's series and the stop records into
// ProcessInfo, once.
func (r *scenarioRun) collectProcesses() {
	if r.sampler == nil || r.res.Processes != nil {
		return
	}
	r.res.Processes = []ProcessInfo{}
	byName := map[string]*Proc{}
	for _, p := range r.procs.List() {
		byName[p.Spec.Name] = p
	}
	for _, t := range r.sampler.Targets() {
		pi := ProcessInfo{Name: t.Name, Kind: t.Kind, Samples: r.sampler.Series(t.Name)}
		if p := byName[t.Name]; p != nil {
			if t.Kind != "redis" {
				pi.Args = p.Spec.Args
			}
			r.mu.Lock()
			if si, ok := r.stops[p]; ok {
				pi.Stop = &StopRecord{Seconds: si.Took.Seconds(), Killed: si.Killed, ExitCode: si.ExitCode}
			}
			r.mu.Unlock()
		}
		var cpu float64
		for _, s := range pi.Samples {
			pi.MaxRSS = max(pi.MaxRSS, s.RSS)
			cpu += s.CPU
		}
		if n := len(pi.Samples) - 1; n > 0 {
			pi.MeanCPU = cpu / float64(n)
		}
		r.res.Processes = append(r.res.Processes, pi)
	}
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
