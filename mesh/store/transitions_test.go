package store_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// TestTransitionsAllowed records, with a trigger, every state change any
// store operation makes to a row, drives every operation, and checks each
// recorded change is an edge of task.CanTransition — and that new rows start
// pending. It also checks every edge the store is meant to use was seen, so
// the test cannot pass by exercising nothing.
func TestTransitionsAllowed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(`CREATE TABLE {schema}.transition_log (from_state text, to_state text NOT NULL)`)
	b.exec(`CREATE FUNCTION {schema}.log_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO {schema}.transition_log VALUES (CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END, NEW.state);
	RETURN NULL;
END $$`)
	b.exec(`CREATE TRIGGER log_insert AFTER INSERT ON {schema}.tasks FOR EACH ROW EXECUTE FUNCTION {schema}.log_transition()`)
	b.exec(`CREATE TRIGGER log_update AFTER UPDATE ON {schema}.tasks FOR EACH ROW
		WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION {schema}.log_transition()`)

	// Every operation, in every outcome.
	pipe := b.insert(true, task.Spec{})[0]
	b.activate("w1", pipe)
	b.finish("w1", store.Outcome{ID: pipe.ID, Attempt: 1}) // completed + next stage
	dead := b.inState(task.Dead)                           // pending → active → failed → active → dead
	if _, err := b.st.RequeueDead(b.ctx, nil, &dead.ID); err != nil {
		t.Fatal(err)
	}
	reaped := b.inState(task.Active)
	last := b.inState(task.Failed)
	b.activate("w1", last)
	if _, err := b.st.ReturnActive(b.ctx, "w1", "lease expired"); err != nil { // → pending, → dead
		t.Fatal(err)
	}
	b.activate("w1", reaped)
	if _, err := b.st.Release(b.ctx, "w1", []uuid.UUID{reaped.ID}); err != nil {
		t.Fatal(err)
	}
	b.activate("w1", reaped)
	if _, err := b.st.ResetActive(b.ctx, 0); err != nil {
		t.Fatal(err)
	}
	b.exec(`UPDATE {schema}.tasks SET updated_at = updated_at - interval '1 hour'`) // not a state change: not logged
	if _, err := b.st.StalePending(b.ctx, time.Minute, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.PurgeDead(b.ctx, nil, nil); err != nil {
		t.Fatal(err)
	}

	rows, err := b.pool.Query(b.ctx, "SELECT from_state, to_state FROM "+quoted(b.schema)+".transition_log")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[[2]task.State]int{}
	for rows.Next() {
		var from *string
		var to string
		if err := rows.Scan(&from, &to); err != nil {
			t.Fatal(err)
		}
		if from == nil {
			if to != string(task.Pending) {
				t.Errorf("a task was created in state %s", to)
			}
			continue
		}
		edge := [2]task.State{task.State(*from), task.State(to)}
		if !task.CanTransition(edge[0], edge[1]) {
			t.Errorf("illegal transition %s → %s", edge[0], edge[1])
		}
		seen[edge]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	used := [][2]task.State{
		{task.Pending, task.Active}, {task.Failed, task.Active}, {task.Active, task.Completed},
		{task.Active, task.Failed}, {task.Active, task.Dead}, {task.Active, task.Pending}, {task.Dead, task.Pending},
	}
	for _, e := range used {
		if seen[e] == 0 {
			t.Errorf("the scenario never made %s → %s", e[0], e[1])
		}
	}
}
