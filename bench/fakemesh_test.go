package bench

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/loadgen"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// fakeMesh stands in for `mesh producer|worker|loadgen` so the orchestrator
// can be tested without the real mesh: the producer creates the run's
// schema and a key under its prefix (to check the cleanup), answers /readyz
// and /metrics, and with --ignore-term ignores SIGTERM; the worker serves
// /metrics and heartbeats; the loadgen writes a result for --rate ×
// --duration units after sleeping --duration, and dies on SIGTERM.
func fakeMesh(cmd string, args []string) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	addr := fs.String("addr", "", "")
	metricsAddr := fs.String("metrics-addr", "", "")
	id := fs.String("id", "", "")
	ignoreTerm := fs.Bool("ignore-term", false, "")
	out := fs.String("out", "", "")
	rate := fs.Float64("rate", 0, "")
	dur := fs.Duration("duration", 0, "")
	for _, s := range []string{"target", "mode", "seed", "drain-timeout", "roles", "payload", "steps", "ramp-from", "ramp-over"} {
		fs.String(s, "", "")
	}
	for _, s := range []string{"requests", "batch", "senders", "clients", "concurrency"} {
		fs.Int(s, 0, "")
	}
	fs.Float64("pipelines", 0, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "producer":
		if *ignoreTerm {
			stop()
			signal.Ignore(syscall.SIGTERM)
			ctx = context.Background()
		}
		if err := fakeProducerSetup(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return serveFake(ctx, *addr, "agentmesh_tasks_accepted_total 100\ngo_memstats_mallocs_total 5000\n")
	case "worker":
		go fakeHeartbeat(ctx, *id)
		return serveFake(ctx, *metricsAddr, fakeWorkerMetrics)
	case "loadgen":
		fmt.Fprintln(os.Stderr, "   1.0s  fake progress line")
		select {
		case <-ctx.Done():
			return 1
		case <-time.After(*dur):
		}
		return writeFakeResult(*out, int64(*rate*dur.Seconds()))
	}
	return 2
}

const fakeWorkerMetrics = `agentmesh_worker_tasks_total{role="QA",outcome="completed"} 100
agentmesh_task_latency_seconds_bucket{role="QA",le="0.001"} 50
agentmesh_task_latency_seconds_bucket{role="QA",le="0.01"} 100
agentmesh_task_latency_seconds_bucket{role="QA",le="+Inf"} 100
go_memstats_mallocs_total 7000
`

func fakeProducerSetup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{os.Getenv("MESH_SCHEMA")}.Sanitize()); err != nil {
		return err
	}
	opt, err := redis.ParseURL(os.Getenv("REDIS_URL"))
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	return rdb.Set(ctx, os.Getenv("MESH_PREFIX")+":fake", "1", time.Hour).Err()
}

// serveFake serves /readyz and /metrics until ctx ends.
func serveFake(ctx context.Context, addr, metrics string) int {
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(metrics)) })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return 1
	}
	srv := &http.Server{Handler: mux}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	_ = srv.Serve(ln)
	if ctx.Err() == nil {
		return 1
	}
	// With SIGTERM ignored ctx never ends: this blocks until SIGKILL.
	return 0
}

func fakeHeartbeat(ctx context.Context, id string) {
	opt, err := redis.ParseURL(os.Getenv("REDIS_URL"))
	if err != nil {
		return
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	q := queue.New(rdb, queue.Config{Prefix: os.Getenv("MESH_PREFIX")})
	info := fmt.Sprintf(`{"id":%q}`, id)
	for ctx.Err() == nil {
		_ = q.Heartbeat(ctx, id, task.Roles, 5*time.Second, []byte(info))
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func writeFakeResult(path string, n int64) int {
	h := hdr.New(1, 3_600_000_000, 3)
	for i := range n {
		_ = h.RecordValue(1000 + i)
	}
	enc, _ := h.Encode(hdr.V2CompressedEncodingCookieBase)
	hist := &loadgen.Histogram{Count: h.TotalCount(), HDR: string(enc)}
	now := time.Now()
	r := &loadgen.Result{Schema: loadgen.Schema, Generators: 1, Mode: loadgen.OpenLoop, Schedule: "fake", Batch: 1,
		EndToEnd: true, Start: now.Add(-time.Second), SendEnd: now, End: now, TargetRate: float64(n), AchievedRate: float64(n),
		Throughput: float64(n), Tasks: loadgen.TaskCounts{Scheduled: n, Sent: n, Accepted: n, Completed: n},
		HTTP:    loadgen.HTTPCounts{Requests: n, StatusCodes: map[string]int64{"202": n}},
		Latency: loadgen.Latencies{Corrected: hist, Service: hist, Submit: hist, ScheduleLag: hist}}
	f, err := os.Create(path)
	if err != nil {
		return 1
	}
	defer f.Close()
	if err := r.WriteJSON(f); err != nil {
		return 1
	}
	return 0
}
