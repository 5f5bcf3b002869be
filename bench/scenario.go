package bench

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/loadgen"
)

// Scenario is one benchmark: the processes to start, the load to send, and
// the service levels it must meet. Its JSON form is a scenario file
// (bench/scenarios/*.json); bench/README.md documents every field. Zero
// fields take the documented defaults (WithDefaults).
type Scenario struct {
	// Name identifies the scenario; results go to results/<name>/. Lower
	// case letters, digits and dashes.
	Name string `json:"name"`
	// Description says what the scenario shows, for the report.
	Description string `json:"description"`
	// Manual scenarios run only when named, not with --scenario all.
	Manual bool `json:"manual,omitempty"`

	// Load is what the load generator sends in the measured phase.
	Load Load `json:"load"`
	// Warmup is a phase at the measured phase's first rate whose results
	// are discarded. Defaults to none.
	Warmup Duration `json:"warmup,omitempty"`
	// DrainTimeout is how long the load generator waits for completions
	// after its last send before checking the rest. Defaults to 30s.
	DrainTimeout Duration `json:"drain_timeout,omitempty"`
	// StopTimeout bounds each process's graceful stop after SIGTERM, after
	// which its process group gets SIGKILL. Defaults to 20s.
	StopTimeout Duration `json:"stop_timeout,omitempty"`

	Producer Producer `json:"producer"`
	Workers  Workers  `json:"workers"`
	Backends Backends `json:"backends"`
	SLO      SLO      `json:"slo"`

	// Search, when set, makes the run a step search for the highest rate
	// that meets the SLO (the saturation scenario); Load then gives every
	// step's shape and Search the rates.
	Search *Search `json:"search,omitempty"`
	// RateFrom, when set, derives Load.Rate from another scenario's measured
	// sustainable rate (the overload scenario); Load.Rate is the fallback
	// when no such result exists.
	RateFrom *RateFrom `json:"rate_from,omitempty"`
	// Faults are injected during the measured phase (the chaos scenario).
	Faults []Fault `json:"faults,omitempty"`
	// Variants run the scenario several times, each with a patch applied,
	// and report them side by side (the scaling scenario).
	Variants []Variant `json:"variants,omitempty"`
	// Quick is a patch applied with --quick: shorter durations for a fast
	// look (results are labelled quick).
	Quick json.RawMessage `json:"quick,omitempty"`
}

// Load is the load generator's part of a scenario. Its fields map one to
// one onto `mesh loadgen` flags.
type Load struct {
	// Mode is constant, ramp, steps (open loop) or max (closed loop).
	// Defaults to constant.
	Mode string `json:"mode,omitempty"`
	// Rate is tasks (units) per second: the constant rate, or the rate a
	// ramp ends at.
	Rate float64 `json:"rate,omitempty"`
	// RampFrom and RampOver shape a ramp (RampOver defaults to Duration).
	RampFrom float64  `json:"ramp_from,omitempty"`
	RampOver Duration `json:"ramp_over,omitempty"`
	// Steps is the schedule of mode steps.
	Steps []Step `json:"steps,omitempty"`
	// Clients is the number of closed-loop clients of mode max.
	Clients int `json:"clients,omitempty"`
	// Duration is the length of the measured phase.
	Duration Duration `json:"duration,omitempty"`
	// Requests, when positive, ends the phase after this many units (a
	// burst: a high Rate and a Requests count).
	Requests int64 `json:"requests,omitempty"`
	// Roles is the role mix of single tasks, "ARCHITECT=1,DEVELOPER=1,QA=1".
	Roles string `json:"roles,omitempty"`
	// PipelineFraction is the share of units sent as SDLC pipelines.
	PipelineFraction float64 `json:"pipeline_fraction,omitempty"`
	// Payload is the payload size distribution in bytes ("256", "64-4096").
	Payload string `json:"payload,omitempty"`
	// Batch is the tasks per submit request.
	Batch int `json:"batch,omitempty"`
	// BatchFill, when set, sizes each phase's batch from its rate: rate ×
	// BatchFill tasks (1 to 1000), so a batch takes at most that long to
	// fill. A fixed Batch at a low rate would add (Batch−1)/rate of latency
	// to the first task of every request (it counts from its own intended
	// time).
	BatchFill Duration `json:"batch_fill,omitempty"`
	// Senders bounds the concurrent submit requests (open loop).
	Senders int `json:"senders,omitempty"`
	// Generators is the number of load generator processes sharing the
	// rate; their results are merged (HDR histograms merge exactly).
	// Defaults to 1.
	Generators int `json:"generators,omitempty"`
	// Args are extra `mesh loadgen` flags, passed as they are.
	Args []string `json:"args,omitempty"`
}

