package bench

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"time"
)

// injectFaults runs every fault's schedule until ctx ends (the measured
// phase is over).
func (r *scenarioRun) injectFaults(ctx context.Context) {
	t0 := time.Now()
	// Faults stop with the load schedule: the drain after it is left to
	// settle, so the audit counts what the faults did under load.
	if d := r.sc.Load.Duration.D(); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, t0.Add(d))
		defer cancel()
	}
	var wg sync.WaitGroup
	for _, f := range r.sc.Faults {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next := f.At.D(); ; next += f.Every.D() {
				if SleepCtx(ctx, time.Until(t0.Add(next))) != nil {
					return
				}
				ev := r.inject(ctx, f, time.Since(t0))
				r.mu.Lock()
				r.res.Faults = append(r.res.Faults, ev)
				r.mu.Unlock()
				if f.Every == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// inject applies one fault and waits for the recovery it controls.
func (r *scenarioRun) inject(ctx context.Context, f Fault, at time.Duration) FaultEvent {
	ev := FaultEvent{Kind: f.Kind, AtMS: at.Milliseconds(), DownMS: f.For.D().Milliseconds()}
	start := time.Now()
	var err error
	switch f.Kind {
	case FaultKillWorker:
		ev.Target, err = r.killWorker(ctx, f.For.D())
	case FaultKillProducer:
		ev.Target, err = r.killProducer(ctx, f.For.D())
	case FaultPauseWorker:
		ev.Target, err = r.pauseWorker(ctx, f.For.D())
	case FaultRestartRedis:
		ev.Target = "redis"
		if r.priv == nil {
			err = errors.New("no private Redis")
			break
		}
		err = r.priv.Restart(ctx, rand.IntN(len(r.priv.Procs)), f.For.D(), &r.procs)
		for _, p := range r.priv.Procs {
			r.sampler.Watch(Target{Name: p.Spec.Name, Kind: "redis", Pid: p.Pid()})
		}
	default:
		err = errors.New("fault kind not implemented by this orchestrator")
	}
	ev.RecoveredMS = time.Since(start).Milliseconds()
	if err != nil {
		ev.Error = err.Error()
	}
	r.progress("fault %s on %s at %.1fs (recovered after %d ms) %s", f.Kind, ev.Target, at.Seconds(), ev.RecoveredMS, ev.Error)
	return ev
}

// liveWorker picks a random running worker.
func (r *scenarioRun) liveWorker() *meshProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	var live []*meshProc
	for _, w := range r.workers {
		if !w.proc.Exited() {
			live = append(live, w)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live[rand.IntN(len(live))]
}

// killWorker SIGKILLs a worker and, after down, starts a replacement.
func (r *scenarioRun) killWorker(ctx context.Context, down time.Duration) (string, error) {
	w := r.liveWorker()
	if w == nil {
		return "", errors.New("no running worker")
	}
	w.proc.Kill()
	r.mu.Lock()
	r.workers = slices.DeleteFunc(r.workers, func(x *meshProc) bool { return x == w })
	r.retired = append(r.retired, w)
	r.mu.Unlock()
	if err := SleepCtx(ctx, down); err != nil {
		return w.name, err
	}
	nw, err := r.startWorker()
	if err != nil {
		return w.name, err
	}
	return w.name + " → " + nw.name, r.waitWorker(ctx, nw)
}

// killProducer SIGKILLs the first producer and restarts it on its address.
func (r *scenarioRun) killProducer(ctx context.Context, down time.Duration) (string, error) {
	p := r.producers[0]
	p.proc.Kill()
	if err := SleepCtx(ctx, down); err != nil {
		return p.name, err
	}
	np, err := r.startProducer(ctx, 0, p.addr)
	if err != nil {
		return p.name, err
	}
	r.mu.Lock()
	r.producers[0] = np
	r.mu.Unlock()
	return p.name, nil
}

// pauseWorker stops a worker with SIGSTOP for d, then resumes it.
func (r *scenarioRun) pauseWorker(ctx context.Context, d time.Duration) (string, error) {
	w := r.liveWorker()
	if w == nil {
		return "", errors.New("no running worker")
	}
	if err := w.proc.Signal(syscall.SIGSTOP); err != nil {
		return w.name, err
	}
	err := SleepCtx(ctx, d)
	if cerr := w.proc.Signal(syscall.SIGCONT); cerr != nil {
		return w.name, cerr
	}
	return w.name, err
}
