package dashboards

// Workers shows each worker process's health: memory against its limit,
// HealthScore, CPU, the Go runtime, in-flight work and backpressure.
func Workers() *Dashboard {
	b := newBoard("agentmesh-workers", "Agent Mesh / Worker health",
		"Per worker process: RSS against its limit, HealthScore, CPU, GC and heap, in-flight tasks, claim and store batch sizes, backpressure pauses.",
		"now-30m",
		roleVariable("agentmesh_worker_inflight"),
		instanceVariable("agentmesh_worker_health_score", "Worker process (host:port of its --metrics-addr)."),
	)
	worker := []string{`job="worker"`, byInstance}

	b.row("Memory and health")
	b.add(12, 8, timeseries("RSS vs limit", "bytes",
		"Resident set size of each worker against its memory limit (dashed). Over the soft limit a worker stops claiming until RSS falls back.",
		q(sel("agentmesh_worker_rss_bytes", byInstance), "{{instance}} RSS"),
		q(sel("agentmesh_worker_rss_limit_bytes", byInstance), "{{instance}} limit")).withMin(0).dashed("limit$"))
	b.add(12, 8, timeseries("HealthScore", "percentunit",
		"1 − RSS/limit, clamped to [0, 1]: 1 is idle memory, 0 is at the limit.",
		q(sel("agentmesh_worker_health_score", byInstance), "{{instance}}")).
		withRange(0, 1).withThresholds("red", 0.2, "orange", 0.5, "green"))
	b.add(12, 8, timeseries("RSS per worker id (heartbeats)", "bytes",
		"RSS as the producer last saw it in each worker's heartbeat, by worker id: what admission control decides on.",
		q(maxBy("worker", "agentmesh_mesh_worker_rss_bytes"), "{{worker}}")).withMin(0))
	b.add(12, 8, timeseries("HealthScore per worker id (heartbeats)", "percentunit",
		"HealthScore from each worker's heartbeat, by worker id.",
		q(maxBy("worker", "agentmesh_mesh_worker_health_score"), "{{worker}}")).withRange(0, 1))

	b.row("CPU and Go runtime")
	b.add(8, 8, timeseries("CPU", "percentunit",
		"CPU use of each worker: as the worker samples it for its heartbeat, and from the process collector (1 = one core).",
		q(sel("agentmesh_worker_cpu_ratio", byInstance), "{{instance}} sampled"),
		q(rate(sel("process_cpu_seconds_total", worker...)), "{{instance}} process")).withMin(0))
	// quantile="1" in the text format, "1.0" in OpenMetrics and in Prometheus 3 (which normalizes it).
	b.add(8, 8, timeseries("GC pause (max of recent cycles)", "s",
		"The longest stop-the-world GC pause among each worker's recent cycles (go_gc_duration_seconds, quantile 1).",
		q(maxBy("instance", sel("go_gc_duration_seconds", append([]string{`quantile=~"1|1.0"`}, worker...)...)), "{{instance}}")).withMin(0))
	b.add(8, 8, timeseries("GC cycles", "cps", "Garbage collections per second.",
		q(sumBy("instance", rate(sel("go_gc_duration_seconds_count", worker...))), "{{instance}}")).withMin(0))
	b.add(8, 8, timeseries("Heap in use and GC goal", "bytes",
		"Heap bytes in use, and the heap size at which the next GC starts (dashed).",
		q(sel("go_memstats_heap_inuse_bytes", worker...), "{{instance}} in use"),
		q(sel("go_memstats_next_gc_bytes", worker...), "{{instance}} next GC")).withMin(0).dashed("next GC$"))
	b.add(8, 8, timeseries("Allocation rate", "Bps", "Bytes allocated per second.",
		q(rate(sel("go_memstats_alloc_bytes_total", worker...)), "{{instance}}")).withMin(0))
	b.add(8, 8, timeseries("Goroutines", "short", "Live goroutines per worker.",
		q(sel("go_goroutines", worker...), "{{instance}}")).withMin(0))

	b.row("Work")
	b.add(6, 8, timeseries("In flight by role", "short", "Tasks a worker is running right now.",
		q(sumBy("role", sel("agentmesh_worker_inflight", byRole, byInstance)), "{{role}}")).withMin(0).stacked())
	b.add(6, 8, timeseries("Outcomes by worker", "ops", "Finished attempts per second, per worker and outcome.",
		q(sumBy("instance, outcome", rate(sel("agentmesh_worker_tasks_total", byRole, byInstance))), "{{instance}} {{outcome}}")).withMin(0))
	b.add(6, 8, timeseries("Claim batch size", "short",
		"Tasks taken per claim round trip: 1 when idle, growing under load (adaptive batching).",
		q(quantile("0.5", "agentmesh_worker_claim_batch_size", "", byInstance), "p50"),
		q(quantile("0.99", "agentmesh_worker_claim_batch_size", "", byInstance), "p99")).withMin(0))
	b.add(6, 8, timeseries("Store batch size p99 by operation", "short",
		"Tasks per PostgreSQL statement, per operation (activate, finish…).",
		q(quantile("0.99", "agentmesh_worker_store_batch_size", "op", byInstance), "{{op}}")).withMin(0))

	b.row("Backpressure")
	b.add(8, 6, timeseries("Backpressure pauses", "cps",
		"Times per second a worker stopped claiming because its RSS passed the soft limit.",
		q(sumBy("instance", rate(sel("agentmesh_worker_backpressure_pauses_total", byInstance))), "{{instance}}")).withMin(0))
	b.add(8, 6, timeseries("Paused", "bool_yes_no",
		"Whether a worker is paused (not claiming) right now.",
		q(maxBy("instance", sel("agentmesh_worker_paused", byInstance)), "{{instance}}")).withRange(0, 1))
	b.add(8, 6, stat("Workers up", "short", "Worker processes Prometheus reaches.",
		q(sumBy("", sel("up", `job="worker"`)), "workers")))
	return b.d
}
