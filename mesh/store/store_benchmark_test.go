package store_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"

	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// BenchmarkLifecycle runs the store's part of the hot path — insert, activate,
// finish (success) — for batches of tasks, from 4 goroutines on the test's
// 4-connection pool, with synchronous commit as configured on the server.
// "one-per-statement" is one task per Insert/Activate/Finish (3 round trips
// and 3 commits per task); "batch-N" is N tasks per statement. The metric
// to compare is tasks/s.
//
//	go test -run '^$' -bench Lifecycle -benchtime 3s ./mesh/store/
func BenchmarkLifecycle(b *testing.B) {
	for _, size := range []int{1, 100, 200} {
		name := fmt.Sprintf("batch-%d", size)
		if size == 1 {
			name = "one-per-statement"
		}
		b.Run(name, func(b *testing.B) { benchLifecycle(b, size) })
	}
}

func benchLifecycle(b *testing.B, size int) {
	bb := setup(b)
	specs := make([]task.Spec, size)
	for i := range specs {
		specs[i] = task.Spec{Role: task.Roles[i%3], Payload: json.RawMessage(`{"work":"simulated","n":42}`)}
	}
	const goroutines = 4 // the pool's size
	b.SetParallelism(max(1, goroutines/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		worker := fmt.Sprintf("bench-%p", pb)
		outs := make([]store.Outcome, size)
		for pb.Next() {
			res, err := bb.st.Insert(bb.ctx, specs, false)
			if err != nil {
				b.Error(err)
				return
			}
			ts := make([]task.Task, len(res))
			for i, r := range res {
				ts[i] = r.Task
			}
			active, err := bb.st.Activate(bb.ctx, worker, ids(ts))
			if err != nil || len(active) != size {
				b.Errorf("Activate: %d of %d, %v", len(active), size, err)
				return
			}
			for i, a := range active {
				outs[i] = store.Outcome{ID: a.ID, Attempt: a.Attempts}
			}
			f, err := bb.st.Finish(bb.ctx, worker, outs)
			if err != nil || len(f.Done) != size {
				b.Errorf("Finish: %d of %d, %v", len(f.Done), size, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "tasks/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/task")
}
