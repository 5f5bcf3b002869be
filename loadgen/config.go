package loadgen

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// Mode selects how requests are scheduled.
type Mode string

// The scheduling modes. The first three are open-loop: every request has an
// intended send time fixed by a Pacer, whatever the server does. ModeMax is
// closed-loop: Clients concurrent clients each send their next request when
// the previous one finished, so a slow server slows the load down (reports
// label such runs "closed-loop").
const (
	ModeConstant Mode = "constant"
	ModeRamp     Mode = "ramp"
	ModeSteps    Mode = "steps"
	ModeMax      Mode = "max"
)

// Defaults for Config fields left zero.
const (
	DefaultTarget         = "http://127.0.0.1:8080"
	DefaultMode           = ModeConstant
	DefaultRate           = 100.0
	DefaultDuration       = 10 * time.Second
	DefaultClients        = 16
	DefaultBatch          = 1
	DefaultPayload        = "256"
	DefaultSenders        = 512
	DefaultRequestTimeout = 10 * time.Second
	DefaultDrainTimeout   = 10 * time.Second
	DefaultMaxPending     = 1 << 20
	DefaultDupWindow      = time.Minute
	DefaultInterval       = time.Second
	DefaultMaxLag         = 10 * time.Millisecond
	DefaultMaxLostListed  = 1000
	DefaultCheckWorkers   = 16

	// MinRateRatio is the achieved/target rate below which a run is flagged:
	// the generator, not the server, was the bottleneck.
	MinRateRatio = 0.98
	// MaxBatch is the largest batch the producer accepts in one request.
	MaxBatch = 1000
)

