package store_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/task"
)

func TestRequeueDead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d1, d2 := b.inState(task.Dead), b.inState(task.Dead) // DEVELOPER
	qa := b.insertN(1, task.QA)[0]
	b.exec(`UPDATE {schema}.tasks SET state = 'dead', last_error = 'qa died' WHERE id = $1`, qa.ID)
	pending := b.inState(task.Pending)

	got, err := b.st.RequeueDead(b.ctx, nil, &d1.ID)
	if err != nil || len(got) != 1 || got[0].ID != d1.ID {
		t.Fatalf("RequeueDead(id) = %+v, %v", got, err)
	}
	if g := got[0]; g.State != task.Pending || g.Attempts != 0 || g.LastError != "boom again" || g.RunAt != nil {
		t.Fatalf("requeued task = %+v: want pending, attempts 0, last_error kept", g)
	}
	if a := b.activate("w1", got[0]); len(a) != 1 || a[0].Attempts != 1 {
		t.Fatalf("a requeued task must run with a fresh budget: %+v", a)
	}
	for _, id := range []uuid.UUID{pending.ID, d1.ID, uuid.New()} { // not dead (anymore), unknown
		if _, err := b.st.RequeueDead(b.ctx, nil, &id); !errors.Is(err, task.ErrNotFound) {
			t.Errorf("RequeueDead(%s) = %v, want ErrNotFound", id, err)
		}
	}
	role := task.QA
	got, err = b.st.RequeueDead(b.ctx, &role, nil)
	if err != nil || len(got) != 1 || got[0].ID != qa.ID {
		t.Fatalf("RequeueDead(QA) = %+v, %v", got, err)
	}
	got, err = b.st.RequeueDead(b.ctx, nil, nil)
	if err != nil || len(got) != 1 || got[0].ID != d2.ID {
		t.Fatalf("RequeueDead(all) = %+v, %v", got, err)
	}
	bad := task.Role("CEO")
	if _, err := b.st.RequeueDead(b.ctx, &bad, nil); !errors.Is(err, task.ErrUnknownRole) {
		t.Fatalf("RequeueDead(CEO) = %v", err)
	}
}

func TestPurgeDead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d1 := b.inState(task.Dead)
	b.inState(task.Dead)
	b.inState(task.Dead)
	keep := b.inState(task.Failed)
	n, err := b.st.PurgeDead(b.ctx, nil, &d1.ID)
	if err != nil || n != 1 {
		t.Fatalf("PurgeDead(id) = %d, %v", n, err)
	}
	if _, err := b.st.PurgeDead(b.ctx, nil, &keep.ID); !errors.Is(err, task.ErrNotFound) {
		t.Fatalf("PurgeDead(failed task) = %v, want ErrNotFound", err)
	}
	qa := task.QA
	if n, err := b.st.PurgeDead(b.ctx, &qa, nil); err != nil || n != 0 {
		t.Fatalf("PurgeDead(QA) = %d, %v", n, err)
	}
	if n, err := b.st.PurgeDead(b.ctx, nil, nil); err != nil || n != 2 {
		t.Fatalf("PurgeDead(all) = %d, %v", n, err)
	}
	if b.count("") != 1 || b.get(keep.ID).State != task.Failed {
		t.Fatal("PurgeDead deleted a task that was not dead")
	}
}
