package bench

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// audit looks up every unit the load generator listed as lost in the run's
// tasks table (by id for a task; every stage of a pipeline by pipeline id):
// a unit whose every stage completed in PostgreSQL was not lost, only its
// completion event was. Nil when nothing was lost or the table cannot be
// read.
func (r *scenarioRun) audit(ctx context.Context) *Audit {
	l := r.res.Load
	if l == nil || l.Tasks.Lost == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, r.o.cfg.DatabaseURL)
	if err != nil {
		r.note("audit: %v", err)
		return nil
	}
	defer conn.Close(context.WithoutCancel(ctx))
	table := pgx.Identifier{r.schema, "tasks"}.Sanitize()
	a := &Audit{}
	for _, u := range l.Lost {
		id, err := uuid.Parse(u.ID)
		if err != nil {
			continue
		}
		a.Checked++
		var total, completed, dead int64
		q := "SELECT count(*), count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE state = 'dead') FROM " + table + " WHERE id = $1"
		if u.Kind == "pipeline" {
			q = "SELECT count(*), count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE state = 'dead') FROM " + table + " WHERE pipeline_id = $1"
		}
		if err := conn.QueryRow(ctx, q, id).Scan(&total, &completed, &dead); err != nil {
			r.note("audit of %s: %v", u.ID, err)
			return nil
		}
		want := int64(1)
		if u.Kind == "pipeline" {
			want = 3
		}
		switch {
		case total == 0:
			a.Missing++
		case dead > 0:
			a.Dead++
		case completed == want:
			a.Completed++
		default:
			a.Open++
		}
	}
	a.Lost = a.Open + a.Missing + (l.Tasks.Lost - a.Checked)
	r.note("audit: of %d units the load generator reported lost, PostgreSQL has %d completed, %d dead-lettered, %d still open, %d missing",
		a.Checked, a.Completed, a.Dead, a.Open, a.Missing)
	return a
}
