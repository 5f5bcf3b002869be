package meshtest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout of StartCluster's nodes: a
// master that does not answer for this long is failed over to its replica,
// which takes about two to three times as long in all.
const ClusterNodeTimeout = time.Second

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// Cluster is a private Redis Cluster owned by one test: masters and their
// replicas, each a redis-server with no persistence on free loopback ports.
// Everything is killed when the test ends.
type Cluster struct {
	t      testing.TB
	nodes  []*RedisServer           // in creation order: masters first
	bus    map[string]int           // cluster bus port per node
	admin  map[string]*redis.Client // one per node, for CLUSTER and INFO
	client *redis.ClusterClient
}

// StartCluster starts masters+masters*replicasPerMaster redis-servers in
// cluster mode, joins them with `redis-cli --cluster create` (1 or 2
// masters, which redis-cli refuses, are joined by hand), and waits until
// every node reports cluster_state:ok and every replica is in sync. It takes
// one to two seconds. A failover needs at least 3 masters: the surviving
// masters must be a majority to elect the replica.
func StartCluster(t testing.TB, masters, replicasPerMaster int) *Cluster {
	t.Helper()
	if masters < 1 || replicasPerMaster < 0 {
		t.Fatalf("StartCluster(%d, %d): want at least one master", masters, replicasPerMaster)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skipf("redis-cli not installed: %v", err)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("redis-server not installed: %v", err)
	}
	c := &Cluster{t: t, bus: map[string]int{}, admin: map[string]*redis.Client{}}
	for range masters * (1 + replicasPerMaster) {
		c.startNode(bin)
	}
	t.Cleanup(c.closeClients)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if masters >= 3 {
		c.create(ctx, cli, replicasPerMaster)
	} else {
		c.join(ctx, masters)
	}
	c.waitHealthy(30*time.Second, len(c.nodes))
	c.client = redis.NewClusterClient(c.Options())
	return c
}

// startNode starts one cluster-enabled redis-server with no persistence;
// its cluster bus gets a free port of its own (the default port+10000 may
// not exist). A port taken by someone else between FreePort and the
// server's bind makes the server exit: then it starts again on others.
func (c *Cluster) startNode(bin string) {
	c.t.Helper()
	for attempt := 1; ; attempt++ {
		s := &RedisServer{Port: FreePort(c.t), Dir: c.t.TempDir(), bin: bin, t: c.t}
		bus := FreePort(c.t)
		s.args = []string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", s.Dir, "--loglevel", "warning",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(ClusterNodeTimeout.Milliseconds(), 10),
			"--cluster-port", strconv.Itoa(bus), "--cluster-announce-ip", "127.0.0.1",
			// Replicas sync at once, and a replica may take over however
			// long its link was down: the tests kill masters on purpose.
			"--repl-diskless-sync-delay", "0", "--cluster-replica-validity-factor", "0"}
		out, ok := c.tryStart(s)
		if ok {
			c.t.Cleanup(s.Kill)
			c.nodes = append(c.nodes, s)
			c.bus[s.Addr()] = bus
			c.admin[s.Addr()] = redis.NewClient(&redis.Options{Addr: s.Addr(), PoolSize: 2, MaxRetries: -1,
				DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second})
			return
		}
		if attempt == 5 {
			c.t.Fatalf("redis-server on ports %d and %d did not start:\n%s", s.Port, bus, out)
		}
	}
}

// tryStart starts s and waits until it accepts connections (true) or exits
// (false, with its output).
func (c *Cluster) tryStart(s *RedisServer) (string, bool) {
	var out bytes.Buffer
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("starting redis-server: %v", err)
	}
	s.cmd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // ends when the server does
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			s.cmd = nil
			return out.String(), false
		default:
		}
		if conn, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond); err == nil {
			_ = conn.Close()
			return "", true
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Kill()
	return "did not accept connections within 10s", false
}

