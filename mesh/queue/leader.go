package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
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
// The epoch key holds a random value set once per Redis lifetime (SET NX
// GET, one command). CheckEpoch reports lost=true when
//   - the key was missing and this call created it: Redis is new or restarted
//     empty (on a first start that makes a rebuild that finds nothing to do,
//     which is harmless); or
//   - the key holds another value than the one this Queue saw last: another
//     process re-created it after a loss since we looked (a new leader
//     rebuilds again, covering a leader that died mid-rebuild; rebuilding is
//     idempotent up to duplicate deliveries, which the store rejects).
//
// Otherwise, including the first call of a process on a Redis that kept its
// data, it reports false.
func (q *Queue) CheckEpoch(ctx context.Context) (lost bool, err error) {
	mine := newEpoch(q.cfg.Now())
	old, err := q.rdb.SetArgs(ctx, q.keys.epoch(), mine, redis.SetArgs{Mode: "NX", Get: true}).Result()
	q.epochMu.Lock()
	defer q.epochMu.Unlock()
	switch {
	case errors.Is(err, redis.Nil): // missing: we created it
		q.epoch = mine
		return true, nil
	case err != nil:
		return false, fmt.Errorf("checking the Redis epoch: %w", err)
	}
	lost = q.epoch != "" && q.epoch != old
	q.epoch = old
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
	q.epoch = forgotten
}

func newEpoch(now time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(now.UnixMilli(), 10) + "-" + hex.EncodeToString(b[:])
}
