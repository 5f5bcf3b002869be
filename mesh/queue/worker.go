package queue

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// WorkerInfo is a worker's latest heartbeat, as the dashboard and the HTTP
// API show it. Workers store it as JSON through Heartbeat.
type WorkerInfo struct {
	ID             string      `json:"id"`
	Roles          []task.Role `json:"roles"`
	RSSBytes       uint64      `json:"rss_bytes"`
	LimitBytes     uint64      `json:"limit_bytes"`
	SoftLimitBytes uint64      `json:"soft_limit_bytes"`
	HealthScore    float64     `json:"health_score"`
	CPUPercent     float64     `json:"cpu_percent"`
	Inflight       int         `json:"inflight"`
	Paused         bool        `json:"paused"`
	StartedAt      time.Time   `json:"started_at"`
	SeenAt         time.Time   `json:"seen_at"`
	Version        string      `json:"version"`
}

// Heartbeat renews worker's lease on each role until now+ttl and records
// info (the worker's WorkerInfo as JSON) and the time it was seen, in one
// round trip. A worker whose lease lapses is reaped: see ExpiredWorkers.
func (q *Queue) Heartbeat(ctx context.Context, worker string, roles []task.Role, ttl time.Duration, info []byte) error {
	if err := checkWorker(worker); err != nil {
		return fmt.Errorf("recording heartbeat: %w", err)
	}
	if ttl <= 0 {
		return fmt.Errorf("recording heartbeat of %q: %w: ttl %s", worker, ErrInvalidArgument, ttl)
	}
	now := q.cfg.Now()
	deadline := float64(now.Add(ttl).UnixMilli())
	p := q.rdb.Pipeline()
	for _, r := range roles {
		rk, err := q.roleKeys(r)
		if err != nil {
			return fmt.Errorf("recording heartbeat of %q: %w", worker, err)
		}
		p.ZAdd(ctx, rk.leases, redis.Z{Score: deadline, Member: worker})
	}
	p.HSet(ctx, q.keys.workers(), worker, info)
	p.ZAdd(ctx, q.keys.seen(), redis.Z{Score: float64(now.UnixMilli()), Member: worker})
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("recording heartbeat of %q: %w", worker, err)
	}
	return nil
}

// Workers returns the workers seen in the last ForgetWorkersAfter, sorted by
// id, and forgets older ones. SeenAt is the time of the last heartbeat; an
// entry whose info is not valid JSON is returned with only ID and SeenAt.
func (q *Queue) Workers(ctx context.Context) ([]WorkerInfo, error) {
	cutoff := q.cfg.Now().Add(-ForgetWorkersAfter).UnixMilli()
	b := q.newBatch()
	b.eval(ctx, pruneScript, []string{q.keys.seen(), q.keys.workers()}, cutoff)
	infos := b.pipe.HGetAll(ctx, q.keys.workers())
	seen := b.pipe.ZRangeWithScores(ctx, q.keys.seen(), 0, -1)
	if err := b.exec(ctx); err != nil {
		return nil, fmt.Errorf("listing workers: %w", err)
	}
	raw := infos.Val()
	out := make([]WorkerInfo, 0, len(raw))
	for _, z := range seen.Val() {
		id, _ := z.Member.(string)
		js, ok := raw[id]
		if !ok || int64(z.Score) < cutoff { // pruned by a re-run after this read
			continue
		}
		var w WorkerInfo
		if json.Unmarshal([]byte(js), &w) != nil {
			w = WorkerInfo{}
		}
		w.ID, w.SeenAt = id, time.UnixMilli(int64(z.Score))
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b WorkerInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// RemoveWorker is a worker's graceful goodbye: it forgets the worker's
// heartbeat and drops its lease on each role whose processing list is empty.
// A lease over claims still held is kept, so the reaper returns them once it
// expires; call ReturnWorker first to return them at once.
func (q *Queue) RemoveWorker(ctx context.Context, worker string, roles []task.Role) error {
	if err := checkWorker(worker); err != nil {
		return fmt.Errorf("removing worker: %w", err)
	}
	b := q.newBatch()
	for _, r := range roles {
		rk, err := q.roleKeys(r)
		if err != nil {
			return fmt.Errorf("removing worker %q: %w", worker, err)
		}
		b.eval(ctx, releaseScript, []string{rk.active(worker), rk.leases}, worker)
	}
	b.pipe.HDel(ctx, q.keys.workers(), worker)
	b.pipe.ZRem(ctx, q.keys.seen(), worker)
	if err := b.exec(ctx); err != nil {
		return fmt.Errorf("removing worker %q: %w", worker, err)
	}
	return nil
}

// ExpiredWorkers returns the workers whose lease on role ended at or before
// now: the reaper's candidates for ReturnWorker.
func (q *Queue) ExpiredWorkers(ctx context.Context, role task.Role, now time.Time) ([]string, error) {
	rk, err := q.roleKeys(role)
	if err != nil {
		return nil, fmt.Errorf("listing expired workers: %w", err)
	}
	ids, err := q.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: rk.leases, Start: "-inf", Stop: strconv.FormatInt(now.UnixMilli(), 10), ByScore: true,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("listing expired workers of %q: %w", role, err)
	}
	return ids, nil
}

// ReturnWorker gives back everything in worker's processing list for role:
// each claim goes to the head of its priority's pending list, except the ids
// in drop (those the store dead-lettered), then the list and the lease are
// deleted and claimers woken. It returns how many went back; running it
// again returns 0.
func (q *Queue) ReturnWorker(ctx context.Context, role task.Role, worker string, drop []uuid.UUID) (int, error) {
	rk, err := q.roleKeys(role)
	if err == nil {
		err = checkWorker(worker)
	}
	if err != nil {
		return 0, fmt.Errorf("returning a worker's claims: %w", err)
	}
	keys := []string{rk.active(worker), rk.leases, rk.signal, rk.pending[0], rk.pending[1], rk.pending[2], rk.pending[3]}
	args := make([]any, 0, 1+len(drop))
	args = append(args, worker)
	for _, id := range drop {
		args = append(args, id.String())
	}
	n, err := returnScript.Run(ctx, q.rdb, keys, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("returning claims of worker %q on %q: %w", worker, role, err)
	}
	return n, nil
}
