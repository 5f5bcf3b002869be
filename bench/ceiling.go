package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/store"
)

// The bare-pipeline ceiling: a minimal program doing the Redis and
// PostgreSQL work the mesh does per task, with nothing else (no HTTP, no
// events fan-out, no handlers, no health). Every scenario result reports
// the mesh's throughput as a ratio of the ceiling measured in the same run,
// so that noise on a shared machine, which hits both, cancels out.
//
// Per task, batched (CeilingBatched): one multi-row INSERT of pending rows
// (synchronous commit) and one RPUSH per batch of MaxBatch; a Lua claim
// moving up to MaxBatch ids into the claimer's processing list (LPOP count +
// RPUSH, as the mesh's claim script); one UPDATE … WHERE id = ANY($ids) to
// active; one UPDATE … FROM (VALUES …) to completed; then one pipelined
// round trip with an LREM per id and one PUBLISH of the batch's events.
// Claims are adaptive: a claimer takes whatever is queued, up to MaxBatch.
// The table is the mesh's own (store.Migrate into a temporary schema), so
// index maintenance costs the same.
//
// Per task, one round trip per operation (CeilingSingle): INSERT, RPUSH,
// LMOVE, UPDATE, UPDATE, LREM, PUBLISH — seven round trips — from many
// goroutines at once. It is the reference point without batching.

// Ceiling modes.
const (
	CeilingBatched = "batched"
	CeilingSingle  = "single"
)

// Defaults of CeilingConfig.
const (
	DefaultCeilingDuration = 5 * time.Second
	DefaultCeilingWarmup   = time.Second
	DefaultCeilingBatch    = 200
	DefaultCeilingInserter = 2
	DefaultCeilingClaimers = 4
	DefaultCeilingSingle   = 32
	ceilingPayloadSize     = 256
)

// CeilingConfig configures one ceiling measurement.
type CeilingConfig struct {
	// RedisURL and DatabaseURL are the servers to measure (a fresh key
	// prefix and schema are used and removed).
	RedisURL    string
	DatabaseURL string
	// Mode is batched or single. Defaults to batched.
	Mode string
	// Duration is the measured time after Warmup. Defaults to 5s and 1s.
	Duration time.Duration
	Warmup   time.Duration
	// MaxBatch caps a batch (insert, claim, update). Defaults to 200.
	MaxBatch int
	// Inserters and Claimers are the concurrent producer and worker loops
	// of the batched mode. Default 2 and 4.
	Inserters int
	Claimers  int
	// Concurrency is the number of loops of the single mode. Defaults to 32.
	Concurrency int
}

// WithDefaults returns c with zero fields set to their defaults.
func (c CeilingConfig) WithDefaults() CeilingConfig {
	c.Mode = cmp.Or(c.Mode, CeilingBatched)
	c.Duration = cmp.Or(c.Duration, DefaultCeilingDuration)
	c.Warmup = cmp.Or(c.Warmup, DefaultCeilingWarmup)
	c.MaxBatch = cmp.Or(c.MaxBatch, DefaultCeilingBatch)
	c.Inserters = cmp.Or(c.Inserters, DefaultCeilingInserter)
	c.Claimers = cmp.Or(c.Claimers, DefaultCeilingClaimers)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultCeilingSingle)
	return c
}

func (c *CeilingConfig) validate() error {
	if c.Mode != CeilingBatched && c.Mode != CeilingSingle {
		return fmt.Errorf("ceiling: mode %q, want batched or single", c.Mode)
	}
	if c.MaxBatch < 1 || c.MaxBatch > 1000 || c.Inserters < 1 || c.Claimers < 1 || c.Concurrency < 1 {
		return errors.New("ceiling: batch must be 1-1000 and every concurrency at least 1")
	}
	if c.Duration <= 0 || c.Warmup < 0 {
		return errors.New("ceiling: duration must be positive")
	}
	return nil
}

