package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuiltinScenariosParse(t *testing.T) {
	t.Parallel()
	names := BuiltinNames()
	for _, want := range []string{"seed-750", "burst-500", "saturation", "overload", "pipeline", "soak", "chaos", "scaling"} {
		if !contains(names, want) {
			t.Errorf("built-in scenario %q missing (have %v)", want, names)
		}
	}
	for _, n := range names {
		for _, quick := range []bool{false, true} {
			s, err := LoadScenario("", n, quick)
			if err != nil {
				t.Errorf("%s (quick %v): %v", n, quick, err)
				continue
			}
			if s.Name != n {
				t.Errorf("%s.json is named %q", n, s.Name)
			}
			if _, err := s.Expand(); err != nil {
				t.Errorf("%s: expanding variants: %v", n, err)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestQuickAndPatches(t *testing.T) {
	t.Parallel()
	s, err := LoadScenario("", "soak", true, []byte(`{"load":{"duration":"45s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Load.Duration.D(); got != 45*time.Second {
		t.Errorf("duration %s, want the patch's 45s (applied after quick)", got)
	}
	if s.Load.Rate != 500 || s.Workers.FailRate != 0.01 {
		t.Errorf("the patch changed other fields: rate %g fail rate %g", s.Load.Rate, s.Workers.FailRate)
	}
	q, err := LoadScenario("", "seed-750", true)
	if err != nil {
		t.Fatal(err)
	}
	if q.Load.Duration.D() != 15*time.Second || q.Warmup.D() != 2*time.Second {
		t.Errorf("quick seed-750: duration %s warmup %s", q.Load.Duration, q.Warmup)
	}
}

func TestScenarioValidation(t *testing.T) {
	t.Parallel()
	base := `"name":"x","load":{"rate":100,"duration":"1s"}`
	cases := []struct {
		name, json, want string
	}{
		// A minimal valid scenario.
		{"minimal", `{` + base + `}`, ""},
		// Unknown fields are errors, with the field named.
		{"unknown field", `{` + base + `,"wokers":{}}`, `unknown field "wokers"`},
		// Names are restricted (they become directory names).
		{"bad name", `{"name":"../x","load":{"rate":1,"duration":"1s"}}`, "name:"},
		{"no rate", `{"name":"x","load":{"duration":"1s"}}`, "load.rate:"},
		{"no duration", `{"name":"x","load":{"rate":5}}`, "load.duration:"},
		{"bad mode", `{"name":"x","load":{"mode":"fast","rate":5,"duration":"1s"}}`, "load.mode:"},
		{"bad duration", `{"name":"x","load":{"rate":5,"duration":"soon"}}`, `duration "soon"`},
		{"bad roles", `{` + base + `}`, ""},
		{"role mix", `{"name":"x","load":{"rate":5,"duration":"1s","roles":"CEO=1"}}`, "load.roles:"},
		{"fraction", `{"name":"x","load":{"rate":5,"duration":"1s","pipeline_fraction":2}}`, "load.pipeline_fraction:"},
		{"workers", `{` + base + `,"workers":{"count":100}}`, "workers.count:"},
		{"fail rate", `{` + base + `,"workers":{"fail_rate":-1}}`, "workers.fail_rate:"},
		{"rss", `{` + base + `,"slo":{"max_rss":"lots"}}`, "slo.max_rss:"},
		{"reserved flag", `{` + base + `,"workers":{"args":["--prefix=x"]}}`, "is set by the orchestrator"},
		{"search factor and step", `{"name":"x","load":{},"search":{"start":10,"max":100,"factor":2,"step":10,"step_duration":"1s"}}`, "exactly one of factor"},
		{"search range", `{"name":"x","load":{},"search":{"start":100,"max":10,"step_duration":"1s"}}`, "start <= max"},
		{"search steps", `{"name":"x","load":{},"search":{"start":1,"max":1000,"step":1,"step_duration":"1s"}}`, "at most 60"},
		{"rate from", `{` + base + `,"rate_from":{"scenario":"saturation","factor":0}}`, "rate_from.factor:"},
		{"fault kind", `{` + base + `,"faults":[{"kind":"flood","at":"1s"}]}`, "faults[0].kind:"},
		{"restart needs private", `{` + base + `,"faults":[{"kind":"restart_redis","at":"1s"}]}`, "needs backends.redis: private"},
		{"cluster needs private", `{` + base + `,"backends":{"redis_masters":3}}`, "needs redis: private"},
		{"variant names", `{` + base + `,"variants":[{"name":"a","patch":{}},{"name":"a","patch":{}}]}`, "used twice"},
		{"trailing", `{` + base + `} {}`, "trailing data"},
		{"not json", `name: x`, "invalid character"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeScenario(strings.NewReader(c.json))
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("no error, want one containing %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestScenarioReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := DecodeScenario(strings.NewReader(`{"name":"X","load":{"rate":-1,"duration":"1s"},"workers":{"count":0}}`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"name:", "load.rate:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q misses %q", err, want)
		}
	}
}

func TestExpandVariants(t *testing.T) {
	t.Parallel()
	s, err := LoadScenario("", "scaling", true)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := s.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 4 {
		t.Fatalf("%d runs, want 4", len(runs))
	}
	if runs[1].Variant != "w2-r1" || runs[1].Scenario.Workers.Count != 2 || runs[1].Scenario.Backends.RedisMasters != 1 {
		t.Errorf("variant 2: %+v workers %d masters %d", runs[1].Variant, runs[1].Scenario.Workers.Count, runs[1].Scenario.Backends.RedisMasters)
	}
	if runs[2].Scenario.Backends.RedisMasters != 3 || runs[2].Scenario.Load.Duration.D() != 10*time.Second {
		t.Errorf("variant 3 lost the base (quick duration %s) or its patch (masters %d)", runs[2].Scenario.Load.Duration, runs[2].Scenario.Backends.RedisMasters)
	}
	if runs[0].Scenario.Variants != nil {
		t.Error("an expanded run still has variants")
	}
}

func TestOrderPutsDerivedRatesLast(t *testing.T) {
	t.Parallel()
	var ss []*Scenario
	for _, n := range []string{"overload", "seed-750", "saturation", "soak"} {
		s, err := LoadScenario("", n, false)
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	var got []string
	for _, s := range Order(ss) {
		got = append(got, s.Name)
	}
	want := "seed-750 saturation overload soak"
	if strings.Join(got, " ") != want {
		t.Errorf("order %v, want %s", got, want)
	}
	if all := AllNames(); strings.Join(all[:6], " ") != "seed-750 burst-500 saturation overload pipeline soak" {
		t.Errorf("AllNames %v", all)
	}
}

func TestScenarioFileFromDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mine.json"), []byte(`{"name":"mine","load":{"rate":10,"duration":"2s"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadScenario(dir, "mine", false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Workers.Count != 1 || s.DrainTimeout.D() != DefaultDrainTimeout {
		t.Errorf("defaults not applied: %+v", s)
	}
	if _, err := LoadScenario("", filepath.Join(dir, "mine.json"), false); err != nil {
		t.Errorf("by path: %v", err)
	}
	if _, err := LoadScenario("", "nope", false); err == nil || !strings.Contains(err.Error(), "built in:") {
		t.Errorf("unknown name: %v", err)
	}
}

// FuzzDecodeScenario: any input either decodes into a scenario that
// validates and survives a JSON round trip, or is refused with an error.
func FuzzDecodeScenario(f *testing.F) {
	for _, n := range BuiltinNames() {
		b, err := builtin.ReadFile("scenarios/" + n + ".json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"name":"x","load":{"rate":1e308,"duration":1e300}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeScenario(bytes.NewReader(data))
		if err != nil {
			return
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if _, err := DecodeScenario(bytes.NewReader(b)); err != nil {
			t.Fatalf("a valid scenario does not decode after a round trip: %v\n%s", err, b)
		}
		if _, err := s.Expand(); err != nil && len(s.Variants) == 0 {
			t.Fatalf("expand: %v", err)
		}
	})
}

// A patch replaces arrays whole: a quick fault list must not inherit the
// base list's fields (json.Unmarshal into an existing slice would).
func TestPatchReplacesArrays(t *testing.T) {
	t.Parallel()
	base := `{"name":"x","load":{"rate":1,"duration":"60s"},"backends":{"redis":"private"},
		"faults":[{"kind":"kill_producer","at":"30s","every":"45s"}]}`
	s, err := DecodeScenario(strings.NewReader(base), []byte(`{"faults":[{"kind":"kill_producer","at":"20s"}],"load":{"duration":"10s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Faults) != 1 || s.Faults[0].Every != 0 || s.Faults[0].At.D() != 20*time.Second {
		t.Errorf("faults %+v: want the patch's list only", s.Faults)
	}
	if s.Load.Rate != 1 || s.Load.Duration.D() != 10*time.Second || s.Backends.Redis != BackendPrivate {
		t.Errorf("objects must merge: %+v %+v", s.Load, s.Backends)
	}
	if _, err := DecodeScenario(strings.NewReader(base), []byte(`{"workers":{"cuont":2}}`)); err == nil || !strings.Contains(err.Error(), "cuont") {
		t.Errorf("a patch's unknown field: %v", err)
	}
	if _, err := DecodeScenario(strings.NewReader(base), []byte(`[1]`)); err == nil {
		t.Error("a non-object patch was accepted")
	}
}
