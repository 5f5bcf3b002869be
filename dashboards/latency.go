package dashboards

// Latency shows the mesh's own latency histograms beside the load
// generator's open-loop view of the same tasks.
func Latency() *Dashboard {
	b := newBoard("agentmesh-latency", "Agent Mesh / Latency",
		"Task latency (created → completed) and queue wait from the workers' histograms, the load generator's corrected and service latency beside them, and HTTP request duration.",
		"now-30m",
		roleVariable("agentmesh_queue_depth"),
		instanceVariable(`up{job=~"producer|worker"}`, "Producer or worker process (host:port)."),
	)
	mesh := []string{byRole, byInstance}

	b.row("Mesh latency (created → completed)")
	b.add(16, 9, timeseries("Task latency", "s",
		"Percentiles of the time from a task's creation to its completion, recorded by the workers (classic histogram buckets).",
		percentileTargets("agentmesh_task_latency_seconds", "", mesh...)...).withMin(0))
	b.add(8, 9, timeseries("Task latency p99 by role", "s",
		"p99 per role: a pipeline's later stages include the earlier stages' wait.",
		q(quantile("0.99", "agentmesh_task_latency_seconds", "role", mesh...), "{{role}}")).withMin(0))
	b.add(24, 9, heatmap("Task latency heatmap", "s",
		"Completions per second in each latency bucket: the whole distribution, bands and outliers included.",
		q(sumBy("le", rate(sel("agentmesh_task_latency_seconds_bucket", mesh...))), "")))

	b.row("Queue wait (created → started)")
	b.add(12, 8, timeseries("Queue wait", "s",
		"Percentiles of the time a task waited before a worker started it.",
		percentileTargets("agentmesh_task_queue_wait_seconds", "", mesh...)...).withMin(0))
	b.add(12, 8, timeseries("Queue wait p99 by role", "s", "p99 of the queue wait per role.",
		q(quantile("0.99", "agentmesh_task_queue_wait_seconds", "role", mesh...), "{{role}}")).withMin(0))

	b.row("The load generator's view (open loop, from the intended send time)")
	b.add(12, 8, timeseries("Load generator vs mesh (p99)", "s",
		"corrected: intended send → completion seen by the load generator (no coordinated omission); service: actual send → completion; submit: intended send → 2xx; mesh: the workers' created → completed. corrected well above mesh means time lost before the task was created (admission, HTTP, a stalled generator).",
		q(quantile("0.99", "agentmesh_loadgen_latency_seconds", "kind"), "loadgen {{kind}} p99"),
		q(quantile("0.99", "agentmesh_task_latency_seconds", "", mesh...), "mesh p99")).withMin(0).dashed("^mesh"))
	b.add(12, 8, timeseries("Load generator corrected latency", "s",
		"Percentiles of intended send → completion, as the load generator measures it.",
		percentileTargets("agentmesh_loadgen_latency_seconds", "", `kind="corrected"`)...).withMin(0))

	b.row("HTTP")
	b.add(24, 8, timeseries("HTTP request duration p99 by route", "s",
		"The producer's time to answer, per route.",
		q(quantile("0.99", "agentmesh_http_request_duration_seconds", "route", byInstance), "{{route}}")).withMin(0))
	return b.d
}
