package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/google/uuid"
)

// Run generates the configured load against cfg.Target, measures it, writes
// the report, the JSON result and the interval log where cfg says, and
// returns the result. With cfg.Merge set it sends nothing and reports the
// merge of those result files instead.
//
// The stop order: the schedule stops (its end, or ctx), the senders finish
// the requests in flight, the run waits up to DrainTimeout for the
// completions still pending, checks the rest once with GET, closes the
// completion stream, and only then closes the recorder, so every record
// reaches it.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	var res *Result
	var err error
	if len(cfg.Merge) > 0 {
		res, err = mergeFiles(cfg.Merge)
	} else {
		res, err = generate(ctx, &cfg)
	}
	if err != nil {
		return nil, err
	}
	if err := output(&cfg, res); err != nil {
		return res, err
	}
	return res, nil
}

func mergeFiles(paths []string) (*Result, error) {
	results := make([]*Result, 0, len(paths))
	for _, p := range paths {
		r, err := ReadResultFile(p)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	return Merge(results...)
}

// output writes the report and the JSON result. With ResultPath "-" the
// JSON goes to the Report writer and the text report to Progress, so that
// stdout stays machine-readable.
func output(cfg *Config, res *Result) error {
	report := cfg.Report
	if cfg.ResultPath == "-" {
		report = cfg.Progress
	}
	if err := WriteReport(report, res); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	switch cfg.ResultPath {
	case "":
	case "-":
		return res.WriteJSON(cfg.Report)
	default:
		f, err := os.Create(cfg.ResultPath)
		if err != nil {
			return fmt.Errorf("writing result: %w", err)
		}
		if err := res.WriteJSON(f); err != nil {
			_ = f.Close()
			return fmt.Errorf("writing result %s: %w", cfg.ResultPath, err)
		}
		return f.Close()
	}
	return nil
}

// generator is one run in progress.
type generator struct {
	cfg     *Config
	clk     clock
	client  *client
	rec     *recorder
	submits chan *submitRecord
	events  chan eventBatch
	ctl     chan func()
	stopped chan struct{}
}

func generate(ctx context.Context, cfg *Config) (*Result, error) {
	g := &generator{cfg: cfg, submits: make(chan *submitRecord, 4096),
		events: make(chan eventBatch, 1024), ctl: make(chan func()), stopped: make(chan struct{})}
	var m *metrics
	if cfg.MetricsAddr != "" {
		var srv *metricsServer
		var err error
		if m, srv, err = startMetrics(cfg.MetricsAddr); err != nil {
			return nil, err
		}
		defer srv.stop()
	}
	var hlog *hdr.HistogramLogWriter
	if cfg.HDRLogPath != "" {
		f, err := os.Create(cfg.HDRLogPath)
		if err != nil {
			return nil, fmt.Errorf("creating interval log: %w", err)
		}
		defer f.Close()
		hlog = hdr.NewHistogramLogWriter(f)
	}
	// Connect to the completion stream before anything is sent.
	var st *stream
	if !cfg.SubmitOnly {
		var stop func()
		var err error
		if st, stop, err = g.startStream(ctx, m, hlog); err != nil {
			return nil, err
		}
		defer stop()
	} else {
		g.start(m, hlog)
	}
	var err error
	if g.client, err = newClient(cfg, g.clk); err != nil {
		close(g.stopped)
		return nil, err
	}
	defer g.client.close()
	cfg.Logger.Info("loadgen: starting", slog.String("target", cfg.Target), slog.String("mode", string(cfg.Mode)))

	info := g.load(ctx)
	if !cfg.SubmitOnly && !info.interrupted {
		info.interrupted = !g.drain(ctx)
	}
	if st != nil {
		g.do(func() { g.rec.reconnects = st.reconnects.Load() })
	}
	info.end = time.Now()
	var res *Result
	g.do(func() { res = g.rec.result(info) })
	close(g.stopped)
	return res, nil
}

// startStream connects to the completion stream, starts the recorder, then
// reads the stream until stop is called.
func (g *generator) startStream(ctx context.Context, m *metrics, hlog *hdr.HistogramLogWriter) (*stream, func(), error) {
	st, err := newStream(g.cfg, &g.clk, g.events)
	if err != nil {
		return nil, nil, err
	}
	conn, err := st.dial(ctx, g.cfg.RequestTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("completion stream: %w", err)
	}
	g.start(m, hlog)
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.run(streamCtx, conn)
	}()
	return st, func() { cancel(); <-done }, nil
}