// Step is one stage of a steps schedule.
type Step struct {
	Rate     float64  `json:"rate"`
	Duration Duration `json:"duration"`
}

// Producer configures the producer processes.
type Producer struct {
	// Count is the number of producer processes; load generators are
	// spread over them round-robin. Defaults to 1.
	Count int `json:"count,omitempty"`
	// PGConns is the producer's PostgreSQL pool size (--pg-conns).
	PGConns int `json:"pg_conns,omitempty"`
	// Args are extra `mesh producer` flags.
	Args []string `json:"args,omitempty"`
}

// Workers configures the worker processes. Zero fields leave the worker's
// own defaults in place (the flag is not passed).
type Workers struct {
	// Count is the number of worker processes. Defaults to 1.
	Count int `json:"count,omitempty"`
	// Roles is --roles: "all", "ARCHITECT,QA", "ARCHITECT=32,QA=8".
	Roles string `json:"roles,omitempty"`
	// Concurrency is --concurrency (tasks at once per role).
	Concurrency int `json:"concurrency,omitempty"`
	// ClaimBatch, FinishBatch and Flushers are the worker's batching flags.
	ClaimBatch  int `json:"claim_batch,omitempty"`
	FinishBatch int `json:"finish_batch,omitempty"`
	Flushers    int `json:"flushers,omitempty"`
	// Work is the simulated work per task (--work): "0", "20ms",
	// "10ms-80ms", "exp:20ms", or per role "ARCHITECT=50ms,QA=exp:20ms".
	Work string `json:"work,omitempty"`
	// FailRate is the probability that a simulated attempt fails.
	FailRate float64 `json:"fail_rate,omitempty"`
	// RSSLimit is --rss-limit ("512MiB").
	RSSLimit string `json:"rss_limit,omitempty"`
	// PGConns is the worker's PostgreSQL pool size (--pg-conns).
	PGConns int `json:"pg_conns,omitempty"`
	// Args are extra `mesh worker` flags.
	Args []string `json:"args,omitempty"`
}

// Backend kinds.
const (
	// BackendShared uses the Redis/PostgreSQL at REDIS_URL/DATABASE_URL,
	// isolated by a fresh key prefix and schema.
	BackendShared = "shared"
	// BackendPrivate starts a server of the run's own on a free port.
	BackendPrivate = "private"
)

// Backends says which Redis and PostgreSQL a run uses.
type Backends struct {
	// Redis is "shared" (default) or "private" (a redis-server started for
	// the run; needed to count its commands or to restart it).
	Redis string `json:"redis,omitempty"`
	// RedisMasters > 1 starts a private Redis Cluster of that many masters.
	// Defaults to 1.
	RedisMasters int `json:"redis_masters,omitempty"`
	// Postgres is "shared" (default). "private" (a cluster of the run's own,
	// for restarting it) is reserved for the chaos scenario.
	Postgres string `json:"postgres,omitempty"`
}