// CeilingResult is one ceiling measurement.
type CeilingResult struct {
	Mode string `json:"mode"`
	// TasksPerSec is tasks completed per second in the measured window.
	TasksPerSec float64 `json:"tasks_per_s"`
	Tasks       int64   `json:"tasks"`
	Seconds     float64 `json:"seconds"`
	// Latency of a task, created_at (PostgreSQL) → completion recorded, in
	// milliseconds; in a closed loop at saturation, so it shows the queue
	// the loops keep full rather than a latency at a given rate.
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	// MeanClaim is the mean claimed batch (batched mode).
	MeanClaim float64 `json:"mean_claim,omitempty"`
	// The configuration measured.
	MaxBatch    int `json:"max_batch,omitempty"`
	Inserters   int `json:"inserters,omitempty"`
	Claimers    int `json:"claimers,omitempty"`
	Concurrency int `json:"concurrency,omitempty"`
}

// Ceiling is the ceiling measured in a run: batched (the reference for
// ratios) and, when measured, one round trip per operation.
type Ceiling struct {
	Batched *CeilingResult `json:"batched"`
	Single  *CeilingResult `json:"single,omitempty"`
}

// TasksPerSec is the batched ceiling, 0 when not measured.
func (c *Ceiling) TasksPerSec() float64 {
	if c == nil || c.Batched == nil {
		return 0
	}
	return c.Batched.TasksPerSec
}

// ceilingClaim is the claim of the batched mode: the mesh's claim.lua
// reduced to one pending list.
//
// KEYS[1] pending list, KEYS[2] the claimer's processing list
// ARGV[1] max members to move
var ceilingClaim = redis.NewScript(`
local got = redis.call('LPOP', KEYS[1], tonumber(ARGV[1]))
if got then redis.call('RPUSH', KEYS[2], unpack(got)) return got end
return {}`)

// ceilingRun is the state of one measurement.
type ceilingRun struct {
	cfg     CeilingConfig
	rdb     *redis.Client
	pool    *pgxpool.Pool
	schema  string
	prefix  string
	payload []byte

	counting atomic.Bool
	done     atomic.Int64
	claims   atomic.Int64
	claimed  atomic.Int64

	mu     sync.Mutex
	hist   *hdr.Histogram
	queued int
	cond   *sync.Cond
	stop   bool
}

// MeasureCeiling runs the bare pipeline against the configured servers and
// reports its throughput. It uses (and removes) a schema and key prefix of
// its own.
func MeasureCeiling(ctx context.Context, cfg CeilingConfig) (*CeilingResult, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r, err := newCeilingRun(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer r.close()
	return r.run(ctx)
}

func newCeilingRun(ctx context.Context, cfg CeilingConfig) (*ceilingRun, error) {
	name := uniqueName("bench_ceiling")
	r := &ceilingRun{cfg: cfg, schema: name, prefix: name, hist: hdr.New(1, 60_000_000, 3)}
	r.cond = sync.NewCond(&r.mu)
	r.payload = []byte(`{"pad":"` + strings.Repeat("x", ceilingPayloadSize-10) + `"}`)
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("ceiling: parsing the Redis URL: %w", err)
	}
	conns := cfg.Inserters + cfg.Claimers + cfg.Concurrency + 4
	opt.PoolSize = conns
	r.rdb = redis.NewClient(opt)
	pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		_ = r.rdb.Close()
		return nil, fmt.Errorf("ceiling: parsing the database URL: %w", err)
	}
	pcfg.MaxConns = int32(min(conns, 40))
	pcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	if r.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		_ = r.rdb.Close()
		return nil, fmt.Errorf("ceiling: opening PostgreSQL: %w", err)
	}
	if err := store.New(r.pool, store.Config{Schema: name}).Migrate(ctx); err != nil {
		r.close()
		return nil, fmt.Errorf("ceiling: creating the tasks table: %w", err)
	}
	return r, nil
}

// close drops the schema and the keys.
func (r *ceilingRun) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = r.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{r.schema}.Sanitize()+" CASCADE")
	r.pool.Close()
	_ = DeleteKeys(ctx, r.rdb, r.prefix+":")
	_ = r.rdb.Close()
}