// start sets the run's clock and starts the recorder.
func (g *generator) start(m *metrics, hlog *hdr.HistogramLogWriter) {
	cfg := g.cfg
	g.clk = clock{start: time.Now()}
	var p Pacer
	planned := cfg.Duration
	if cfg.Mode != ModeMax {
		p = cfg.pacer()
		if at, ok := p.At(uint64(cfg.Requests)); planned == 0 && ok {
			planned = at
		}
	}
	g.rec = newRecorder(recorderConfig{start: g.clk.start, e2e: !cfg.SubmitOnly, interval: cfg.Interval,
		maxLost: cfg.MaxLostListed, maxLag: cfg.MaxLag, earlyKeep: max(cfg.RequestTimeout, time.Second),
		dupWindow: cfg.DupWindow, planned: planned, pacer: p, m: m, hlog: hlog, progress: cfg.Progress})
	if hlog != nil {
		base := g.clk.start.Truncate(time.Second).UnixMilli()
		_ = hlog.OutputLogFormatVersion()
		_ = hlog.OutputComment("[agentmesh loadgen: values in microseconds; Interval_Max is max µs / 1e6 (seconds); tags: corrected, service, submit, schedule_lag]")
		_ = hlog.OutputStartTime(g.clk.start.UnixMilli())
		_ = hlog.OutputBaseTime(base)
		hlog.SetBaseTime(base)
		_ = hlog.OutputLegend()
	}
	go g.recorderLoop()
}

// recorderLoop is the recorder's goroutine: it applies every record, event
// batch and control function in arrival order, and closes an interval at
// every wall-clock multiple of Interval.
func (g *generator) recorderLoop() {
	next := g.clk.start.Truncate(g.cfg.Interval).Add(g.cfg.Interval)
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		select {
		case rec := <-g.submits:
			g.rec.onSubmit(rec)
		case b := <-g.events:
			g.rec.onEvents(b)
		case f := <-g.ctl:
			f()
		case <-t.C:
			g.rec.rotate(next)
			next = next.Add(g.cfg.Interval)
			if now := time.Now(); next.Before(now) { // the recorder fell behind: skip
				next = now.Truncate(g.cfg.Interval).Add(g.cfg.Interval)
			}
			t.Reset(time.Until(next))
		case <-g.stopped:
			return
		}
	}
}

// do runs f on the recorder's goroutine after everything sent before it,
// and waits for it.
func (g *generator) do(f func()) {
	done := make(chan struct{})
	g.ctl <- func() {
		// Apply what the senders and the stream already queued first.
		for drained := false; !drained; {
			select {
			case rec := <-g.submits:
				g.rec.onSubmit(rec)
			case b := <-g.events:
				g.rec.onEvents(b)
			default:
				drained = true
			}
		}
		f()
		close(done)
	}
	<-done
}

// load runs the schedule (or the closed-loop clients) to its end.
func (g *generator) load(ctx context.Context) runInfo {
	cfg := g.cfg
	info := runInfo{mode: OpenLoop, target: cfg.Target, batch: cfg.Batch, pipelineFraction: cfg.PipelineFraction}
	if cfg.Mode == ModeMax {
		info.mode = ClosedLoop
		info.schedule = fmt.Sprintf("max: %d closed-loop clients", cfg.Clients)
		g.closedLoop(ctx, &info)
		return info
	}
	p := cfg.pacer()
	info.schedule = p.String()
	jobs := make(chan *job, cfg.Senders)
	var wg sync.WaitGroup
	for range cfg.Senders {
		wg.Go(func() {
			var buf bytes.Buffer
			for j := range jobs {
				g.submits <- g.client.submit(j, &buf)
			}
		})
	}
	g.schedule(ctx, p, jobs, &info)
	close(jobs)
	wg.Wait()
	return info
}