// SLO are the service levels a run must meet; unset ones are not checked.
type SLO struct {
	// P99 bounds the end-to-end p99 (intended send → completion seen).
	P99 Duration `json:"p99_e2e,omitempty"`
	// MaxErrorRatio bounds (rejected + errors + skipped) / scheduled.
	MaxErrorRatio *float64 `json:"max_error_ratio,omitempty"`
	// ZeroLoss requires no lost and no duplicated task.
	ZeroLoss bool `json:"zero_loss,omitempty"`
	// MinThroughputRatio bounds completed units per second over the target
	// rate from below (open loop), e.g. 0.95.
	MinThroughputRatio float64 `json:"min_throughput_ratio,omitempty"`
	// MaxRSS bounds every mesh process's peak RSS ("512MiB").
	MaxRSS string `json:"max_rss,omitempty"`
	// ExpectRejections requires some 429/503 answers (overload must shed).
	ExpectRejections bool `json:"expect_rejections,omitempty"`
	// MaxP99Drift bounds p99 of the last third of the run over p99 of the
	// first third (soak), e.g. 2.
	MaxP99Drift float64 `json:"max_p99_drift,omitempty"`
	// MaxRSSDrift bounds peak RSS of the last third over the first third.
	MaxRSSDrift float64 `json:"max_rss_drift,omitempty"`
	// MinCeilingRatio bounds throughput / same-run ceiling from below.
	MinCeilingRatio float64 `json:"min_ceiling_ratio,omitempty"`
}

// Search is a step search for the highest sustainable rate: rates Start,
// then ×Factor (or +Step) each step, until a step misses the SLO or Max is
// passed; then Refine bisection steps between the last pass and the first
// miss.
type Search struct {
	Start        float64  `json:"start"`
	Factor       float64  `json:"factor,omitempty"`
	Step         float64  `json:"step,omitempty"`
	Max          float64  `json:"max"`
	StepDuration Duration `json:"step_duration"`
	Refine       int      `json:"refine,omitempty"`
}

// RateFrom derives the rate from another scenario's sustainable rate.
type RateFrom struct {
	// Scenario names the search scenario ("saturation"): its result from
	// the same `bench run`, else the newest under the results directory.
	Scenario string `json:"scenario"`
	// Factor multiplies its sustainable rate (2.5 = 2.5× saturation).
	Factor float64 `json:"factor"`
	// Min is the lowest rate used: the sustainable rate is defined by a
	// latency SLO, so on a slow or busy machine a multiple of it may not
	// exceed the mesh's throughput at all.
	Min float64 `json:"min,omitempty"`
}

// Fault kinds.
const (
	FaultKillWorker    = "kill_worker"   // SIGKILL a random worker, start a replacement after For
	FaultKillProducer  = "kill_producer" // SIGKILL the producer, restart it after For
	FaultPauseWorker   = "pause_worker"  // SIGSTOP a random worker for For, then SIGCONT
	FaultRestartRedis  = "restart_redis" // kill the private Redis, restart it (empty) after For
	FaultRestartPG     = "restart_postgres"
	defaultFaultOutage = time.Second
)

var faultKinds = []string{FaultKillWorker, FaultKillProducer, FaultPauseWorker, FaultRestartRedis, FaultRestartPG}

// Fault is one kind of failure injected during the measured phase, first
// At after its start, then every Every (0: once).
type Fault struct {
	Kind  string   `json:"kind"`
	At    Duration `json:"at"`
	Every Duration `json:"every,omitempty"`
	// For is the outage: how long until the replacement starts, the pause
	// ends or the server restarts. Defaults to 1s.
	For Duration `json:"for,omitempty"`
}

// Variant is one configuration of a multi-variant scenario: Patch is a
// partial scenario applied over the base.
type Variant struct {
	Name  string          `json:"name"`
	Patch json.RawMessage `json:"patch"`
}

// Defaults of Scenario fields.
const (
	DefaultDrainTimeout = 30 * time.Second
	DefaultStopTimeout  = 20 * time.Second
)

