package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/agentmesh/agentmesh/loadgen"
)

// phase is one load generator run: the scenario's load shape at a rate.
type phase struct {
	name     string
	rate     float64
	duration time.Duration
	requests int64
	// series keeps the time series in the result.
	series bool
}

// measure runs the warmup, the measured phase (a load or a search, with
// faults), and records the mesh's metrics around it.
func (r *scenarioRun) measure(ctx context.Context) error {
	sc := r.sc
	first := sc.Load.Rate
	if sc.Search != nil {
		first = sc.Search.Start
	}
	if sc.Warmup > 0 {
		r.progress("warmup %s at %s/s", sc.Warmup, fmtRate(first))
		if _, err := r.runPhase(ctx, phase{name: "warmup", rate: first, duration: sc.Warmup.D()}); err != nil {
			return fmt.Errorf("warmup: %w", err)
		}
		if err := r.waitIdle(ctx); err != nil {
			return err
		}
	}
	before := r.scrapeAll(ctx)
	if h := r.o.hooks.beforeMain; h != nil {
		h(ctx, r)
	}
	r.mainStart = time.Since(r.start)
	var err error
	if sc.Search != nil {
		err = r.search(ctx)
	} else {
		err = r.mainLoad(ctx)
	}
	r.mainEnd = time.Since(r.start)
	if err != nil {
		return err
	}
	if h := r.o.hooks.afterMain; h != nil {
		h(ctx, r)
	}
	after := r.scrapeAll(ctx)
	r.res.Mesh = meshMetrics(before, after, r.res.Summary.Completed)
	r.res.Leftover = r.leftover(ctx)
	r.res.Audit = r.audit(ctx)
	return nil
}

// leftover reads what is left in the queues after the drain, waiting up to
// 10 s for acks still in flight (a worker publishes a completion and then
// acks it, so the load generator can finish a moment before the last LREM).
func (r *scenarioRun) leftover(ctx context.Context) *Depth {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var last *Depth
	_ = pollUntil(wctx, func() bool {
		d, err := QueueDepth(wctx, r.rdb, r.prefix)
		if err != nil {
			return false
		}
		last = &d
		return d.Pending+d.Active == 0
	})
	return last
}

// mainLoad runs the measured phase, injecting the faults meanwhile.
func (r *scenarioRun) mainLoad(ctx context.Context) error {
	sc := r.sc
	r.res.Rate = sc.Load.Rate
	if sc.Load.Mode == string(loadgen.ModeMax) {
		r.res.Rate = 0
	}
	r.progress("measuring: %s", describeLoad(&sc.Load))
	fctx, stopFaults := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if len(sc.Faults) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); r.injectFaults(fctx) }()
	}
	l, err := r.runPhase(ctx, phase{name: "main", rate: sc.Load.Rate, duration: sc.Load.Duration.D(),
		requests: sc.Load.Requests, series: true})
	stopFaults()
	wg.Wait()
	if err != nil {
		return err
	}
	r.res.Load = &LoadResult{l}
	r.res.Summary = summarize(l, r.res.Ceiling.TasksPerSec())
	return nil
}

func describeLoad(l *Load) string {
	var s string
	switch loadgen.Mode(l.Mode) {
	case loadgen.ModeMax:
		s = fmt.Sprintf("closed loop, %d clients", l.Clients)
	case loadgen.ModeSteps:
		s = fmt.Sprintf("%d steps", len(l.Steps))
	case loadgen.ModeRamp:
		s = fmt.Sprintf("ramp %s → %s/s", fmtRate(l.RampFrom), fmtRate(l.Rate))
	default:
		s = fmtRate(l.Rate) + "/s"
	}
	if l.Requests > 0 {
		s += fmt.Sprintf(", %d units", l.Requests)
	}
	if l.Duration > 0 {
		s += " for " + l.Duration.String()
	}
	if l.PipelineFraction > 0 {
		s += fmt.Sprintf(", %.0f%% pipelines", 100*l.PipelineFraction)
	}
	if l.Batch > 1 {
		s += fmt.Sprintf(", batches of %d", l.Batch)
	}
	if l.BatchFill > 0 {
		s += fmt.Sprintf(", batches of rate × %s", l.BatchFill)
	}
	return s
}

// runPhase runs the scenario's load generators (Load.Generators child
// processes, the rate split between them, spread over the producers) and
// returns their merged result.
func (r *scenarioRun) runPhase(ctx context.Context, ph phase) (*loadgen.Result, error) {
	g := r.sc.Load.Generators
	type out struct {
		res *loadgen.Result
		err error
	}
	outs := make([]out, g)
	var wg sync.WaitGroup
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i].res, outs[i].err = r.runLoadgen(ctx, ph, i, g)
		}()
	}
	wg.Wait()
	var results []*loadgen.Result
	var errs []error
	for _, o := range outs {
		if o.err != nil {
			errs = append(errs, o.err)
			continue
		}
		results = append(results, o.res)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	merged := results[0]
	if len(results) > 1 {
		var err error
		if merged, err = loadgen.Merge(results...); err != nil {
			return nil, err
		}
	}
	if !ph.series {
		merged.Series = nil
	}
	return merged, nil
}

