package health

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestScore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rss, limit uint64
		want       float64
	}{
		{0, 100, 1},     // empty process: fully healthy
		{25, 100, 0.75}, // a quarter used
		{100, 100, 0},   // at the limit
		{300, 100, 0},   // over the limit clamps to 0, never negative
		{10, 0, 0},      // no limit configured: report unhealthy rather than divide by zero
	}
	for _, tt := range tests {
		if got := Score(tt.rss, tt.limit); got != tt.want {
			t.Errorf("Score(%d, %d) = %v, want %v", tt.rss, tt.limit, got, tt.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := Config{Limit: 1000}.WithDefaults()
	if c.SoftLimit != 800 || c.ResumeBelow != 720 || c.Interval != DefaultInterval {
		t.Fatalf("defaults = soft %d resume %d interval %s", c.SoftLimit, c.ResumeBelow, c.Interval)
	}
	if _, err := New(Config{Limit: 100, SoftLimit: 200}); err == nil {
		t.Fatal("soft limit above limit was accepted")
	}
}

// TestRealSample reads this very process through gopsutil.
func TestRealSample(t *testing.T) {
	t.Parallel()
	m, err := New(Config{Limit: 16 << 30}) // the race detector's shadow memory inflates RSS
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := m.Snapshot()
	if s.RSS < 1<<20 || s.RSS > 8<<30 {
		t.Fatalf("RSS %d bytes is not plausible for a test process", s.RSS)
	}
	if s.HealthScore <= 0 || s.HealthScore > 1 {
		t.Fatalf("health score %v out of (0,1] for a small process", s.HealthScore)
	}
}

// TestGateHysteresis drives the gate with scripted readings: it closes above
// the soft limit, stays closed between the marks, and reopens below resume.
func TestGateHysteresis(t *testing.T) {
	t.Parallel()
	readings := []uint64{100, 900, 850, 700, 900}
	wantPaused := []bool{false, true, true, false, true}
	i := 0
	m, err := New(Config{Limit: 1000, SoftLimit: 800, ResumeBelow: 720,
		Sample: func(context.Context) (Sample, error) { r := readings[i]; i++; return Sample{RSS: r}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for step, want := range wantPaused {
		if err := m.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if got := m.Paused(); got != want {
			t.Fatalf("step %d (rss %d): paused = %v, want %v", step, readings[step], got, want)
		}
	}
	if got := m.Snapshot().Pauses; got != 2 {
		t.Fatalf("pauses = %d, want 2", got)
	}
}

// TestWaitBlocksWhilePaused checks that Wait holds a claimer while the gate is
// closed and lets it go when memory comes back.
func TestWaitBlocksWhilePaused(t *testing.T) {
	t.Parallel()
	rss := make(chan uint64, 1)
	m, err := New(Config{Limit: 1000, SoftLimit: 800,
		Sample: func(context.Context) (Sample, error) { return Sample{RSS: <-rss}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rss <- 950
	_ = m.Check(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Wait(ctx) }()
	select {
	case <-done:
		t.Fatal("Wait returned while the gate was closed")
	case <-time.After(50 * time.Millisecond): // a negative check: nothing to signal on
	}
	rss <- 100
	_ = m.Check(ctx)
	if err := <-done; err != nil {
		t.Fatalf("Wait after resume: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	rss <- 990
	_ = m.Check(ctx)
	cancel()
	if err := m.Wait(cctx); err == nil {
		t.Fatal("Wait on a cancelled context returned nil while paused")
	}
}