// WithDefaults returns s with zero fields set to their defaults.
func (s Scenario) WithDefaults() Scenario {
	if s.Load.Mode == "" {
		s.Load.Mode = string(loadgen.ModeConstant)
	}
	if s.Load.Generators == 0 {
		s.Load.Generators = 1
	}
	if s.DrainTimeout == 0 {
		s.DrainTimeout = Duration(DefaultDrainTimeout)
	}
	if s.StopTimeout == 0 {
		s.StopTimeout = Duration(DefaultStopTimeout)
	}
	if s.Producer.Count == 0 {
		s.Producer.Count = 1
	}
	if s.Workers.Count == 0 {
		s.Workers.Count = 1
	}
	if s.Backends.Redis == "" {
		s.Backends.Redis = BackendShared
	}
	if s.Backends.Postgres == "" {
		s.Backends.Postgres = BackendShared
	}
	if s.Backends.RedisMasters == 0 {
		s.Backends.RedisMasters = 1
	}
	if s.Search != nil && s.Search.Factor == 0 && s.Search.Step == 0 {
		sr := *s.Search
		sr.Factor = 1.5
		s.Search = &sr
	}
	for i := range s.Faults {
		if s.Faults[i].For == 0 {
			s.Faults[i].For = Duration(defaultFaultOutage)
		}
	}
	return s
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Validate reports every problem of a defaulted scenario, one per line,
// each starting with the field's JSON path.
func (s *Scenario) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !nameRE.MatchString(s.Name) {
		add("name", "%q must be 1-63 lower-case letters, digits or dashes", s.Name)
	}
	s.Load.validate(add, s.Search != nil)
	s.Workers.validate(add)
	if s.Producer.Count < 1 || s.Producer.Count > 16 {
		add("producer.count", "%d must be between 1 and 16", s.Producer.Count)
	}
	if s.Producer.PGConns < 0 {
		add("producer.pg_conns", "must not be negative")
	}
	s.Backends.validate(add)
	s.SLO.validate(add)
	if s.Warmup < 0 || s.DrainTimeout < 0 || s.StopTimeout < 0 {
		add("warmup", "warmup, drain_timeout and stop_timeout must not be negative")
	}
	if s.Search != nil {
		s.Search.validate(add)
		if s.RateFrom != nil {
			add("rate_from", "a search scenario cannot take its rate from another")
		}
	}
	if r := s.RateFrom; r != nil {
		if !nameRE.MatchString(r.Scenario) {
			add("rate_from.scenario", "%q is not a scenario name", r.Scenario)
		}
		if !(r.Factor > 0) || r.Factor > 100 {
			add("rate_from.factor", "must be between 0 and 100")
		}
		if !(r.Min >= 0 && r.Min <= 1e6) {
			add("rate_from.min", "must be between 0 and 1000000")
		}
	}
	s.validateFaults(add)
	s.validateVariants(add)
	return errors.Join(errs...)
}

type addFunc func(field, format string, args ...any)

func (l *Load) validate(add addFunc, search bool) {
	switch loadgen.Mode(l.Mode) {
	case loadgen.ModeConstant, loadgen.ModeRamp:
		if !search && !(l.Rate > 0 && l.Rate <= 1e6) {
			add("load.rate", "%g must be above 0 and at most 1000000", l.Rate)
		}
	case loadgen.ModeSteps:
		if len(l.Steps) == 0 {
			add("load.steps", "mode steps needs at least one step")
		}
		for i, st := range l.Steps {
			if !(st.Rate >= 0 && st.Rate <= 1e6) || st.Duration <= 0 {
				add(fmt.Sprintf("load.steps[%d]", i), "rate must be 0 to 1000000 and duration positive")
			}
		}
	case loadgen.ModeMax:
		if l.Clients < 0 || l.Clients > 10000 {
			add("load.clients", "%d must be between 1 and 10000", l.Clients)
		}
	default:
		add("load.mode", "%q is not one of constant, ramp, steps, max", l.Mode)
	}
	if !search && l.Mode != string(loadgen.ModeSteps) && l.Duration <= 0 && l.Requests <= 0 {
		add("load.duration", "set a duration or a number of requests")
	}
	if l.Duration < 0 || l.Requests < 0 || l.RampOver < 0 || l.RampFrom < 0 || math.IsNaN(l.RampFrom) {
		add("load.duration", "duration, requests, ramp_from and ramp_over must not be negative")
	}
	if l.Roles != "" {
		if _, err := loadgen.ParseRoleMix(l.Roles); err != nil {
			add("load.roles", "%v", err)
		}
	}
	if l.Payload != "" {
		if _, err := loadgen.ParseSizeDist(l.Payload); err != nil {
			add("load.payload", "%v", err)
		}
	}
	if !(l.PipelineFraction >= 0 && l.PipelineFraction <= 1) {
		add("load.pipeline_fraction", "%g must be between 0 and 1", l.PipelineFraction)
	}
	if l.Batch < 0 || l.Batch > loadgen.MaxBatch {
		add("load.batch", "%d must be between 1 and %d", l.Batch, loadgen.MaxBatch)
	}
	if l.BatchFill < 0 || (l.BatchFill > 0 && l.Batch > 0) {
		add("load.batch_fill", "must be positive, and not set together with batch")
	}
	if l.Senders < 0 {
		add("load.senders", "must not be negative")
	}
	if l.Generators < 1 || l.Generators > 16 {
		add("load.generators", "%d must be between 1 and 16", l.Generators)
	}
	checkArgs(add, "load.args", l.Args)
}