// runLoadgen runs generator i of g as a child process and reads its result.
func (r *scenarioRun) runLoadgen(ctx context.Context, ph phase, i, g int) (*loadgen.Result, error) {
	r.mu.Lock()
	r.nLoadgen++
	n := r.nLoadgen
	r.mu.Unlock()
	name := fmt.Sprintf("loadgen-%d", n)
	outPath := filepath.Join(r.dir, fmt.Sprintf("%s-%s-%d.json", name, ph.name, i+1))
	target := "http://" + r.producers[i%len(r.producers)].addr
	args := r.loadgenArgs(ph, i, g, target, outPath)
	logf, err := os.Create(filepath.Join(r.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	var progress io.Writer = logf
	if !r.o.cfg.Quiet {
		progress = io.MultiWriter(logf, &prefixWriter{w: r.o.cfg.Progress, mu: &r.o.progressMu,
			prefix: fmt.Sprintf("  %s %s │ ", r.title(), ph.name)})
	}
	p, err := StartProc(ProcSpec{Name: name, Kind: "loadgen", Path: r.o.cfg.LoadgenBinary, Args: args,
		Output: progress, Stdout: logf})
	if err != nil {
		return nil, err
	}
	r.procs.Add(p)
	r.sampler.Watch(Target{Name: name, Kind: "loadgen", Pid: p.Pid()})
	select {
	case <-p.Done():
	case <-ctx.Done():
		// Ctrl-C: a loadgen stopped with SIGTERM still writes its
		// (interrupted) result.
		info := p.Stop(r.sc.StopTimeout.D())
		r.mu.Lock()
		r.stops[p] = info
		r.mu.Unlock()
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	res, rerr := loadgen.ReadResultFile(outPath)
	if p.Err() != nil || rerr != nil {
		return nil, fmt.Errorf("%s (%s) failed: %v %v; its output:\n%s", name, joinArgs(args), p.Err(), rerr, r.logTail(name, 15))
	}
	return res, nil
}

// loadgenArgs builds the `mesh loadgen` command line of generator i of g.
func (r *scenarioRun) loadgenArgs(ph phase, i, g int, target, out string) []string {
	l := r.sc.Load
	share := func(x float64) string { return strconv.FormatFloat(x/float64(g), 'f', -1, 64) }
	args := []string{"loadgen", "--target", target, "--mode", l.Mode, "--out", out,
		"--seed", strconv.Itoa(i + 1 + 1000*r.nLoadgen), "--drain-timeout", r.sc.DrainTimeout.String()}
	switch loadgen.Mode(l.Mode) {
	case loadgen.ModeMax:
		args = append(args, "--clients", strconv.Itoa(max(1, (l.Clients+g-1)/g)))
	case loadgen.ModeSteps:
		steps := make(loadgen.Steps, len(l.Steps))
		for j, st := range l.Steps {
			steps[j] = loadgen.Step{Rate: st.Rate / float64(g), Duration: st.Duration.D()}
		}
		args = append(args, "--steps", steps.String())
	case loadgen.ModeRamp:
		args = append(args, "--rate", share(ph.rate), "--ramp-from", share(l.RampFrom))
		if l.RampOver > 0 {
			args = append(args, "--ramp-over", l.RampOver.String())
		}
	default:
		args = append(args, "--rate", share(ph.rate))
	}
	if ph.duration > 0 {
		args = append(args, "--duration", ph.duration.String())
	}
	if ph.requests > 0 {
		n := ph.requests / int64(g)
		if int64(i) < ph.requests%int64(g) {
			n++
		}
		args = append(args, "--requests", strconv.FormatInt(n, 10))
	}
	if l.Roles != "" {
		args = append(args, "--roles", l.Roles)
	}
	if l.PipelineFraction > 0 {
		args = append(args, "--pipelines", strconv.FormatFloat(l.PipelineFraction, 'f', -1, 64))
	}
	if l.Payload != "" {
		args = append(args, "--payload", l.Payload)
	}
	if b := phaseBatch(&l, ph.rate/float64(g)); b > 1 {
		args = append(args, "--batch", strconv.Itoa(b))
	}
	if l.Senders > 0 {
		args = append(args, "--senders", strconv.Itoa(max(1, (l.Senders+g-1)/g)))
	}
	return append(args, l.Args...)
}

// phaseBatch is the submit batch of a phase at rate: Batch, or sized by
// BatchFill.
func phaseBatch(l *Load, rate float64) int {
	if l.BatchFill > 0 {
		return int(min(max(1, math.Floor(rate*l.BatchFill.D().Seconds())), loadgen.MaxBatch))
	}
	return l.Batch
}

// waitIdle waits until the mesh's queues are empty (up to DrainTimeout),
// so a phase does not inherit the previous one's backlog.
func (r *scenarioRun) waitIdle(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, r.sc.DrainTimeout.D())
	defer cancel()
	var last Depth
	err := pollUntil(wctx, func() bool {
		d, err := QueueDepth(wctx, r.rdb, r.prefix)
		last = d
		return err == nil && d.Pending+d.Active == 0
	})
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err != nil {
		r.note("queues not empty %s after a phase: %d pending, %d active", r.sc.DrainTimeout, last.Pending, last.Active)
	}
	return nil
}

// scrapeAll scrapes every producer's and worker's /metrics and returns the
// samples together (a failed scrape is noted, not fatal).
func (r *scenarioRun) scrapeAll(ctx context.Context) Metrics {
	var all Metrics
	r.mu.Lock()
	ps := append(append(append([]*meshProc(nil), r.producers...), r.workers...), r.retired...)
	r.mu.Unlock()
	for _, p := range ps {
		if p.proc.Exited() {
			continue
		}
		ms, err := Scrape(ctx, "http://"+p.addr+"/metrics")
		if err != nil {
			r.note("scraping %s: %v", p.name, err)
			continue
		}
		for i := range ms {
			ms[i].Labels["__process"] = p.name
		}
		all = append(all, ms...)
	}
	return all
}

// meshMetrics derives the mesh's own figures from two scrapes.
func meshMetrics(before, after Metrics, completed int64) *MeshMetrics {
	mm := &MeshMetrics{Counters: map[string]float64{}}
	bs := SubBuckets(after.Buckets("agentmesh_task_latency_seconds"), before.Buckets("agentmesh_task_latency_seconds"))
	if len(bs) > 0 && bs[len(bs)-1].Count > 0 {
		q := func(p float64) float64 { return round3(1000 * BucketQuantile(p, bs)) }
		mm.Latency = &MeshLatency{Count: bs[len(bs)-1].Count, P50MS: q(0.5), P90MS: q(0.9), P99MS: q(0.99),
			P999MS: q(0.999), Buckets: finiteBuckets(bs)}
	}
	delta := func(name string, match ...string) float64 {
		return after.Sum(name, match...) - before.Sum(name, match...)
	}
	c := mm.Counters
	for outcome, v := range after.SumBy("agentmesh_worker_tasks_total", "outcome") {
		c["worker_tasks_"+outcome] = v - before.Sum("agentmesh_worker_tasks_total", "outcome", outcome)
	}
	c["accepted"] = delta("agentmesh_tasks_accepted_total")
	for reason, v := range after.SumBy("agentmesh_tasks_rejected_total", "reason") {
		c["rejected_"+reason] = v - before.Sum("agentmesh_tasks_rejected_total", "reason", reason)
	}
	if n := delta("agentmesh_worker_claim_batch_size_count"); n > 0 {
		c["claims"] = n
		c["claim_batch_mean"] = round3(delta("agentmesh_worker_claim_batch_size_sum") / n)
	}
	for op, v := range after.SumBy("agentmesh_worker_store_batch_size_count", "op") {
		n := v - before.Sum("agentmesh_worker_store_batch_size_count", "op", op)
		c["store_statements_"+op] = n
		if n > 0 {
			c["store_batch_mean_"+op] = round3((after.Sum("agentmesh_worker_store_batch_size_sum", "op", op) -
				before.Sum("agentmesh_worker_store_batch_size_sum", "op", op)) / n)
		}
	}
	c["go_mallocs"] = delta("go_memstats_mallocs_total")
	c["go_alloc_bytes"] = delta("go_memstats_alloc_bytes_total")
	c["cpu_seconds"] = delta("process_cpu_seconds_total")
	if done := c["worker_tasks_completed"]; done > 0 {
		c["mallocs_per_task"] = round3(c["go_mallocs"] / done)
		c["alloc_bytes_per_task"] = round3(c["go_alloc_bytes"] / done)
		c["cpu_ms_per_task"] = round3(1000 * c["cpu_seconds"] / done)
	}
	return mm
}

// finiteBuckets drops the +Inf bucket (JSON has no infinity; its count is
// MeshLatency.Count).
func finiteBuckets(bs []Bucket) []Bucket {
	out := make([]Bucket, 0, len(bs))
	for _, b := range bs {
		if !math.IsInf(b.LE, 0) {
			out = append(out, b)
		}
	}
	return out
}

func round3(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return math.Round(x*1000) / 1000
}

// prefixWriter writes each complete line to w with a prefix, under mu.
type prefixWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.mu.Lock()
		_, _ = fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.mu.Unlock()
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}
