package bench

import (
	"fmt"
	"slices"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/agentmesh/agentmesh/loadgen"
)

// checkNoLoss names the zero-loss check.
const checkNoLoss = "nothing lost or duplicated"

// checkQueuesEmpty names the check that nothing is left in Redis.
const checkQueuesEmpty = "queues empty after the drain"

// loadChecks are the SLO checks a load result alone decides: latency,
// errors, loss, throughput and whether the generator kept its schedule.
func loadChecks(sc *Scenario, l *loadgen.Result, s *Summary) []Check {
	slo := &sc.SLO
	// A burst (a count at an unreachable rate) has no schedule to keep.
	burst := sc.Load.Requests > 0 && sc.Search == nil
	var out []Check
	add := func(name, want, got string, pass bool) {
		out = append(out, Check{Name: name, Want: want, Got: got, Pass: pass})
	}
	if slo.P99 > 0 {
		add("p99 end to end", "≤ "+fmtMS(slo.P99.D()), fmt.Sprintf("%.2f ms", s.P99MS),
			s.Completed > 0 && s.P99MS <= msOf(slo.P99.D()))
	}
	if r := slo.MaxErrorRatio; r != nil {
		add("error ratio", fmt.Sprintf("≤ %g", *r), fmt.Sprintf("%.4g (%d of %d)", s.ErrorRatio, s.Errors, s.Scheduled),
			s.ErrorRatio <= *r)
	}
	if slo.ZeroLoss {
		add(checkNoLoss, "0 lost, 0 duplicates, 0 unresolved",
			fmt.Sprintf("%d lost, %d duplicates, %d unresolved", s.Lost, s.Duplicates, s.Unresolved),
			s.Lost == 0 && s.Duplicates == 0 && s.Unresolved == 0)
	}
	if slo.MinThroughputRatio > 0 && l.Mode == loadgen.OpenLoop && l.TargetRate > 0 && !burst {
		ratio := l.Throughput / l.TargetRate
		add("throughput / target", fmt.Sprintf("≥ %g", slo.MinThroughputRatio), fmt.Sprintf("%.3f", ratio),
			ratio >= slo.MinThroughputRatio)
	}
	if l.Mode == loadgen.OpenLoop && l.TargetRate > 0 && (slo.P99 > 0 || slo.MinThroughputRatio > 0) && !burst {
		ratio := l.AchievedRate / l.TargetRate
		add("generator kept its schedule", fmt.Sprintf("sent ≥ %.0f%% of target", 100*loadgen.MinRateRatio),
			fmt.Sprintf("%.1f%%", 100*ratio), ratio >= loadgen.MinRateRatio)
	}
	return out
}

// evaluate fills the summary's process figures and runs every SLO check.
func (r *scenarioRun) evaluate() {
	res, slo := r.res, &r.sc.SLO
	if res.Load == nil {
		return
	}
	r.processFigures()
	s := &res.Summary
	checks := loadChecks(r.sc, res.Load.Result, s)
	if a := res.Audit; a != nil {
		// The store is the judge of loss: units whose completion event was
		// missed are not lost.
		s.Lost = a.Lost
		for i, c := range checks {
			if c.Name == checkNoLoss {
				checks[i].Got = fmt.Sprintf("%d lost after the audit (the generator reported %d; PostgreSQL has %d of them completed, %d dead-lettered), %d duplicates, %d unresolved",
					a.Lost, res.Load.Tasks.Lost, a.Completed, a.Dead, s.Duplicates, s.Unresolved)
				checks[i].Pass = a.Lost == 0 && s.Duplicates == 0 && s.Unresolved == 0
			}
		}
	}
	add := func(name, want, got string, pass bool) {
		checks = append(checks, Check{Name: name, Want: want, Got: got, Pass: pass})
	}
	if r.sc.Search != nil {
		add("sustainable rate found", "> 0", fmtRate(res.Rate)+"/s", res.Rate > 0)
	}
	if slo.MaxRSS != "" {
		limit, _ := ParseBytes(slo.MaxRSS)
		add("peak RSS of every mesh process", "≤ "+slo.MaxRSS, fmtBytes(s.RSSMaxBytes), s.RSSMaxBytes > 0 && s.RSSMaxBytes <= limit)
	}
	if slo.ExpectRejections {
		add("overload shed with 429/503", "> 0", fmt.Sprintf("%d", s.Rejected), s.Rejected > 0)
	}
	if slo.MinCeilingRatio > 0 {
		add("throughput / ceiling", fmt.Sprintf("≥ %g", slo.MinCeilingRatio), fmt.Sprintf("%.3f", s.CeilingRatio),
			s.CeilingRatio >= slo.MinCeilingRatio)
	}
	if slo.MaxP99Drift > 0 {
		first, last := p99Thirds(res.Load.Result)
		add("p99 drift (last third / first third)", fmt.Sprintf("≤ %g", slo.MaxP99Drift),
			fmt.Sprintf("%.2f (%.1f → %.1f ms)", ratio(last, first), first, last), ratio(last, first) <= slo.MaxP99Drift)
	}
	if slo.MaxRSSDrift > 0 {
		first, last := r.rssThirds()
		add("RSS drift (last third / first third)", fmt.Sprintf("≤ %g", slo.MaxRSSDrift),
			fmt.Sprintf("%.2f (%s → %s)", ratio(float64(last), float64(first)), fmtBytes(first), fmtBytes(last)),
			ratio(float64(last), float64(first)) <= slo.MaxRSSDrift)
	}
	if slo.ZeroLoss && res.Leftover != nil {
		add(checkQueuesEmpty, "0", fmt.Sprintf("%d pending, %d active, %d delayed",
			res.Leftover.Pending, res.Leftover.Active, res.Leftover.Delayed), res.Leftover.Pending+res.Leftover.Active == 0)
	}
	checks = append(checks, r.stopCheck())
	res.Checks = checks
	res.Pass = !slices.ContainsFunc(checks, func(c Check) bool { return !c.Pass })
}

