// Package chaos runs the mesh under steady load while it injects faults —
// SIGKILL of a worker (replaced), SIGKILL of the producer (restarted on its
// port), SIGKILL of a private Redis (it comes back empty), a crash restart of
// a private PostgreSQL cluster, SIGSTOP of a worker past its lease (then
// SIGCONT) — and then drains the mesh and audits it: every task answered 2xx
// is completed exactly once or dead-lettered with a reason, nothing is left
// pending, active or failed, and no completion was recorded twice.
//
// Every process is a real child process of the mesh binary (`mesh producer`,
// `mesh worker`, `mesh loadgen --out`), started with bench.StartProc in a
// process group of its own; Redis and PostgreSQL are private to the run, so
// killing them disturbs nobody else. Faults are injected one at a time, in
// shuffled rounds of the enabled kinds, each followed by a wait for the
// mesh's recovery (measured: time until a task submitted after the fault
// completes, and until every task the fault hit is terminal) and a random
// gap. Short leases (--lease 2s, --heartbeat 200ms) and a short stale-pending
// sweep (--stale-after 5s) make recovery fast; the defaults of a production
// mesh are longer, and its recovery times scale with them.
package chaos

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/agentmesh/agentmesh/bench"
)

// Kind is a fault kind.
type Kind string

// The fault kinds.
const (
	// KillWorker SIGKILLs a random worker and starts a replacement.
	KillWorker Kind = "kill_worker"
	// KillProducer SIGKILLs the producer and restarts it on the same port.
	KillProducer Kind = "kill_producer"
	// RestartRedis SIGKILLs the private redis-server and starts it again,
	// empty (it keeps nothing on disk).
	RestartRedis Kind = "restart_redis"
	// RestartPostgres crashes the private PostgreSQL cluster — alternately
	// `pg_ctl restart -m immediate` and SIGKILL of the postmaster and its
	// children — and starts it again (WAL replay).
	RestartPostgres Kind = "restart_postgres"
	// PauseWorker SIGSTOPs a random worker for longer than its lease, then
	// SIGCONTs it: its tasks are reaped and redone elsewhere, and its late
	// finishes must not record a second completion.
	PauseWorker Kind = "pause_worker"
)

// Kinds is every fault kind, in report order.
var Kinds = []Kind{KillWorker, KillProducer, RestartRedis, RestartPostgres, PauseWorker}

// ParseKind reads a fault kind.
func ParseKind(s string) (Kind, error) {
	k := Kind(s)
	if slices.Contains(Kinds, k) {
		return k, nil
	}
	return "", fmt.Errorf("chaos: unknown fault kind %q (want one of %v)", s, Kinds)
}

// Defaults of Config.
const (
	DefaultRate           = 1000.0
	DefaultDuration       = 3 * time.Minute
	DefaultWorkers        = 3
	DefaultWork           = "1ms-5ms"
	DefaultLease          = 2 * time.Second
	DefaultHeartbeat      = 200 * time.Millisecond
	DefaultStaleAfter     = 5 * time.Second
	DefaultGap            = 4 * time.Second
	DefaultFirstAt        = 5 * time.Second
	DefaultTail           = 5 * time.Second
	DefaultDown           = time.Second
	DefaultPauseFor       = 4 * time.Second
	DefaultRecoverTimeout = 90 * time.Second
	DefaultDrainTimeout   = 2 * time.Minute
	DefaultPipelines      = 0.1
	DefaultSchema         = "chaos"
	DefaultPrefix         = "chaos"
)

