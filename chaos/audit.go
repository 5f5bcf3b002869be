package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/bench"
	"github.com/agentmesh/agentmesh/loadgen"
)

// auditor reads the mesh's tasks table directly: the chaos run's own
// queries, independent of the mesh's store package.
type auditor struct {
	db     *pgxpool.Pool
	schema string
}

// q expands {t} to the schema-qualified tasks table.
func (a *auditor) q(sql string) string {
	return strings.ReplaceAll(sql, "{t}", pgx.Identifier{a.schema, "tasks"}.Sanitize())
}

// short bounds one query, so a PostgreSQL that is down does not stall a poll.
func short(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 2*time.Second)
}

// nonTerminal counts tasks pending, active or failed (a retry due).
func (a *auditor) nonTerminal(ctx context.Context) (int64, error) {
	ctx, cancel := short(ctx)
	defer cancel()
	var n int64
	err := a.db.QueryRow(ctx, a.q(`SELECT count(*) FROM {t} WHERE state IN ('pending', 'active', 'failed')`)).Scan(&n)
	return n, err
}

// ids runs a query returning task ids.
func (a *auditor) ids(ctx context.Context, sql string, args ...any) ([]uuid.UUID, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rows, err := a.db.Query(ctx, a.q(sql), args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// nonTerminalIDs lists the tasks pending, active or failed.
func (a *auditor) nonTerminalIDs(ctx context.Context) ([]uuid.UUID, error) {
	return a.ids(ctx, `SELECT id FROM {t} WHERE state IN ('pending', 'active', 'failed')`)
}

// activeOf lists the tasks a worker holds active.
func (a *auditor) activeOf(ctx context.Context, worker string) ([]uuid.UUID, error) {
	return a.ids(ctx, `SELECT id FROM {t} WHERE state = 'active' AND worker_id = $1`, worker)
}

// notTerminal counts the ids not yet completed or dead.
func (a *auditor) notTerminal(ctx context.Context, ids []uuid.UUID) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	ctx, cancel := short(ctx)
	defer cancel()
	var n int64
	err := a.db.QueryRow(ctx, a.q(`SELECT count(*) FROM {t} WHERE id = ANY($1) AND state NOT IN ('completed', 'dead')`), ids).Scan(&n)
	return n, err
}

// completedSince reports whether a task created after t has completed.
func (a *auditor) completedSince(ctx context.Context, t time.Time) (bool, error) {
	ctx, cancel := short(ctx)
	defer cancel()
	var ok bool
	err := a.db.QueryRow(ctx, a.q(`SELECT EXISTS (SELECT 1 FROM {t} WHERE created_at > $1 AND state = 'completed')`), t).Scan(&ok)
	return ok, err
}

// Audit is what the tasks table and Redis hold after the drain.
type Audit struct {
	// Rows is every task row; ByState counts them per state.
	Rows    int64            `json:"rows"`
	ByState map[string]int64 `json:"by_state"`
	// DeadWithoutReason counts dead rows with no last_error.
	DeadWithoutReason int64 `json:"dead_without_reason"`
	// CompletedWithoutTime counts completed rows lacking completed_at or
	// started_at, or with no attempt recorded.
	CompletedInconsistent int64 `json:"completed_inconsistent"`
	// BrokenPipelines counts completed ARCHITECT/DEVELOPER stages whose next
	// stage does not exist.
	BrokenPipelines int64 `json:"broken_pipelines"`
	// Dead lists the reasons of dead rows, with counts.
	DeadReasons map[string]int64 `json:"dead_reasons,omitempty"`
	// RedisLeft is what the queues still hold (must be nothing).
	RedisLeft bench.Depth `json:"redis_left"`
	// DrainMS is how long after the load every task was terminal.
	DrainMS int64 `json:"drain_ms"`
	// Lost is the load generator's lost list looked up in PostgreSQL.
	Lost LostCheck `json:"lost"`
	// Problems lists every violated invariant; empty means it passed.
	Problems []string `json:"problems"`
}

// audit runs the post-drain queries.
func (a *auditor) audit(ctx context.Context) (Audit, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out := Audit{ByState: map[string]int64{}, DeadReasons: map[string]int64{}}
	rows, err := a.db.Query(ctx, a.q(`SELECT state, count(*) FROM {t} GROUP BY state`))
	if err != nil {
		return out, fmt.Errorf("counting states: %w", err)
	}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return out, err
		}
		out.ByState[s], out.Rows = n, out.Rows+n
	}
	if err := rows.Err(); err != nil {
		return out, err
	}
	checks := []struct {
		dst *int64
		sql string
	}{
		{&out.DeadWithoutReason, `SELECT count(*) FROM {t} WHERE state = 'dead' AND coalesce(last_error, '') = ''`},
		{&out.CompletedInconsistent, `SELECT count(*) FROM {t} WHERE state = 'completed'
			AND (completed_at IS NULL OR started_at IS NULL OR attempts < 1 OR worker_id IS NULL OR completed_at < created_at)`},
		{&out.BrokenPipelines, `SELECT count(*) FROM {t} a WHERE a.pipeline_id IS NOT NULL AND a.stage < 3
			AND a.state = 'completed' AND NOT EXISTS (
				SELECT 1 FROM {t} b WHERE b.pipeline_id = a.pipeline_id AND b.stage = a.stage + 1)`},
	}
	for _, c := range checks {
		if err := a.db.QueryRow(ctx, a.q(c.sql)).Scan(c.dst); err != nil {
			return out, fmt.Errorf("audit query %q: %w", c.sql, err)
		}
	}
	if err := a.deadReasons(ctx, &out); err != nil {
		return out, err
	}
	out.Problems = out.problems()
	return out, nil
}