// stopCheck checks that every mesh process stopped on SIGTERM with status 0
// within the bound (processes killed by a fault are not counted).
func (r *scenarioRun) stopCheck() Check {
	c := Check{Name: "graceful stop", Want: fmt.Sprintf("exit 0 within %s of SIGTERM", r.sc.StopTimeout), Pass: true}
	var slowest time.Duration
	for _, p := range r.res.Processes {
		if p.Stop == nil || (p.Kind != "producer" && p.Kind != "worker") {
			continue
		}
		slowest = max(slowest, time.Duration(p.Stop.Seconds*float64(time.Second)))
		if p.Stop.Killed || p.Stop.ExitCode != 0 {
			c.Pass = false
			c.Got += fmt.Sprintf("%s: exit %d, killed %v; ", p.Name, p.Stop.ExitCode, p.Stop.Killed)
		}
	}
	if c.Pass {
		c.Got = "all, slowest " + slowest.Round(time.Millisecond).String()
	}
	return c
}

// processFigures sets the summary's peak RSS of the mesh processes and the
// cores each kind used on average over the measured phase: every process's
// CPU integrated over the part of the phase it lived, summed per kind, over
// the phase's length — so processes of one kind that ran one after another
// (the load generators of a step search) add up to one, not to their count.
func (r *scenarioRun) processFigures() {
	s := &r.res.Summary
	s.CPU = map[string]float64{}
	lo, hi := r.mainStart.Milliseconds(), r.mainEnd.Milliseconds()
	coreMS := map[string]float64{}
	for _, p := range r.res.Processes {
		prev := int64(-1)
		for _, smp := range p.Samples {
			if p.Kind == "producer" || p.Kind == "worker" {
				s.RSSMaxBytes = max(s.RSSMaxBytes, smp.RSS)
			}
			// A sample's CPU is the mean since the previous sample.
			if prev >= 0 && smp.TMS > lo && prev < hi {
				coreMS[p.Kind] += smp.CPU * float64(min(smp.TMS, hi)-max(prev, lo))
			}
			prev = smp.TMS
		}
	}
	if hi <= lo {
		return
	}
	for kind, ms := range coreMS {
		s.CPU[kind] = round3(ms / float64(hi-lo))
	}
}

// rssThirds is the peak RSS of the mesh processes in the first and the last
// third of the measured phase.
func (r *scenarioRun) rssThirds() (first, last uint64) {
	lo, hi := r.mainStart.Milliseconds(), r.mainEnd.Milliseconds()
	third := (hi - lo) / 3
	for _, p := range r.res.Processes {
		if p.Kind != "producer" && p.Kind != "worker" {
			continue
		}
		for _, s := range p.Samples {
			switch {
			case s.TMS >= lo && s.TMS < lo+third:
				first = max(first, s.RSS)
			case s.TMS > hi-third && s.TMS <= hi:
				last = max(last, s.RSS)
			}
		}
	}
	return first, last
}

// p99Thirds is the end-to-end p99 (ms) of the first and the last third of
// the time series.
func p99Thirds(l *loadgen.Result) (first, last float64) {
	n := len(l.Series)
	if n < 3 {
		return 0, 0
	}
	merge := func(ivs []loadgen.Interval) float64 {
		h := hdr.New(1, 3_600_000_000, 3)
		for _, iv := range ivs {
			if iv.Latency.Corrected != nil {
				h.Merge(iv.Latency.Corrected.HDRHistogram())
			}
		}
		return float64(h.ValueAtQuantile(99)) / 1000
	}
	return merge(l.Series[:n/3]), merge(l.Series[n-n/3:])
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		if a <= 0 {
			return 1
		}
		return 999
	}
	return a / b
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtMS(d time.Duration) string { return fmt.Sprintf("%g ms", msOf(d)) }

func fmtBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