// Config describes one load generator run. Zero fields take the documented
// defaults (WithDefaults).
type Config struct {
	// Target is the producer's base URL. Defaults to DefaultTarget.
	Target string
	// Token is sent as "Authorization: Bearer <token>" on every request and on
	// the completion stream, when set.
	Token string

	// Mode is the schedule: constant, ramp, steps or max. Defaults to constant.
	Mode Mode
	// Rate is the target rate in tasks per second: the constant rate, or the
	// rate a ramp ends at. Defaults to 100.
	Rate float64
	// RampFrom is the rate a ramp starts at. Defaults to 0.
	RampFrom float64
	// RampOver is how long a ramp takes to reach Rate; it then holds Rate.
	// Defaults to Duration.
	RampOver time.Duration
	// Steps is the schedule of ModeSteps ("500:10s,1000:10s"); the run ends
	// after the last step.
	Steps Steps
	// Clients is the number of concurrent closed-loop clients of ModeMax.
	// Defaults to 16.
	Clients int

	// Duration bounds the schedule. Defaults to 10s when Requests is 0 too
	// (and, for steps, to the steps' total).
	Duration time.Duration
	// Requests, when positive, stops the run after this many tasks.
	Requests int64

	// Roles weights the roles of single tasks. Defaults to an even mix.
	Roles RoleMix
	// PipelineFraction is the share of units submitted as SDLC pipelines
	// (POST /api/v1/pipelines) instead of single tasks, 0 to 1.
	PipelineFraction float64
	// Payload is the distribution of payload sizes in bytes. Defaults to 256.
	Payload SizeDist
	// Priority, when set, is sent with every task; otherwise the server's
	// default applies.
	Priority *task.Priority
	// Batch is the number of tasks per submit request: 1 posts to
	// /api/v1/tasks, more posts k tasks at once to /api/v1/tasks/batch (each
	// task keeps its own intended time; the request leaves when the last one
	// is due). Defaults to 1.
	Batch int

	// Senders bounds the concurrent submit requests of an open-loop run, and
	// so the keep-alive connections to the target (opened as the
	// concurrency needs them). When all are busy, requests wait, their
	// intended time still counts, and the schedule lag shows it. Defaults to
	// 512.
	Senders int
	// RequestTimeout bounds one HTTP request. Defaults to 10s.
	RequestTimeout time.Duration

	// SubmitOnly skips end-to-end measurement: no completion stream, only
	// submit latency and schedule lag.
	SubmitOnly bool
	// DrainTimeout is how long to wait for completions after the last send
	// before the tasks still pending are checked once with GET. Defaults to 10s.
	DrainTimeout time.Duration
	// MaxPending bounds the tasks accepted and not yet completed (the pending
	// map); a unit due while it is full is not sent and counted as an error.
	// Defaults to 1<<20 (about 80 MB).
	MaxPending int
	// DupWindow is how long (at least) a completed id is remembered to count
	// duplicate completion events; memory is about 20 bytes × rate × 2 ×
	// DupWindow. Defaults to 1m.
	DupWindow time.Duration
	// MaxLostListed bounds the lost tasks listed in the result (all are
	// counted). Defaults to 1000.
	MaxLostListed int

	// Interval is the length of a time-series interval and of the progress
	// period. Defaults to 1s.
	Interval time.Duration
	// MaxLag is the bound on the schedule lag p99 past which the run is
	// flagged. Defaults to 10ms.
	MaxLag time.Duration
	// MetricsAddr, when set, serves Prometheus metrics on this address while
	// the run lasts.
	MetricsAddr string
	// ResultPath, when set, receives the JSON result; "-" sends it to Report
	// and the text report to Progress instead.
	ResultPath string
	// HDRLogPath, when set, receives the interval log in HdrHistogram log
	// format.
	HDRLogPath string
	// Merge, when set, makes Run send no load: it reads these JSON results,
	// merges them and reports the merged run.
	Merge []string
	// Seed seeds the random choices (roles, sizes, pipelines). Defaults to 1.
	Seed uint64

	// Report receives the text report. Defaults to io.Discard.
	Report io.Writer
	// Progress receives a progress line per interval. Defaults to io.Discard.
	Progress io.Writer
	// Logger logs the run. Defaults to a logger that discards.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.Target = cmp.Or(c.Target, DefaultTarget)
	c.Mode = cmp.Or(c.Mode, DefaultMode)
	c.Rate = cmp.Or(c.Rate, DefaultRate)
	c.Clients = cmp.Or(c.Clients, DefaultClients)
	if c.Duration == 0 && c.Requests == 0 {
		c.Duration = DefaultDuration
		if c.Mode == ModeSteps && len(c.Steps) > 0 {
			c.Duration = c.Steps.Total()
		}
	}
	c.RampOver = cmp.Or(c.RampOver, c.Duration)
	if len(c.Roles) == 0 {
		c.Roles = RoleMix{{task.Architect, 1}, {task.Developer, 1}, {task.QA, 1}}
	}
	if len(c.Payload) == 0 {
		c.Payload, _ = ParseSizeDist(DefaultPayload)
	}
	c.Batch = cmp.Or(c.Batch, DefaultBatch)
	c.Senders = cmp.Or(c.Senders, DefaultSenders)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, DefaultDrainTimeout)
	c.MaxPending = cmp.Or(c.MaxPending, DefaultMaxPending)
	c.DupWindow = cmp.Or(c.DupWindow, DefaultDupWindow)
	c.MaxLostListed = cmp.Or(c.MaxLostListed, DefaultMaxLostListed)
	c.Interval = cmp.Or(c.Interval, DefaultInterval)
	c.MaxLag = cmp.Or(c.MaxLag, DefaultMaxLag)
	c.Seed = cmp.Or(c.Seed, 1)
	c.Report = cmp.Or[io.Writer](c.Report, io.Discard)
	c.Progress = cmp.Or[io.Writer](c.Progress, io.Discard)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate reports the first invalid field of a defaulted Config.
func (c *Config) validate() error {
	if len(c.Merge) > 0 {
		return nil
	}
	u, err := url.Parse(c.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("target: %q is not an http(s) URL", c.Target)
	}
	switch c.Mode {
	case ModeConstant, ModeRamp, ModeMax:
	case ModeSteps:
		if len(c.Steps) == 0 {
			return errors.New("steps: mode steps needs at least one step")
		}
	default:
		return fmt.Errorf("mode: unknown mode %q (want constant, ramp, steps or max)", c.Mode)
	}
	checks := []struct {
		bad bool
		msg string
	}{
		{!(c.Rate > 0) || math.IsInf(c.Rate, 0), "rate: must be positive"},
		{c.RampFrom < 0 || math.IsNaN(c.RampFrom), "ramp-from: must not be negative"},
		{c.Clients < 1, "clients: must be at least 1"},
		{c.Duration < 0 || c.Requests < 0, "duration and requests must not be negative"},
		{!(c.PipelineFraction >= 0 && c.PipelineFraction <= 1), "pipelines: fraction must be between 0 and 1"},
		{c.Batch < 1 || c.Batch > MaxBatch, fmt.Sprintf("batch: must be between 1 and %d", MaxBatch)},
		{c.Senders < 1, "senders: must be at least 1"},
		{c.RequestTimeout < time.Millisecond || c.DrainTimeout < 0, "timeout: must be at least 1ms; drain-timeout must not be negative"},
		{c.MaxPending < 1 || c.MaxLostListed < 0, "max-pending must be at least 1"},
		{c.Interval < 10*time.Millisecond, "interval: must be at least 10ms"},
		{c.Priority != nil && !c.Priority.Valid(), "priority: must be between 0 and 3"},
	}
	for _, ch := range checks {
		if ch.bad {
			return errors.New(ch.msg)
		}
	}
	if err := c.Roles.validate(); err != nil {
		return err
	}
	return c.Payload.validate()
}

