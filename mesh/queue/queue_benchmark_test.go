package queue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// BenchmarkClaimAck drains b.N pending tasks through claim + ack, one task
// per round trip against batches of 100, and reports tasks/s.
//
//	go test -run '^$' -bench ClaimAck -benchtime 3s ./mesh/queue/
func BenchmarkClaimAck(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			rdb, prefix := meshtest.Redis(b)
			q := New(rdb, Config{Prefix: prefix, ClaimWait: 10 * time.Millisecond})
			ctx := context.Background()
			fillRole(b, q, task.QA, b.N)
			b.ResetTimer()
			for done := 0; done < b.N; {
				items, err := q.Claim(ctx, task.QA, "bench", min(batch, b.N-done))
				if err != nil || len(items) == 0 {
					b.Fatalf("claim after %d of %d: %d items, %v", done, b.N, len(items), err)
				}
				if err := q.Ack(ctx, "bench", items); err != nil {
					b.Fatal(err)
				}
				done += len(items)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

func btoi(v bool) int {
	if v {
		return 1
	}
	return 0
}
