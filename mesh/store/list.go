package store

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// Get returns one task, or an error wrapping task.ErrNotFound.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (task.Task, error) {
	t, err := scanTask(s.pool.QueryRow(ctx, s.q.get, pgID(id)))
	if err != nil {
		return task.Task{}, fmt.Errorf("store: getting task %s: %w", id, errNoRows(err))
	}
	return t, nil
}

// Filter selects tasks for List.
type Filter struct {
	State task.State // "" for any state
	Role  task.Role  // "" for any role
	// Limit is the page size, 1 to MaxListLimit. Defaults to DefaultListLimit.
	Limit int
	// Cursor continues after the last page: Page.NextCursor, "" for the first.
	Cursor string
}

// Page is one page of List, newest first.
type Page struct {
	Tasks []task.Task
	// NextCursor continues the listing; "" when this is the last page.
	NextCursor string
}

// List pages through tasks newest first, by keyset on (created_at, id): a
// page never repeats or skips a row, whatever was inserted meanwhile. Bad
// filters return a *task.FieldError ("state", "role", "limit" or "cursor",
// the last wrapping ErrBadCursor); all wrap task.ErrInvalid or the
// task.ErrUnknown… errors.
func (s *Store) List(ctx context.Context, f Filter) (Page, error) {
	sql, args, err := s.listQuery(f)
	if err != nil {
		return Page{}, err
	}
	ts, err := queryTasks(ctx, s.pool, sql, args...)
	if err != nil {
		return Page{}, fmt.Errorf("store: listing tasks (state %q, role %q): %w", f.State, f.Role, err)
	}
	var p Page
	if limit := listLimit(f); len(ts) > limit {
		ts = ts[:limit]
		p.NextCursor = encodeCursor(ts[limit-1])
	}
	p.Tasks = ts
	return p, nil
}

func listLimit(f Filter) int {
	if f.Limit == 0 {
		return DefaultListLimit
	}
	return f.Limit
}

// listQuery builds the statement for f. The state, validated against the
// enum, is inlined as a literal so the planner can match partial indexes
// even with a generic plan; the role and cursor are parameters.
func (s *Store) listQuery(f Filter) (string, []any, error) {
	if err := validateFilter(f); err != nil {
		return "", nil, err
	}
	var conds []string
	var args []any
	if f.State != "" {
		conds = append(conds, "state = '"+string(f.State)+"'")
	}
	if f.Role != "" {
		args = append(args, string(f.Role))
		conds = append(conds, "role = $"+strconv.Itoa(len(args)))
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return "", nil, err
		}
		args = append(args, at, pgID(id))
		conds = append(conds, fmt.Sprintf("(created_at, id) < ($%d::timestamptz, $%d::uuid)", len(args)-1, len(args)))
	}
	args = append(args, listLimit(f)+1)
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	r := strings.NewReplacer("{where}", where, "{limit}", "$"+strconv.Itoa(len(args)))
	return r.Replace(s.q.list), args, nil
}

func validateFilter(f Filter) error {
	if f.State != "" && !f.State.Valid() {
		_, err := task.ParseState(string(f.State))
		return &task.FieldError{Field: "state", Msg: err.Error(), Err: task.ErrUnknownState}
	}
	if f.Role != "" && !f.Role.Valid() {
		_, err := task.ParseRole(string(f.Role))
		return &task.FieldError{Field: "role", Msg: err.Error(), Err: task.ErrUnknownRole}
	}
	if f.Limit < 0 || f.Limit > MaxListLimit {
		return &task.FieldError{Field: "limit", Msg: fmt.Sprintf("limit %d out of range (want 1 to %d)", f.Limit, MaxListLimit), Err: task.ErrInvalid}
	}
	return nil
}

// A cursor is base64url of: version byte 1, created_at in Unix microseconds
// (8 bytes, big endian), id (16 bytes).
const cursorVersion = 1

func encodeCursor(t task.Task) string {
	var b [25]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(t.CreatedAt.UnixMicro()))
	copy(b[9:], t.ID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(c string) (time.Time, uuid.UUID, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) != 25 || b[0] != cursorVersion {
		return time.Time{}, uuid.Nil, &task.FieldError{Field: "cursor", Msg: "cursor is not one this server returned", Err: ErrBadCursor}
	}
	at := time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:9])))
	return at, uuid.UUID(b[9:]), nil
}

// Counts returns how many tasks each role has in each state except
// completed, exactly, zeros included. Completed is left out on purpose:
// counting it would visit every completed row, the bulk of a busy table, and
// grow with history; the non-completed states are an index-only scan of a
// partial index that completed rows never enter, cheap enough to call every
// second. Totals of completed work come from the events instead.
func (s *Store) Counts(ctx context.Context) (map[task.Role]map[task.State]int64, error) {
	out := make(map[task.Role]map[task.State]int64, len(task.Roles))
	for _, r := range task.Roles {
		out[r] = map[task.State]int64{task.Pending: 0, task.Active: 0, task.Failed: 0, task.Dead: 0}
	}
	rows, err := s.pool.Query(ctx, s.q.counts)
	if err != nil {
		return nil, fmt.Errorf("store: counting tasks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var role, state string
		var n int64
		if err := rows.Scan(&role, &state, &n); err != nil {
			return nil, fmt.Errorf("store: counting tasks: %w", err)
		}
		out[task.Role(role)][task.State(state)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: counting tasks: %w", err)
	}
	return out, nil
}