func (w *Workers) validate(add addFunc) {
	if w.Count < 1 || w.Count > 64 {
		add("workers.count", "%d must be between 1 and 64", w.Count)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"concurrency", w.Concurrency}, {"claim_batch", w.ClaimBatch}, {"finish_batch", w.FinishBatch},
		{"flushers", w.Flushers}, {"pg_conns", w.PGConns}} {
		if f.v < 0 || f.v > 100000 {
			add("workers."+f.name, "%d must be between 0 (worker default) and 100000", f.v)
		}
	}
	if !(w.FailRate >= 0 && w.FailRate <= 1) {
		add("workers.fail_rate", "%g must be between 0 and 1", w.FailRate)
	}
	if w.RSSLimit != "" {
		if _, err := ParseBytes(w.RSSLimit); err != nil {
			add("workers.rss_limit", "%v", err)
		}
	}
	checkArgs(add, "workers.args", w.Args)
}

func (b *Backends) validate(add addFunc) {
	if b.Redis != BackendShared && b.Redis != BackendPrivate {
		add("backends.redis", "%q must be shared or private", b.Redis)
	}
	if b.Postgres != BackendShared && b.Postgres != BackendPrivate {
		add("backends.postgres", "%q must be shared or private", b.Postgres)
	}
	if b.RedisMasters < 1 || b.RedisMasters > 9 {
		add("backends.redis_masters", "%d must be between 1 and 9", b.RedisMasters)
	}
	if b.RedisMasters > 1 && b.Redis != BackendPrivate {
		add("backends.redis_masters", "a cluster of %d masters needs redis: private", b.RedisMasters)
	}
}

func (o *SLO) validate(add addFunc) {
	if o.P99 < 0 {
		add("slo.p99_e2e", "must not be negative")
	}
	if r := o.MaxErrorRatio; r != nil && !(*r >= 0 && *r <= 1) {
		add("slo.max_error_ratio", "%g must be between 0 and 1", *r)
	}
	if !(o.MinThroughputRatio >= 0 && o.MinThroughputRatio <= 2) {
		add("slo.min_throughput_ratio", "%g must be between 0 and 2", o.MinThroughputRatio)
	}
	if o.MaxRSS != "" {
		if _, err := ParseBytes(o.MaxRSS); err != nil {
			add("slo.max_rss", "%v", err)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"max_p99_drift", o.MaxP99Drift}, {"max_rss_drift", o.MaxRSSDrift}, {"min_ceiling_ratio", o.MinCeilingRatio}} {
		if !(f.v >= 0 && f.v <= 1000) {
			add("slo."+f.name, "%g must be between 0 and 1000", f.v)
		}
	}
}

func (sr *Search) validate(add addFunc) {
	if !(sr.Start > 0) || !(sr.Max >= sr.Start) || sr.Max > 1e6 {
		add("search", "need 0 < start <= max <= 1000000 (start %g, max %g)", sr.Start, sr.Max)
	}
	if (sr.Factor != 0) == (sr.Step != 0) {
		add("search", "set exactly one of factor (> 1) and step (> 0)")
	}
	if sr.Factor != 0 && !(sr.Factor > 1 && sr.Factor <= 10) {
		add("search.factor", "%g must be above 1 and at most 10", sr.Factor)
	}
	if sr.Step < 0 || math.IsNaN(sr.Step) {
		add("search.step", "must be positive")
	}
	if sr.StepDuration <= 0 {
		add("search.step_duration", "must be positive")
	}
	if sr.Refine < 0 || sr.Refine > 10 {
		add("search.refine", "%d must be between 0 and 10", sr.Refine)
	}
	if n := sr.count(); n > 60 {
		add("search", "%d steps from start to max; at most 60", n)
	}
}

