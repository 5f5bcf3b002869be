package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/queue"
)

// uniqueName is base plus 12 random hex digits: a key prefix or schema name
// no other run uses.
func uniqueName(base string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return base + "_" + hex.EncodeToString(b[:])
}

// OpenRedis opens a client for url: a redis:// URL, or a comma-separated
// list of cluster seed addresses (as the mesh's --redis-url).
func OpenRedis(url string, poolSize int) (redis.UniversalClient, error) {
	if strings.Contains(url, ",") || strings.HasPrefix(url, "redis-cluster://") {
		addrs := strings.Split(strings.TrimPrefix(url, "redis-cluster://"), ",")
		for i := range addrs {
			addrs[i] = strings.TrimPrefix(strings.TrimSpace(addrs[i]), "redis://")
		}
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: poolSize}), nil
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parsing the Redis URL: %w", err)
	}
	opt.PoolSize = poolSize
	return redis.NewClient(opt), nil
}

// DeleteKeys removes every key starting with prefix (on every master of a
// cluster).
func DeleteKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := c.Unlink(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	switch c := rdb.(type) {
	case *redis.Client:
		return del(ctx, c)
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, del)
	}
	return fmt.Errorf("deleting keys: unsupported client %T", rdb)
}

// CheckBackends pings Redis and PostgreSQL.
func CheckBackends(ctx context.Context, rdb redis.UniversalClient, databaseURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis does not answer: %w (run `go tool -modfile=tools.mod task services`)", err)
	}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("postgres does not answer: %w (run `go tool -modfile=tools.mod task services`)", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx)
}

// dropSchema drops schema and everything in it.
func dropSchema(ctx context.Context, databaseURL, schema string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

// Depth is what is left in the mesh's Redis queues, all roles together.
type Depth struct {
	Pending int64 `json:"pending"`
	Active  int64 `json:"active"`
	Delayed int64 `json:"delayed"`
}

// Total is pending + active + delayed.
func (d Depth) Total() int64 { return d.Pending + d.Active + d.Delayed }

// QueueDepth reads the mesh's queue depths under prefix, all roles together.
func QueueDepth(ctx context.Context, rdb redis.UniversalClient, prefix string) (Depth, error) {
	ds, err := queue.New(rdb, queue.Config{Prefix: prefix}).Depths(ctx)
	if err != nil {
		return Depth{}, err
	}
	var out Depth
	for _, d := range ds {
		for _, p := range d.Pending {
			out.Pending += p
		}
		out.Active += d.Active
		out.Delayed += d.Delayed
	}
	return out, nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP polls addr until it accepts a connection or ctx ends.
func waitTCP(ctx context.Context, addr string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		c, err := (&net.Dialer{Timeout: 200 * time.Millisecond}).DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		if err := SleepCtx(ctx, 20*time.Millisecond); err != nil {
			return fmt.Errorf("%s does not accept connections: %w", addr, err)
		}
	}
}

// PrivateRedis is a redis-server (or a cluster of them) owned by a run.
type PrivateRedis struct {
	// URL is what --redis-url gets: redis://… or a list of seeds.
	URL   string
	Procs []*Proc
	ports []int
	dir   string
	args  [][]string
	bin   string
}

// StartPrivateRedis starts a redis-server without persistence on a free
// port, or masters > 1 of them formed into a Redis Cluster (no replicas),
// writing their files under dir. The processes join procs.
func StartPrivateRedis(ctx context.Context, dir string, masters int, procs *Procs) (*PrivateRedis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("a private Redis needs redis-server: %w", err)
	}
	pr := &PrivateRedis{dir: dir, bin: bin}
	for i := range masters {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		d := filepath.Join(dir, "redis-"+strconv.Itoa(port))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", d, "--logfile", filepath.Join(d, "redis.log")}
		if masters > 1 {
			args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		}
		pr.ports, pr.args = append(pr.ports, port), append(pr.args, args)
		if err := pr.start(ctx, i, procs); err != nil {
			return pr, err
		}
	}
	if masters == 1 {
		pr.URL = "redis://127.0.0.1:" + strconv.Itoa(pr.ports[0]) + "/0"
		return pr, nil
	}
	addrs := make([]string, masters)
	for i, p := range pr.ports {
		addrs[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	pr.URL = strings.Join(addrs, ",")
	return pr, pr.formCluster(ctx, addrs)
}

// start (re)starts server i and waits until it answers.
func (pr *PrivateRedis) start(ctx context.Context, i int, procs *Procs) error {
	p, err := StartProc(ProcSpec{Name: "redis-" + strconv.Itoa(i+1), Kind: "redis", Path: pr.bin, Args: pr.args[i]})
	if err != nil {
		return err
	}
	if i < len(pr.Procs) {
		pr.Procs[i] = p
	} else {
		pr.Procs = append(pr.Procs, p)
	}
	procs.Add(p)
	return waitTCP(ctx, "127.0.0.1:"+strconv.Itoa(pr.ports[i]), 10*time.Second)
}

// Restart kills server i with SIGKILL and starts it again, empty.
func (pr *PrivateRedis) Restart(ctx context.Context, i int, down time.Duration, procs *Procs) error {
	pr.Procs[i].Kill()
	if err := SleepCtx(ctx, down); err != nil {
		return err
	}
	return pr.start(ctx, i, procs)
}

// formCluster assigns the slots with redis-cli and waits for cluster_state:ok.
func (pr *PrivateRedis) formCluster(ctx context.Context, addrs []string) error {
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(cctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("redis-cli --cluster create: %w: %s", err, out)
	}
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		err := pollUntil(cctx, func() bool {
			info, err := c.ClusterInfo(cctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		_ = c.Close()
		if err != nil {
			return fmt.Errorf("cluster node %s not ok: %w", a, err)
		}
	}
	return nil
}

// pollUntil checks cond every 50 ms until it holds or ctx ends.
func pollUntil(ctx context.Context, cond func() bool) error {
	for !cond() {
		if err := SleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// redisCommandStats reads INFO commandstats: calls per command.
func redisCommandStats(ctx context.Context, rdb redis.UniversalClient) (map[string]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("commandstats %q: %w", line, err)
				}
				out[strings.TrimPrefix(name, "cmdstat_")] = n
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("INFO commandstats: no commands")
	}
	return out, nil
}
