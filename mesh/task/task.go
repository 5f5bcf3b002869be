// Package task holds the Task model shared by every part of Agent Mesh: the
// agent roles, the priorities, the lifecycle states and the one table of legal
// transitions between them. It is a leaf package: it imports nothing of the
// mesh, so queue, store, worker and producer can all depend on it.
package task

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Role is the agent role that executes a task.
type Role string

// The three agent roles of the SDLC pipeline, in pipeline order.
const (
	Architect Role = "ARCHITECT"
	Developer Role = "DEVELOPER"
	QA        Role = "QA"
)

// Roles lists every role in pipeline order.
var Roles = []Role{Architect, Developer, QA}

// ParseRole returns the Role named by s, or ErrUnknownRole.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if r.Valid() {
		return r, nil
	}
	return "", fmt.Errorf("%w %q (want ARCHITECT, DEVELOPER or QA)", ErrUnknownRole, s)
}

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool {
	return r == Architect || r == Developer || r == QA
}

// Next returns the role of the pipeline stage after r, and false after QA.
func (r Role) Next() (Role, bool) {
	switch r {
	case Architect:
		return Developer, true
	case Developer:
		return QA, true
	}
	return "", false
}

// Priority orders tasks within a role: P0 is the most urgent, P3 the least.
// Higher priorities are claimed first, weighted so lower ones never starve.
type Priority int

// The four priorities. DefaultPriority is what a submission without one gets.
const (
	P0              Priority = 0
	P1              Priority = 1
	P2              Priority = 2
	P3              Priority = 3
	DefaultPriority          = P2
	NumPriorities            = 4
)

// Valid reports whether p is between P0 and P3.
func (p Priority) Valid() bool { return p >= P0 && p <= P3 }

// String renders the priority as "P0".."P3".
func (p Priority) String() string { return fmt.Sprintf("P%d", int(p)) }

// State is where a task is in its lifecycle.
type State string

// The lifecycle states. Failed means "the last attempt failed and a retry is
// scheduled"; Dead means "attempts exhausted, parked in the dead-letter queue".
const (
	Pending   State = "pending"
	Active    State = "active"
	Completed State = "completed"
	Failed    State = "failed"
	Dead      State = "dead"
)

// States lists every state.
var States = []State{Pending, Active, Completed, Failed, Dead}

// ParseState returns the State named by s, or ErrUnknownState.
func ParseState(s string) (State, error) {
	st := State(s)
	if st.Valid() {
		return st, nil
	}
	return "", fmt.Errorf("%w %q (want pending, active, completed, failed or dead)", ErrUnknownState, s)
}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	switch s {
	case Pending, Active, Completed, Failed, Dead:
		return true
	}
	return false
}

// Terminal reports whether no transition leaves s except an operator's requeue.
func (s State) Terminal() bool { return s == Completed || s == Dead }

// transitions is the single table of legal moves. Every conditional UPDATE in
// the store is one of these edges; TestTransitions pins the table.
var transitions = map[State][]State{
	Pending: {Active},                           // a worker claims it
	Active:  {Completed, Failed, Dead, Pending}, // done, retry later, out of attempts, lease lost / shutdown return
	Failed:  {Active, Dead},                     // the retry is claimed, or an operator kills it
	Dead:    {Pending},                          // an operator requeues it from the dead-letter queue
}

// CanTransition reports whether a task may move from one state to another.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Limits on what a task may carry.
const (
	// MaxPayloadBytes bounds a task's JSON payload.
	MaxPayloadBytes = 64 << 10
	// MaxClientKeyLen bounds an idempotency key.
	MaxClientKeyLen = 200
	// DefaultMaxAttempts is how many times a task runs before it is dead-lettered.
	DefaultMaxAttempts = 3
	// MaxMaxAttempts bounds the max_attempts a client may ask for.
	MaxMaxAttempts = 25
)

// Sentinel errors callers branch on.
var (
	ErrUnknownRole     = errors.New("task: unknown role")
	ErrUnknownState    = errors.New("task: unknown state")
	ErrInvalid         = errors.New("task: invalid")
	ErrNotFound        = errors.New("task: not found")
	ErrConflict        = errors.New("task: idempotency key reused with a different request")
	ErrIllegalMove     = errors.New("task: illegal state transition")
	ErrPayloadTooLarge = errors.New("task: payload too large")
)

