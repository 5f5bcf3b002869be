package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// Inserted is the result of one spec of an Insert, in the order of the specs.
type Inserted struct {
	// Task is the new row, or for Existing and Conflict the row already
	// holding the client key.
	Task task.Task
	// Existing: the key was taken by an identical request (same role,
	// priority, payload, max_attempts and pipeline-ness): an idempotent
	// resubmit. Nothing was written.
	Existing bool
	// Conflict: the key was taken by a different request. Nothing was written.
	Conflict bool
}

// Insert validates specs (filling defaults, on a copy) and writes every new
// one as a pending task, with one multi-row INSERT … ON CONFLICT (client_key)
// DO NOTHING per MaxRowsPerStatement specs. Only for specs whose client key
// already existed it reads the existing rows and tells an idempotent resubmit
// (Existing) from a different request reusing the key (Conflict). Specs are
// independent: a conflict does not stop the others (InsertAtomic does). More
// specs than MaxRowsPerStatement take one transaction: on error nothing was
// written, so the caller may retry the whole batch.
//
// With pipeline, each spec starts an SDLC pipeline: its role must be
// ARCHITECT (an empty role means ARCHITECT), it gets a new pipeline id and
// stage 1, and Finish creates the later stages.
//
// A validation error is a *task.FieldError naming the spec ("tasks[3].role")
// and nothing is written.
func (s *Store) Insert(ctx context.Context, specs []task.Spec, pipeline bool) ([]Inserted, error) {
	rows, err := prepareSpecs(specs, pipeline)
	if err != nil {
		return nil, err
	}
	if len(rows) <= MaxRowsPerStatement {
		return s.insert(ctx, s.pool, rows) // one statement: atomic on its own
	}
	var out []Inserted
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out, err = s.insert(ctx, tx, rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// InsertAtomic is Insert for "all or nothing" batches: it runs in one
// transaction and, if any spec's client key is taken by a different request,
// rolls back — nothing is written — and returns an error wrapping
// task.ErrConflict along with the results, so the caller can name the
// conflicting specs (the new tasks in them were never committed).
// Idempotent resubmits (Existing) do not abort it.
func (s *Store) InsertAtomic(ctx context.Context, specs []task.Spec, pipeline bool) ([]Inserted, error) {
	rows, err := prepareSpecs(specs, pipeline)
	if err != nil {
		return nil, err
	}
	var out []Inserted
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if out, err = s.insert(ctx, tx, rows); err != nil {
			return err
		}
		for i, r := range out {
			if r.Conflict {
				return fmt.Errorf("store: inserting %d tasks: tasks[%d] client key %q: %w", len(rows), i, r.Task.ClientKey, task.ErrConflict)
			}
		}
		return nil
	})
	return out, err
}

// newRow is one validated spec ready to insert.
type newRow struct {
	spec       task.Spec
	id         uuid.UUID
	hash       []byte
	pipelineID *uuid.UUID
	stage      *int16
}

func prepareSpecs(specs []task.Spec, pipeline bool) ([]newRow, error) {
	rows := make([]newRow, len(specs))
	for i, sp := range specs {
		if err := prepareSpec(&sp, pipeline); err != nil {
			var fe *task.FieldError
			if errors.As(err, &fe) {
				return nil, &task.FieldError{Field: fmt.Sprintf("tasks[%d].%s", i, fe.Field), Msg: fe.Msg, Err: fe.Err}
			}
			return nil, err
		}
		r := newRow{spec: sp, id: newID(), hash: requestHash(sp, pipeline)}
		if pipeline {
			pid, stage := newID(), int16(1)
			r.pipelineID, r.stage = &pid, &stage
		}
		rows[i] = r
	}
	return rows, nil
}

// prepareSpec validates sp and makes its text storable. It returns a
// *task.FieldError.
func prepareSpec(sp *task.Spec, pipeline bool) error {
	if pipeline && sp.Role == "" {
		sp.Role = task.Architect
	}
	if err := sp.Validate(); err != nil {
		return err
	}
	if pipeline && sp.Role != task.Architect {
		return &task.FieldError{Field: "role", Msg: fmt.Sprintf("a pipeline starts with ARCHITECT, not %s", sp.Role), Err: task.ErrInvalid}
	}
	if !utf8.ValidString(sp.ClientKey) || strings.IndexByte(sp.ClientKey, 0) >= 0 {
		return &task.FieldError{Field: "client_key", Msg: "client_key must be UTF-8 text without NUL bytes", Err: task.ErrInvalid}
	}
	return compactPayload(sp)
}

