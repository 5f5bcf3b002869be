package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// Settlement is what a worker reports to the queue about a finished batch,
// sent in one round trip by Settle.
type Settlement struct {
	// Ack lists the claims that are done (completed or dead-lettered): they
	// leave the worker's processing list.
	Ack []Item
	// Retry lists claims whose attempt failed and that run again at the
	// matching RetryAt: they move from the processing list to the delayed set.
	Retry   []Item
	RetryAt []time.Time
	// Enqueue lists new tasks to make pending (the next pipeline stages).
	Enqueue []Item
}

// Settle applies a whole Settlement in one pipelined round trip: the acks
// (LREM), the retries (one script per role, atomic per role) and the new
// tasks (RPUSH plus the signal). Nothing is sent when an item is invalid.
func (q *Queue) Settle(ctx context.Context, worker string, s Settlement) error {
	b := q.newBatch()
	if err := q.addSettlement(ctx, b, worker, s); err != nil {
		return fmt.Errorf("settling for worker %q: %w", worker, err)
	}
	if err := b.exec(ctx); err != nil {
		return fmt.Errorf("settling %d acks, %d retries, %d new tasks for worker %q: %w",
			len(s.Ack), len(s.Retry), len(s.Enqueue), worker, err)
	}
	return nil
}

func (q *Queue) addSettlement(ctx context.Context, b *batch, worker string, s Settlement) error {
	if len(s.Ack)+len(s.Retry) > 0 {
		if err := checkWorker(worker); err != nil {
			return err
		}
	}
	if err := q.addAck(ctx, b, worker, s.Ack); err != nil {
		return err
	}
	if err := q.addRetry(ctx, b, worker, s.Retry, s.RetryAt); err != nil {
		return err
	}
	return q.addEnqueue(ctx, b, s.Enqueue)
}

// Enqueue makes items pending: one RPUSH per role and priority (order kept
// within each), then the role's signal, all in one pipelined round trip,
// whatever roles the batch mixes.
func (q *Queue) Enqueue(ctx context.Context, items []Item) error {
	b := q.newBatch()
	if err := q.addEnqueue(ctx, b, items); err != nil {
		return fmt.Errorf("enqueueing %d tasks: %w", len(items), err)
	}
	if err := b.exec(ctx); err != nil {
		return fmt.Errorf("enqueueing %d tasks: %w", len(items), err)
	}
	return nil
}

func (q *Queue) addEnqueue(ctx context.Context, b *batch, items []Item) error {
	if len(items) == 0 {
		return nil
	}
	type group struct {
		rk      *roleKeys
		members [task.NumPriorities][]any
	}
	var order []*group
	groups := make(map[task.Role]*group, len(q.roles))
	for _, it := range items {
		rk, err := q.checkItem(it)
		if err != nil {
			return err
		}
		g := groups[it.Role]
		if g == nil {
			g = &group{rk: rk}
			groups[it.Role] = g
			order = append(order, g)
		}
		g.members[it.Priority] = append(g.members[it.Priority], it.member())
	}
	for _, g := range order {
		for p, ms := range g.members {
			if len(ms) > 0 {
				b.pipe.RPush(ctx, g.rk.pending[p], ms...)
			}
		}
		// A token after the pushes; LTRIM keeps the list at most 1 long.
		b.pipe.RPush(ctx, g.rk.signal, "1")
		b.pipe.LTrim(ctx, g.rk.signal, 0, 0)
	}
	return nil
}

// Ack removes finished claims from the worker's processing lists (LREM, one
// per item, pipelined in one round trip).
func (q *Queue) Ack(ctx context.Context, worker string, items []Item) error {
	if err := checkWorker(worker); err != nil {
		return fmt.Errorf("acking %d tasks: %w", len(items), err)
	}
	b := q.newBatch()
	if err := q.addAck(ctx, b, worker, items); err != nil {
		return fmt.Errorf("acking %d tasks for worker %q: %w", len(items), worker, err)
	}
	if err := b.exec(ctx); err != nil {
		return fmt.Errorf("acking %d tasks for worker %q: %w", len(items), worker, err)
	}
	return nil
}

func (q *Queue) addAck(ctx context.Context, b *batch, worker string, items []Item) error {
	for _, it := range items {
		rk, err := q.checkItem(it)
		if err != nil {
			return err
		}
		b.pipe.LRem(ctx, rk.active(worker), 1, it.member())
	}
	return nil
}

// Retry moves claims from the worker's processing lists to their role's
// delayed set, to run again at the matching at[i] (see PromoteDue). The move
// is atomic per role. A claim no longer in the processing list (the reaper
// returned it meanwhile) is skipped rather than duplicated.
func (q *Queue) Retry(ctx context.Context, worker string, items []Item, at []time.Time) error {
	if err := checkWorker(worker); err != nil {
		return fmt.Errorf("scheduling %d retries: %w", len(items), err)
	}
	b := q.newBatch()
	if err := q.addRetry(ctx, b, worker, items, at); err != nil {
		return fmt.Errorf("scheduling %d retries for worker %q: %w", len(items), worker, err)
	}
	if err := b.exec(ctx); err != nil {
		return fmt.Errorf("scheduling %d retries for worker %q: %w", len(items), worker, err)
	}
	return nil
}

func (q *Queue) addRetry(ctx context.Context, b *batch, worker string, items []Item, at []time.Time) error {
	if len(items) != len(at) {
		return fmt.Errorf("%w: %d retries but %d run-at times", ErrInvalidArgument, len(items), len(at))
	}
	var order []*roleKeys
	args := make(map[*roleKeys][]any)
	for i, it := range items {
		rk, err := q.checkItem(it)
		if err != nil {
			return err
		}
		if _, ok := args[rk]; !ok {
			order = append(order, rk)
		}
		args[rk] = append(args[rk], it.member(), at[i].UnixMilli())
	}
	for _, rk := range order {
		b.eval(ctx, retryScript, []string{rk.active(worker), rk.delayed}, args[rk]...)
	}
	return nil
}

// PromoteDue moves retries whose run-at is at or before now from the delayed
// sets to the tail of their pending lists and wakes claimers, for every
// role, at most max per role, in one round trip. It returns how many moved.
func (q *Queue) PromoteDue(ctx context.Context, now time.Time, max int) (int, error) {
	if max < 1 {
		return 0, fmt.Errorf("promoting due retries: %w: max %d", ErrInvalidArgument, max)
	}
	b := q.newBatch()
	calls := make([]*scriptCall, 0, len(task.Roles))
	for _, r := range task.Roles {
		rk := q.roles[r]
		keys := []string{rk.delayed, rk.signal, rk.pending[0], rk.pending[1], rk.pending[2], rk.pending[3]}
		calls = append(calls, b.eval(ctx, promoteScript, keys, now.UnixMilli(), max))
	}
	if err := b.exec(ctx); err != nil {
		return 0, fmt.Errorf("promoting due retries: %w", err)
	}
	n := 0
	for _, c := range calls {
		v, _ := c.cmd.Int()
		n += v
	}
	return n, nil
}
