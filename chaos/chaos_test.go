package chaos_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/chaos"
	"github.com/agentmesh/agentmesh/mesh/meshtest"
)

func meshBinary(t testing.TB) string { return meshtest.MeshBinary(t) }

func needBackends(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	if _, err := exec.LookPath("initdb"); err != nil {
		if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) == 0 {
			t.Skip("initdb not installed")
		}
	}
}

// TestPostgresCrashRestart crashes the private cluster both ways and checks
// it answers again each time.
func TestPostgresCrashRestart(t *testing.T) {
	t.Parallel()
	needBackends(t)
	ctx := context.Background()
	pg, err := chaos.StartPostgres(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	before, err := pg.PID()
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Kill(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := pg.RestartImmediate(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := pg.PID()
	if err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Fatalf("postmaster pid %d unchanged: nothing restarted", after)
	}
}

// TestChaosShort is the short chaos run of `task test`: 200 units/s for
// 40 s against two workers while every fault kind is injected at least
// once, then the audit. It asserts correctness only (counts and states),
// never timing.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run skipped in -short mode")
	}
	needBackends(t)
	var progress bytes.Buffer
	res, err := chaos.Run(t.Context(), chaos.Config{
		Binary: meshBinary(t), Dir: t.TempDir(), Rate: 200, Duration: 40 * time.Second, Workers: 2,
		Work: "5ms-50ms", FirstAt: 3 * time.Second, Gap: time.Second, Down: 500 * time.Millisecond,
		Tail: 3 * time.Second, RecoverTimeout: 45 * time.Second, DrainTimeout: 60 * time.Second,
		Progress: &progress,
	})
	t.Log("\n" + progress.String())
	if err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	_ = res.WriteMarkdown(&md)
	if !res.Pass {
		t.Fatalf("chaos audit failed:\n%s", md.String())
	}
	for _, k := range chaos.Kinds {
		if res.Count(k) == 0 {
			t.Errorf("no %s fault was injected:\n%s", k, md.String())
		}
	}
	if res.Load.Accepted == 0 || res.Audit.Rows < res.Load.Accepted {
		t.Errorf("accepted %d units but PostgreSQL holds %d tasks", res.Load.Accepted, res.Audit.Rows)
	}
	if res.Load.Duplicates != 0 || res.Events.Duplicates != 0 {
		t.Errorf("duplicate completions: loadgen %d, events channel %d", res.Load.Duplicates, res.Events.Duplicates)
	}
}
