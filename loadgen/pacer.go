package loadgen

import (
	"fmt"
	"math"
	"time"
)

// Pacer is an open-loop schedule: it fixes when every request is intended to
// leave, independently of how the server answers. Where vegeta's Pacer says
// how long to wait before the next hit, this one names the intended send time
// of hit n itself, so that every latency can be measured from it (as wrk2
// does) and a stall anywhere is charged to every request it delayed.
type Pacer interface {
	// At returns the intended send time of hit n (counted from 0) as an
	// offset from the start of the run, and false when the schedule has no
	// hit n. At is non-decreasing in n.
	At(n uint64) (time.Duration, bool)
	// Rate returns the target rate, in hits per second, at offset t.
	Rate(t time.Duration) float64
	// String describes the schedule for reports.
	String() string
}

// seconds converts a duration in (fractional) seconds to a Duration, rounded
// to the nanosecond.
func seconds(s float64) time.Duration {
	return time.Duration(math.Round(s * 1e9))
}

// ConstantPacer sends PerSecond hits per second: hit n is due at
// n/PerSecond.
type ConstantPacer struct {
	PerSecond float64
}

// At implements Pacer.
func (p ConstantPacer) At(n uint64) (time.Duration, bool) {
	if !(p.PerSecond > 0) {
		return 0, false
	}
	return seconds(float64(n) / p.PerSecond), true
}

// Rate implements Pacer.
func (p ConstantPacer) Rate(time.Duration) float64 { return p.PerSecond }

func (p ConstantPacer) String() string { return fmt.Sprintf("constant %s/s", fmtRate(p.PerSecond)) }

// LinearPacer ramps the rate linearly from From to To over Over, then holds
// To. The hits sent by offset t are the area under the rate line,
// From·t + (To−From)·t²/(2·Over), and hit n is due when that area reaches n.
type LinearPacer struct {
	From, To float64
	Over     time.Duration
}

// At implements Pacer.
func (p LinearPacer) At(n uint64) (time.Duration, bool) {
	over := p.Over.Seconds()
	x := float64(n)
	if over <= 0 {
		return ConstantPacer{p.To}.At(n)
	}
	rampHits := (p.From + p.To) / 2 * over
	if x >= rampHits {
		if !(p.To > 0) {
			return 0, false
		}
		return p.Over + seconds((x-rampHits)/p.To), true
	}
	// Solve a·t² + b·t = x for t ≥ 0 with a = (To−From)/(2·Over), b = From,
	// in the form 2x / (b + √(b² + 4ax)), which stays exact when a or b is 0.
	a := (p.To - p.From) / (2 * over)
	b := p.From
	if x == 0 {
		return 0, true
	}
	return seconds(2 * x / (b + math.Sqrt(b*b+4*a*x))), true
}

// Rate implements Pacer.
func (p LinearPacer) Rate(t time.Duration) float64 {
	if t >= p.Over || p.Over <= 0 {
		return p.To
	}
	return p.From + (p.To-p.From)*t.Seconds()/p.Over.Seconds()
}

func (p LinearPacer) String() string {
	return fmt.Sprintf("ramp %s/s → %s/s over %s", fmtRate(p.From), fmtRate(p.To), p.Over)
}

// StepPacer runs each step's constant rate for its duration, one after the
// other, and ends after the last.
type StepPacer struct {
	Steps Steps
}

// At implements Pacer.
func (p StepPacer) At(n uint64) (time.Duration, bool) {
	x := float64(n)
	var start time.Duration
	var before float64 // hits due before the current step
	for _, st := range p.Steps {
		hits := st.Rate * st.Duration.Seconds()
		if x < before+hits {
			return start + seconds((x-before)/st.Rate), true
		}
		before += hits
		start += st.Duration
	}
	return 0, false
}

// Rate implements Pacer.
func (p StepPacer) Rate(t time.Duration) float64 {
	var start time.Duration
	for _, st := range p.Steps {
		if t < start+st.Duration {
			return st.Rate
		}
		start += st.Duration
	}
	return 0
}

func (p StepPacer) String() string { return "steps " + p.Steps.String() + " (rate/s:duration)" }

// fmtRate renders a rate without useless decimals.
func fmtRate(r float64) string {
	if r == math.Trunc(r) {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.2f", r)
}
