package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/store"
)

// backendFlags are the settings every service process shares. Each flag
// defaults to its environment variable, then to a built-in default; only
// main (this package) reads the environment.
type backendFlags struct {
	redisURL    string
	databaseURL string
	schema      string
	prefix      string
	pgConns     int
	logLevel    string
	logFormat   string
	pprofAddr   string
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (b *backendFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.redisURL, "redis-url", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"),
		"Redis URL, or a comma-separated list of host:port seeds of a Redis Cluster (env REDIS_URL)")
	fs.StringVar(&b.databaseURL, "database-url", envOr("DATABASE_URL", "postgres://127.0.0.1:5432/test?sslmode=disable"),
		"PostgreSQL URL (env DATABASE_URL)")
	fs.StringVar(&b.schema, "schema", envOr("MESH_SCHEMA", store.DefaultSchema),
		"PostgreSQL schema holding the mesh's tables (env MESH_SCHEMA)")
	fs.StringVar(&b.prefix, "prefix", envOr("MESH_PREFIX", queue.DefaultPrefix),
		"prefix of every Redis key (env MESH_PREFIX)")
	fs.IntVar(&b.pgConns, "pg-conns", 8, "PostgreSQL pool size")
	fs.StringVar(&b.logLevel, "log-level", envOr("MESH_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env MESH_LOG_LEVEL)")
	fs.StringVar(&b.logFormat, "log-format", envOr("MESH_LOG_FORMAT", "text"), "log format: text or json (env MESH_LOG_FORMAT)")
	fs.StringVar(&b.pprofAddr, "pprof-addr", envOr("MESH_PPROF_ADDR", ""),
		"serve Go's /debug/pprof/ profiles here, e.g. 127.0.0.1:6060; empty serves none (env MESH_PPROF_ADDR)")
}

// servePprof serves the runtime profiles on addr for the life of the
// process; they are off by default (empty addr), and meant for a loopback
// address.
func servePprof(addr string, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr: %w", err)
	}
	log.Info("serving pprof", slog.String("addr", ln.Addr().String()))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// logger builds the process logger from the flags.
func (b *backendFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(b.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", b.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch b.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", b.logFormat)
}

// backends are the open connections of one process.
type backends struct {
	rdb   redis.UniversalClient
	pool  *pgxpool.Pool
	queue *queue.Queue
	store *store.Store
}

// openRedis chooses the client from the URL: a comma-separated list of
// addresses is a Redis Cluster; a single redis:// URL a plain client.
func openRedis(url string, poolSize int) (redis.UniversalClient, error) {
	if strings.Contains(url, ",") || strings.HasPrefix(url, "redis-cluster://") {
		addrs := strings.Split(strings.TrimPrefix(url, "redis-cluster://"), ",")
		for i := range addrs {
			addrs[i] = strings.TrimPrefix(strings.TrimSpace(addrs[i]), "redis://")
		}
		// Reload the slot map every second: go-redis otherwise learns of a
		// failover only from MOVED replies and keeps dialing the dead master.
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: poolSize,
			ClusterStateReloadInterval: time.Second}), nil
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parsing --redis-url: %w", err)
	}
	opt.PoolSize = poolSize
	return redis.NewClient(opt), nil
}

// open connects to Redis and PostgreSQL, waiting up to wait for both to
// answer, and migrates the schema.
func (b *backendFlags) open(ctx context.Context, log *slog.Logger, wait time.Duration) (*backends, error) {
	if err := servePprof(b.pprofAddr, log); err != nil {
		return nil, err
	}
	rdb, err := openRedis(b.redisURL, 64)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(b.databaseURL)
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("parsing --database-url: %w", err)
	}
	cfg.MaxConns = int32(b.pgConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("opening PostgreSQL pool: %w", err)
	}
	be := &backends{rdb: rdb, pool: pool}
	if err := waitUp(ctx, log, wait, func(ctx context.Context) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		if err := pool.Ping(ctx); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		return nil
	}); err != nil {
		be.close()
		return nil, err
	}
	be.queue = queue.New(rdb, queue.Config{Prefix: b.prefix})
	be.store = store.New(pool, store.Config{Schema: b.schema})
	if err := be.store.Migrate(ctx); err != nil {
		be.close()
		return nil, fmt.Errorf("migrating schema %q: %w", b.schema, err)
	}
	return be, nil
}

func (be *backends) close() {
	be.pool.Close()
	_ = be.rdb.Close()
}

// waitUp retries check until it passes or wait runs out.
func waitUp(ctx context.Context, log *slog.Logger, wait time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(wait)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("backends not reachable after %s: %w", wait, err)
		}
		log.Warn("waiting for backends", slog.Any("err", err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// serveMetrics serves reg at addr/metrics until ctx ends. An empty addr
// serves nothing.
func serveMetrics(ctx context.Context, log *slog.Logger, addr string, reg *prometheus.Registry) error {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	log.Info("serving metrics", slog.String("addr", ln.Addr().String()))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go func() {
		select {
		case <-ctx.Done():
		case err := <-errc:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server stopped", slog.Any("err", err))
			}
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return nil
}
