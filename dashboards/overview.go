package dashboards

// Overview is the mesh at a glance: what comes in, what is done, what waits,
// what fails.
func Overview() *Dashboard {
	b := newBoard("agentmesh-overview", "Agent Mesh / Overview",
		"Submissions, admission, completions, queues, dead letters and errors of the whole mesh.",
		"now-30m",
		roleVariable("agentmesh_queue_depth"),
		instanceVariable(`up{job=~"producer|worker"}`,
			"Producer or worker process (host:port). Queue depth and dead letters are mesh-wide and ignore it."),
	)
	accepted := sel("agentmesh_tasks_accepted_total", byRole, byInstance)
	outcomes := func(outcome string) string {
		return sel("agentmesh_worker_tasks_total", `outcome="`+outcome+`"`, byRole, byInstance)
	}

	b.row("Now")
	b.add(4, 4, stat("Accepted", "ops", "Tasks accepted per second (202 answered).",
		q(sumBy("", rate(accepted)), "accepted")))
	b.add(4, 4, stat("Completed", "ops", "Tasks completed per second by the workers.",
		q(sumBy("", rate(outcomes("completed"))), "completed")))
	b.add(4, 4, stat("Rejected", "ops", "Submissions answered with an error per second (every reason).",
		q(sumBy("", rate(sel("agentmesh_tasks_rejected_total", byRole, byInstance))), "rejected")).
		withThresholds("green", 0.001, "orange"))
	b.add(4, 4, stat("Pending", "short", "Tasks waiting in the Redis pending lists, all priorities.",
		q(sumBy("", maxBy("role, state", sel("agentmesh_queue_depth", `state="pending"`, byRole))), "pending")))
	b.add(4, 4, stat("Dead letters", "short", "Tasks parked in the dead-letter queue (attempts exhausted).",
		q(sumBy("", maxBy("role", sel("agentmesh_dead_letters", byRole))), "dead")).
		withThresholds("green", 1.0, "red"))
	b.add(4, 4, stat("Admission", "short",
		"The producers' admission state: open, overloaded (depth bound, 429), unhealthy (workers over their memory limit, 503) or paused by an operator.",
		q(maxBy("state", sel("agentmesh_admission_state", byInstance))+" == 1", "{{state}}")).textName())

	b.row("Throughput")
	b.add(8, 8, timeseries("Submitted by role", "ops", "Tasks submitted per second, accepted or not.",
		q(sumBy("role", rate(sel("agentmesh_tasks_submitted_total", byRole, byInstance))), "{{role}}")).withMin(0))
	b.add(8, 8, timeseries("Accepted by role", "ops", "Tasks made durable and queued per second.",
		q(sumBy("role", rate(accepted)), "{{role}}")).withMin(0))
	b.add(8, 8, timeseries("Rejected by role and reason", "ops",
		"Submissions refused per second: invalid, overloaded (429), unhealthy (503), paused, conflict (409), too_large (413), error.",
		q(sumBy("role, reason", rate(sel("agentmesh_tasks_rejected_total", byRole, byInstance))), "{{role}} {{reason}}")).withMin(0))
	b.add(8, 8, timeseries("Worker outcomes", "ops",
		"Finished attempts per second: completed, failed (a retry is scheduled), dead (dead-lettered), stale (the lease was lost; another worker owns the task).",
		q(sumBy("outcome", rate(sel("agentmesh_worker_tasks_total", byRole, byInstance))), "{{outcome}}")).withMin(0))
	b.add(8, 8, timeseries("Completed by role", "ops", "Tasks completed per second.",
		q(sumBy("role", rate(outcomes("completed"))), "{{role}}")).withMin(0))
	b.add(8, 8, timeseries("Dead-lettered by role", "ops", "Tasks moved to the dead-letter queue per second.",
		q(sumBy("role", rate(outcomes("dead"))), "{{role}}")).withMin(0))

	b.row("Queues")
	b.add(12, 8, timeseries("Queue depth by role and state", "short",
		"Tasks in Redis per role: pending (all priorities), active (claimed, not yet acked), delayed (retries waiting for their backoff). Read at scrape time; the max over producers, since each reports the same queues.",
		q(maxBy("role, state", sel("agentmesh_queue_depth", byRole)), "{{role}} {{state}}")).withMin(0).stacked())
	b.add(6, 8, timeseries("Dead letters by role", "short", "Tasks in the dead-letter queue, listable and re-drivable through /api/v1/dead.",
		q(maxBy("role", sel("agentmesh_dead_letters", byRole)), "{{role}}")).withMin(0))
	b.add(6, 8, timeseries("Maintenance", "ops",
		"The maintenance leader's work per second: retries promoted from the delayed set, workers reaped after their lease expired, tasks recovered from PostgreSQL (Redis lost its data, or a pending row was never pushed).",
		q(sumBy("", rate(sel("agentmesh_maintenance_promoted_total", byInstance))), "promoted"),
		q(sumBy("", rate(sel("agentmesh_maintenance_reaped_total", byInstance))), "reaped"),
		q(sumBy("reason", rate(sel("agentmesh_maintenance_recovered_total", byInstance))), "recovered {{reason}}")).withMin(0))

	b.row("Errors")
	b.add(8, 8, timeseries("HTTP errors by route and code", "reqps",
		"Producer answers with a 4xx or 5xx status per second.",
		q(sumBy("route, code", rate(sel("agentmesh_http_request_duration_seconds_count", `code=~"4..|5.."`, byInstance))), "{{code}} {{route}}")).withMin(0))
	b.add(8, 8, timeseries("Failed attempts by role", "ops",
		"Attempts that failed and were scheduled for a retry with backoff, per second.",
		q(sumBy("role", rate(outcomes("failed"))), "{{role}}")).withMin(0))
	b.add(8, 8, timeseries("Scrape targets up", "short",
		"Processes Prometheus reaches, per job. A scaled worker service shows one target per replica.",
		q(sumBy("job", sel("up", `job=~"producer|worker|loadgen"`)), "{{job}}")).withMin(0))

	b.row("Live UI (WebSocket)")
	b.add(6, 8, timeseries("WebSocket clients", "short",
		"Clients connected, by stream: ui (dashboards on /ws) and completions (load generators on /ws/completions).",
		q(sumBy("stream", sel("agentmesh_ws_clients", byInstance)), "{{stream}}")).withMin(0))
	b.add(6, 8, timeseries("Frames sent and dropped", "cps",
		"Frames written per second (one per 100 ms tick per client when anything changed), and frames dropped for clients whose buffer was full.",
		q(sumBy("", rate(sel("agentmesh_ws_frames_total", byInstance))), "sent"),
		q(sumBy("", rate(sel("agentmesh_ws_dropped_frames_total", byInstance))), "dropped")).withMin(0))
	b.add(12, 8, timeseries("Events per frame", "short",
		"How many task events one coalesced frame covered: the batching at work.",
		q(quantile("0.5", "agentmesh_ws_events_per_frame", "", byInstance), "p50"),
		q(quantile("0.99", "agentmesh_ws_events_per_frame", "", byInstance), "p99")).withMin(0))
	return b.d
}
