package hostile

import (
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/bench"
	"github.com/agentmesh/agentmesh/loadgen"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/worker"
)

// Fuzz targets for the decoders of outside input that had none (the
// producer's bodies and query parameters, queue members, scenario and
// result files are fuzzed in their own packages). Each must return an error
// or a value, never panic. Run one with e.g.
//
//	go test -run '^$' -fuzz FuzzDecodeEvents -fuzztime 30s ./hostile

// FuzzDecodeEvents: the events messages workers publish and producers and
// this suite's chaos ledger decode.
func FuzzDecodeEvents(f *testing.F) {
	for _, s := range []string{`[]`, `[{"id":"01890000-0000-7000-8000-000000000000","role":"QA","state":"completed","at_us":1}]`,
		`[{"id":"x"}]`, `{}`, `null`, `[{"role":"NOPE","priority":99}]`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		evs, err := queue.DecodeEvents(s)
		if err != nil && evs != nil {
			t.Fatalf("events and an error: %v", err)
		}
	})
}

// FuzzLoadgenFlags: the load generator's --payload, --roles and --steps.
func FuzzLoadgenFlags(f *testing.F) {
	for _, s := range []string{"256", "64-4096", "128=9,16384=1", "ARCHITECT=1,QA=2", "500:10s,1000:10s", "", "=", "-1", "1e309", "0:0s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := loadgen.ParseSizeDist(s); err == nil {
			_ = d.String()
		}
		_, _ = loadgen.ParseRoleMix(s)
		if st, err := loadgen.ParseSteps(s); err == nil {
			if st.Total() < 0 {
				t.Fatalf("steps %q total %s", s, st.Total())
			}
		}
	})
}

// FuzzParseWork: the worker's --work distribution.
func FuzzParseWork(f *testing.F) {
	for _, s := range []string{"0", "20ms", "10ms-80ms", "exp:20ms", "80ms-10ms", "exp:-1s", "-5ms", "9999999h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = worker.ParseWork(s)
	})
}

// FuzzParseMetrics: bench's Prometheus text parser (it reads every
// process's /metrics).
func FuzzParseMetrics(f *testing.F) {
	for _, s := range []string{"# TYPE a counter\na_total 1\n", `a{b="c",d="\"e"} 1.5e3` + "\n", "a NaN\n", "a{", "a{b=\"\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = bench.ParseMetrics(strings.NewReader(s))
	})
}