// compactPayload checks the payload is JSON that jsonb accepts, and drops
// insignificant whitespace (so the request hash ignores it too).
func compactPayload(sp *task.Spec) error {
	bad := func(msg string) error {
		return &task.FieldError{Field: "payload", Msg: msg, Err: task.ErrInvalid}
	}
	if !utf8.Valid(sp.Payload) {
		return bad("payload is not valid UTF-8")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, sp.Payload); err != nil {
		return bad("payload is not valid JSON: " + err.Error())
	}
	if bytes.Contains(b.Bytes(), []byte(`\u0000`)) {
		return bad(`payload contains \u0000, which PostgreSQL jsonb cannot store`)
	}
	sp.Payload = b.Bytes()
	return nil
}

// requestHash identifies what a client asked for, to tell an idempotent
// resubmit from a conflicting one: role, priority, max_attempts, whether it
// starts a pipeline, and the compacted payload bytes (key order matters).
func requestHash(sp task.Spec, pipeline bool) []byte {
	h := sha256.New()
	var buf [8]byte
	h.Write([]byte(sp.Role))
	h.Write([]byte{0, byte(*sp.Priority), 0})
	binary.BigEndian.PutUint32(buf[:4], uint32(sp.MaxAttempts))
	h.Write(buf[:4])
	if pipeline {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
	h.Write(sp.Payload)
	return h.Sum(nil)
}

func (s *Store) insert(ctx context.Context, q querier, rows []newRow) ([]Inserted, error) {
	created := make(map[uuid.UUID]task.Task, len(rows))
	err := chunks(q, len(rows), func(q querier, lo, hi int) error {
		return s.insertChunk(ctx, q, rows[lo:hi], created)
	})
	if err != nil {
		return nil, fmt.Errorf("store: inserting %d tasks: %w", len(rows), err)
	}
	out := make([]Inserted, len(rows))
	var taken []string
	for i, r := range rows {
		if t, ok := created[r.id]; ok {
			out[i].Task = t
			continue
		}
		if r.spec.ClientKey == "" {
			return nil, fmt.Errorf("store: inserting %d tasks: task %s without a client key was not inserted", len(rows), r.id)
		}
		taken = append(taken, r.spec.ClientKey)
	}
	if len(taken) == 0 {
		return out, nil
	}
	if err := s.resolveTaken(ctx, q, rows, created, taken, out); err != nil {
		return nil, fmt.Errorf("store: inserting %d tasks: %w", len(rows), err)
	}
	return out, nil
}

func (s *Store) insertChunk(ctx context.Context, q querier, chunk []newRow, created map[uuid.UUID]task.Task) error {
	args := make([]any, 0, 9*paddedRows(len(chunk)))
	for _, r := range chunk {
		var key *string
		if r.spec.ClientKey != "" {
			key = &r.spec.ClientKey
		}
		args = append(args, pgID(r.id), key, r.hash, string(r.spec.Role), int16(*r.spec.Priority),
			int32(r.spec.MaxAttempts), r.spec.Payload, pgNullID(r.pipelineID), r.stage)
	}
	sql, args := s.q.insert.build(len(chunk), args)
	ts, err := queryTasks(ctx, q, sql, args...)
	if err != nil {
		return err
	}
	for _, t := range ts {
		created[t.ID] = t
	}
	return nil
}

// resolveTaken reads the rows holding the taken keys and marks each spec
// Existing or Conflict.
func (s *Store) resolveTaken(ctx context.Context, q querier, rows []newRow, created map[uuid.UUID]task.Task, keys []string, out []Inserted) error {
	type held struct {
		hash []byte
		t    task.Task
	}
	byKey := make(map[string]held, len(keys))
	res, err := q.Query(ctx, s.q.byClientKey, keys)
	if err != nil {
		return fmt.Errorf("reading rows of taken client keys: %w", err)
	}
	defer res.Close()
	for res.Next() {
		var h held
		if h.t, err = scanTask(res, &h.hash); err != nil {
			return fmt.Errorf("reading rows of taken client keys: %w", err)
		}
		byKey[h.t.ClientKey] = h
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("reading rows of taken client keys: %w", err)
	}
	for i, r := range rows {
		if _, ok := created[r.id]; ok {
			continue
		}
		h, ok := byKey[r.spec.ClientKey]
		if !ok { // purged between the insert and the read: rare, and safe to retry
			return fmt.Errorf("client key %q: the row holding it vanished (dead letter purged concurrently); retry", r.spec.ClientKey)
		}
		out[i] = Inserted{Task: h.t, Existing: bytes.Equal(h.hash, r.hash), Conflict: !bytes.Equal(h.hash, r.hash)}
	}
	return nil
}