// count is the number of rates the search tries at most, before refining.
func (sr *Search) count() int {
	n := 0
	for r := sr.Start; r <= sr.Max && n <= 60; r = sr.next(r) {
		n++
	}
	return n
}

// next is the rate after r.
func (sr *Search) next(r float64) float64 {
	if sr.Step > 0 {
		return r + sr.Step
	}
	if sr.Factor > 1 {
		return r * sr.Factor
	}
	return math.Inf(1)
}

func (s *Scenario) validateFaults(add addFunc) {
	for i, f := range s.Faults {
		field := fmt.Sprintf("faults[%d]", i)
		if !slices.Contains(faultKinds, f.Kind) {
			add(field+".kind", "%q is not one of %s", f.Kind, strings.Join(faultKinds, ", "))
		}
		if f.At < 0 || f.Every < 0 || f.For < 0 {
			add(field, "at, every and for must not be negative")
		}
		if f.Every > 0 && f.Every < Duration(100*time.Millisecond) {
			add(field+".every", "%s is shorter than 100ms", f.Every)
		}
		if f.Kind == FaultRestartRedis && s.Backends.Redis != BackendPrivate {
			add(field, "restart_redis needs backends.redis: private")
		}
		if f.Kind == FaultRestartPG && s.Backends.Postgres != BackendPrivate {
			add(field, "restart_postgres needs backends.postgres: private")
		}
	}
}

func (s *Scenario) validateVariants(add addFunc) {
	seen := map[string]bool{}
	for i, v := range s.Variants {
		field := fmt.Sprintf("variants[%d]", i)
		if !nameRE.MatchString(v.Name) {
			add(field+".name", "%q must be lower-case letters, digits or dashes", v.Name)
		}
		if seen[v.Name] {
			add(field+".name", "%q is used twice", v.Name)
		}
		seen[v.Name] = true
		if len(v.Patch) == 0 {
			add(field+".patch", "missing")
		}
	}
}

// checkArgs refuses extra flags that would break the orchestrator's own.
func checkArgs(add addFunc, field string, args []string) {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if slices.Contains(reservedFlags, name) {
			add(field, "%q is set by the orchestrator", a)
		}
	}
}

// reservedFlags are the flags the orchestrator sets itself.
var reservedFlags = []string{"addr", "target", "out", "metrics-addr", "redis-url", "database-url", "schema", "prefix", "id"}

// ParseBytes reads 536870912, 512MiB, 512MB, 1GiB, 64KiB.
func ParseBytes(s string) (uint64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), 1.0
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	var n float64
	if _, err := fmt.Sscanf(num, "%g", &n); err != nil || !(n >= 0) || n*mult > 1<<50 || strings.ContainsAny(num, " \t") {
		return 0, fmt.Errorf("%q is not a size (e.g. 512MiB)", s)
	}
	return uint64(n * mult), nil
}

// DecodeScenario reads one scenario file strictly (unknown fields are
// errors), applies the patches in order (each a partial scenario, e.g.
// Quick or --set), fills the defaults and validates. It is safe on
// untrusted input.
func DecodeScenario(r io.Reader, patches ...[]byte) (*Scenario, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	if len(data) > 1<<20 {
		return nil, errors.New("scenario: larger than 1 MiB")
	}
	var s Scenario
	if err := strictDecode(data, &s); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if len(patches) > 0 {
		merged, err := applyPatches(data, patches)
		if err != nil {
			return nil, fmt.Errorf("scenario %q: %w", s.Name, err)
		}
		s = Scenario{}
		if err := strictDecode(merged, &s); err != nil {
			return nil, fmt.Errorf("scenario %q: after the patches: %w", s.Name, err)
		}
	}
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %q: %w", s.Name, err)
	}
	return &s, nil
}

