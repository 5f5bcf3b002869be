package bench

import (
	"math"
	"strings"
	"testing"
)

const samplePage = `# HELP agentmesh_worker_tasks_total Tasks.
# TYPE agentmesh_worker_tasks_total counter
agentmesh_worker_tasks_total{outcome="completed",role="QA"} 10
agentmesh_worker_tasks_total{outcome="completed",role="ARCHITECT"} 5
agentmesh_worker_tasks_total{outcome="failed",role="QA"} 1
agentmesh_task_latency_seconds_bucket{role="QA",le="0.001"} 2
agentmesh_task_latency_seconds_bucket{role="QA",le="0.01"} 8
agentmesh_task_latency_seconds_bucket{role="QA",le="+Inf"} 10
agentmesh_task_latency_seconds_bucket{role="ARCHITECT",le="0.001"} 0
agentmesh_task_latency_seconds_bucket{role="ARCHITECT",le="0.01"} 10
agentmesh_task_latency_seconds_bucket{role="ARCHITECT",le="+Inf"} 10
odd_label{path="a\"b\\c"} 1.5e3 1700000000000
`

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	ms, err := ParseMetrics(strings.NewReader(samplePage))
	if err != nil {
		t.Fatal(err)
	}
	if got := ms.Sum("agentmesh_worker_tasks_total", "outcome", "completed"); got != 15 {
		t.Errorf("completed %g", got)
	}
	if got := ms.SumBy("agentmesh_worker_tasks_total", "outcome")["failed"]; got != 1 {
		t.Errorf("failed %g", got)
	}
	if got := ms.Sum("odd_label", "path", `a"b\c`); got != 1500 {
		t.Errorf("escaped label: %g", got)
	}
	bs := ms.Buckets("agentmesh_task_latency_seconds")
	if len(bs) != 3 || bs[0].Count != 2 || bs[1].Count != 18 || !math.IsInf(bs[2].LE, 1) || bs[2].Count != 20 {
		t.Fatalf("buckets %+v", bs)
	}
	// 20 observations: rank 10 (p50) falls in (0.001, 0.01] holding 16: 0.001 + 0.009·8/16.
	if q := BucketQuantile(0.5, bs); math.Abs(q-0.0055) > 1e-12 {
		t.Errorf("p50 %g", q)
	}
	// p99 falls in +Inf: the highest finite bound.
	if q := BucketQuantile(0.99, bs); q != 0.01 {
		t.Errorf("p99 %g", q)
	}
	if d := SubBuckets(bs, bs); d[2].Count != 0 {
		t.Errorf("delta %+v", d)
	}
	if !math.IsNaN(BucketQuantile(0.5, nil)) {
		t.Error("quantile of nothing")
	}
}

func TestParseMetricsErrors(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"novalue", `x{a="b} 1`, `x{a=b} 1`, "x abc"} {
		if _, err := ParseMetrics(strings.NewReader(bad + "\n")); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
