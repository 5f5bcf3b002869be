package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// wakeTTL bounds the life of a wake key pushed after its Claim had returned.
const wakeTTL = 30 * time.Second

// Claim moves up to max (1..MaxClaim) pending tasks of role into worker's
// processing list and returns them, higher priorities first most of the
// time (see Config.Weights). When nothing is pending it waits on the role's
// signal for up to Config.ClaimWait and tries once more; an empty result with
// a nil error means no work turned up. Cancelling ctx ends the wait at once
// with ctx's error.
//
// The claims stay in the processing list until Ack, Retry or the reaper's
// ReturnWorker; a worker without a lease on the role gets one that ends
// Config.ClaimLease from now, so a worker that dies before its first
// heartbeat is still reaped.
func (q *Queue) Claim(ctx context.Context, role task.Role, worker string, max int) ([]Item, error) {
	rk, err := q.roleKeys(role)
	if err == nil {
		err = checkClaim(worker, max)
	}
	if err != nil {
		return nil, fmt.Errorf("claiming from %q: %w", role, err)
	}
	items, err := q.claimNow(ctx, rk, worker, max)
	if err != nil || len(items) > 0 {
		return items, err
	}
	woke, err := q.waitSignal(ctx, rk, worker)
	if err != nil || !woke {
		return items, err
	}
	return q.claimNow(ctx, rk, worker, max)
}

func checkClaim(worker string, max int) error {
	if err := checkWorker(worker); err != nil {
		return err
	}
	if max < 1 || max > MaxClaim {
		return fmt.Errorf("%w: max %d (want 1 to %d)", ErrInvalidArgument, max, MaxClaim)
	}
	return nil
}

// claimNow runs the claim script once, without blocking.
func (q *Queue) claimNow(ctx context.Context, rk *roleKeys, worker string, max int) ([]Item, error) {
	order := q.visitOrder()
	keys := []string{rk.active(worker), rk.signal, rk.leases,
		rk.pending[order[0]], rk.pending[order[1]], rk.pending[order[2]], rk.pending[order[3]]}
	lease := q.cfg.Now().Add(q.cfg.ClaimLease).UnixMilli()
	members, err := claimScript.Run(ctx, q.rdb, keys, max, worker, lease).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("claiming from %q for worker %q: %w", rk.role, worker, err)
	}
	return q.decodeClaimed(ctx, rk, worker, members), nil
}

// decodeClaimed turns members into items. A member that does not decode was
// not written by this package; it is removed from the processing list so it
// cannot circulate.
func (q *Queue) decodeClaimed(ctx context.Context, rk *roleKeys, worker string, members []string) []Item {
	items := make([]Item, 0, len(members))
	for _, m := range members {
		it, err := decodeMember(rk.role, m)
		if err != nil {
			_ = q.rdb.LRem(ctx, rk.active(worker), 1, m).Err()
			continue
		}
		items = append(items, it)
	}
	return items
}

// visitOrder draws the order in which a claim visits the priorities:
// weighted sampling without replacement, so priority p comes first with
// probability Weights[p]/sum and every priority is visited.
func (q *Queue) visitOrder() [task.NumPriorities]task.Priority {
	left := [task.NumPriorities]task.Priority{task.P0, task.P1, task.P2, task.P3}
	var order [task.NumPriorities]task.Priority
	total := q.wsum
	for i, n := 0, len(left); i < len(order); i, n = i+1, n-1 {
		r := rand.IntN(total)
		j := 0
		for r >= q.cfg.Weights[left[j]] {
			r -= q.cfg.Weights[left[j]]
			j++
		}
		order[i] = left[j]
		total -= q.cfg.Weights[left[j]]
		left[j] = left[n-1]
	}
	return order
}

// waitSignal blocks on the role's signal for up to ClaimWait and reports
// whether a token arrived. go-redis does not abort a blocking read when ctx
// is cancelled, so the BLPOP also watches a wake key of this call that a
// context.AfterFunc pushes to on cancellation.
func (q *Queue) waitSignal(ctx context.Context, rk *roleKeys, worker string) (bool, error) {
	wake := rk.wake(worker, q.seq.Add(1))
	pushed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(pushed)
		q.pushWake(context.WithoutCancel(ctx), wake)
	})
	key, err := q.blpop(ctx, rk.signal, wake)
	if !stop() {
		<-pushed // no goroutine of ours outlives the call
	}
	if ctx.Err() != nil {
		if key == rk.signal { // we took a real token we will not use: put it back
			q.rearm(context.WithoutCancel(ctx), rk)
		}
		return false, fmt.Errorf("claiming from %q: %w", rk.role, context.Cause(ctx))
	}
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("waiting for work on %q: %w", rk.role, err)
	}
	return true, nil
}

// blpop pops from the first of keys with an element, waiting up to
// ClaimWait, and returns the key popped from.
func (q *Queue) blpop(ctx context.Context, keys ...string) (string, error) {
	wait := q.cfg.ClaimWait
	if wait >= time.Second {
		kv, err := q.rdb.BLPop(ctx, wait, keys...).Result()
		if err != nil {
			return "", err
		}
		return kv[0], nil
	}
	// go-redis rounds sub-second BLPOP timeouts up to 1 s; Redis takes
	// decimals, and the client's read timeout (3 s by default) covers it.
	args := []any{"blpop"}
	for _, k := range keys {
		args = append(args, k)
	}
	args = append(args, strconv.FormatFloat(wait.Seconds(), 'f', 3, 64))
	kv, err := q.rdb.Do(ctx, args...).StringSlice()
	if err != nil {
		return "", err
	}
	return kv[0], nil
}

func (q *Queue) pushWake(ctx context.Context, wake string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	p := q.rdb.Pipeline()
	p.RPush(ctx, wake, "1")
	p.PExpire(ctx, wake, wakeTTL)
	_, _ = p.Exec(ctx)
}

func (q *Queue) rearm(ctx context.Context, rk *roleKeys) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	p := q.rdb.Pipeline()
	p.RPush(ctx, rk.signal, "1")
	p.LTrim(ctx, rk.signal, 0, 0)
	_, _ = p.Exec(ctx)
}
