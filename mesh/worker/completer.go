package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// completer group-commits outcomes: it takes the first outcome waiting,
// everything else already queued up to FinishBatch, and records them in one
// PostgreSQL statement. Idle, a batch is one task and goes at once; under
// load the batch grows while the previous statement runs — adaptive batching
// with no timer. Several completers run so a statement is always in flight.
func (w *Worker) completer(ctx context.Context, in <-chan outcome) {
	batch := make([]outcome, 0, w.cfg.FinishBatch)
	for first := range in {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < w.cfg.FinishBatch {
			select {
			case o, ok := <-in:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		w.flush(ctx, batch)
	}
}

// flush records one batch: PostgreSQL first (the source of truth), then the
// Redis side — ack, schedule retries, enqueue next pipeline stages, in one
// round trip — then the events. A crash between the two leaves ids in our processing list; the
// reaper returns them and the conditional Activate drops the finished ones.
func (w *Worker) flush(ctx context.Context, batch []outcome) {
	outs := make([]store.Outcome, len(batch))
	now := time.Now()
	for i, o := range batch {
		outs[i] = store.Outcome{ID: o.t.ID, Attempt: o.t.Attempts}
		if o.err != nil {
			outs[i].Err = o.err.Error()
			outs[i].RetryAt = now.Add(Backoff(o.t.Attempts, w.cfg.RetryBase, w.cfg.RetryMax))
		}
	}
	var res store.Finished
	failures := w.retry(ctx, "finish", func() error {
		var err error
		res, err = w.s.Finish(ctx, w.cfg.ID, outs)
		return err
	})
	w.m.StoreBatch("finish", len(outs))

	applied := make(map[uuid.UUID]*task.Task, len(res.Done))
	for i := range res.Done {
		applied[res.Done[i].ID] = &res.Done[i]
	}
	if failures > 0 {
		w.recoverFinished(ctx, batch, applied)
	}
	var acks, retries []queue.Item
	var retryAt []time.Time
	events := make([]task.Event, 0, len(batch)+len(res.Next))
	for i, o := range batch {
		it := queue.Item{ID: o.t.ID, Role: o.t.Role, Priority: o.t.Priority}
		t, ok := applied[o.t.ID]
		// One batch can hold two outcomes of one id: after a Redis loss the
		// task was reset and this very worker claimed it again while the
		// first run was still going. PostgreSQL applied one of them; the
		// other is stale, and must not publish a second completion event.
		delete(applied, o.t.ID)
		switch {
		case !ok:
			w.m.Finished(&o.t, metrics.OutcomeStale)
			acks = append(acks, it)
		case t.State == task.Failed:
			w.m.Finished(t, metrics.OutcomeFailed)
			retries = append(retries, it)
			retryAt = append(retryAt, outs[i].RetryAt)
		case t.State == task.Dead:
			w.m.Finished(t, metrics.OutcomeDead)
			acks = append(acks, it)
		default:
			w.m.Finished(t, metrics.OutcomeCompleted)
			acks = append(acks, it)
		}
		if ok {
			events = append(events, t.Event(now))
		}
		w.addInflight(o.t.Role, -1)
	}
	next := make([]queue.Item, len(res.Next))
	for i := range res.Next {
		n := &res.Next[i]
		next[i] = queue.Item{ID: n.ID, Role: n.Role, Priority: n.Priority}
		events = append(events, n.Event(now))
	}
	// One round trip: ack what is settled, schedule the retries, enqueue the
	// next pipeline stages.
	settle := queue.Settlement{Ack: acks, Retry: retries, RetryAt: retryAt, Enqueue: next}
	w.retry(ctx, "settle", func() error { return w.q.Settle(ctx, w.cfg.ID, settle) })
	w.publish(ctx, events)
}

// recoverFinished handles a finish whose statement may have committed with
// only its answer lost (PostgreSQL crashed mid-reply): the retry then finds
// nothing left to apply. Rows that PostgreSQL shows finished by this very
// attempt of ours count as applied, so their retries are scheduled and their
// events published; next pipeline stages created by the lost answer are
// pending rows the stale-pending sweep pushes.
func (w *Worker) recoverFinished(ctx context.Context, batch []outcome, applied map[uuid.UUID]*task.Task) {
	for _, o := range batch {
		if applied[o.t.ID] != nil {
			continue
		}
		t := w.getTask(ctx, o.t.ID)
		if t.WorkerID == w.cfg.ID && t.Attempts == o.t.Attempts && t.State != task.Active && t.State != task.Pending {
			applied[t.ID] = &t
		}
	}
}

// returnLeftovers hands back whatever this worker still holds after its
// executors stopped: tasks the shutdown deadline interrupted go back to
// pending without counting the attempt (nothing failed), and the processing
// lists — which also hold ids claimed in the instant of the stop signal — are
// pushed back to the pending lists.
func (w *Worker) returnLeftovers(ctx context.Context) {
	w.mu.Lock()
	ids := w.interrupted
	w.interrupted = nil
	w.mu.Unlock()
	var returned []task.Task
	w.retry(ctx, "release", func() error {
		var err error
		returned, err = w.s.Release(ctx, w.cfg.ID, ids)
		return err
	})
	total := 0
	for _, r := range w.roles {
		var n int
		w.retry(ctx, "return", func() error {
			var err error
			n, err = w.q.ReturnWorker(ctx, r, w.cfg.ID, nil)
			return err
		})
		total += n
	}
	w.publish(ctx, task.Events(returned, time.Now()))
	if total > 0 || len(returned) > 0 {
		w.log.Info("returned unfinished work to the queue", slog.Int("redis_ids", total), slog.Int("active_rows", len(returned)))
	}
}
