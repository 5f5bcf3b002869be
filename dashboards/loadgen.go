package dashboards

// Loadgen shows a load generator run: the rate it aimed for and reached,
// its own health (schedule lag), outcomes, lost tasks and latency.
func Loadgen() *Dashboard {
	b := newBoard("agentmesh-loadgen", "Agent Mesh / Load generator",
		"An open-loop load run: target vs achieved rate, schedule lag (the generator's own health), requests by outcome, lost tasks, latency; and the mesh's side of the same run.",
		"now-15m",
		roleVariable("agentmesh_queue_depth"),
		instanceVariable("agentmesh_loadgen_target_rate", "Load generator process (host:port of its --metrics-addr)."),
	)
	lg := []string{byInstance}

	b.row("Rate")
	b.add(12, 8, timeseries("Target vs achieved rate", "reqps",
		"The schedule's rate (dashed), the rate actually sent as the generator reports it, and as counted from its request counter. Achieved under 98 % of target means the generator, not the mesh, was the bottleneck.",
		q(sumBy("", sel("agentmesh_loadgen_target_rate", lg...)), "target"),
		q(sumBy("", sel("agentmesh_loadgen_achieved_rate", lg...)), "achieved"),
		q(sumBy("", rate(sel("agentmesh_loadgen_requests_total", lg...))), "sent (counter)")).withMin(0).dashed("^target$"))
	b.add(4, 8, stat("Achieved / target", "percentunit", "Achieved rate over target rate.",
		q(sumBy("", sel("agentmesh_loadgen_achieved_rate", lg...))+" / "+sumBy("", sel("agentmesh_loadgen_target_rate", lg...)), "achieved/target")).
		withThresholds("red", 0.95, "orange", 0.98, "green"))
	b.add(8, 8, timeseries("Mesh accepted and completed", "ops",
		"The mesh's side of the run: tasks accepted by the producers and completed by the workers per second.",
		q(sumBy("", rate(sel("agentmesh_tasks_accepted_total", byRole))), "accepted"),
		q(sumBy("", rate(sel("agentmesh_worker_tasks_total", `outcome="completed"`, byRole))), "completed")).withMin(0))

	b.row("Outcome")
	b.add(12, 8, timeseries("Requests by outcome", "reqps", "Requests per second by outcome (accepted, rejected, error…).",
		q(sumBy("outcome", rate(sel("agentmesh_loadgen_requests_total", lg...))), "{{outcome}}")).withMin(0))
	b.add(6, 8, stat("Lost tasks", "short",
		"Accepted tasks never seen completing within the timeout. Must stay 0.",
		q(sumBy("", sel("agentmesh_loadgen_lost_total", lg...)), "lost")).withThresholds("green", 1.0, "red"))
	b.add(6, 8, timeseries("Schedule lag", "s",
		"Actual send − intended send: the generator's own health. A growing lag means the generator could not keep its schedule.",
		q(quantile("0.5", "agentmesh_loadgen_schedule_lag_seconds", "", lg...), "p50"),
		q(quantile("0.99", "agentmesh_loadgen_schedule_lag_seconds", "", lg...), "p99")).withMin(0))

	b.row("Latency")
	b.add(12, 8, timeseries("Corrected latency (intended send → completion)", "s",
		"Percentiles of the headline latency, charged from the intended send time so a stall cannot hide.",
		percentileTargets("agentmesh_loadgen_latency_seconds", "", append([]string{`kind="corrected"`}, lg...)...)...).withMin(0))
	b.add(12, 8, timeseries("p99 by kind", "s",
		"corrected (intended → completion), service (actual send → completion), submit (intended → 2xx).",
		q(quantile("0.99", "agentmesh_loadgen_latency_seconds", "kind", lg...), "{{kind}}")).withMin(0))
	b.add(24, 9, heatmap("Corrected latency heatmap", "s",
		"Completions per second in each corrected-latency bucket.",
		q(sumBy("le", rate(sel("agentmesh_loadgen_latency_seconds_bucket", append([]string{`kind="corrected"`}, lg...)...))), "")))
	return b.d
}
