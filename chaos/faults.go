package chaos

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/bench"
)

// FaultEvent is one injected fault and the mesh's recovery from it.
type FaultEvent struct {
	Kind Kind `json:"kind"`
	// Target names what was hit (worker-2, producer, redis, postgres).
	Target string `json:"target"`
	// Method says how, where a kind has several ways (postgres: immediate
	// restart or SIGKILL).
	Method string `json:"method,omitempty"`
	// AtMS is when the fault hit, since the load started.
	AtMS int64 `json:"at_ms"`
	// DownMS is how long the target was down (or stopped).
	DownMS int64 `json:"down_ms"`
	// Affected counts the tasks the fault hit: a worker's active tasks for
	// worker faults, every task not yet terminal for Redis and PostgreSQL
	// faults, the submissions without an answer while the producer was
	// down (from the load generator's series, filled in afterwards).
	Affected int64 `json:"affected"`
	// FlowMS is the time from the fault until a task submitted after it
	// completed: completions flow again.
	FlowMS int64 `json:"flow_ms"`
	// DrainMS is the time from the fault until every affected task was
	// terminal (completed or dead); 0 when none was affected.
	DrainMS int64 `json:"drain_ms"`
	// RecoveryMS is the larger of FlowMS and DrainMS.
	RecoveryMS int64 `json:"recovery_ms"`
	// Recovered is false when RecoverTimeout passed first.
	Recovered bool   `json:"recovered"`
	Error     string `json:"error,omitempty"`

	at, back time.Time // wall-clock fault time and when the target was back
}

// injectFaults injects faults one at a time from FirstAt until Tail before
// the end of the load, each followed by its recovery and a random gap.
func (r *run) injectFaults(ctx context.Context, t0 time.Time, lg *bench.Proc) []FaultEvent {
	var out []FaultEvent
	sch := newSchedule(r.cfg.Faults, r.rng)
	end := t0.Add(r.cfg.Duration - r.cfg.Tail)
	next := t0.Add(r.cfg.FirstAt)
	for {
		if bench.SleepCtx(ctx, time.Until(next)) != nil || lg.Exited() || time.Now().After(end) {
			return out
		}
		kind := sch.next()
		ev := r.inject(ctx, kind)
		ev.AtMS = ev.at.Sub(t0).Milliseconds()
		r.progress("%-16s %-10s at %6.1fs: affected %d, flow after %d ms, drained after %d ms%s",
			ev.Kind, ev.Target, float64(ev.AtMS)/1000, ev.Affected, ev.FlowMS, ev.DrainMS, errSuffix(ev.Error))
		out = append(out, ev)
		next = time.Now().Add(gap(r.rng, r.cfg.Gap))
	}
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " — " + s
}

// inject applies one fault, then measures the recovery.
func (r *run) inject(ctx context.Context, kind Kind) FaultEvent {
	ev := FaultEvent{Kind: kind}
	var affected []uuid.UUID
	var err error
	switch kind {
	case KillWorker:
		affected, err = r.killWorker(ctx, &ev)
	case PauseWorker:
		affected, err = r.pauseWorker(ctx, &ev)
	case KillProducer:
		err = r.killProducer(ctx, &ev)
	case RestartRedis:
		affected, err = r.restartRedis(ctx, &ev)
	case RestartPostgres:
		affected, err = r.restartPostgres(ctx, &ev)
	}
	if err != nil {
		ev.Error = err.Error()
	}
	if ev.at.IsZero() {
		ev.at = time.Now()
	}
	if !ev.back.IsZero() {
		ev.DownMS = ev.back.Sub(ev.at).Milliseconds()
	}
	if kind != KillProducer {
		ev.Affected = int64(len(affected))
	}
	r.recover(ctx, &ev, affected)
	return ev
}

