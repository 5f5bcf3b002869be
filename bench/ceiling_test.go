package bench

import (
	"context"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
)

// TestCeilingRuns measures both ceiling variants for about a second each
// against the real test backends: they complete tasks and clean up.
func TestCeilingRuns(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{CeilingBatched, CeilingSingle} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := MeasureCeiling(ctx, CeilingConfig{RedisURL: meshtest.RedisURL(), DatabaseURL: meshtest.DatabaseURL(),
				Mode: mode, Duration: time.Second, Warmup: 200 * time.Millisecond, MaxBatch: 50, Concurrency: 4})
			if err != nil {
				t.Fatal(err)
			}
			if res.Tasks <= 0 || res.TasksPerSec <= 0 || res.P99MS <= 0 {
				t.Fatalf("ceiling %+v: want tasks completed", res)
			}
			t.Logf("%s: %.0f tasks/s, p99 %.1f ms", mode, res.TasksPerSec, res.P99MS)
		})
	}
}

func TestCeilingConfigValidation(t *testing.T) {
	t.Parallel()
	_, err := MeasureCeiling(context.Background(), CeilingConfig{Mode: "fast"})
	if err == nil {
		t.Fatal("a bad mode measured")
	}
	_, err = MeasureCeiling(context.Background(), CeilingConfig{MaxBatch: 5000})
	if err == nil {
		t.Fatal("a batch of 5000 measured")
	}
}