// pacer builds the open-loop schedule of the configured mode.
func (c *Config) pacer() Pacer {
	switch c.Mode {
	case ModeRamp:
		return LinearPacer{From: c.RampFrom, To: c.Rate, Over: c.RampOver}
	case ModeSteps:
		return StepPacer{Steps: c.Steps}
	}
	return ConstantPacer{PerSecond: c.Rate}
}

// Step is one stage of a step schedule: Rate tasks per second for Duration.
type Step struct {
	Rate     float64
	Duration time.Duration
}

// Steps is a step schedule. Its text form is "RATE:DURATION,…", e.g.
// "500:10s,1000:10s"; it implements flag.Value.
type Steps []Step

// ParseSteps parses "RATE:DURATION,…".
func ParseSteps(s string) (Steps, error) {
	var out Steps
	for part := range strings.SplitSeq(s, ",") {
		rate, dur, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("steps: %q is not RATE:DURATION", part)
		}
		r, err := strconv.ParseFloat(rate, 64)
		if err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
			return nil, fmt.Errorf("steps: rate %q is not a non-negative number", rate)
		}
		d, err := time.ParseDuration(dur)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("steps: duration %q is not a positive duration", dur)
		}
		out = append(out, Step{Rate: r, Duration: d})
	}
	return out, nil
}

// Total is the length of the whole schedule.
func (s Steps) Total() time.Duration {
	var t time.Duration
	for _, st := range s {
		t += st.Duration
	}
	return t
}

// String renders the steps in their text form.
func (s Steps) String() string {
	parts := make([]string, len(s))
	for i, st := range s {
		parts[i] = strconv.FormatFloat(st.Rate, 'g', -1, 64) + ":" + st.Duration.String()
	}
	return strings.Join(parts, ",")
}

