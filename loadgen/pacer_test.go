package loadgen

import (
	"testing"
	"time"
)

func TestPacers(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name  string
		p     Pacer
		hits  []uint64
		want  []time.Duration
		ended uint64 // first hit the schedule does not have (0: none checked)
	}{
		// 1000/s: one hit every millisecond from 0.
		{"constant", ConstantPacer{PerSecond: 1000}, []uint64{0, 1, 2, 999, 1000, 123456},
			[]time.Duration{0, ms, 2 * ms, 999 * ms, time.Second, 123456 * ms}, 0},
		// 3/s: thirds of a second, rounded to the nanosecond.
		{"constant thirds", ConstantPacer{PerSecond: 3}, []uint64{1, 2, 3},
			[]time.Duration{333333333, 666666667, time.Second}, 0},
		// 0 → 1000/s over 1s: hits(t) = 500t², so hit n is due at √(n/500) s;
		// 500 hits in the ramp, then 1000/s.
		{"ramp up from zero", LinearPacer{From: 0, To: 1000, Over: time.Second}, []uint64{0, 5, 125, 320, 500, 501, 1500},
			[]time.Duration{0, 100 * ms, 500 * ms, 800 * ms, time.Second, 1001 * ms, 2 * time.Second}, 0},
		// 100 → 300/s over 2s: hits(t) = 100t + 50t²; t=1 → 150, t=2 → 400.
		{"ramp between rates", LinearPacer{From: 100, To: 300, Over: 2 * time.Second}, []uint64{0, 150, 400, 700},
			[]time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}, 0},
		// 300 → 100/s over 2s: hits(t) = 300t − 50t²; t=1 → 250, t=2 → 400.
		{"ramp down", LinearPacer{From: 300, To: 100, Over: 2 * time.Second}, []uint64{250, 400, 500},
			[]time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, 0},
		// A flat ramp is a constant rate.
		{"flat ramp", LinearPacer{From: 200, To: 200, Over: time.Second}, []uint64{1, 200, 300},
			[]time.Duration{5 * ms, time.Second, 1500 * ms}, 0},
		// 100/s for 1s (hits 0-99), pause 1s, 1000/s for 0.5s (hits 100-599).
		{"steps", StepPacer{Steps: Steps{{100, time.Second}, {0, time.Second}, {1000, 500 * ms}}},
			[]uint64{0, 99, 100, 101, 599}, []time.Duration{0, 990 * ms, 2 * time.Second, 2001 * ms, 2499 * ms}, 600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for i, n := range tt.hits {
				got, ok := tt.p.At(n)
				if !ok || got != tt.want[i] {
					t.Errorf("At(%d) = %v, %v; want %v, true", n, got, ok, tt.want[i])
				}
			}
			if tt.ended > 0 {
				if got, ok := tt.p.At(tt.ended); ok {
					t.Errorf("At(%d) = %v, true; want the schedule to have ended", tt.ended, got)
				}
			}
			var prev time.Duration
			for n := range uint64(2000) { // non-decreasing
				at, ok := tt.p.At(n)
				if !ok {
					break
				}
				if at < prev {
					t.Fatalf("At(%d) = %v < At(%d) = %v", n, at, n-1, prev)
				}
				prev = at
			}
		})
	}
}

func TestPacerRates(t *testing.T) {
	t.Parallel()
	ramp := LinearPacer{From: 100, To: 300, Over: 2 * time.Second}
	steps := StepPacer{Steps: Steps{{100, time.Second}, {0, time.Second}, {1000, time.Second}}}
	tests := []struct {
		p    Pacer
		at   time.Duration
		want float64
	}{
		{ConstantPacer{PerSecond: 42}, time.Hour, 42},
		{ramp, 0, 100},
		{ramp, time.Second, 200},
		{ramp, 5 * time.Second, 300}, // held after the ramp
		{steps, 500 * time.Millisecond, 100},
		{steps, 1500 * time.Millisecond, 0},
		{steps, 2 * time.Second, 1000},
		{steps, 3 * time.Second, 0}, // ended
	}
	for _, tt := range tests {
		if got := tt.p.Rate(tt.at); got != tt.want {
			t.Errorf("%s: Rate(%v) = %v, want %v", tt.p, tt.at, got, tt.want)
		}
	}
}