func (r *ceilingRun) table() string { return pgx.Identifier{r.schema, "tasks"}.Sanitize() }
func (r *ceilingRun) pending() string {
	return r.prefix + ":{ceiling}:pending"
}
func (r *ceilingRun) processing(w int) string {
	return r.prefix + ":{ceiling}:active:" + strconv.Itoa(w)
}
func (r *ceilingRun) channel() string { return r.prefix + ":events" }

// run starts the loops, counts completions in the window after the warmup
// and stops the loops.
func (r *ceilingRun) run(ctx context.Context) (*CeilingResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	fail := func(err error) {
		if err != nil && ctx.Err() == nil {
			firstErr.CompareAndSwap(nil, &err)
			cancel(err)
		}
	}
	loops := r.loops()
	for _, loop := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); fail(loop(ctx)) }()
	}
	go func() { <-ctx.Done(); r.shutdown() }()
	res, err := r.measure(ctx)
	cancel(errors.New("ceiling: done"))
	r.shutdown()
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return nil, *p
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (r *ceilingRun) loops() []func(context.Context) error {
	var out []func(context.Context) error
	if r.cfg.Mode == CeilingSingle {
		for i := range r.cfg.Concurrency {
			out = append(out, func(ctx context.Context) error { return r.singleLoop(ctx, i) })
		}
		return out
	}
	for range r.cfg.Inserters {
		out = append(out, r.insertLoop)
	}
	for i := range r.cfg.Claimers {
		out = append(out, func(ctx context.Context) error { return r.claimLoop(ctx, i) })
	}
	return out
}

// measure waits out the warmup, then counts for the duration.
func (r *ceilingRun) measure(ctx context.Context) (*CeilingResult, error) {
	if err := SleepCtx(ctx, r.cfg.Warmup); err != nil {
		return nil, err
	}
	r.counting.Store(true)
	start := time.Now()
	if err := SleepCtx(ctx, r.cfg.Duration); err != nil {
		return nil, err
	}
	r.counting.Store(false)
	secs := time.Since(start).Seconds()
	n := r.done.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &CeilingResult{Mode: r.cfg.Mode, Tasks: n, Seconds: secs, TasksPerSec: float64(n) / secs,
		P50MS: float64(r.hist.ValueAtQuantile(50)) / 1000, P99MS: float64(r.hist.ValueAtQuantile(99)) / 1000}
	if r.cfg.Mode == CeilingSingle {
		res.Concurrency = r.cfg.Concurrency
	} else {
		res.MaxBatch, res.Inserters, res.Claimers = r.cfg.MaxBatch, r.cfg.Inserters, r.cfg.Claimers
		if c := r.claims.Load(); c > 0 {
			res.MeanClaim = float64(r.claimed.Load()) / float64(c)
		}
	}
	return res, nil
}

// SleepCtx waits d or until ctx ends, and returns ctx's cause then.
func SleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

func (r *ceilingRun) shutdown() {
	r.mu.Lock()
	r.stop = true
	r.mu.Unlock()
	r.cond.Broadcast()
}

// backlogLimit bounds the queued tasks, so the inserters do not run ahead
// of the claimers without bound.
func (r *ceilingRun) backlogLimit() int { return 4 * r.cfg.MaxBatch * r.cfg.Claimers }

// waitRoom blocks while the backlog is full; false when stopping.
func (r *ceilingRun) waitRoom() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for !r.stop && r.queued >= r.backlogLimit() {
		r.cond.Wait()
	}
	return !r.stop
}

// waitWork blocks while nothing is queued; false when stopping.
func (r *ceilingRun) waitWork() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for !r.stop && r.queued <= 0 {
		r.cond.Wait()
	}
	return !r.stop
}

func (r *ceilingRun) addQueued(n int) {
	r.mu.Lock()
	r.queued += n
	r.mu.Unlock()
	r.cond.Broadcast()
}

