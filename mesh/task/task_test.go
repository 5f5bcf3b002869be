package task

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestTransitions pins the whole table: every pair of states is either a
// legal edge listed here or refused.
func TestTransitions(t *testing.T) {
	t.Parallel()
	legal := map[[2]State]bool{
		{Pending, Active}:   true, // claimed
		{Active, Completed}: true, // done
		{Active, Failed}:    true, // attempt failed, retry scheduled
		{Active, Dead}:      true, // attempt failed, none left
		{Active, Pending}:   true, // lease lost or shutdown: returned
		{Failed, Active}:    true, // retry claimed
		{Failed, Dead}:      true, // killed while waiting for its retry
		{Dead, Pending}:     true, // requeued from the dead-letter queue
	}
	for _, from := range States {
		for _, to := range States {
			if got, want := CanTransition(from, to), legal[[2]State{from, to}]; got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
	if CanTransition(Completed, Pending) {
		t.Error("a completed task must never run again")
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%s) = %v, %v", r, got, err)
		}
	}
	if _, err := ParseRole("architect"); !errors.Is(err, ErrUnknownRole) {
		t.Errorf("lower-case role accepted: %v", err)
	}
	if _, err := ParseState("running"); !errors.Is(err, ErrUnknownState) {
		t.Errorf("unknown state accepted: %v", err)
	}
	if n, ok := Architect.Next(); !ok || n != Developer {
		t.Errorf("ARCHITECT.Next() = %v, %v", n, ok)
	}
	if n, ok := Developer.Next(); !ok || n != QA {
		t.Errorf("DEVELOPER.Next() = %v, %v", n, ok)
	}
	if _, ok := QA.Next(); ok {
		t.Error("QA has no next stage")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	p := func(n int) *Priority { v := Priority(n); return &v }
	tests := []struct {
		name  string
		spec  Spec
		field string // "" when valid
	}{
		{"minimal spec gets defaults", Spec{Role: QA}, ""},
		{"unknown role", Spec{Role: "CEO"}, "role"},
		{"empty role", Spec{}, "role"},
		{"priority too high", Spec{Role: QA, Priority: p(4)}, "priority"},
		{"negative priority", Spec{Role: QA, Priority: p(-1)}, "priority"},
		{"payload over the limit", Spec{Role: QA, Payload: json.RawMessage(`"` + strings.Repeat("x", MaxPayloadBytes) + `"`)}, "payload"},
		{"max attempts over the cap", Spec{Role: QA, MaxAttempts: MaxMaxAttempts + 1}, "max_attempts"},
		{"negative max attempts", Spec{Role: QA, MaxAttempts: -2}, "max_attempts"},
		{"client key too long", Spec{Role: QA, ClientKey: strings.Repeat("k", MaxClientKeyLen+1)}, "client_key"},
	}
	for _, tt := range tests {
		err := tt.spec.Validate()
		var fe *FieldError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
			t.Errorf("%s: error %v, want a FieldError on %q", tt.name, err, tt.field)
		}
	}
	s := Spec{Role: QA}
	_ = s.Validate()
	if *s.Priority != DefaultPriority || s.MaxAttempts != DefaultMaxAttempts || string(s.Payload) != "{}" {
		t.Errorf("defaults not filled: %+v", s)
	}
}

func TestEvent(t *testing.T) {
	t.Parallel()
	created := time.UnixMicro(1_000_000)
	done := created.Add(1500 * time.Microsecond)
	pid := uuid.New()
	tk := Task{ID: uuid.New(), Role: QA, State: Completed, CreatedAt: created, CompletedAt: &done, PipelineID: &pid, Stage: 3}
	e := tk.Event(done)
	if e.CreatedUS != 1_000_000 || e.CompletedUS != 1_001_500 || e.PipelineID != pid.String() || e.StartedUS != 0 {
		t.Fatalf("event = %+v", e)
	}
}