// Set parses v into s (flag.Value).
func (s *Steps) Set(v string) error {
	p, err := ParseSteps(v)
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// RoleWeight is one role of a role mix and its relative weight.
type RoleWeight struct {
	Role   task.Role
	Weight float64
}

// RoleMix weights the roles of single tasks. Its text form is
// "ROLE=WEIGHT,…" (a bare ROLE weighs 1), e.g. "ARCHITECT=2,QA=1"; it
// implements flag.Value.
type RoleMix []RoleWeight

// ParseRoleMix parses "ROLE=WEIGHT,…".
func ParseRoleMix(s string) (RoleMix, error) {
	var out RoleMix
	for part := range strings.SplitSeq(s, ",") {
		name, weight, hasWeight := strings.Cut(strings.TrimSpace(part), "=")
		role, err := task.ParseRole(strings.ToUpper(name))
		if err != nil {
			return nil, fmt.Errorf("roles: %w", err)
		}
		w := 1.0
		if hasWeight {
			if w, err = strconv.ParseFloat(weight, 64); err != nil {
				return nil, fmt.Errorf("roles: weight %q of %s is not a number", weight, role)
			}
		}
		out = append(out, RoleWeight{Role: role, Weight: w})
	}
	return out, out.validate()
}

func (m RoleMix) validate() error {
	var sum float64
	for _, rw := range m {
		if !rw.Role.Valid() {
			return fmt.Errorf("roles: unknown role %q", rw.Role)
		}
		if !(rw.Weight >= 0) || math.IsInf(rw.Weight, 0) {
			return fmt.Errorf("roles: weight of %s must be a non-negative number", rw.Role)
		}
		sum += rw.Weight
	}
	if !(sum > 0) {
		return errors.New("roles: the weights must add up to more than 0")
	}
	return nil
}

// pick draws a role by weight.
func (m RoleMix) pick(rng *rand.Rand) task.Role {
	if len(m) == 1 {
		return m[0].Role
	}
	var sum float64
	for _, rw := range m {
		sum += rw.Weight
	}
	x := rng.Float64() * sum
	for _, rw := range m {
		if x < rw.Weight {
			return rw.Role
		}
		x -= rw.Weight
	}
	return m[len(m)-1].Role
}

// String renders the mix in its text form.
func (m RoleMix) String() string {
	parts := make([]string, len(m))
	for i, rw := range m {
		parts[i] = string(rw.Role) + "=" + strconv.FormatFloat(rw.Weight, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

// Set parses v into m (flag.Value).
func (m *RoleMix) Set(v string) error {
	p, err := ParseRoleMix(v)
	if err != nil {
		return err
	}
	*m = p
	return nil
}

// SizeRange is one bucket of a payload size distribution: sizes drawn
// uniformly from [Min, Max] bytes, chosen with relative Weight.
type SizeRange struct {
	Min, Max int
	Weight   float64
}

// SizeDist is a payload size distribution. Its text form is
// "SIZE[=WEIGHT],MIN-MAX[=WEIGHT],…", e.g. "256", "64-4096" or
// "128=9,16384=1"; it implements flag.Value. A size is the length of the
// task's JSON payload in bytes ({"pad":"xxxx…"}); sizes under 10 send {}.
type SizeDist []SizeRange

// ParseSizeDist parses "SIZE[=WEIGHT],MIN-MAX[=WEIGHT],…".
func ParseSizeDist(s string) (SizeDist, error) {
	var out SizeDist
	for part := range strings.SplitSeq(s, ",") {
		rng, weight, hasWeight := strings.Cut(strings.TrimSpace(part), "=")
		lo, hi, isRange := strings.Cut(rng, "-")
		if !isRange {
			hi = lo
		}
		minSize, err1 := strconv.Atoi(lo)
		maxSize, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("payload: %q is not SIZE or MIN-MAX bytes", rng)
		}
		w := 1.0
		if hasWeight {
			var err error
			if w, err = strconv.ParseFloat(weight, 64); err != nil {
				return nil, fmt.Errorf("payload: weight %q is not a number", weight)
			}
		}
		out = append(out, SizeRange{Min: minSize, Max: maxSize, Weight: w})
	}
	return out, out.validate()
}

func (d SizeDist) validate() error {
	var sum float64
	for _, r := range d {
		if r.Min < 0 || r.Max < r.Min || r.Max > task.MaxPayloadBytes {
			return fmt.Errorf("payload: size range %d-%d must lie within 0-%d bytes", r.Min, r.Max, task.MaxPayloadBytes)
		}
		if !(r.Weight >= 0) || math.IsInf(r.Weight, 0) {
			return errors.New("payload: weights must be non-negative numbers")
		}
		sum += r.Weight
	}
	if !(sum > 0) {
		return errors.New("payload: the weights must add up to more than 0")
	}
	return nil
}

// sample draws a size.
func (d SizeDist) sample(rng *rand.Rand) int {
	r := d[0]
	if len(d) > 1 {
		var sum float64
		for _, x := range d {
			sum += x.Weight
		}
		v := rng.Float64() * sum
		for _, x := range d {
			if r = x; v < x.Weight {
				break
			}
			v -= x.Weight
		}
	}
	if r.Max == r.Min {
		return r.Min
	}
	return r.Min + rng.IntN(r.Max-r.Min+1)
}

// String renders the distribution in its text form.
func (d SizeDist) String() string {
	parts := make([]string, len(d))
	for i, r := range d {
		p := strconv.Itoa(r.Min)
		if r.Max != r.Min {
			p += "-" + strconv.Itoa(r.Max)
		}
		if r.Weight != 1 {
			p += "=" + strconv.FormatFloat(r.Weight, 'g', -1, 64)
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// Set parses v into d (flag.Value).
func (d *SizeDist) Set(v string) error {
	p, err := ParseSizeDist(v)
	if err != nil {
		return err
	}
	*d = p
	return nil
}