// applyPatches applies JSON merge patches (RFC 7386) to the document:
// objects merge key by key, anything else (arrays included) replaces, null
// deletes. Decoding a patch straight into the struct would not do: a JSON
// array decoded into an existing slice keeps the old elements' fields that
// the patch does not name.
func applyPatches(doc []byte, patches [][]byte) ([]byte, error) {
	var base any
	if err := json.Unmarshal(doc, &base); err != nil {
		return nil, err
	}
	for i, p := range patches {
		var patch any
		if err := json.Unmarshal(p, &patch); err != nil {
			return nil, fmt.Errorf("patch %d: %w", i+1, err)
		}
		if _, ok := patch.(map[string]any); !ok {
			return nil, fmt.Errorf("patch %d: not a JSON object", i+1)
		}
		base = mergePatch(base, patch)
	}
	return json.Marshal(base)
}

func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// strictDecode decodes one JSON object into v, refusing unknown fields and
// trailing data.
func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// Expand returns the runs of a scenario: itself, or one per variant with
// the variant's patch applied (named after the variant).
func (s *Scenario) Expand() ([]Run, error) {
	if len(s.Variants) == 0 {
		return []Run{{Scenario: s}}, nil
	}
	base, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	out := make([]Run, 0, len(s.Variants))
	for _, v := range s.Variants {
		vs, err := DecodeScenario(bytes.NewReader(base), v.Patch, []byte(`{"variants":null}`))
		if err != nil {
			return nil, fmt.Errorf("variant %q: %w", v.Name, err)
		}
		vs.Variants = nil
		out = append(out, Run{Scenario: vs, Variant: v.Name})
	}
	return out, nil
}

// Run is one scenario run: a scenario, and the variant it is when the
// scenario has several.
type Run struct {
	Scenario *Scenario
	Variant  string
}

//go:embed scenarios/*.json
var builtin embed.FS

// BuiltinNames lists the scenarios shipped in bench/scenarios, sorted.
func BuiltinNames() []string {
	entries, _ := fs.ReadDir(builtin, "scenarios")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	return out
}

// LoadScenario reads a scenario by name (a built-in one, or a file
// scenarios/<name>.json under dir when dir is set) or by path (anything
// ending in .json), applying quick's patch when quick is set and then the
// extra patches.
func LoadScenario(dir, nameOrPath string, quick bool, patches ...[]byte) (*Scenario, error) {
	var data []byte
	var err error
	switch {
	case strings.HasSuffix(nameOrPath, ".json"):
		data, err = os.ReadFile(nameOrPath)
	case dir != "":
		data, err = os.ReadFile(path.Join(dir, nameOrPath+".json"))
	default:
		data, err = builtin.ReadFile("scenarios/" + nameOrPath + ".json")
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no scenario %q (built in: %s)", nameOrPath, strings.Join(BuiltinNames(), ", "))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading scenario %s: %w", nameOrPath, err)
	}
	if quick {
		var head struct {
			Quick json.RawMessage `json:"quick"`
		}
		if err := json.Unmarshal(data, &head); err == nil && len(head.Quick) > 0 {
			patches = append([][]byte{head.Quick}, patches...)
		}
	}
	return DecodeScenario(bytes.NewReader(data), patches...)
}

// Order returns the scenarios with every one whose rate derives from
// another (RateFrom) moved after that one; the rest keep their order.
func Order(ss []*Scenario) []*Scenario {
	out := slices.Clone(ss)
	for moved := true; moved; {
		moved = false
		for i, s := range out {
			if s.RateFrom == nil {
				continue
			}
			j := slices.IndexFunc(out, func(o *Scenario) bool { return o.Name == s.RateFrom.Scenario })
			if j > i {
				out = slices.Insert(slices.Delete(out, i, i+1), j, s)
				moved = true
				break
			}
		}
	}
	return out
}

// allOrder is the order of --scenario all; other built-in scenarios follow
// alphabetically.
var allOrder = []string{"seed-750", "burst-500", "saturation", "overload", "pipeline", "soak"}

// AllNames lists the built-in scenarios --scenario all runs candidates for,
// in run order (manual ones are filtered out by the caller after loading).
func AllNames() []string {
	names := BuiltinNames()
	slices.SortStableFunc(names, func(a, b string) int {
		ia, ib := slices.Index(allOrder, a), slices.Index(allOrder, b)
		if ia < 0 {
			ia = len(allOrder)
		}
		if ib < 0 {
			ib = len(allOrder)
		}
		return ia - ib
	})
	return names
}
