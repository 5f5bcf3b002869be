package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// Activate marks the tasks a worker claimed as running: pending|failed →
// active, attempts+1, worker_id, started_at, in one statement. It returns
// the rows it changed; an id not returned was already taken or finished by
// someone else (the caller acks it in Redis and drops it).
func (s *Store) Activate(ctx context.Context, worker string, ids []uuid.UUID) ([]task.Task, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	ts, err := queryTasks(ctx, s.pool, s.q.activate, cleanText(worker, MaxWorkerIDLen), pgIDs(ids))
	if err != nil {
		return nil, fmt.Errorf("store: activating %d tasks for worker %q: %w", len(ids), worker, err)
	}
	return ts, nil
}

// Outcome is how one attempt of a task ended.
type Outcome struct {
	ID uuid.UUID
	// Attempt is Task.Attempts as Activate returned it: the finish applies
	// only to that attempt.
	Attempt int
	// Err is empty on success, else the error to record (cut to MaxErrorLen).
	Err string
	// RetryAt is when a failed task may run again (its run_at); zero means now.
	// Ignored on success and when the task is out of attempts.
	RetryAt time.Time
}

// Finished is what a Finish changed.
type Finished struct {
	// Done holds the rows that moved, with their new state: completed,
	// failed (retry at run_at) or dead. An outcome with no row here did not
	// apply: the task is no longer active for this worker and attempt.
	Done []task.Task
	// Next holds the pipeline stages created by completions in Done.
	Next []task.Task
}

// Finish records outcomes of a worker's attempts with one statement per
// MaxRowsPerStatement outcomes: an UPDATE … FROM (VALUES …) that applies only
// where the task is still active for this worker at that attempt — success →
// completed; an error → failed while attempts < max_attempts, else dead —
// and, in the same statement (so atomically), inserts the next stage of each
// completed pipeline task (ARCHITECT → DEVELOPER → QA: same pipeline, stage+1,
// same priority, payload and max_attempts). A stale or repeated outcome
// changes nothing, so each task has at most one completion record.
// Outcomes repeating an id count once (the first). More outcomes than
// MaxRowsPerStatement take one transaction: on error nothing was recorded.
func (s *Store) Finish(ctx context.Context, worker string, outs []Outcome) (Finished, error) {
	outs = dedupeOutcomes(outs)
	var f Finished
	err := s.chunked(ctx, len(outs), func(q querier, lo, hi int) error {
		return s.finishChunk(ctx, q, worker, outs[lo:hi], &f)
	})
	if err != nil {
		return Finished{}, fmt.Errorf("store: finishing %d tasks for worker %q: %w", len(outs), worker, err)
	}
	return f, nil
}

func dedupeOutcomes(outs []Outcome) []Outcome {
	seen := make(map[uuid.UUID]struct{}, len(outs))
	kept := outs[:0:0]
	for _, o := range outs {
		if _, dup := seen[o.ID]; !dup {
			seen[o.ID] = struct{}{}
			kept = append(kept, o)
		}
	}
	return kept
}

func (s *Store) finishChunk(ctx context.Context, q querier, worker string, outs []Outcome, f *Finished) error {
	nextIDs := make(pgtype.FlatArray[[16]byte], len(outs))
	for i := range nextIDs {
		nextIDs[i] = newID()
	}
	args := make([]any, 0, 2+4*paddedRows(len(outs)))
	args = append(args, cleanText(worker, MaxWorkerIDLen), nextIDs)
	for _, o := range outs {
		var msg, at any
		if o.Err != "" {
			msg = cleanText(o.Err, MaxErrorLen)
		}
		if !o.RetryAt.IsZero() {
			at = o.RetryAt
		}
		args = append(args, pgID(o.ID), int32(o.Attempt), msg, at)
	}
	sql, args := s.q.finish.build(len(outs), args)
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var next bool
		t, err := scanTask(rows, &next)
		if err != nil {
			return err
		}
		if next {
			f.Next = append(f.Next, t)
		} else {
			f.Done = append(f.Done, t)
		}
	}
	return rows.Err()
}

