package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// Work is a simulated work duration distribution. The zero value does no work.
type Work struct {
	Kind string        // "fixed", "uniform" or "exp"
	A, B time.Duration // fixed: A; uniform: [A, B]; exp: mean A
}

// ParseWork reads a distribution: "0" (none), "20ms" (fixed),
// "10ms-80ms" (uniform) or "exp:20ms" (exponential with that mean).
func ParseWork(s string) (Work, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "0":
		return Work{}, nil
	case strings.HasPrefix(s, "exp:"):
		d, err := time.ParseDuration(s[4:])
		if err != nil || d < 0 {
			return Work{}, fmt.Errorf("work %q: want exp:<mean duration>", s)
		}
		return Work{Kind: "exp", A: d}, nil
	case strings.Contains(s, "-"):
		lo, hi, _ := strings.Cut(s, "-")
		a, err1 := time.ParseDuration(lo)
		b, err2 := time.ParseDuration(hi)
		if err1 != nil || err2 != nil || a < 0 || b < a {
			return Work{}, fmt.Errorf("work %q: want <min>-<max>, e.g. 10ms-80ms", s)
		}
		return Work{Kind: "uniform", A: a, B: b}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return Work{}, fmt.Errorf("work %q: want a duration, <min>-<max> or exp:<mean>", s)
	}
	return Work{Kind: "fixed", A: d}, nil
}

// String renders w in the syntax ParseWork reads.
func (w Work) String() string {
	switch w.Kind {
	case "fixed":
		return w.A.String()
	case "uniform":
		return w.A.String() + "-" + w.B.String()
	case "exp":
		return "exp:" + w.A.String()
	}
	return "0"
}

// Draw returns one duration from the distribution.
func (w Work) Draw() time.Duration {
	switch w.Kind {
	case "fixed":
		return w.A
	case "uniform":
		return w.A + time.Duration(rand.Int64N(int64(w.B-w.A)+1))
	case "exp":
		return time.Duration(rand.ExpFloat64() * float64(w.A))
	}
	return 0
}

// Sim tells a simulated handler how to behave for one task, from the payload's
// optional "sim" object: {"sim": {"work_ms": 50, "fail": true, "fail_attempts": 2}}.
// fail fails every attempt (the task ends dead-lettered); fail_attempts fails
// the first N attempts and then succeeds.
type Sim struct {
	WorkMS       *int `json:"work_ms,omitempty"`
	Fail         bool `json:"fail,omitempty"`
	FailAttempts int  `json:"fail_attempts,omitempty"`
}

var simKey = []byte(`"sim"`)

func parseSim(payload json.RawMessage) (Sim, bool) {
	if !bytes.Contains(payload, simKey) { // the hot path: no JSON decoding
		return Sim{}, false
	}
	var p struct {
		Sim *Sim `json:"sim"`
	}
	if json.Unmarshal(payload, &p) != nil || p.Sim == nil {
		return Sim{}, false
	}
	return *p.Sim, true
}

// ErrSimulated is the error of a simulated failure.
var ErrSimulated = errors.New("simulated failure")

// Handler runs one task. A nil error completes it; an error fails the
// attempt (retried with backoff until max_attempts, then dead-lettered).
type Handler func(ctx context.Context, t *task.Task) error

// SimHandler returns the default handler of a role: it waits a duration drawn
// from work (or the payload's sim.work_ms) and fails with probability
// failRate (or as the payload's sim says).
func SimHandler(work Work, failRate float64) Handler {
	return func(ctx context.Context, t *task.Task) error {
		d := work.Draw()
		sim, ok := parseSim(t.Payload)
		if ok && sim.WorkMS != nil {
			d = time.Duration(*sim.WorkMS) * time.Millisecond
		}
		if d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return fmt.Errorf("interrupted after part of %s of work: %w", d, context.Cause(ctx))
			}
		}
		switch {
		case ok && sim.Fail:
			return fmt.Errorf("%w (payload asks every attempt to fail)", ErrSimulated)
		case ok && t.Attempts <= sim.FailAttempts:
			return fmt.Errorf("%w (payload asks attempts 1-%d to fail)", ErrSimulated, sim.FailAttempts)
		case failRate > 0 && rand.Float64() < failRate:
			return fmt.Errorf("%w (failure rate %.3f)", ErrSimulated, failRate)
		}
		return nil
	}
}
