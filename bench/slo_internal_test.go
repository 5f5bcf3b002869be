package bench

import (
	"testing"
	"time"
)

// TestProcessFiguresIntegrateCPU: the cores of a kind are its processes'
// CPU integrated over the measured phase, so load generators that ran one
// after another count once, and a process alive for part of the phase
// counts for that part.
func TestProcessFiguresIntegrateCPU(t *testing.T) {
	samples := func(from, to int64, cpu float64, rss uint64) []Sample {
		var out []Sample
		for ms := from; ms <= to; ms += 500 {
			out = append(out, Sample{TMS: ms, CPU: cpu, RSS: rss})
		}
		return out
	}
	r := &scenarioRun{mainStart: 10 * time.Second, mainEnd: 20 * time.Second, res: &Result{Processes: []ProcessInfo{
		{Kind: "loadgen", Samples: samples(10_000, 15_000, 0.2, 1)}, // first half of the phase
		{Kind: "loadgen", Samples: samples(15_000, 20_000, 0.2, 1)}, // second half
		{Kind: "worker", Samples: samples(0, 30_000, 0.5, 64<<20)},  // the whole run
		{Kind: "producer", Samples: samples(12_000, 14_000, 1, 32<<20)},
	}}}
	r.processFigures()
	want := map[string]float64{"loadgen": 0.2, "worker": 0.5, "producer": 0.2}
	for kind, w := range want {
		if got := r.res.Summary.CPU[kind]; got != w {
			t.Errorf("%s: %.3f cores, want %.3f", kind, got, w)
		}
	}
	if r.res.Summary.RSSMaxBytes != 64<<20 {
		t.Errorf("peak RSS %d, want the worker's %d", r.res.Summary.RSSMaxBytes, 64<<20)
	}
}