// insertLoop inserts batches of pending rows and pushes their ids.
func (r *ceilingRun) insertLoop(ctx context.Context) error {
	n := r.cfg.MaxBatch
	var sql strings.Builder
	sql.WriteString("INSERT INTO " + r.table() + " (id, role, priority, max_attempts, payload) VALUES ")
	for i := range n {
		if i > 0 {
			sql.WriteString(",")
		}
		fmt.Fprintf(&sql, "($%d::uuid, 'ARCHITECT', 2, 3, $%d::jsonb)", 2*i+1, 2*i+2)
	}
	stmt := sql.String()
	args := make([]any, 2*n)
	members := make([]any, n)
	for r.waitRoom() {
		for i := range n {
			id := uuid.Must(uuid.NewV7())
			args[2*i], args[2*i+1] = id, r.payload
			members[i] = "2:" + id.String()
		}
		if _, err := r.pool.Exec(ctx, stmt, args...); err != nil {
			return ctxErr(ctx, fmt.Errorf("ceiling: inserting %d rows: %w", n, err))
		}
		if err := r.rdb.RPush(ctx, r.pending(), members...).Err(); err != nil {
			return ctxErr(ctx, fmt.Errorf("ceiling: pushing %d ids: %w", n, err))
		}
		r.addQueued(n)
	}
	return nil
}

// ctxErr drops errors caused by the run ending.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// event is the ceiling's task event, about the size of the mesh's.
type event struct {
	ID    string    `json:"id"`
	Role  string    `json:"role"`
	State string    `json:"state"`
	At    time.Time `json:"at"`
}

// claimLoop claims, activates, completes, acks and publishes batches.
func (r *ceilingRun) claimLoop(ctx context.Context, w int) error {
	worker := "ceiling-" + strconv.Itoa(w)
	activate := "UPDATE " + r.table() + ` SET state = 'active', attempts = attempts + 1, worker_id = $1,
		started_at = now(), updated_at = now() WHERE id = ANY($2::uuid[]) AND state IN ('pending', 'failed')
		RETURNING id, attempts`
	for r.waitWork() {
		members, err := ceilingClaim.Run(ctx, r.rdb, []string{r.pending(), r.processing(w)}, r.cfg.MaxBatch).StringSlice()
		if err != nil && !errors.Is(err, redis.Nil) {
			return ctxErr(ctx, fmt.Errorf("ceiling: claiming: %w", err))
		}
		if len(members) == 0 {
			continue
		}
		r.addQueued(-len(members))
		r.claims.Add(1)
		r.claimed.Add(int64(len(members)))
		ids := make([]uuid.UUID, len(members))
		for i, m := range members {
			ids[i] = uuid.MustParse(m[2:])
		}
		rows, err := r.pool.Query(ctx, activate, worker, ids)
		if err != nil {
			return ctxErr(ctx, fmt.Errorf("ceiling: activating: %w", err))
		}
		acts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (activated, error) {
			var a activated
			return a, row.Scan(&a.id, &a.attempt)
		})
		if err != nil {
			return ctxErr(ctx, fmt.Errorf("ceiling: activating: %w", err))
		}
		if err := r.complete(ctx, worker, w, acts, members); err != nil {
			return ctxErr(ctx, err)
		}
	}
	return nil
}

// activated is a row the activate statement returned.
type activated struct {
	id      uuid.UUID
	attempt int32
}

// complete runs the multi-row UPDATE to completed, then acks and publishes.
func (r *ceilingRun) complete(ctx context.Context, worker string, w int, acts []activated, members []string) error {
	var sql strings.Builder
	sql.WriteString("UPDATE " + r.table() + ` t SET state = 'completed', completed_at = now(), updated_at = now()
		FROM (VALUES `)
	args := []any{worker}
	for i, a := range acts {
		if i > 0 {
			sql.WriteString(",")
		}
		fmt.Fprintf(&sql, "($%d::uuid, $%d::int)", len(args)+1, len(args)+2)
		args = append(args, a.id, a.attempt)
	}
	sql.WriteString(`) AS v (vid, attempt)
		WHERE t.id = v.vid AND t.state = 'active' AND t.worker_id = $1 AND t.attempts = v.attempt
		RETURNING t.id, t.role, t.created_at`)
	var done []event
	if len(acts) > 0 {
		rows, err := r.pool.Query(ctx, sql.String(), args...)
		if err != nil {
			return fmt.Errorf("ceiling: completing: %w", err)
		}
		now := time.Now()
		done, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (event, error) {
			var e event
			var id uuid.UUID
			var created time.Time
			err := row.Scan(&id, &e.Role, &created)
			e.ID, e.State, e.At = id.String(), "completed", now
			r.record(now.Sub(created))
			return e, err
		})
		if err != nil {
			return fmt.Errorf("ceiling: completing: %w", err)
		}
	}
	return r.ackPublish(ctx, w, members, done)
}