// Task is one unit of work and its whole recorded history.
type Task struct {
	ID          uuid.UUID       `json:"id"`
	ClientKey   string          `json:"client_key,omitempty"`
	Role        Role            `json:"role"`
	Priority    Priority        `json:"priority"`
	State       State           `json:"state"`
	Attempts    int             `json:"attempts"`
	MaxAttempts int             `json:"max_attempts"`
	Payload     json.RawMessage `json:"payload"`
	WorkerID    string          `json:"worker_id,omitempty"`
	PipelineID  *uuid.UUID      `json:"pipeline_id,omitempty"`
	Stage       int             `json:"stage,omitempty"`
	LastError   string          `json:"last_error,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	StartedAt   *time.Time      `json:"started_at,omitempty"`
	CompletedAt *time.Time      `json:"completed_at,omitempty"`
	RunAt       *time.Time      `json:"run_at,omitempty"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// Spec is what a client asks for: the fields of a new task it may set.
type Spec struct {
	Role        Role            `json:"role"`
	Priority    *Priority       `json:"priority,omitempty"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	MaxAttempts int             `json:"max_attempts,omitempty"`
	ClientKey   string          `json:"client_key,omitempty"`
}

// FieldError is a validation error that names the offending field.
type FieldError struct {
	Field string
	Msg   string
	Err   error // ErrInvalid, ErrUnknownRole or ErrPayloadTooLarge
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate checks a Spec and fills defaults. It returns a *FieldError.
func (s *Spec) Validate() error {
	if !s.Role.Valid() {
		return &FieldError{"role", fmt.Sprintf("unknown role %q (want ARCHITECT, DEVELOPER or QA)", s.Role), ErrUnknownRole}
	}
	if s.Priority == nil {
		p := DefaultPriority
		s.Priority = &p
	}
	if !s.Priority.Valid() {
		return &FieldError{"priority", fmt.Sprintf("priority %d out of range (want 0 to 3)", int(*s.Priority)), ErrInvalid}
	}
	if len(s.Payload) == 0 {
		s.Payload = json.RawMessage("{}")
	}
	if len(s.Payload) > MaxPayloadBytes {
		return &FieldError{"payload", fmt.Sprintf("payload is %d bytes (limit %d)", len(s.Payload), MaxPayloadBytes), ErrPayloadTooLarge}
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	if s.MaxAttempts < 1 || s.MaxAttempts > MaxMaxAttempts {
		return &FieldError{"max_attempts", fmt.Sprintf("max_attempts %d out of range (want 1 to %d)", s.MaxAttempts, MaxMaxAttempts), ErrInvalid}
	}
	if len(s.ClientKey) > MaxClientKeyLen {
		return &FieldError{"client_key", fmt.Sprintf("client_key is %d bytes (limit %d)", len(s.ClientKey), MaxClientKeyLen), ErrInvalid}
	}
	return nil
}

// Event is one observed transition, published by whoever made it and fanned
// out to dashboards and load generators. Times are Unix microseconds so that
// the hot path never formats timestamps.
type Event struct {
	ID          uuid.UUID `json:"id"`
	Role        Role      `json:"role"`
	Priority    Priority  `json:"priority"`
	State       State     `json:"state"`
	Attempts    int       `json:"attempts,omitempty"`
	WorkerID    string    `json:"worker_id,omitempty"`
	PipelineID  string    `json:"pipeline_id,omitempty"`
	Stage       int       `json:"stage,omitempty"`
	Error       string    `json:"error,omitempty"`
	CreatedUS   int64     `json:"created_us"`
	StartedUS   int64     `json:"started_us,omitempty"`
	CompletedUS int64     `json:"completed_us,omitempty"`
	AtUS        int64     `json:"at_us"`
}

// Event renders the task as the event of its current state, observed at.
func (t *Task) Event(at time.Time) Event {
	e := Event{ID: t.ID, Role: t.Role, Priority: t.Priority, State: t.State, Attempts: t.Attempts,
		WorkerID: t.WorkerID, Stage: t.Stage, Error: t.LastError,
		CreatedUS: t.CreatedAt.UnixMicro(), AtUS: at.UnixMicro()}
	if t.PipelineID != nil {
		e.PipelineID = t.PipelineID.String()
	}
	if t.StartedAt != nil {
		e.StartedUS = t.StartedAt.UnixMicro()
	}
	if t.CompletedAt != nil {
		e.CompletedUS = t.CompletedAt.UnixMicro()
	}
	return e
}

// Events renders tasks as events observed at.
func Events(ts []Task, at time.Time) []Event {
	out := make([]Event, len(ts))
	for i := range ts {
		out[i] = ts[i].Event(at)
	}
	return out
}
