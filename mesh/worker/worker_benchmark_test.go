package worker_test

import (
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/mesh/task"
	"github.com/agentmesh/agentmesh/mesh/worker"
)

// BenchmarkClaimToComplete measures the whole worker path — claim from
// Redis, activate in PostgreSQL, run (no simulated work), finish in
// PostgreSQL, ack in Redis — one task per round trip against batched, and
// reports tasks/s. Run: go test -run '^$' -bench ClaimToComplete ./mesh/worker/
func BenchmarkClaimToComplete(b *testing.B) {
	cases := []struct {
		name string
		cfg  worker.Config
	}{
		// One id per claim, one row per statement, one statement in flight.
		{"one-at-a-time", worker.Config{Roles: map[task.Role]int{task.Developer: 1}, ClaimBatch: 1, FinishBatch: 1, Flushers: 1}},
		// The defaults: up to 128 ids per claim, 256 rows per statement, 2 in flight.
		{"batched", worker.Config{Roles: map[task.Role]int{task.Developer: 256}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			bd := setup(b)
			const chunk = 1000
			n := max(b.N, 1)
			for i := 0; i < n; i += chunk {
				bd.submit(b, false, specs(min(chunk, n-i), task.Developer, `{}`)...)
			}
			b.ResetTimer()
			start := time.Now()
			bd.start(b, c.cfg, false)
			bd.waitSettled(b, 10*time.Minute)
			b.StopTimer()
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "tasks/s")
		})
	}
}