// schedule dispatches every unit at its intended time. When every sender is
// busy it blocks, and the units due meanwhile leave late, each still carrying
// its intended time: the open-loop guarantee.
func (g *generator) schedule(ctx context.Context, p Pacer, jobs chan<- *job, info *runInfo) {
	cfg := g.cfg
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x10ad))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch *job
	var n uint64
	dispatch := func(j *job) bool {
		if !cfg.SubmitOnly && g.rec.pendingN.Load() >= int64(cfg.MaxPending) {
			g.submits <- &submitRecord{units: j.units, due: j.due, skipped: true}
			return true
		}
		select {
		case jobs <- j:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		at, ok := g.next(p, n)
		if !ok {
			break
		}
		if wait := time.Duration(int64(at) - g.clk.now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		u := g.unit(rng, int64(at))
		n++
		if u.pipeline || cfg.Batch == 1 {
			if !dispatch(&job{units: []unit{u}, due: u.intended}) {
				break
			}
			continue
		}
		if batch == nil {
			batch = &job{units: make([]unit, 0, cfg.Batch)}
		}
		batch.units, batch.due = append(batch.units, u), u.intended
		if len(batch.units) == cfg.Batch {
			if !dispatch(batch) {
				break
			}
			batch = nil
		}
	}
	if batch != nil && ctx.Err() == nil {
		dispatch(batch)
	}
	g.scheduleEnd(ctx, p, n, info)
}

// next returns the intended time of unit n, and false when the run has no
// unit n (count reached, duration passed, schedule ended).
func (g *generator) next(p Pacer, n uint64) (time.Duration, bool) {
	if g.cfg.Requests > 0 && n >= uint64(g.cfg.Requests) {
		return 0, false
	}
	at, ok := p.At(n)
	if !ok || (g.cfg.Duration > 0 && at >= g.cfg.Duration) {
		return 0, false
	}
	return at, true
}

// scheduleEnd sets what the schedule asked for: the units due and the span
// they were due in. An interrupted run counts every unit due before the
// interrupt, sent or not, so a generator that fell behind shows it.
func (g *generator) scheduleEnd(ctx context.Context, p Pacer, n uint64, info *runInfo) {
	if ctx.Err() != nil {
		info.interrupted = true
		info.span = time.Duration(g.clk.now())
		for at, ok := g.next(p, n); ok && at < info.span; at, ok = g.next(p, n) {
			n++
		}
		info.scheduled = int64(n)
		return
	}
	info.scheduled = int64(n)
	switch at, ok := p.At(n); {
	case g.cfg.Requests > 0 && n >= uint64(g.cfg.Requests) && ok && (g.cfg.Duration == 0 || at <= g.cfg.Duration):
		info.span = at // the count ended the run: its span reaches the next hit
	case g.cfg.Duration > 0 && ok:
		info.span = g.cfg.Duration
	default: // the schedule itself ended
		info.span = g.cfg.Duration
		if sp, isSteps := p.(StepPacer); isSteps && (g.cfg.Duration == 0 || sp.Steps.Total() < g.cfg.Duration) {
			info.span = sp.Steps.Total()
		}
	}
}

// unit draws the next unit's kind, role and payload size.
func (g *generator) unit(rng *rand.Rand, intended int64) unit {
	cfg := g.cfg
	u := unit{intended: intended, size: int32(cfg.Payload.sample(rng))}
	if cfg.PipelineFraction > 0 && rng.Float64() < cfg.PipelineFraction {
		u.pipeline = true
		return u
	}
	u.role = cfg.Roles.pick(rng)
	return u
}

// closedLoop runs Clients clients that each send their next request when the
// previous one finished (and, end to end, completed or timed out).
func (g *generator) closedLoop(ctx context.Context, info *runInfo) {
	cfg := g.cfg
	var issued atomic.Int64
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
			var buf bytes.Buffer
			for ctx.Err() == nil && (cfg.Duration == 0 || g.clk.now() < int64(cfg.Duration)) {
				if !g.clientStep(ctx, rng, &issued, &buf) {
					return
				}
			}
		})
	}
	wg.Wait()
	info.scheduled = issued.Load()
	if ctx.Err() != nil {
		info.interrupted = true
	}
}

// clientStep sends one closed-loop request and waits for its outcome; false
// when the request budget is spent.
func (g *generator) clientStep(ctx context.Context, rng *rand.Rand, issued *atomic.Int64, buf *bytes.Buffer) bool {
	cfg := g.cfg
	k := int64(cfg.Batch)
	first := issued.Add(k) - k
	if cfg.Requests > 0 {
		if first >= cfg.Requests {
			issued.Add(-k)
			return false
		}
		if over := first + k - cfg.Requests; over > 0 {
			issued.Add(-over)
			k -= over
		}
	}
	now := g.clk.now()
	j := &job{due: now}
	for range k {
		u := g.unit(rng, now)
		if u.pipeline && len(j.units) > 0 {
			u.pipeline, u.role = false, cfg.Roles.pick(rng)
		}
		j.units = append(j.units, u)
		if u.pipeline {
			break
		}
	}
	if len(j.units) < int(k) {
		issued.Add(int64(len(j.units)) - k)
	}
	rec := g.client.submit(j, buf)
	var w *waiter
	if !cfg.SubmitOnly && rec.accepted {
		w = &waiter{remaining: len(rec.ids), done: make(chan struct{})}
		rec.waiter = w
	}
	g.submits <- rec
	if w == nil {
		return true
	}
	t := time.NewTimer(cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
	case <-ctx.Done():
	}
	return true
}

// drain waits up to DrainTimeout for the pending completions, then checks
// the rest once with GET. It returns false when ctx ended first.
func (g *generator) drain(ctx context.Context) bool {
	empty := make(chan struct{})
	g.do(func() { g.rec.whenDrained(empty) })
	t := time.NewTimer(g.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-empty:
		return true
	case <-t.C:
	case <-ctx.Done():
		return false
	}
	var items []checkItem
	g.do(func() { items = g.rec.pendingChecks() })
	g.cfg.Logger.Info("loadgen: checking tasks not seen completing", slog.Int("tasks", len(items)))
	work := make(chan checkItem)
	var wg sync.WaitGroup
	for range min(DefaultCheckWorkers, len(items)) {
		wg.Go(func() {
			for it := range work {
				c := g.client.taskState(ctx, it.get)
				c.id = it.key
				g.do(func() { g.rec.onCheck(c) })
			}
		})
	}
	for _, it := range items {
		select {
		case work <- it:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	return ctx.Err() == nil
}

// checkItem is a unit to check: key is what the recorder tracks, get the
// task to GET (a pipeline's ARCHITECT stage).
type checkItem struct {
	key, get uuid.UUID
}
