package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
)

// lockedBuffer is a progress writer safe for the orchestrator's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeSetup returns an orchestrator whose mesh is the test binary itself
// (see fakeMesh).
func fakeSetup(t *testing.T, outDir string) (*Orchestrator, *lockedBuffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	progress := &lockedBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o, err := New(ctx, Config{Binary: exe, RedisURL: meshtest.RedisURL(), DatabaseURL: meshtest.DatabaseURL(),
		OutDir: outDir, NoCeiling: true, SampleInterval: 50 * time.Millisecond, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o, progress
}

func fakeScenario(t *testing.T, extra string) *Scenario {
	t.Helper()
	s, err := DecodeScenario(strings.NewReader(`{"name":"fake","load":{"rate":100,"duration":"500ms"},"warmup":"100ms",
		"stop_timeout":"300ms","producer":{"args":["--ignore-term"]},"workers":{"count":2},
		"slo":{"zero_loss":true,"p99_e2e":"1s"}` + extra + `}`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkCleanedUp fails when the run's schema or keys survived it.
func checkCleanedUp(t *testing.T, ns Namespace) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, meshtest.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", ns.Schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("schema %s survived the run", ns.Schema)
	}
	rdb, err := OpenRedis(meshtest.RedisURL(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	keys, err := rdb.Keys(ctx, ns.Prefix+":*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("keys under %s survived the run: %v %v", ns.Prefix, keys, err)
	}
}

func TestOrchestratorRunsAndCleansUp(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	o, progress := fakeSetup(t, out)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := o.Run(ctx, Run{Scenario: fakeScenario(t, "")})
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress)
	}
	if res.Load == nil || res.Summary.Completed != 50 || res.Summary.Lost != 0 {
		t.Fatalf("summary %+v", res.Summary)
	}
	if res.Ceiling.TasksPerSec() != 0 || res.Namespace.Schema == "" {
		t.Errorf("ceiling %v namespace %+v", res.Ceiling, res.Namespace)
	}
	checkCleanedUp(t, res.Namespace)
	kinds := map[string]int{}
	for _, p := range res.Processes {
		kinds[p.Kind]++
		switch {
		case p.Kind == "producer" && (p.Stop == nil || !p.Stop.Killed):
			t.Errorf("%s ignores SIGTERM but was not killed after the bound: %+v", p.Name, p.Stop)
		case p.Kind == "worker" && (p.Stop == nil || p.Stop.Killed || p.Stop.ExitCode != 0):
			t.Errorf("%s did not stop cleanly: %+v", p.Name, p.Stop)
		case (p.Kind == "producer" || p.Kind == "worker") && p.MaxRSS == 0:
			t.Errorf("%s: no RSS sampled", p.Name)
		}
	}
	if kinds["producer"] != 1 || kinds["worker"] != 2 || kinds["loadgen"] != 2 {
		t.Errorf("processes by kind %v, want 1 producer, 2 workers, 2 loadgens (warmup, main)", kinds)
	}
	var graceful *Check
	for i, c := range res.Checks {
		if c.Name == "graceful stop" {
			graceful = &res.Checks[i]
		} else if !c.Pass {
			t.Errorf("check %s failed: %+v", c.Name, c)
		}
	}
	if graceful == nil || graceful.Pass || res.Pass {
		t.Errorf("a producer killed after the bound must fail the graceful-stop check: %+v, pass %v", graceful, res.Pass)
	}
	if c := res.Mesh.Counters; c["accepted"] != 0 || c["worker_tasks_completed"] != 0 {
		t.Errorf("the fake's counters do not move, deltas must be 0: %v", c)
	}
	if res.Mesh.Latency != nil {
		t.Errorf("no latency observed between the scrapes, got %+v", res.Mesh.Latency)
	}
	files, _ := filepath.Glob(filepath.Join(out, "fake", "*"))
	if len(files) < 5 {
		t.Errorf("result files %v", files)
	}
	if _, err := ReadResultSet(filepath.Join(out, "fake")); err != nil {
		t.Errorf("reading the written result: %v", err)
	}
	if err := WriteIndex(out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "README.md")); !strings.Contains(string(b), "| [fake](fake/") {
		t.Errorf("index:\n%s", b)
	}
	if !strings.Contains(progress.String(), "fake main │    1.0s  fake progress line") {
		t.Errorf("the load generator's progress is not relayed:\n%s", progress)
	}
}

func TestOrchestratorInterrupted(t *testing.T) {
	t.Parallel()
	o, _ := fakeSetup(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel (as Ctrl-C does) once the measured phase has started.
	o.hooks.beforeMain = func(context.Context, *scenarioRun) {
		time.AfterFunc(200*time.Millisecond, cancel)
	}
	start := time.Now()
	res, err := o.Run(ctx, Run{Scenario: fakeScenario(t, `,"load":{"rate":100,"duration":"1m"}`)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the interrupted run took %s", took)
	}
	for _, p := range res.Processes {
		// The warmup's loadgen-1 had exited by itself; the rest were stopped.
		if p.Stop == nil && p.Kind != "postgres" && p.Kind != "redis" && p.Name != "loadgen-1" {
			t.Errorf("%s was not stopped", p.Name)
		}
	}
	checkCleanedUp(t, res.Namespace)
}
