//go:build !race

// The race detector keeps shadow memory for every page the ballast touches and
// never returns it, so RSS cannot fall under -race: `task test` runs this file
// in a separate pass without -race.

package health

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestRealBallast closes the gate with real memory: a ballast pushes this
// process's RSS over a soft limit set just above its baseline, and releasing
// the ballast (the monitor frees OS memory while paused) reopens it.
func TestRealBallast(t *testing.T) {
	m0, _ := New(Config{})
	_ = m0.Check(context.Background())
	base := m0.Snapshot().RSS
	const ballastSize = 256 << 20
	m, err := New(Config{Limit: base + 4*ballastSize, SoftLimit: base + ballastSize/2, ResumeBelow: base + ballastSize/4})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ballast := make([]byte, ballastSize)
	for i := range ballast { // touch every page so it is resident
		ballast[i] = 1
	}
	if err := m.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if !m.Paused() {
		t.Fatalf("RSS %d over soft limit %d but gate open", m.Snapshot().RSS, m.cfg.SoftLimit)
	}
	runtime.KeepAlive(ballast)
	ballast = nil
	deadline := time.Now().Add(10 * time.Second)
	for m.Paused() && time.Now().Before(deadline) {
		_ = m.Check(ctx)
	}
	if m.Paused() {
		t.Fatalf("gate still closed after releasing the ballast: RSS %d, resume below %d", m.Snapshot().RSS, m.cfg.ResumeBelow)
	}
}
