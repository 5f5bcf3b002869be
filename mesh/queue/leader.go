package queue

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// AcquireLeader makes id the maintenance leader for ttl if nobody is, or
// renews the lease if id already is; it reports whether id leads now. Call
// it again well within ttl to keep the leadership.
func (q *Queue) AcquireLeader(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if id == "" || ttl < time.Millisecond {
		return false, fmt.Errorf("acquiring leadership: %w: id %q, ttl %s", ErrInvalidArgument, id, ttl)
	}
	n, err := leaderScript.Run(ctx, q.rdb, []string{q.keys.leader()}, id, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("acquiring leadership for %q: %w", id, err)
	}
	return n == 1, nil
}

// ResignLeader gives up the leadership if id holds it, so that another
// process can take over without waiting for the lease to lapse.
func (q *Queue) ResignLeader(ctx context.Context, id string) error {
	if err := resignScript.Run(ctx, q.rdb, []string{q.keys.leader()}, id).Err(); err != nil {
		return fmt.Errorf("resigning leadership of %q: %w", id, err)
	}
	return nil
}

// CheckEpoch tells the maintenance loop whether Redis lost its data since
// this Queue last looked, so that it rebuilds the queues from PostgreSQL.
//
// Every role has an epoch key in its own slot ("P:{T}:epoch"), holding a
// random value set once per lifetime of that slot's data (SET NX GET, one
// command per role, pipelined). On a Redis Cluster the roles may live on
// different masters, and a master can lose its data alone; an epoch in a
// shared slot would miss that. CheckEpoch reports lost=true when, for any
// role,
//   - the key was missing and this call created it: the Redis (or the
//     master serving the role) is new or restarted empty (on a first start
//     that makes a rebuild that finds nothing to do, which is harmless); or
//   - the key holds another value than the one this Queue saw last: another
//     process re-created it after a loss since we looked (a new leader
//     rebuilds again, covering a leader that died mid-rebuild; rebuilding is
//     idempotent up to duplicate deliveries, which the store rejects).
//
// Otherwise, including the first call of a process on a Redis that kept its
// data, it reports false. A Cluster failover that promotes a replica keeps
// the epochs, so it is no loss: the few writes asynchronous replication may
// drop are covered by the maintenance sweep of stale pending rows.
//
// When reading some key fails, CheckEpoch returns the error, and a loss it
// saw on another role is reported by the next call instead.
func (q *Queue) CheckEpoch(ctx context.Context) (lost bool, err error) {
	mine := newEpoch(q.cfg.Now())
	p := q.rdb.Pipeline()
	cmds := make(map[task.Role]*redis.StatusCmd, len(q.roles))
	for _, r := range task.Roles {
		cmds[r] = p.SetArgs(ctx, q.roles[r].epoch, mine, redis.SetArgs{Mode: "NX", Get: true})
	}
	_, _ = p.Exec(ctx)
	q.epochMu.Lock()
	defer q.epochMu.Unlock()
	var firstErr error
	for _, r := range task.Roles {
		old, err := cmds[r].Result()
		switch {
		case errors.Is(err, redis.Nil): // missing: we created it
			q.epoch[r] = mine
			lost = true
		case err != nil:
			firstErr = cmp.Or(firstErr, fmt.Errorf("checking the Redis epoch of %s: %w", r, err))
		default:
			lost = lost || (q.epoch[r] != "" && q.epoch[r] != old)
			q.epoch[r] = old
		}
	}
	if firstErr != nil {
		if lost { // the caller drops the answer: make the next call report it
			q.forgetLocked()
		}
		return false, firstErr
	}
	return lost, nil
}

// forgotten is never an epoch value, so the next CheckEpoch reports a loss.
const forgotten = "forgotten"

// ForgetEpoch makes the next CheckEpoch of this Queue report lost=true. The
// maintenance loop calls it when a rebuild after a loss failed, so that the
// next tick runs the rebuild again.
func (q *Queue) ForgetEpoch() {
	q.epochMu.Lock()
	defer q.epochMu.Unlock()
	q.forgetLocked()
}

func (q *Queue) forgetLocked() {
	for _, r := range task.Roles {
		q.epoch[r] = forgotten
	}
}

func newEpoch(now time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(now.UnixMilli(), 10) + "-" + hex.EncodeToString(b[:])
}
