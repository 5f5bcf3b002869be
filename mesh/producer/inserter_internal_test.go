package producer

import (
	"errors"
	"fmt"
	"testing"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// TestBadUnit: a store field error naming tasks[i] of a group blames the
// unit holding spec i, named as its submitter wrote it.
func TestBadUnit(t *testing.T) {
	unit := func(n int, batch bool) *insertReq { return &insertReq{specs: make([]task.Spec, n), batch: batch} }
	group := []*insertReq{unit(1, false), unit(3, true), unit(1, false)}
	storeErr := func(i int) error {
		return fmt.Errorf("store: inserting 5 tasks: %w", &task.FieldError{Field: fmt.Sprintf("tasks[%d].payload", i), Msg: "payload: bad"})
	}
	for _, c := range []struct {
		i     int
		unit  int
		field string
	}{{0, 0, "payload"}, {1, 1, "tasks[0].payload"}, {3, 1, "tasks[2].payload"}, {4, 2, "payload"}} {
		u, fe := badUnit(storeErr(c.i), group)
		if fe == nil || u != c.unit || fe.Field != c.field {
			t.Errorf("spec %d: unit %d, error %v; want unit %d, field %q", c.i, u, fe, c.unit, c.field)
		}
	}
	if _, fe := badUnit(storeErr(5), group); fe != nil {
		t.Errorf("an index past the group blamed a unit: %v", fe)
	}
	if _, fe := badUnit(errors.New("connection reset"), group); fe != nil {
		t.Errorf("a backend error blamed a unit: %v", fe)
	}
}