// Config configures a chaos run. Every zero field gets its default.
type Config struct {
	// Binary is the mesh binary whose subcommands are run. Required.
	Binary string
	// Dir receives the processes' logs, the load generator's result and the
	// backends' files. Required.
	Dir string
	// Rate is the load generator's constant rate in units per second.
	// Defaults to 1000.
	Rate float64
	// Duration is the length of the load. Defaults to 3 minutes.
	Duration time.Duration
	// Pipelines is the share of units submitted as ARCHITECT → DEVELOPER →
	// QA pipelines. Defaults to 0.1; negative means none.
	Pipelines float64
	// Workers is the number of worker processes. Defaults to 3.
	Workers int
	// Work is the workers' simulated work (--work). Defaults to "1ms-5ms".
	Work string
	// Lease, Heartbeat and StaleAfter are the workers' --lease, --heartbeat
	// and --stale-after. Default 2 s, 200 ms and 5 s (short, so the mesh
	// recovers fast; a production mesh uses longer ones).
	Lease, Heartbeat, StaleAfter time.Duration
	// Faults are the enabled kinds. Defaults to every kind.
	Faults []Kind
	// FirstAt is when the first fault is injected after the load starts.
	// Defaults to 5 s.
	FirstAt time.Duration
	// Gap is the mean pause between a recovery and the next fault (uniform
	// in [Gap/2, 3·Gap/2]). Defaults to 4 s.
	Gap time.Duration
	// Tail is the fault-free time at the end of the load. Defaults to 5 s.
	Tail time.Duration
	// Down is how long a killed process or server stays down. Defaults to 1 s.
	Down time.Duration
	// PauseFor is how long a worker stays SIGSTOPped; it must exceed Lease.
	// Defaults to 2 × Lease.
	PauseFor time.Duration
	// RecoverTimeout bounds the wait for one fault's recovery. Defaults to 90 s.
	RecoverTimeout time.Duration
	// DrainTimeout bounds the wait, after the load, for every task to reach
	// a terminal state. Defaults to 2 minutes.
	DrainTimeout time.Duration
	// Seed seeds the fault schedule and the load generator. Defaults to the clock.
	Seed uint64
	// Progress receives one line per step (nil: none).
	Progress io.Writer
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Rate = cmp.Or(c.Rate, DefaultRate)
	c.Duration = cmp.Or(c.Duration, DefaultDuration)
	c.Workers = cmp.Or(c.Workers, DefaultWorkers)
	c.Work = cmp.Or(c.Work, DefaultWork)
	c.Lease = cmp.Or(c.Lease, DefaultLease)
	c.Heartbeat = cmp.Or(c.Heartbeat, DefaultHeartbeat)
	c.StaleAfter = cmp.Or(c.StaleAfter, DefaultStaleAfter)
	c.FirstAt = cmp.Or(c.FirstAt, DefaultFirstAt)
	c.Gap = cmp.Or(c.Gap, DefaultGap)
	c.Tail = cmp.Or(c.Tail, DefaultTail)
	c.Down = cmp.Or(c.Down, DefaultDown)
	c.PauseFor = cmp.Or(c.PauseFor, 2*c.Lease)
	c.RecoverTimeout = cmp.Or(c.RecoverTimeout, DefaultRecoverTimeout)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, DefaultDrainTimeout)
	switch {
	case c.Pipelines == 0:
		c.Pipelines = DefaultPipelines
	case c.Pipelines < 0:
		c.Pipelines = 0
	}
	if len(c.Faults) == 0 {
		c.Faults = Kinds
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Binary == "" || c.Dir == "":
		return errors.New("chaos: Binary and Dir are required")
	case c.Rate <= 0 || c.Duration <= 0 || c.Workers < 1:
		return errors.New("chaos: Rate, Duration and Workers must be positive")
	case c.Workers < 2 && slices.Contains(c.Faults, PauseWorker):
		return errors.New("chaos: pausing a worker needs at least 2 workers (another must reap and redo its tasks)")
	case c.PauseFor <= c.Lease:
		return fmt.Errorf("chaos: PauseFor %s must exceed the lease %s", c.PauseFor, c.Lease)
	case c.Heartbeat >= c.Lease:
		return fmt.Errorf("chaos: Heartbeat %s must be shorter than the lease %s", c.Heartbeat, c.Lease)
	case c.FirstAt+c.Tail >= c.Duration:
		return fmt.Errorf("chaos: Duration %s leaves no time for faults after FirstAt %s and before Tail %s", c.Duration, c.FirstAt, c.Tail)
	}
	for _, k := range c.Faults {
		if _, err := ParseKind(string(k)); err != nil {
			return err
		}
	}
	return nil
}

// schedule deals the next fault: kinds come in rounds, each round a fresh
// shuffle of the enabled kinds, so every kind recurs and the order is random.
type schedule struct {
	kinds []Kind
	round []Kind
	rng   *rand.Rand
}

func newSchedule(kinds []Kind, rng *rand.Rand) *schedule {
	return &schedule{kinds: kinds, rng: rng}
}

func (s *schedule) next() Kind {
	if len(s.round) == 0 {
		s.round = slices.Clone(s.kinds)
		s.rng.Shuffle(len(s.round), func(i, j int) { s.round[i], s.round[j] = s.round[j], s.round[i] })
	}
	k := s.round[0]
	s.round = s.round[1:]
	return k
}

// gap draws the pause before the next fault: uniform in [g/2, 3g/2).
func gap(rng *rand.Rand, g time.Duration) time.Duration {
	return g/2 + time.Duration(rng.Int64N(int64(g)))
}

// pollCtx checks cond every 50 ms until it holds, within passes or ctx ends.
func pollCtx(ctx context.Context, within time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for !cond() {
		if err := bench.SleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}
