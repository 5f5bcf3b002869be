// Package meshtest gives tests real, isolated backends: a Redis key prefix and
// a PostgreSQL schema of their own on the shared servers (so tests run in
// parallel and leave nothing behind), and private redis-server processes for
// tests that kill their server.
//
// TEST_REDIS_URL and TEST_DATABASE_URL point at the shared servers; they
// default to 127.0.0.1:6379 and postgres://127.0.0.1:5432/test.
package meshtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Default URLs of the shared test servers.
const (
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
	DefaultDatabaseURL = "postgres://127.0.0.1:5432/test?sslmode=disable"
)

// RedisURL is the shared test Redis.
func RedisURL() string { return envOr("TEST_REDIS_URL", DefaultRedisURL) }

// DatabaseURL is the shared test PostgreSQL database.
func DatabaseURL() string { return envOr("TEST_DATABASE_URL", DefaultDatabaseURL) }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// UniqueName returns base plus a random suffix, safe as a key prefix or a
// PostgreSQL identifier.
func UniqueName(base string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return base + "_" + hex.EncodeToString(b[:])
}

// Redis returns a client of the shared test Redis and a key prefix no other
// test uses. Every key under the prefix is deleted when the test ends.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("parsing TEST_REDIS_URL: %v", err)
	}
	opt.PoolSize = 16
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("test Redis at %s does not answer: %v (run `go tool -modfile=tools.mod task services`)", RedisURL(), err)
	}
	prefix := UniqueName("t")
	t.Cleanup(func() {
		DeleteKeys(t, rdb, prefix)
		_ = rdb.Close()
	})
	return rdb, prefix
}

// DeleteKeys removes every key that starts with prefix (on every master of
// a cluster: SCAN through a cluster client visits one node only).
func DeleteKeys(t testing.TB, rdb redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		_ = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			DeleteKeys(t, node, prefix)
			return nil
		})
		return
	}
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for _, k := range keys {
		if err := rdb.Del(ctx, k).Err(); err != nil {
			t.Logf("deleting test key %s: %v", k, err)
		}
	}
}

// Postgres returns a small pool whose search_path is a fresh schema of its
// own; the schema is dropped when the test ends. Callers that need the schema
// name (to hand to store.Config) get it as the second value.
func Postgres(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	schema := UniqueName("t")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, DatabaseURL())
	if err != nil {
		t.Fatalf("test PostgreSQL at %s does not answer: %v (run `go tool -modfile=tools.mod task services`)", DatabaseURL(), err)
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	_ = admin.Close(ctx)
	pool := Pool(t, DatabaseURL(), schema, 4)
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, DatabaseURL())
		if err != nil {
			t.Logf("dropping schema %s: %v", schema, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("dropping schema %s: %v", schema, err)
		}
	})
	return pool, schema
}

// Pool opens a pool of at most maxConns connections to url with search_path
// set to schema. It is closed when the test ends.
func Pool(t testing.TB, url, schema string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("parsing database URL: %v", err)
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("opening pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RedisServer is a private redis-server process owned by one test.
type RedisServer struct {
	Port int
	Dir  string
	bin  string
	args []string
	cmd  *exec.Cmd
	t    testing.TB
}

// Addr is host:port of the server.
func (s *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the redis:// URL of the server.
func (s *RedisServer) URL() string { return "redis://" + s.Addr() + "/0" }

// StartRedis starts a private redis-server on a free loopback port with no
// persistence (as the shared one), extra arguments appended. It is killed
// when the test ends.
func StartRedis(t testing.TB, extra ...string) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("redis-server not installed: %v", err)
	}
	s := &RedisServer{Port: FreePort(t), Dir: t.TempDir(), bin: bin, t: t}
	s.args = append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", s.Dir}, extra...)
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// Start (re)starts the server on its port and waits until it answers.
func (s *RedisServer) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	WaitTCP(s.t, s.Addr(), 10*time.Second)
}

// Kill sends SIGKILL and waits for the process; Redis comes back empty on Start.
func (s *RedisServer) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_, _ = s.cmd.Process.Wait()
	s.cmd = nil
}

// WaitTCP polls addr until it accepts a connection or the deadline passes.
func WaitTCP(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not accept connections within %s: %v", addr, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Eventually polls cond every few milliseconds until it holds or within
// passes, then fails the test with msg. Tests use it instead of sleeping.
func Eventually(t testing.TB, within time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", within, fmt.Sprintf(msg, args...))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// RepoRoot returns the module root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir || strings.TrimSpace(parent) == "" {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

var (
	buildOnce sync.Once
	meshBin   string
	buildErr  error
)

// MeshBinary builds ./cmd/mesh once per test binary, without -race (the
// race detector watches the test's own process), or returns MESH_TEST_BIN
// when set. The binary lives in a temporary directory that is never reused.
func MeshBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("MESH_TEST_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mesh-bin-")
		if err != nil {
			buildErr = err
			return
		}
		meshBin = filepath.Join(dir, "mesh")
		cmd := exec.Command("go", "build", "-o", meshBin, "./cmd/mesh")
		cmd.Dir = RepoRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building mesh: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return meshBin
}

// RemoveMeshBinary deletes what MeshBinary built; call it from TestMain.
func RemoveMeshBinary() {
	if meshBin != "" && os.Getenv("MESH_TEST_BIN") == "" {
		_ = os.RemoveAll(filepath.Dir(meshBin))
	}
}