func (c *Cluster) closeClients() {
	if c.client != nil {
		_ = c.client.Close()
	}
	for _, a := range c.admin {
		_ = a.Close()
	}
	waitRedisGoroutines(3 * time.Second)
}

// waitRedisGoroutines waits (up to within) for go-redis's background
// goroutines of closed clients to end, so that goleak does not report
// them: a pool that failed to dial a killed node keeps probing it and sees
// that it was closed only between one-second sleeps, and a Cluster
// topology reload lingers 200 ms.
func waitRedisGoroutines(within time.Duration) {
	deadline := time.Now().Add(within)
	buf := make([]byte, 1<<20)
	for time.Now().Before(deadline) {
		stacks := buf[:runtime.Stack(buf, true)]
		if !bytes.Contains(stacks, []byte("pool.(*ConnPool).tryDial")) &&
			!bytes.Contains(stacks, []byte("(*clusterStateHolder).LazyReload")) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// create joins the nodes with redis-cli: the first masters nodes become
// masters, the rest their replicas.
func (c *Cluster) create(ctx context.Context, cli string, replicas int) {
	c.t.Helper()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
}

// join builds a cluster of 1 or 2 masters by hand: slots split evenly over
// the masters, every node met, each replica attached to master i%masters.
func (c *Cluster) join(ctx context.Context, masters int) {
	c.t.Helper()
	first := c.admin[c.nodes[0].Addr()]
	for i := range masters {
		lo, hi := i*clusterSlots/masters, (i+1)*clusterSlots/masters-1
		if err := c.admin[c.nodes[i].Addr()].ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			c.t.Fatalf("CLUSTER ADDSLOTSRANGE %d %d: %v", lo, hi, err)
		}
	}
	for _, s := range c.nodes[1:] {
		if err := first.Do(ctx, "cluster", "meet", "127.0.0.1", s.Port, c.bus[s.Addr()]).Err(); err != nil {
			c.t.Fatalf("CLUSTER MEET %s: %v", s.Addr(), err)
		}
	}
	for i, s := range c.nodes[masters:] {
		master := c.nodes[i%masters]
		id, err := c.admin[master.Addr()].ClusterMyID(ctx).Result()
		if err != nil {
			c.t.Fatalf("CLUSTER MYID of %s: %v", master.Addr(), err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; { // the replica must know the master first
			err := c.admin[s.Addr()].ClusterReplicate(ctx, id).Err()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s did not become a replica of %s: %v", s.Addr(), master.Addr(), err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// ClusterStateReloadInterval is how often StartCluster's clients reload
// the Cluster's topology. go-redis reloads it at once on a MOVED or ASK
// reply, but not when a master stops answering: with its 60 s default a
// client keeps dialing a dead master for up to a minute after its replica
// took over.
const ClusterStateReloadInterval = time.Second

// Options returns client options for the cluster (every node as a seed);
// the caller may adjust them and closes the client it makes.
func (c *Cluster) Options() *redis.ClusterOptions {
	return &redis.ClusterOptions{Addrs: c.Addrs(), PoolSize: 16, ClusterStateReloadInterval: ClusterStateReloadInterval}
}

// Client returns a cluster client shared by the test, closed when it ends.
func (c *Cluster) Client() *redis.ClusterClient { return c.client }

// Redis returns a cluster client of the test's own, named after a key prefix
// no other test uses (CLIENT SETNAME), and that prefix. The keys under the
// prefix are deleted from every master when the test ends.
func (c *Cluster) Redis(t testing.TB) (*redis.ClusterClient, string) {
	t.Helper()
	prefix := UniqueName("t")
	opt := c.Options()
	opt.ClientName = prefix
	rdb := redis.NewClusterClient(opt)
	t.Cleanup(func() {
		c.DeleteKeys(t, prefix)
		_ = rdb.Close()
	})
	return rdb, prefix
}

// DeleteKeys removes every key that starts with prefix, on every master
// (SCAN only sees the keys of the node it runs on).
func (c *Cluster) DeleteKeys(t testing.TB, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.client.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for _, k := range keys { // one DEL per key: keys of one node span slots
			if err := node.Del(ctx, k).Err(); err != nil {
				return fmt.Errorf("deleting %s: %w", k, err)
			}
		}
		return iter.Err()
	})
	if err != nil {
		t.Logf("deleting test keys %s* from the cluster: %v", prefix, err)
	}
}

// Addrs returns the host:port of every node, masters first as created.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		out[i] = s.Addr()
	}
	return out
}

// Node returns the server at addr, or nil.
func (c *Cluster) Node(addr string) *RedisServer {
	for _, s := range c.nodes {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// Masters returns the addresses of the nodes that serve slots, ordered by
// the first slot each serves, as a live node sees it now.
func (c *Cluster) Masters() []string {
	c.t.Helper()
	slots := c.slots()
	first := map[string]int{}
	for _, s := range slots {
		a := s.Nodes[0].Addr
		if f, ok := first[a]; !ok || s.Start < f {
			first[a] = s.Start
		}
	}
	out := make([]string, 0, len(first))
	for a := range first {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(first[a], first[b]) })
	return out
}

// MasterOf returns the address of the master serving key's hash slot.
func (c *Cluster) MasterOf(key string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	slot, err := c.live().ClusterKeySlot(ctx, key).Result()
	if err != nil {
		c.t.Fatalf("CLUSTER KEYSLOT %s: %v", key, err)
	}
	for _, s := range c.slots() {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			return s.Nodes[0].Addr
		}
	}
	c.t.Fatalf("no master serves slot %d", slot)
	return ""
}

// Replicas returns the addresses of the replicas of the master at addr, as
// a running node sees them.
func (c *Cluster) Replicas(master string) []string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nodes, err := c.live().ClusterNodes(ctx).Result()
	if err != nil {
		c.t.Fatalf("CLUSTER NODES: %v", err)
	}
	// <id> <ip:port@bus> <flags> <master id> …
	ids := map[string]string{}
	var lines [][]string
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		ids[addr] = f[0]
		lines = append(lines, []string{addr, f[3]})
	}
	var out []string
	for _, l := range lines {
		if id, ok := ids[master]; ok && l[1] == id {
			out = append(out, l[0])
		}
	}
	return out
}