func (r *ceilingRun) record(lat time.Duration) {
	if !r.counting.Load() {
		return
	}
	r.done.Add(1)
	r.mu.Lock()
	_ = r.hist.RecordValue(max(lat.Microseconds(), 1))
	r.mu.Unlock()
}

// ackPublish removes the members from the processing list and publishes the
// events, in one pipelined round trip.
func (r *ceilingRun) ackPublish(ctx context.Context, w int, members []string, done []event) error {
	msg, err := json.Marshal(done)
	if err != nil {
		return err
	}
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range members {
			p.LRem(ctx, r.processing(w), 1, m)
		}
		p.Publish(ctx, r.channel(), msg)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ceiling: acking: %w", err)
	}
	return nil
}

// singleLoop is one loop of the one-round-trip-per-operation variant.
func (r *ceilingRun) singleLoop(ctx context.Context, w int) error {
	worker := "ceiling-" + strconv.Itoa(w)
	insert := "INSERT INTO " + r.table() + " (id, role, priority, max_attempts, payload) VALUES ($1, 'ARCHITECT', 2, 3, $2::jsonb)"
	activate := "UPDATE " + r.table() + ` SET state = 'active', attempts = attempts + 1, worker_id = $1,
		started_at = now(), updated_at = now() WHERE id = $2 AND state IN ('pending', 'failed') RETURNING attempts`
	complete := "UPDATE " + r.table() + ` SET state = 'completed', completed_at = now(), updated_at = now()
		WHERE id = $2 AND state = 'active' AND worker_id = $1 AND attempts = $3 RETURNING role, created_at`
	for ctx.Err() == nil {
		id := uuid.Must(uuid.NewV7())
		if _, err := r.pool.Exec(ctx, insert, id, r.payload); err != nil {
			return ctxErr(ctx, fmt.Errorf("ceiling: inserting: %w", err))
		}
		if err := r.rdb.RPush(ctx, r.pending(), "2:"+id.String()).Err(); err != nil {
			return ctxErr(ctx, fmt.Errorf("ceiling: pushing: %w", err))
		}
		m, err := r.rdb.LMove(ctx, r.pending(), r.processing(w), "LEFT", "RIGHT").Result()
		if err != nil {
			return ctxErr(ctx, fmt.Errorf("ceiling: claiming: %w", err))
		}
		cid := uuid.MustParse(m[2:])
		var attempt int32
		if err := r.pool.QueryRow(ctx, activate, worker, cid).Scan(&attempt); err != nil {
			return ctxErr(ctx, fmt.Errorf("ceiling: activating: %w", err))
		}
		var e event
		var created time.Time
		if err := r.pool.QueryRow(ctx, complete, worker, cid, attempt).Scan(&e.Role, &created); err != nil {
			return ctxErr(ctx, fmt.Errorf("ceiling: completing: %w", err))
		}
		now := time.Now()
		r.record(now.Sub(created))
		if err := r.rdb.LRem(ctx, r.processing(w), 1, m).Err(); err != nil {
			return ctxErr(ctx, fmt.Errorf("ceiling: acking: %w", err))
		}
		e.ID, e.State, e.At = cid.String(), "completed", now
		msg, _ := json.Marshal([]event{e})
		if err := r.rdb.Publish(ctx, r.channel(), msg).Err(); err != nil {
			return ctxErr(ctx, fmt.Errorf("ceiling: publishing: %w", err))
		}
	}
	return nil
}
