package loadgen

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/mesh/task"
)

func TestParseFlagValues(t *testing.T) {
	t.Parallel()
	steps, err := ParseSteps("500:10s, 1000:1m,0:500ms")
	if err != nil || len(steps) != 3 || steps[1] != (Step{1000, time.Minute}) || steps.Total() != 70500*time.Millisecond {
		t.Fatalf("ParseSteps = %v, %v", steps, err)
	}
	if got := steps.String(); got != "500:10s,1000:1m0s,0:500ms" {
		t.Errorf("Steps.String = %q", got)
	}
	mix, err := ParseRoleMix("architect=2,QA")
	if err != nil || len(mix) != 2 || mix[0] != (RoleWeight{task.Architect, 2}) || mix[1] != (RoleWeight{task.QA, 1}) {
		t.Fatalf("ParseRoleMix = %v, %v", mix, err)
	}
	sizes, err := ParseSizeDist("128=9,1000-2000")
	if err != nil || len(sizes) != 2 || sizes[0] != (SizeRange{128, 128, 9}) || sizes[1] != (SizeRange{1000, 2000, 1}) {
		t.Fatalf("ParseSizeDist = %v, %v", sizes, err)
	}
	if got := sizes.String(); got != "128=9,1000-2000" {
		t.Errorf("SizeDist.String = %q", got)
	}
	for _, bad := range []struct {
		name string
		err  error
	}{
		{"steps without duration", func() error { _, err := ParseSteps("500"); return err }()},
		{"steps negative rate", func() error { _, err := ParseSteps("-1:1s"); return err }()},
		{"steps zero duration", func() error { _, err := ParseSteps("1:0s"); return err }()},
		{"unknown role", func() error { _, err := ParseRoleMix("TESTER"); return err }()},
		{"zero weights", func() error { _, err := ParseRoleMix("QA=0"); return err }()},
		{"payload too large", func() error { _, err := ParseSizeDist("70000"); return err }()},
		{"payload range reversed", func() error { _, err := ParseSizeDist("10-5"); return err }()},
		{"payload not a number", func() error { _, err := ParseSizeDist("big"); return err }()},
	} {
		if bad.err == nil {
			t.Errorf("%s: no error", bad.name)
		}
	}
}

func TestSampling(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	mix := RoleMix{{task.Architect, 3}, {task.QA, 1}, {task.Developer, 0}}
	dist := SizeDist{{100, 100, 1}, {1000, 2000, 1}}
	counts := map[task.Role]int{}
	small := 0
	for range 10000 {
		counts[mix.pick(rng)]++
		s := dist.sample(rng)
		if s == 100 {
			small++
		} else if s < 1000 || s > 2000 {
			t.Fatalf("size %d outside the ranges", s)
		}
	}
	if counts[task.Developer] != 0 || counts[task.Architect] < 7000 || counts[task.Architect] > 8000 {
		t.Errorf("role counts %v, want about 3:1 and no DEVELOPER", counts)
	}
	if small < 4500 || small > 5500 {
		t.Errorf("%d of 10000 sizes were 100, want about half", small)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	p9 := task.Priority(9)
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" = valid
	}{
		{"defaults", Config{}, ""}, // every default is valid
		{"steps take their total", Config{Mode: ModeSteps, Steps: Steps{{1, time.Second}}}, ""},
		{"bad target", Config{Target: "localhost:8080"}, "target"}, // no scheme
		{"unknown mode", Config{Mode: "burst"}, "mode"},
		{"steps without steps", Config{Mode: ModeSteps}, "steps"},
		{"negative rate", Config{Rate: -5}, "rate"},
		{"batch too large", Config{Batch: 1001}, "batch"},
		{"pipelines over 1", Config{PipelineFraction: 1.5}, "pipelines"},
		{"priority out of range", Config{Priority: &p9}, "priority"},
		{"interval too short", Config{Interval: time.Millisecond}, "interval"},
		{"merge needs nothing else", Config{Merge: []string{"a.json"}, Target: "::"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.cfg.WithDefaults()
			err := c.validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("validate = %v, want an error about %q", err, tt.want)
			}
		})
	}
	c := Config{Mode: ModeSteps, Steps: Steps{{1, time.Second}, {2, 2 * time.Second}}}.WithDefaults()
	if c.Duration != 3*time.Second {
		t.Errorf("steps Duration defaulted to %v, want their total 3s", c.Duration)
	}
}