func (a *auditor) deadReasons(ctx context.Context, out *Audit) error {
	rows, err := a.db.Query(ctx, a.q(`SELECT coalesce(last_error, ''), count(*) FROM {t} WHERE state = 'dead' GROUP BY 1 ORDER BY 2 DESC LIMIT 20`))
	if err != nil {
		return fmt.Errorf("reading dead reasons: %w", err)
	}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return err
		}
		out.DeadReasons[s] = n
	}
	return rows.Err()
}

func (a Audit) problems() []string {
	var p []string
	for _, s := range []string{"pending", "active", "failed"} {
		if n := a.ByState[s]; n > 0 {
			p = append(p, fmt.Sprintf("%d tasks %s after the drain", n, s))
		}
	}
	if a.DeadWithoutReason > 0 {
		p = append(p, fmt.Sprintf("%d dead tasks without a reason", a.DeadWithoutReason))
	}
	if a.CompletedInconsistent > 0 {
		p = append(p, fmt.Sprintf("%d completed rows without completed_at/started_at/attempt/worker", a.CompletedInconsistent))
	}
	if a.BrokenPipelines > 0 {
		p = append(p, fmt.Sprintf("%d completed pipeline stages without their next stage", a.BrokenPipelines))
	}
	return p
}

// queueDepth reads what the Redis queues hold, all roles together.
func queueDepth(ctx context.Context, rdb redis.UniversalClient, prefix string) (bench.Depth, error) {
	ctx, cancel := short(ctx)
	defer cancel()
	return bench.QueueDepth(ctx, rdb, prefix)
}

// LostCheck looks up, in PostgreSQL, every unit the load generator listed
// as lost: its completion events may simply have been missed (the
// completion stream does not replay what happened while the producer was
// down, and a pipeline's later stages cannot be found by GET).
type LostCheck struct {
	Listed int `json:"listed"`
	// Terminal units are completed (a pipeline: all three stages) or dead
	// in PostgreSQL: not lost, only unseen by the load generator.
	Terminal int `json:"terminal"`
	// NotTerminal units exist but are not finished; Missing ones do not exist.
	NotTerminal []string `json:"not_terminal,omitempty"`
	Missing     []string `json:"missing,omitempty"`
}

func (a *auditor) checkLost(ctx context.Context, lost []loadgen.LostTask) (LostCheck, error) {
	out := LostCheck{Listed: len(lost)}
	for _, l := range lost {
		id, err := uuid.Parse(l.ID)
		if err != nil {
			out.Missing = append(out.Missing, l.ID)
			continue
		}
		var rows, done int
		sql := `SELECT count(*), count(*) FILTER (WHERE state IN ('completed', 'dead')) FROM {t} WHERE id = $1`
		if l.Kind == "pipeline" {
			sql = `SELECT count(*) FILTER (WHERE stage = 3 OR state = 'dead'), count(*) FILTER (WHERE (stage = 3 AND state = 'completed') OR state = 'dead') FROM {t} WHERE pipeline_id = $1`
		}
		qctx, cancel := short(ctx)
		err = a.db.QueryRow(qctx, a.q(sql), id).Scan(&rows, &done)
		cancel()
		switch {
		case err != nil:
			return out, fmt.Errorf("looking up lost %s %s: %w", l.Kind, l.ID, err)
		case done > 0:
			out.Terminal++
		case rows == 0:
			out.Missing = append(out.Missing, l.Kind+" "+l.ID+" ("+l.State+")")
		default:
			out.NotTerminal = append(out.NotTerminal, l.Kind+" "+l.ID+" ("+l.State+")")
		}
	}
	return out, nil
}
