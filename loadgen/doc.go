// Package loadgen is Agent Mesh's load generator: open-loop load against the
// producer's HTTP API, measured end to end on its completion stream with HDR
// histograms, free of coordinated omission.
//
// # Load
//
// An open-loop run (ModeConstant, ModeRamp, ModeSteps) gives every unit of
// load — a single task or a whole pipeline — an intended send time from a
// Pacer (t0 + n/rate for a constant rate). Senders take units from the
// schedule; when all of them are busy (a stalled server), units wait, their
// intended times still count, and the schedule lag shows it. Batch submits
// carry k tasks in one POST /api/v1/tasks/batch, each task with its own
// intended time; the request leaves when its last task is due. ModeMax is
// closed-loop: Clients clients each send their next request when the
// previous one completed (or timed out), and every report says so.
//
// # Latency
//
// Three histograms per task, in microseconds, as wrk2 measures:
//   - corrected = completion − intended send time (the headline: a stall
//     anywhere is charged to every request it delayed);
//   - service = completion − actual send (what a closed-loop tool reports;
//     it hides stalls);
//   - submit = 2xx received − intended send time;
//
// and, per request, schedule lag = actual send − intended send time (the
// generator's own health). A completion is the arrival, on the producer's
// /ws/completions stream, of the task's terminal event (completed or dead);
// a pipeline completes with its QA stage (or when any stage dies). The
// stream is connected before anything is sent. Units not seen completing
// within DrainTimeout after the last send are checked once with
// GET /api/v1/tasks/{id}: found completed, they count as completed at the
// store's completed_at ("late"); otherwise they are lost and listed. A
// second terminal event for a unit counts as a duplicate (it must be 0).
//
// # Memory
//
// Bounded at any rate and duration: the histograms have a fixed geometry
// (1 µs–1 h, 3 digits, ~190 KB each, eight of them); the pending map holds
// only accepted, uncompleted units (at most MaxPending); completion events
// that beat their submit answer, and completed ids kept to spot duplicates,
// live in two-generation maps aged by time (RequestTimeout, DupWindow); the
// time series keeps only encoded histograms (a few hundred bytes per
// interval); at most MaxLostListed lost units are listed.
//
// # Result JSON (schema "agentmesh.loadgen.result/v1")
//
//	{
//	  "schema": "agentmesh.loadgen.result/v1",
//	  "generators": 1,                      // runs merged into this one
//	  "mode": "open-loop" | "closed-loop",
//	  "schedule": "constant 1000/s",
//	  "target": "http://127.0.0.1:8080", "batch": 1, "pipeline_fraction": 0,
//	  "end_to_end": true, "interrupted": false,
//	  "start": RFC 3339, "send_end": RFC 3339, "end": RFC 3339,
//	  "target_rate": 1000, "achieved_rate": 999.9, "throughput": 998.7,  // tasks/s
//	  "max_lag_us": 10000, "stream_reconnects": 0,
//	  "tasks": {"scheduled","sent","skipped","accepted","rejected","errors",
//	            "completed","dead","late","lost","unresolved","duplicates","unmatched"},
//	  "http": {"requests": n, "status_codes": {"202": n, "429": n, "0": n},
//	           "bytes_out": n, "bytes_in": n},
//	  "errors": [{"error": "429 Too Many Requests (overloaded)", "count": n}],
//	  "latency": {"corrected": H, "service": H, "submit": H, "schedule_lag": H},
//	  "lost": [{"id": "…", "kind": "task"|"pipeline", "intended": RFC 3339, "state": "active"}],
//	  "series": [{"start_ms","end_ms","target_rate","sent","accepted","errors",
//	              "completed","dead","latency": {…4 × H…}}],
//	  "warnings": ["GENERATOR BOTTLENECK: …", "SCHEDULE LAG: …", "LOST: …", …]
//	}
//
// where H is {"count","min_us","mean_us","p50_us","p90_us","p99_us",
// "p999_us","max_us","hdr"} and "hdr" the full histogram of microsecond
// values in HdrHistogram's V2 compressed base64 encoding ("HISTF…", "" when
// empty). The hdr is authoritative: DecodeResult recomputes the summary from
// it. Merge adds counts, merges histograms exactly, adds rates (the
// generators ran at the same time) and merges series by interval start
// (intervals are aligned to wall-clock multiples of the interval).
//
// # Outputs
//
// The text report (WriteReport) follows vegeta's; a progress line per
// interval goes to Config.Progress; the interval log (HDRLogPath) is in
// HdrHistogram log format, one tagged histogram per kind per interval
// (tags corrected, service, submit, schedule_lag); Prometheus metrics
// (agentmesh_loadgen_*) are served on MetricsAddr while the run lasts.
package loadgen
