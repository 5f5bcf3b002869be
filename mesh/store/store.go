// Package store keeps Agent Mesh tasks in PostgreSQL, the system of record:
// Redis only holds ids to hand out, and can be rebuilt from here.
//
// Every state change is one conditional statement (WHERE state = expected,
// and for finishing also the worker and the attempt), so redelivery can never
// record a second completion, and every change is an edge of
// task.CanTransition. Batches go in one statement each: a multi-row
// INSERT … ON CONFLICT for submissions, UPDATE … WHERE id = ANY for
// activation, and UPDATE … FROM (VALUES …) for outcomes, which also inserts
// the next pipeline stage in the same statement. Row-valued batches are
// padded to power-of-two sizes so each statement has a dozen texts, each
// prepared and generically planned once per connection.
//
// Recovery: ReturnActive (the reaper: a worker's lease expired), Release
// (graceful shutdown), ResetActive and Recoverable (Redis lost its data) and
// StalePending (a crash between a commit and the Redis push) hand back the
// rows the caller must put into Redis again.
//
// All names are qualified with Config.Schema, so the store works whatever the
// pool's search_path is. Migrate creates the schema and applies the embedded
// migrations under an advisory lock. The SQL lives in queries.sql and
// migrations/*.sql; the index design is explained in 0001_tasks.sql.
package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// Defaults and limits.
const (
	// DefaultSchema is the schema the tables live in when Config.Schema is empty.
	DefaultSchema = "agentmesh"
	// DefaultListLimit is the page size of List when Filter.Limit is 0.
	DefaultListLimit = 50
	// MaxListLimit bounds Filter.Limit.
	MaxListLimit = 500
	// MaxRowsPerStatement is how many rows one INSERT or UPDATE … FROM (VALUES)
	// carries; larger batches are split into several statements run in one
	// transaction.
	MaxRowsPerStatement = 1000
	// MaxWorkerIDLen bounds a worker id (bytes); longer ids are cut.
	MaxWorkerIDLen = 200
	// MaxErrorLen bounds the last_error recorded for a task (bytes, cut on a
	// rune boundary).
	MaxErrorLen = 4096
)

// ErrBadCursor is returned (inside a *task.FieldError for "cursor") when a
// List cursor was not produced by List. It wraps task.ErrInvalid, so an API
// that maps ErrInvalid to 422 needs nothing more.
var ErrBadCursor = fmt.Errorf("store: bad cursor: %w", task.ErrInvalid)

// Config configures a Store.
type Config struct {
	// Schema holds the tables. Created by Migrate when missing. Defaults to
	// "agentmesh".
	Schema string
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Schema = cmp.Or(c.Schema, DefaultSchema)
	return c
}

// Store is the PostgreSQL system of record of tasks. It is safe for
// concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	cfg    Config
	schema string // sanitized identifier
	q      queries
}

// New returns a Store on pool. It does no I/O; call Migrate before use.
func New(pool *pgxpool.Pool, cfg Config) *Store {
	cfg = cfg.WithDefaults()
	schema := pgx.Identifier{cfg.Schema}.Sanitize()
	return &Store{pool: pool, cfg: cfg, schema: schema, q: loadQueries(schema)}
}

// Schema returns the schema the store's tables live in.
func (s *Store) Schema() string { return s.cfg.Schema }

// querier is what both the pool and a transaction offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// taskCols are the columns scanTask reads, in order ({cols} in queries.sql).
const taskCols = "id, client_key, role, priority, state, attempts, max_attempts, payload, " +
	"worker_id, pipeline_id, stage, last_error, created_at, started_at, completed_at, run_at, updated_at"

// chunked runs fn over [0, n) in chunks of MaxRowsPerStatement: one chunk
// directly on the pool (a single statement is atomic on its own), several in
// one transaction, so a batch is all or nothing either way.
func (s *Store) chunked(ctx context.Context, n int, fn func(q querier, lo, hi int) error) error {
	if n <= MaxRowsPerStatement {
		return chunks(s.pool, n, fn)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return chunks(tx, n, fn) })
}

// chunks calls fn for each chunk of [0, n) on q.
func chunks(q querier, n int, fn func(q querier, lo, hi int) error) error {
	for lo := 0; lo < n; lo += MaxRowsPerStatement {
		if err := fn(q, lo, min(lo+MaxRowsPerStatement, n)); err != nil {
			return err
		}
	}
	return nil
}

// scanTask reads one row of taskCols, after any extra leading columns.
func scanTask(row pgx.Row, extra ...any) (task.Task, error) {
	var (
		t                        task.Task
		key, role, state, worker pgtype.Text
		lastErr                  pgtype.Text
		prio                     int16
		stage                    pgtype.Int2
	)
	dest := append(extra, &t.ID, &key, &role, &prio, &state, &t.Attempts, &t.MaxAttempts, &t.Payload,
		&worker, &t.PipelineID, &stage, &lastErr, &t.CreatedAt, &t.StartedAt, &t.CompletedAt, &t.RunAt, &t.UpdatedAt)
	if err := row.Scan(dest...); err != nil {
		return task.Task{}, err
	}
	t.ClientKey, t.Role, t.State = key.String, task.Role(role.String), task.State(state.String)
	t.Priority, t.WorkerID, t.LastError = task.Priority(prio), worker.String, lastErr.String
	t.Stage = int(stage.Int16)
	return t, nil
}

// queryTasks runs sql and collects every row as a task.
func queryTasks(ctx context.Context, q querier, sql string, args ...any) ([]task.Task, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []task.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// pgID and pgIDs pass ids to pgx as what its uuid codec encodes directly:
// uuid.UUID would go through driver.Valuer, a string, a failed binary encode
// and a text parse, per id.
func pgID(id uuid.UUID) [16]byte { return id }

func pgIDs(ids []uuid.UUID) pgtype.FlatArray[[16]byte] {
	out := make(pgtype.FlatArray[[16]byte], len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

func pgNullID(id *uuid.UUID) pgtype.UUID {
	if id == nil {
		return pgtype.UUID{}
	}
	return pgtype.UUID{Bytes: *id, Valid: true}
}

// newID returns a time-ordered UUIDv7: new rows land at the right edge of
// the primary key btree instead of on random pages.
func newID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// cleanText makes s storable as PostgreSQL text: valid UTF-8, no NUL bytes,
// at most max bytes (cut on a rune boundary).
func cleanText(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// errNoRows turns pgx.ErrNoRows into task.ErrNotFound.
func errNoRows(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return task.ErrNotFound
	}
	return err
}
