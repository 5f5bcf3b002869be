package queue

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// Depth is how much work one role has in Redis.
type Depth struct {
	// Pending counts tasks waiting to be claimed, per priority.
	Pending [task.NumPriorities]int64
	// Active counts claims not yet acked: the sum of the processing lists of
	// the workers holding a lease on the role.
	Active int64
	// Delayed counts retries waiting for their run-at time.
	Delayed int64
}

// Depths returns the depth of every role, in two round trips (the second
// reads the processing lists of the leased workers).
func (q *Queue) Depths(ctx context.Context) (map[task.Role]Depth, error) {
	type reads struct {
		pending [task.NumPriorities]*redis.IntCmd
		delayed *redis.IntCmd
		leases  *redis.StringSliceCmd
		active  []*redis.IntCmd
	}
	rs := make(map[task.Role]*reads, len(task.Roles))
	p := q.rdb.Pipeline()
	for _, r := range task.Roles {
		rk, x := q.roles[r], &reads{}
		for i := range x.pending {
			x.pending[i] = p.LLen(ctx, rk.pending[i])
		}
		x.delayed = p.ZCard(ctx, rk.delayed)
		x.leases = p.ZRange(ctx, rk.leases, 0, -1)
		rs[r] = x
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("reading queue depths: %w", err)
	}
	p = q.rdb.Pipeline()
	for _, r := range task.Roles {
		for _, w := range rs[r].leases.Val() {
			rs[r].active = append(rs[r].active, p.LLen(ctx, q.roles[r].active(w)))
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("reading processing list lengths: %w", err)
	}
	out := make(map[task.Role]Depth, len(rs))
	for r, x := range rs {
		d := Depth{Delayed: x.delayed.Val()}
		for i, c := range x.pending {
			d.Pending[i] = c.Val()
		}
		for _, c := range x.active {
			d.Active += c.Val()
		}
		out[r] = d
	}
	return out, nil
}