// recover waits until a task created after the fault completed and every
// affected task is terminal, or RecoverTimeout passes.
func (r *run) recover(ctx context.Context, ev *FaultEvent, affected []uuid.UUID) {
	var flowAt, drainAt time.Time
	if len(affected) == 0 {
		drainAt = ev.at
	}
	err := pollCtx(ctx, r.cfg.RecoverTimeout, func() bool {
		if flowAt.IsZero() {
			if ok, err := r.aud.completedSince(ctx, ev.at); err == nil && ok {
				flowAt = time.Now()
			}
		}
		if drainAt.IsZero() {
			if n, err := r.aud.notTerminal(ctx, affected); err == nil && n == 0 {
				drainAt = time.Now()
			}
		}
		return !flowAt.IsZero() && !drainAt.IsZero()
	})
	ev.Recovered = err == nil
	if !flowAt.IsZero() {
		ev.FlowMS = flowAt.Sub(ev.at).Milliseconds()
	}
	if !drainAt.IsZero() {
		ev.DrainMS = drainAt.Sub(ev.at).Milliseconds()
	}
	ev.RecoveryMS = max(ev.FlowMS, ev.DrainMS)
	if !ev.Recovered {
		ev.RecoveryMS = r.cfg.RecoverTimeout.Milliseconds()
		if ev.Error == "" {
			ev.Error = fmt.Sprintf("not recovered within %s (flow=%t, drained=%t)", r.cfg.RecoverTimeout, !flowAt.IsZero(), !drainAt.IsZero())
		}
	}
}

// killWorker SIGKILLs a random worker, reads the tasks it held active, and
// starts a replacement after Down.
func (r *run) killWorker(ctx context.Context, ev *FaultEvent) ([]uuid.UUID, error) {
	w := r.liveWorker()
	if w == nil {
		return nil, errNoWorker
	}
	ev.Target, ev.Method = w.name, "SIGKILL"
	ev.at = time.Now()
	w.proc.Kill()
	r.dropWorker(w)
	affected, err := r.aud.activeOf(ctx, w.id)
	if serr := bench.SleepCtx(ctx, r.cfg.Down); serr != nil {
		return affected, serr
	}
	if _, werr := r.startWorker(ctx); werr != nil {
		return affected, fmt.Errorf("starting a replacement: %w", werr)
	}
	ev.back = time.Now()
	return affected, err
}

// pauseWorker SIGSTOPs a random worker for PauseFor (past its lease), reads
// the tasks it held active, then SIGCONTs it.
func (r *run) pauseWorker(ctx context.Context, ev *FaultEvent) ([]uuid.UUID, error) {
	w := r.liveWorker()
	if w == nil {
		return nil, errNoWorker
	}
	ev.Target, ev.Method = w.name, "SIGSTOP/SIGCONT"
	ev.at = time.Now()
	if err := signal(w.proc, syscall.SIGSTOP); err != nil {
		return nil, err
	}
	affected, err := r.aud.activeOf(ctx, w.id)
	serr := bench.SleepCtx(ctx, r.cfg.PauseFor)
	if cerr := signal(w.proc, syscall.SIGCONT); cerr != nil {
		return affected, cerr
	}
	ev.back = time.Now()
	if serr != nil {
		return affected, serr
	}
	return affected, err
}

// killProducer SIGKILLs the producer and restarts it on its port after Down.
func (r *run) killProducer(ctx context.Context, ev *FaultEvent) error {
	r.mu.Lock()
	p := r.producer
	r.mu.Unlock()
	ev.Target, ev.Method = "producer", "SIGKILL"
	ev.at = time.Now()
	p.Kill()
	if err := bench.SleepCtx(ctx, r.cfg.Down); err != nil {
		return err
	}
	err := r.startProducer(ctx)
	ev.back = time.Now()
	return err
}

// restartRedis SIGKILLs the private Redis and starts it again, empty.
func (r *run) restartRedis(ctx context.Context, ev *FaultEvent) ([]uuid.UUID, error) {
	ev.Target, ev.Method = "redis", "SIGKILL, restarted empty"
	affected, err := r.aud.nonTerminalIDs(ctx)
	ev.at = time.Now()
	if rerr := r.redis.Restart(ctx, 0, r.cfg.Down, &r.procs); rerr != nil {
		return affected, rerr
	}
	ev.back = time.Now()
	return affected, err
}

// restartPostgres crashes the private PostgreSQL, alternately with
// `pg_ctl restart -m immediate` and SIGKILL of every server process.
func (r *run) restartPostgres(ctx context.Context, ev *FaultEvent) ([]uuid.UUID, error) {
	ev.Target = "postgres"
	affected, err := r.aud.nonTerminalIDs(ctx)
	r.pgKills++
	ev.at = time.Now()
	var rerr error
	if r.pgKills%2 == 1 {
		ev.Method = "pg_ctl restart -m immediate"
		rerr = r.pg.RestartImmediate(ctx)
	} else {
		ev.Method = "SIGKILL postmaster + children"
		rerr = r.pg.Kill(ctx, r.cfg.Down)
	}
	ev.back = time.Now()
	if rerr != nil {
		return affected, rerr
	}
	return affected, err
}
