package bench

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/agentmesh/agentmesh/loadgen"
)

// search runs the step search of a saturation scenario: rates from Start,
// growing by Factor (or Step) while each step meets the SLO, then Refine
// bisection steps between the last passing and the first failing rate.
// Each step starts from empty queues (waitIdle). The result's Rate is the
// highest passing rate, its Load that step's result.
func (r *scenarioRun) search(ctx context.Context) error {
	sr := r.sc.Search
	var best *loadgen.Result
	bestRate, firstFail := 0.0, 0.0
	try := func(rate float64) (bool, error) {
		if err := r.waitIdle(ctx); err != nil {
			return false, err
		}
		n := len(r.res.Steps) + 1
		r.progress("step %d: %s/s for %s", n, fmtRate(rate), sr.StepDuration)
		l, err := r.runPhase(ctx, phase{name: fmt.Sprintf("step%d", n), rate: rate, duration: sr.StepDuration.D(), series: true})
		if err != nil {
			return false, err
		}
		sum := summarize(l, r.res.Ceiling.TasksPerSec())
		var failed []string
		for _, c := range loadChecks(r.sc, l, &sum) {
			if !c.Pass {
				failed = append(failed, fmt.Sprintf("%s: %s (want %s)", c.Name, c.Got, c.Want))
			}
		}
		trimmed := *l
		trimmed.Series = nil
		step := SearchStep{Rate: rate, Pass: len(failed) == 0, Failed: failed, Summary: sum, Load: &LoadResult{&trimmed}}
		r.res.Steps = append(r.res.Steps, step)
		verdict := "pass"
		if !step.Pass {
			verdict = "FAIL: " + strings.Join(failed, "; ")
		}
		r.progress("step %d: %s/s → %s tasks/s, p99 %.1f ms, errors %d: %s", n, fmtRate(rate),
			fmtRate(sum.TasksPerSec), sum.P99MS, sum.Errors, verdict)
		if step.Pass && rate > bestRate {
			best, bestRate = l, rate
		}
		return step.Pass, nil
	}
	for rate := sr.Start; rate <= sr.Max; rate = roundRate(sr.next(rate)) {
		pass, err := try(rate)
		if err != nil {
			return err
		}
		if !pass {
			firstFail = rate
			break
		}
	}
	// Nothing passed: halve the rate (up to 4 times, not under 10/s), so
	// a slow machine still gets a figure.
	for rate := roundRate(sr.Start / 2); bestRate == 0 && rate >= 10 && len(r.res.Steps) < 5; rate = roundRate(rate / 2) {
		pass, err := try(rate)
		if err != nil {
			return err
		}
		if !pass {
			firstFail = rate
		}
	}
	for k := 0; k < sr.Refine && firstFail > 0 && bestRate > 0; k++ {
		mid := roundRate((bestRate + firstFail) / 2)
		if mid <= bestRate || mid >= firstFail {
			break
		}
		pass, err := try(mid)
		if err != nil {
			return err
		}
		if !pass {
			firstFail = mid
		}
	}
	r.res.Rate = bestRate
	if best == nil {
		r.note("no step met the SLO; the first step is reported")
		best = r.res.Steps[0].Load.Result
	}
	if firstFail == 0 {
		r.note("every step up to search.max passed: the sustainable rate is at least %s/s", fmtRate(bestRate))
	}
	r.res.Load = &LoadResult{best}
	r.res.Summary = summarize(best, r.res.Ceiling.TasksPerSec())
	r.progress("sustainable rate %s/s (%s tasks/s, %.0f%% of the ceiling)", fmtRate(bestRate),
		fmtRate(r.res.Summary.TasksPerSec), 100*r.res.Summary.CeilingRatio)
	return nil
}

// roundRate rounds a rate to 2 significant digits past 100 (1400, 1960 →
// 2000), keeping step rates readable.
func roundRate(x float64) float64 {
	if x < 100 {
		return math.Round(x)
	}
	mag := math.Pow(10, math.Floor(math.Log10(x))-1)
	return math.Round(x/mag) * mag
}
