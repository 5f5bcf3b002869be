package loadgen

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// TestRequestBodies: the bodies are valid JSON of the contract's shapes, and
// the payload has exactly the drawn size.
func TestRequestBodies(t *testing.T) {
	t.Parallel()
	p := task.P1
	c := &client{pad: strings.Repeat("x", task.MaxPayloadBytes), priority: &p}
	tests := []struct {
		name  string
		batch bool
		j     job
		path  string
	}{
		{"single", false, job{units: []unit{{role: task.QA, size: 256}}}, "/api/v1/tasks"},
		{"tiny payload", false, job{units: []unit{{role: task.QA, size: 3}}}, "/api/v1/tasks"},
		{"batch", true, job{units: []unit{{role: task.QA, size: 100}, {role: task.Architect, size: 4000}}}, "/api/v1/tasks/batch"},
		{"pipeline", true, job{units: []unit{{pipeline: true, size: 50}}}, "/api/v1/pipelines"},
	}
	for _, tt := range tests {
		c.batch = tt.batch
		path, body := c.body(&tt.j)
		if path != tt.path {
			t.Errorf("%s: path %s, want %s", tt.name, path, tt.path)
		}
		var specs []task.Spec
		switch path {
		case "/api/v1/tasks/batch":
			var b struct{ Tasks []task.Spec }
			if err := json.Unmarshal(body, &b); err != nil {
				t.Fatalf("%s: %v: %s", tt.name, err, body)
			}
			specs = b.Tasks
		default:
			var s task.Spec
			if err := json.Unmarshal(body, &s); err != nil {
				t.Fatalf("%s: %v: %s", tt.name, err, body)
			}
			specs = []task.Spec{s}
		}
		for i, s := range specs {
			u := tt.j.units[i]
			want := int(u.size)
			if want < 10 {
				want = 2 // {}
			}
			if len(s.Payload) != want || s.Priority == nil || *s.Priority != p || (!u.pipeline && s.Role != u.role) {
				t.Errorf("%s: spec %d = role %s, %d payload bytes, priority %v; want %s, %d, P1", tt.name, i, s.Role, len(s.Payload), s.Priority, u.role, want)
			}
		}
	}
}

func TestParseAnswers(t *testing.T) {
	t.Parallel()
	id, pid := uuid.New(), uuid.New()
	c := &client{}
	// The fast path and the decoder agree, whatever the field order.
	for _, raw := range []string{
		`{"task":{"id":"` + id.String() + `","role":"QA"}}`,
		`{"task":{"role":"QA","id":"` + id.String() + `"}}`,
		`{ "task": { "id": "` + id.String() + `" } }`,
	} {
		rec := &submitRecord{units: []unit{{}}}
		if err := c.parse(rec, []byte(raw)); err != nil || len(rec.ids) != 1 || rec.ids[0] != id {
			t.Errorf("parse(%s) = %v, %v", raw, rec.ids, err)
		}
	}
	for _, raw := range []string{`{}`, `{"task":{"id":"nope"}}`, `[`, `{"task":{"id":"00000000-0000-0000-0000-000000000000"}}`} {
		if err := c.parse(&submitRecord{units: []unit{{}}}, []byte(raw)); err == nil {
			t.Errorf("parse(%s): no error", raw)
		}
	}
	rec := &submitRecord{units: []unit{{pipeline: true}}, pipeline: true}
	raw := `{"pipeline_id":"` + pid.String() + `","task":{"id":"` + id.String() + `"}}`
	if err := c.parse(rec, []byte(raw)); err != nil || rec.ids[0] != pid || rec.arch != id {
		t.Errorf("pipeline answer: ids %v arch %v err %v", rec.ids, rec.arch, err)
	}
	c.batch = true
	rec = &submitRecord{units: []unit{{}, {}}}
	if err := c.parse(rec, []byte(`{"tasks":[{"id":"`+id.String()+`"}]}`)); err == nil {
		t.Error("a batch answer with fewer tasks than sent: no error")
	}
	if got := statusError(429, []byte(`{"error":{"code":"overloaded","message":"x"}}`)); got != "429 Too Many Requests (overloaded)" {
		t.Errorf("statusError = %q", got)
	}
}
