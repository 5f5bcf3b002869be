package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// RequeueDead moves dead-lettered tasks back to pending with their attempts
// reset to 0 (last_error is kept as history): one task when id is set, else
// every dead task of role, or every dead task when role is nil too. It
// returns the rows it moved, for the caller to enqueue. With an id that is
// not a dead task it returns an error wrapping task.ErrNotFound.
func (s *Store) RequeueDead(ctx context.Context, role *task.Role, id *uuid.UUID) ([]task.Task, error) {
	where, args, err := deadFilter(role, id)
	if err != nil {
		return nil, err
	}
	ts, err := queryTasks(ctx, s.pool, replaceWhere(s.q.requeueDead, where), args...)
	if err != nil {
		return nil, fmt.Errorf("store: requeueing dead tasks: %w", err)
	}
	if id != nil && len(ts) == 0 {
		return nil, fmt.Errorf("store: requeueing dead task %s: %w", *id, task.ErrNotFound)
	}
	return ts, nil
}

// PurgeDead deletes dead-lettered tasks, selected as in RequeueDead, and
// returns how many. With an id that is not a dead task it returns an error
// wrapping task.ErrNotFound.
func (s *Store) PurgeDead(ctx context.Context, role *task.Role, id *uuid.UUID) (int64, error) {
	where, args, err := deadFilter(role, id)
	if err != nil {
		return 0, err
	}
	tag, err := s.pool.Exec(ctx, replaceWhere(s.q.purgeDead, where), args...)
	if err != nil {
		return 0, fmt.Errorf("store: purging dead tasks: %w", err)
	}
	if id != nil && tag.RowsAffected() == 0 {
		return 0, fmt.Errorf("store: purging dead task %s: %w", *id, task.ErrNotFound)
	}
	return tag.RowsAffected(), nil
}

// deadFilter builds the extra conditions of a dead-letter selection.
func deadFilter(role *task.Role, id *uuid.UUID) (string, []any, error) {
	var where string
	var args []any
	if role != nil {
		if !role.Valid() {
			_, err := task.ParseRole(string(*role))
			return "", nil, &task.FieldError{Field: "role", Msg: err.Error(), Err: task.ErrUnknownRole}
		}
		args = append(args, string(*role))
		where += fmt.Sprintf(" AND role = $%d", len(args))
	}
	if id != nil {
		args = append(args, pgID(*id))
		where += fmt.Sprintf(" AND id = $%d::uuid", len(args))
	}
	return where, args, nil
}

func replaceWhere(q, where string) string {
	return strings.Replace(q, "{where}", where, 1)
}
