// Package health measures a process from the inside — resident set size and
// CPU through gopsutil — turns it into a HealthScore (1 − RSS/limit, clamped to
// [0, 1]) and runs the backpressure gate: over the soft limit the process stops
// taking work, frees what the garbage collector can give back, and resumes
// once RSS has fallen below the resume mark.
package health

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// Defaults of Config.
const (
	// DefaultLimit is the RSS a process is sized for: 512 MiB.
	DefaultLimit uint64 = 512 << 20
	// DefaultSoftFraction puts the soft limit at 80 % of the limit.
	DefaultSoftFraction = 0.8
	// DefaultResumeFraction resumes work below 90 % of the soft limit.
	DefaultResumeFraction = 0.9
	// DefaultInterval is how often the monitor samples.
	DefaultInterval = 500 * time.Millisecond
)

// Config sets the limits of one process.
type Config struct {
	// Limit is the RSS (bytes) at which HealthScore reaches 0. Defaults to 512 MiB.
	Limit uint64
	// SoftLimit is the RSS (bytes) above which the gate closes. Defaults to 80 % of Limit.
	SoftLimit uint64
	// ResumeBelow is the RSS (bytes) under which a closed gate reopens.
	// Defaults to 90 % of SoftLimit.
	ResumeBelow uint64
	// Interval between samples. Defaults to 500 ms.
	Interval time.Duration
	// Sample reads the process; defaults to the current process via gopsutil.
	// Tests replace it only to script RSS values the machine cannot produce.
	Sample func(ctx context.Context) (Sample, error)
	// OnSample, if set, is called after every sample (metrics hook).
	OnSample func(Snapshot)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Limit = cmp.Or(c.Limit, DefaultLimit)
	c.SoftLimit = cmp.Or(c.SoftLimit, uint64(float64(c.Limit)*DefaultSoftFraction))
	c.ResumeBelow = cmp.Or(c.ResumeBelow, uint64(float64(c.SoftLimit)*DefaultResumeFraction))
	c.Interval = cmp.Or(c.Interval, DefaultInterval)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.SoftLimit > c.Limit:
		return fmt.Errorf("health: soft limit %d above limit %d", c.SoftLimit, c.Limit)
	case c.ResumeBelow > c.SoftLimit:
		return fmt.Errorf("health: resume mark %d above soft limit %d", c.ResumeBelow, c.SoftLimit)
	}
	return nil
}

// Sample is one reading of the process.
type Sample struct {
	RSS        uint64  // resident set size, bytes
	CPUPercent float64 // CPU used since the previous sample, percent of one core
}

// Snapshot is the latest reading with what the gate made of it.
type Snapshot struct {
	Sample
	Limit       uint64    `json:"limit_bytes"`
	SoftLimit   uint64    `json:"soft_limit_bytes"`
	HealthScore float64   `json:"health_score"`
	Paused      bool      `json:"paused"`
	Pauses      uint64    `json:"pauses"`
	At          time.Time `json:"at"`
}

// Score is HealthScore = 1 − rss/limit, clamped to [0, 1].
func Score(rss, limit uint64) float64 {
	if limit == 0 {
		return 0
	}
	s := 1 - float64(rss)/float64(limit)
	return min(max(s, 0), 1)
}

// Monitor samples the process and runs the backpressure gate.
type Monitor struct {
	cfg    Config
	snap   atomic.Pointer[Snapshot]
	pauses atomic.Uint64

	mu     sync.Mutex
	open   chan struct{} // closed while the gate is open
	paused bool
}

// New returns a Monitor; call Start to begin sampling.
func New(cfg Config) (*Monitor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Sample == nil {
		s, err := selfSampler()
		if err != nil {
			return nil, err
		}
		cfg.Sample = s
	}
	m := &Monitor{cfg: cfg, open: make(chan struct{})}
	close(m.open)
	m.snap.Store(&Snapshot{Limit: cfg.Limit, SoftLimit: cfg.SoftLimit, HealthScore: 1})
	return m, nil
}

func selfSampler() (func(context.Context) (Sample, error), error) {
	p, err := process.NewProcess(int32(os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("health: opening own process: %w", err)
	}
	return func(ctx context.Context) (Sample, error) {
		mem, err := p.MemoryInfoWithContext(ctx)
		if err != nil {
			return Sample{}, fmt.Errorf("health: reading RSS: %w", err)
		}
		cpu, err := p.PercentWithContext(ctx, 0) // since the previous call
		if err != nil {
			return Sample{}, fmt.Errorf("health: reading CPU: %w", err)
		}
		return Sample{RSS: mem.RSS, CPUPercent: cpu}, nil
	}, nil
}

// Run samples every Interval until ctx ends. It takes one sample at once.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		if err := m.Check(ctx); err != nil && !errors.Is(err, context.Canceled) {
			m.cfg.Logger.Warn("health sample failed", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check takes one sample now and moves the gate.
func (m *Monitor) Check(ctx context.Context) error {
	s, err := m.cfg.Sample(ctx)
	if err != nil {
		return err
	}
	paused := m.move(s.RSS)
	if paused {
		// Give back what the GC can; the next samples decide when to resume.
		debug.FreeOSMemory()
	}
	snap := &Snapshot{
		Sample: s, Limit: m.cfg.Limit, SoftLimit: m.cfg.SoftLimit,
		HealthScore: Score(s.RSS, m.cfg.Limit), Paused: paused,
		Pauses: m.pauses.Load(), At: time.Now(),
	}
	m.snap.Store(snap)
	if m.cfg.OnSample != nil {
		m.cfg.OnSample(*snap)
	}
	return nil
}

// move applies the hysteresis: close above SoftLimit, reopen below ResumeBelow.
func (m *Monitor) move(rss uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !m.paused && rss > m.cfg.SoftLimit:
		m.paused = true
		m.open = make(chan struct{})
		m.pauses.Add(1)
		m.cfg.Logger.Warn("over the soft memory limit: pausing claims",
			slog.Uint64("rss", rss), slog.Uint64("soft_limit", m.cfg.SoftLimit))
	case m.paused && rss < m.cfg.ResumeBelow:
		m.paused = false
		close(m.open)
		m.cfg.Logger.Info("memory back under the resume mark: resuming claims",
			slog.Uint64("rss", rss), slog.Uint64("resume_below", m.cfg.ResumeBelow))
	}
	return m.paused
}

// Snapshot returns the latest reading.
func (m *Monitor) Snapshot() Snapshot { return *m.snap.Load() }

// Paused reports whether the gate is closed.
func (m *Monitor) Paused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.paused
}

// Wait blocks while the gate is closed, until it opens or ctx ends.
func (m *Monitor) Wait(ctx context.Context) error {
	m.mu.Lock()
	open := m.open
	m.mu.Unlock()
	select {
	case <-open:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