// Pause stops the node at addr (SIGSTOP): it keeps its connections but
// answers nothing, as if cut off by a network partition, until Resume.
func (c *Cluster) Pause(addr string) { c.signal(addr, syscall.SIGSTOP) }

// Resume continues a paused node (SIGCONT).
func (c *Cluster) Resume(addr string) { c.signal(addr, syscall.SIGCONT) }

func (c *Cluster) signal(addr string, sig syscall.Signal) {
	c.t.Helper()
	s := c.Node(addr)
	if s == nil || s.cmd == nil {
		c.t.Fatalf("no running node at %s", addr)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("sending %s to %s: %v", sig, addr, err)
	}
}

// KillMaster kills (SIGKILL) Masters()[i] and returns it; call WaitHealthy
// to wait for its replica's promotion, and Start on the result to bring it
// back (it rejoins as a replica, or empty as the master of its slots when
// it had no replica).
func (c *Cluster) KillMaster(i int) *RedisServer {
	c.t.Helper()
	ms := c.Masters()
	if i < 0 || i >= len(ms) {
		c.t.Fatalf("KillMaster(%d): the cluster has %d masters", i, len(ms))
	}
	s := c.Node(ms[i])
	s.Kill()
	return s
}

// WaitHealthy waits until every running node reports cluster_state:ok with
// all slots served by running masters, and every running replica is in sync
// with its master: after KillMaster, until the replica took over.
func (c *Cluster) WaitHealthy(within time.Duration) {
	c.t.Helper()
	c.waitHealthy(within, 0)
}

