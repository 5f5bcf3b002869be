package store_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

func TestGetNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.st.Get(b.ctx, uuid.New()); !errors.Is(err, task.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v, want ErrNotFound", err)
	}
}

// TestListPaging pages through every filter: each page is newest first, no
// task is repeated or skipped, and tasks inserted in one statement (same
// created_at) are ordered by id.
func TestListPaging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var all []task.Task
	for i := range 4 { // batches share created_at: the id breaks the ties
		all = append(all, b.insertN(7, task.Roles[i%3])...)
	}
	for _, st := range []task.State{task.Active, task.Failed, task.Completed, task.Dead} {
		tk := b.inState(st) // role DEVELOPER
		all = append(all, tk)
	}
	for i, tk := range all { // states as of now
		all[i] = b.get(tk.ID)
	}
	slices.SortFunc(all, func(x, y task.Task) int { // newest first
		if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(y.ID.String(), x.ID.String())
	})
	tests := []struct {
		name   string
		filter store.Filter
	}{
		{"all", store.Filter{Limit: 5}},                          // the full index
		{"pending", store.Filter{State: task.Pending, Limit: 4}}, // the partial open index
		{"pending QA", store.Filter{State: task.Pending, Role: task.QA, Limit: 2}},
		{"developer", store.Filter{Role: task.Developer, Limit: 3}},    // role only
		{"completed", store.Filter{State: task.Completed, Limit: 1}},   // completed rows are not in the open index
		{"dead", store.Filter{State: task.Dead, Role: task.Developer}}, // dead letters by role, default limit
		{"one page", store.Filter{Limit: store.MaxListLimit}},          // everything at once: no cursor
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var want []uuid.UUID
			for _, tk := range all {
				if (tt.filter.State == "" || tk.State == tt.filter.State) && (tt.filter.Role == "" || tk.Role == tt.filter.Role) {
					want = append(want, tk.ID)
				}
			}
			var got []uuid.UUID
			f := tt.filter
			for pages := 0; ; pages++ {
				p, err := b.st.List(b.ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if limit := max(f.Limit, 1); f.Limit != 0 && len(p.Tasks) > limit {
					t.Fatalf("page of %d over limit %d", len(p.Tasks), limit)
				}
				got = append(got, ids(p.Tasks)...)
				if p.NextCursor == "" {
					break
				}
				if pages > len(all) {
					t.Fatal("paging does not end")
				}
				f.Cursor = p.NextCursor
			}
			if !slices.Equal(got, want) {
				t.Fatalf("listed %d tasks %v\nwant %d %v", len(got), got, len(want), want)
			}
		})
	}
}

func TestListErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.insertN(3, task.QA)
	p, err := b.st.List(b.ctx, store.Filter{Limit: 2})
	if err != nil || p.NextCursor == "" {
		t.Fatal(p, err)
	}
	tests := []struct {
		filter store.Filter
		field  string
		want   error
	}{
		{store.Filter{Cursor: "not-a-cursor"}, "cursor", store.ErrBadCursor},                     // garbage
		{store.Filter{Cursor: p.NextCursor[:len(p.NextCursor)-2]}, "cursor", store.ErrBadCursor}, // truncated
		{store.Filter{Cursor: "_" + p.NextCursor[1:]}, "cursor", store.ErrBadCursor},             // wrong version
		{store.Filter{State: "running"}, "state", task.ErrUnknownState},                          // not a state
		{store.Filter{Role: "CEO"}, "role", task.ErrUnknownRole},                                 // not a role
		{store.Filter{Limit: store.MaxListLimit + 1}, "limit", task.ErrInvalid},                  // too many
		{store.Filter{Limit: -1}, "limit", task.ErrInvalid},                                      // negative
	}
	for _, tt := range tests {
		_, err := b.st.List(b.ctx, tt.filter)
		var fe *task.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, tt.want) {
			t.Errorf("List(%+v) = %v, want a FieldError on %s wrapping %v", tt.filter, err, tt.field, tt.want)
		}
	}
	if !errors.Is(store.ErrBadCursor, task.ErrInvalid) {
		t.Error("ErrBadCursor must wrap task.ErrInvalid (the API answers 422)")
	}
}

func TestCounts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.insertN(3, task.QA)
	b.insertN(2, task.Architect)
	for _, st := range []task.State{task.Active, task.Failed, task.Completed, task.Dead, task.Dead} {
		b.inState(st) // DEVELOPER
	}
	got, err := b.st.Counts(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[task.Role]map[task.State]int64{
		task.Architect: {task.Pending: 2, task.Active: 0, task.Failed: 0, task.Dead: 0},
		task.Developer: {task.Pending: 0, task.Active: 1, task.Failed: 1, task.Dead: 2},
		task.QA:        {task.Pending: 3, task.Active: 0, task.Failed: 0, task.Dead: 0},
	}
	for role, m := range want {
		for st, n := range m {
			if got[role][st] != n {
				t.Errorf("%s %s = %d, want %d", role, st, got[role][st], n)
			}
		}
		if _, ok := got[role][task.Completed]; ok {
			t.Errorf("%s: completed is not counted", role)
		}
	}
}
