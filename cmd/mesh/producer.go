package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/producer"
)

func init() {
	register("producer", "run the producer: HTTP API, WebSockets, admission control, /metrics", runProducer)
}

// producerFlags are the producer settings, shared by `mesh producer` and
// `mesh dev`. Every flag falls back to the environment variable named in its
// usage (applied by applyEnv before the command line is parsed).
type producerFlags struct {
	addr, token, origins, webDir                  string
	maxDepth, maxBody                             int64
	maxBatch, insertBatch, insertConc, maxClients int
	flush, refresh, shutdown                      time.Duration
	readHeader, read, write, idle                 time.Duration
}

// producerEnv maps each producer flag to its environment variable.
var producerEnv = map[string]string{
	"addr": "MESH_ADDR", "api-token": "MESH_API_TOKEN", "allowed-origins": "MESH_ALLOWED_ORIGINS",
	"web-dir": "MESH_WEB_DIR", "max-depth": "MESH_MAX_DEPTH", "max-body-bytes": "MESH_MAX_BODY_BYTES",
	"max-batch": "MESH_MAX_BATCH", "insert-batch": "MESH_INSERT_BATCH", "insert-concurrency": "MESH_INSERT_CONCURRENCY",
	"flush-interval": "MESH_FLUSH_INTERVAL", "refresh-interval": "MESH_REFRESH_INTERVAL",
	"shutdown-timeout": "MESH_SHUTDOWN_TIMEOUT", "max-ws-clients": "MESH_MAX_WS_CLIENTS",
	"read-header-timeout": "MESH_READ_HEADER_TIMEOUT", "read-timeout": "MESH_READ_TIMEOUT",
	"write-timeout": "MESH_WRITE_TIMEOUT", "idle-timeout": "MESH_IDLE_TIMEOUT",
}

func (f *producerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", producer.DefaultAddr, "listen address of the API, WebSockets, dashboard and /metrics (env MESH_ADDR)")
	fs.StringVar(&f.token, "api-token", "",
		"bearer token required on mutating routes and WebSockets; empty disables auth (env MESH_API_TOKEN; prefer the env var, flags show in ps)")
	fs.StringVar(&f.origins, "allowed-origins", "",
		"comma-separated browser origins allowed to open the WebSockets besides the same origin, * for any; empty = same origin and localhost only (env MESH_ALLOWED_ORIGINS)")
	fs.StringVar(&f.webDir, "web-dir", producer.DefaultWebDir, "built dashboard served at / when present (env MESH_WEB_DIR)")
	fs.Int64Var(&f.maxDepth, "max-depth", producer.DefaultMaxDepth,
		"waiting tasks per role above which submissions get 429 (env MESH_MAX_DEPTH)")
	fs.Int64Var(&f.maxBody, "max-body-bytes", producer.DefaultMaxBodyBytes, "largest request body; larger get 413 (env MESH_MAX_BODY_BYTES)")
	fs.IntVar(&f.maxBatch, "max-batch", producer.DefaultMaxBatch, "most tasks in one batch submission (env MESH_MAX_BATCH)")
	fs.IntVar(&f.insertBatch, "insert-batch", producer.DefaultInsertBatch,
		"most submissions group-committed in one PostgreSQL statement (env MESH_INSERT_BATCH)")
	fs.IntVar(&f.insertConc, "insert-concurrency", producer.DefaultInsertConcurrency,
		"group commits in flight at once (env MESH_INSERT_CONCURRENCY)")
	fs.DurationVar(&f.flush, "flush-interval", producer.DefaultFlushInterval,
		"WebSocket coalescing tick: one frame per client per interval (env MESH_FLUSH_INTERVAL)")
	fs.DurationVar(&f.refresh, "refresh-interval", producer.DefaultRefreshInterval,
		"how often admission state, depths and workers are re-read (env MESH_REFRESH_INTERVAL)")
	fs.DurationVar(&f.shutdown, "shutdown-timeout", producer.DefaultShutdownTimeout,
		"bound of the graceful shutdown after SIGTERM (env MESH_SHUTDOWN_TIMEOUT)")
	fs.IntVar(&f.maxClients, "max-ws-clients", 1000, "most WebSocket clients at once (env MESH_MAX_WS_CLIENTS)")
	fs.DurationVar(&f.readHeader, "read-header-timeout", producer.DefaultReadHeaderTimeout,
		"time to read a request's headers; slow-header clients are cut off (env MESH_READ_HEADER_TIMEOUT)")
	fs.DurationVar(&f.read, "read-timeout", producer.DefaultReadTimeout,
		"time to read a whole request; slow-body clients are cut off (env MESH_READ_TIMEOUT)")
	fs.DurationVar(&f.write, "write-timeout", producer.DefaultWriteTimeout,
		"time to write an answer (env MESH_WRITE_TIMEOUT)")
	fs.DurationVar(&f.idle, "idle-timeout", producer.DefaultIdleTimeout,
		"how long an idle keep-alive connection is kept (env MESH_IDLE_TIMEOUT)")
}

// applyEnv sets each flag whose environment variable is set, so that the
// command line (parsed afterwards) still wins; a malformed value is an error
// naming the variable.
func applyEnv(fs *flag.FlagSet, env map[string]string) error {
	for name, key := range env {
		v, ok := os.LookupEnv(key)
		if !ok || v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("%s=%q (for --%s): %w", key, v, name, err)
		}
	}
	return nil
}

// config turns the flags into a producer.Config.
func (f *producerFlags) config(log *slog.Logger) producer.Config {
	cfg := producer.Config{
		Addr: f.addr, APIToken: f.token, WebDir: f.webDir, MaxDepth: f.maxDepth, MaxBodyBytes: f.maxBody,
		MaxBatch: f.maxBatch, InsertBatch: f.insertBatch, InsertConcurrency: f.insertConc,
		FlushInterval: f.flush, RefreshInterval: f.refresh, ShutdownTimeout: f.shutdown, Logger: log,
		ReadHeaderTimeout: f.readHeader, ReadTimeout: f.read, WriteTimeout: f.write, IdleTimeout: f.idle,
	}
	cfg.Hub.MaxClients = f.maxClients
	for _, o := range strings.Split(f.origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}
	return cfg
}

func runProducer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mesh producer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var bf backendFlags
	var pf producerFlags
	bf.register(fs)
	pf.register(fs)
	if err := applyEnv(fs, producerEnv); err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := bf.logger(stderr)
	if err != nil {
		return err
	}
	cfg := pf.config(log)
	be, err := bf.open(ctx, log, 30*time.Second)
	if err != nil {
		return err
	}
	defer be.close()
	cfg.Registry = metrics.NewRegistry()
	p, err := producer.New(be.queue, be.store, cfg, nil)
	if err != nil {
		return err
	}
	return p.Run(ctx)
}