// waitHealthy is WaitHealthy that also wants every node to know known others.
func (c *Cluster) waitHealthy(within time.Duration, known int) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		why := c.unhealthy(known)
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not healthy within %s: %s", within, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unhealthy returns why the cluster is not healthy yet, or "".
func (c *Cluster) unhealthy(known int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	layout := ""
	for _, s := range c.running() {
		a := c.admin[s.Addr()]
		info, err := a.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Sprintf("%s: CLUSTER INFO: %v", s.Addr(), err)
		}
		f := fields(info)
		if f["cluster_state"] != "ok" || f["cluster_slots_ok"] != strconv.Itoa(clusterSlots) {
			return fmt.Sprintf("%s: cluster_state %s, %s slots ok", s.Addr(), f["cluster_state"], f["cluster_slots_ok"])
		}
		if known > 0 && f["cluster_known_nodes"] != strconv.Itoa(known) {
			return fmt.Sprintf("%s knows %s nodes, want %d", s.Addr(), f["cluster_known_nodes"], known)
		}
		slots, err := a.ClusterSlots(ctx).Result()
		if err != nil {
			return fmt.Sprintf("%s: CLUSTER SLOTS: %v", s.Addr(), err)
		}
		var l strings.Builder
		for _, sl := range slots {
			if m := c.Node(sl.Nodes[0].Addr); m == nil || m.cmd == nil {
				return fmt.Sprintf("%s: slots %d-%d served by %s, which is down", s.Addr(), sl.Start, sl.End, sl.Nodes[0].Addr)
			}
			fmt.Fprintf(&l, "%d-%d@%s ", sl.Start, sl.End, sl.Nodes[0].Addr)
		}
		// Every node must see the same masters (a restarted node believes
		// in its old slots until the others tell it otherwise).
		if layout == "" {
			layout = l.String()
		} else if l.String() != layout {
			return fmt.Sprintf("nodes disagree on the slots: %s vs %s", layout, l.String())
		}
		repl, err := a.Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Sprintf("%s: INFO: %v", s.Addr(), err)
		}
		if r := fields(repl); r["role"] == "slave" && r["master_link_status"] != "up" {
			return fmt.Sprintf("replica %s: link to its master %s", s.Addr(), r["master_link_status"])
		}
	}
	return ""
}

func (c *Cluster) running() []*RedisServer {
	var out []*RedisServer
	for _, s := range c.nodes {
		if s.cmd != nil {
			out = append(out, s)
		}
	}
	return out
}

// live returns the admin client of a running node.
func (c *Cluster) live() *redis.Client {
	c.t.Helper()
	r := c.running()
	if len(r) == 0 {
		c.t.Fatal("every cluster node is down")
	}
	return c.admin[r[0].Addr()]
}

// slots returns CLUSTER SLOTS as a running node sees it.
func (c *Cluster) slots() []redis.ClusterSlot {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	slots, err := c.live().ClusterSlots(ctx).Result()
	if err != nil {
		c.t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	return slots
}

// fields parses "k:v" lines of CLUSTER INFO and INFO replies.
func fields(info string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// CPU returns the CPU time (user and system) the running nodes have used,
// for benchmarks that report where the time goes. It reads /proc, so it is
// 0 off Linux.
func (c *Cluster) CPU() time.Duration {
	var sum time.Duration
	for _, s := range c.running() {
		sum += s.CPU()
	}
	return sum
}

// CPU returns the CPU time (user and system) the server process has used,
// read from /proc/<pid>/stat; 0 when it is not running or off Linux.
func (s *RedisServer) CPU() time.Duration {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which ends at the last ')':
	// state is the 1st, utime the 12th, stime the 13th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const userHZ = 100 // clock ticks per second in /proc, fixed by the Linux ABI
	return time.Duration(utime+stime) * time.Second / userHZ
}