// ReturnActive is the reaper's return of a worker whose lease expired: each
// of its active tasks goes back to pending, or to dead when it has used all
// its attempts (the lost attempt counts: Activate already counted it), with
// last_error = reason on both. It returns the rows it moved; the caller
// re-queues the pending ones and drops the dead ones from Redis.
func (s *Store) ReturnActive(ctx context.Context, worker, reason string) ([]task.Task, error) {
	ts, err := queryTasks(ctx, s.pool, s.q.returnActive, cleanText(worker, MaxWorkerIDLen), cleanText(reason, MaxErrorLen))
	if err != nil {
		return nil, fmt.Errorf("store: returning active tasks of worker %q: %w", worker, err)
	}
	return ts, nil
}

// Release is the graceful-shutdown return: the given active tasks of worker
// go back to pending without counting the attempt (Activate's increment is
// undone), because nothing failed — the worker stopped before running them or
// gave them up. Ids not active for this worker are ignored. It returns the
// rows it moved.
func (s *Store) Release(ctx context.Context, worker string, ids []uuid.UUID) ([]task.Task, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	ts, err := queryTasks(ctx, s.pool, s.q.release, cleanText(worker, MaxWorkerIDLen), pgIDs(ids))
	if err != nil {
		return nil, fmt.Errorf("store: releasing %d tasks of worker %q: %w", len(ids), worker, err)
	}
	return ts, nil
}

// ResetActive is for after Redis lost its data, taking every processing list
// and lease with it: active tasks started more than olderThan ago → pending,
// without counting the attempt (the infrastructure failed, not the task).
// Pick olderThan beyond the longest run a live worker may still be in; a live
// worker that finishes a reset task later finds it no longer active and its
// outcome is dropped, so at worst the task runs twice and completes once.
// It returns the rows it moved, for the caller to enqueue.
func (s *Store) ResetActive(ctx context.Context, olderThan time.Duration) ([]task.Task, error) {
	ts, err := queryTasks(ctx, s.pool, s.q.resetActive, olderThan.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("store: resetting tasks active for over %s: %w", olderThan, err)
	}
	return ts, nil
}

// Recoverable pages through waiting work — pending and failed tasks — in id
// order, after the given id (uuid.Nil for the first page), at most limit per
// page: what to enqueue again when Redis lost its data. Failed tasks carry
// their RunAt for the delayed set. An empty page is the end.
func (s *Store) Recoverable(ctx context.Context, after uuid.UUID, limit int) ([]task.Task, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("store: recoverable tasks: limit %d: %w", limit, task.ErrInvalid)
	}
	ts, err := queryTasks(ctx, s.pool, s.q.recoverable, pgID(after), limit)
	if err != nil {
		return nil, fmt.Errorf("store: listing recoverable tasks after %s: %w", after, err)
	}
	return ts, nil
}

// clockSkewMargin covers the difference between the clocks of the processes
// that generate ids and PostgreSQL's: StalePending only looks at ids created
// before its cutoff plus this margin. A clock further ahead delays (never
// loses) the recovery of a row by the excess.
const clockSkewMargin = time.Minute

// idBefore returns the smallest UUIDv7 of at's millisecond: every v7 id
// generated before at sorts below it.
func idBefore(at time.Time) uuid.UUID {
	var id uuid.UUID
	ms := uint64(max(at.UnixMilli(), 0))
	for i := range 6 {
		id[i] = byte(ms >> (40 - 8*i))
	}
	return id
}

// StalePending returns up to limit waiting tasks that nothing has touched for
// olderThan — pending ones not updated since, failed ones whose retry fell
// due that long ago — and bumps their updated_at, so each is reported once per
// olderThan. Such rows are left behind by a crash between a commit and the
// Redis push (a submission, or a pipeline's next stage); the caller pushes
// them again. A duplicate id in Redis is harmless: Activate is conditional.
// Under a backlog older than olderThan, waiting tasks are re-pushed too:
// pick olderThan well above the expected queueing time.
func (s *Store) StalePending(ctx context.Context, olderThan time.Duration, limit int) ([]task.Task, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("store: stale pending tasks: limit %d: %w", limit, task.ErrInvalid)
	}
	bound := idBefore(time.Now().Add(-olderThan + clockSkewMargin))
	ts, err := queryTasks(ctx, s.pool, s.q.stalePending, olderThan.Microseconds(), limit, pgID(bound))
	if err != nil {
		return nil, fmt.Errorf("store: listing tasks pending for over %s: %w", olderThan, err)
	}
	return ts, nil
}
