package worker_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/task"
	"github.com/agentmesh/agentmesh/mesh/worker"
)

// TestClusterFailoverLosesNothing runs a worker and a maintainer on a Redis
// Cluster of 3 masters with a replica each and SIGKILLs, under load, the
// master serving QA's queue and the {meta} keys (leader, heartbeats). Just
// before, the master drops its replica's link, so the last writes it
// acknowledges — pushes, claims, acks, retries — never reach the replica:
// the loss asynchronous replication allows, made near certain. The replica
// takes over without them. Every accepted task — single tasks of every role
// and pipelines, whose next stages cross slots — completes, with exactly one
// completion.
func TestClusterFailoverLosesNothing(t *testing.T) {
	t.Parallel()
	c := meshtest.StartCluster(t, 3, 1)
	rdb, prefix := c.Redis(t)
	b := setupWith(t, rdb, prefix)
	victim := c.MasterOf(tagKey(task.QA))
	survivor := c.MasterOf(tagKey(task.Architect))
	if victim == survivor || victim != c.MasterOf("{meta}") {
		t.Fatalf("unexpected layout: QA on %s, ARCHITECT on %s, meta on %s", victim, survivor, c.MasterOf("{meta}"))
	}
	done := watchOn(t, survivor, prefix)

	const perRole, pipelines = 200, 30
	work := `{"sim":{"work_ms":20}}`
	var all []task.Task
	for _, r := range task.Roles {
		all = append(all, b.submit(t, false, specs(perRole, r, work)...)...)
	}
	all = append(all, b.submit(t, true, specs(pipelines, task.Architect, work)...)...)
	want := len(all) + 2*pipelines // each pipeline adds its DEVELOPER and QA stages
	b.start(t, worker.Config{Roles: map[task.Role]int{task.Architect: 4, task.Developer: 4, task.QA: 4}, ClaimBatch: 8}, true)

	meshtest.Eventually(t, 20*time.Second, func() bool { return countStates(b.states(t))[task.Completed] >= 60 },
		"some progress before the kill")
	before := countStates(b.states(t))
	start := time.Now()
	missed := killCutOff(t, c, victim)
	c.WaitHealthy(30 * time.Second)
	t.Logf("killed the master of QA and meta with %v of %d tasks, %d bytes of writes not replicated; its replica took over in %s",
		before, want, missed, time.Since(start).Round(time.Millisecond))

	got := b.waitAll(t, want, 90*time.Second)
	t.Logf("all %d tasks terminal %s after the kill", want, time.Since(start).Round(time.Millisecond))
	retried := 0
	for id, tk := range got {
		if tk.State != task.Completed {
			t.Fatalf("task %s (%s) ended %s after the failover", id, tk.Role, tk.State)
		}
		if tk.Attempts > 1 {
			retried++
		}
	}
	t.Logf("%d tasks ran more than once (re-run after the failover)", retried)
	done.expectOnce(t, want)
}

// TestClusterShardLossRecovers restarts, empty, the master serving
// DEVELOPER's queue in a Cluster without replicas: one shard lost its data
// while the others kept theirs. The maintainer sees DEVELOPER's epoch gone,
// rebuilds the queues from PostgreSQL, and every task completes once.
func TestClusterShardLossRecovers(t *testing.T) {
	t.Parallel()
	c := meshtest.StartCluster(t, 3, 0)
	rdb, prefix := c.Redis(t)
	b := setupWith(t, rdb, prefix)
	lost := c.Node(c.MasterOf(tagKey(task.Developer)))
	done := watchOn(t, c.MasterOf(tagKey(task.Architect)), prefix)

	work := `{"sim":{"work_ms":5}}`
	all := b.submit(t, false, specs(300, task.Developer, work)...)
	all = append(all, b.submit(t, false, specs(100, task.Architect, work)...)...)
	all = append(all, b.submit(t, false, specs(100, task.QA, work)...)...)
	b.start(t, worker.Config{Roles: map[task.Role]int{task.Architect: 4, task.Developer: 8, task.QA: 4}}, true)
	meshtest.Eventually(t, 20*time.Second, func() bool { return countStates(b.states(t))[task.Completed] >= 50 },
		"some progress before the loss")
	lost.Kill()
	lost.Start() // comes back empty, still the master of its slots
	c.WaitHealthy(30 * time.Second)

	got := b.waitAll(t, len(all), 90*time.Second)
	for _, tk := range all {
		if g := got[tk.ID]; g.State != task.Completed {
			t.Fatalf("task %s (%s) ended %s after the shard loss", tk.ID, tk.Role, g.State)
		}
	}
	done.expectOnce(t, len(all))
}

// killCutOff SIGKILLs the master at addr after cutting its replica off: the
// replica is paused (SIGSTOP, as behind a partition), the master drops its
// link and runs up to 200 more commands, acknowledged to clients but never
// replicated; then the master dies and the replica resumes. It returns how
// many bytes of replication stream the replica missed.
func killCutOff(t *testing.T, c *meshtest.Cluster, addr string) int64 {
	t.Helper()
	ctx := context.Background()
	replicas := c.Replicas(addr)
	if len(replicas) != 1 {
		t.Fatalf("master %s has replicas %v, want one", addr, replicas)
	}
	master, replica := redis.NewClient(&redis.Options{Addr: addr}), redis.NewClient(&redis.Options{Addr: replicas[0]})
	defer master.Close()
	defer replica.Close()
	c.Pause(replicas[0])
	if err := master.ClientKillByFilter(ctx, "TYPE", "replica").Err(); err != nil {
		t.Fatal(err)
	}
	// Well within the cluster-node-timeout, so that the paused replica is
	// not flagged as failing itself.
	base, deadline := infoInt(t, master, "stats", "total_commands_processed"), time.Now().Add(500*time.Millisecond)
	for infoInt(t, master, "stats", "total_commands_processed") < base+200 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // counting the master's commands: nothing to signal on
	}
	sent := infoInt(t, master, "replication", "master_repl_offset")
	c.Node(addr).Kill()
	c.Resume(replicas[0])
	return sent - infoInt(t, replica, "replication", "master_repl_offset")
}

// infoInt reads one integer field of an INFO section.
func infoInt(t *testing.T, rdb *redis.Client, section, field string) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatalf("INFO %s: %v", section, err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("INFO %s: %s is %q", section, field, v)
			}
			return n
		}
	}
	t.Fatalf("INFO %s has no %s", section, field)
	return 0
}

// tagKey is a key in the hash slot of role's queue.
func tagKey(r task.Role) string { return "{" + queue.DefaultTags[r] + "}" }

// watchOn counts completion events through a plain client of the node at
// addr. A Cluster delivers a PUBLISH to subscribers on every node, so this
// sees every event as long as that node lives; a subscription through the
// Cluster client would follow the channel's slot to a master the test may
// kill, and miss what is published while it reconnects (pub/sub is
// at-most-once for a subscriber).
//
// The other way round, a message can arrive twice: go-redis retries a
// PUBLISH whose connection broke after the node had run it, which happens
// when that node is the one killed. Such a copy is identical to the first;
// a second completion of a task would be a different event (another time,
// attempt or worker). So the counts are of distinct completion events.
func watchOn(t *testing.T, addr, prefix string) *nodeCompletions {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithCancel(context.Background())
	ps := queue.New(rdb, queue.Config{Prefix: prefix}).Subscribe(ctx)
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	c := &nodeCompletions{seen: map[uuid.UUID]int{}, events: map[string]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range ps.Channel() {
			evs, err := queue.DecodeEvents(msg.Payload)
			if err != nil {
				continue
			}
			c.add(evs)
		}
	}()
	t.Cleanup(func() { cancel(); _ = ps.Close(); <-done; _ = rdb.Close() })
	return c
}

// nodeCompletions counts distinct completion events per task id.
type nodeCompletions struct {
	mu          sync.Mutex
	seen        map[uuid.UUID]int // distinct completion events per task
	events      map[string]bool   // every event received, as JSON
	redelivered int               // events received again, identical
}

func (c *nodeCompletions) add(evs []task.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range evs {
		js, _ := json.Marshal(e)
		if c.events[string(js)] {
			c.redelivered++
			continue
		}
		c.events[string(js)] = true
		if e.State == task.Completed {
			c.seen[e.ID]++
		}
	}
}

// expectOnce waits for a completion event of want tasks and fails on any
// task with two distinct completions.
func (c *nodeCompletions) expectOnce(t *testing.T, want int) {
	t.Helper()
	meshtest.Eventually(t, 10*time.Second, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.seen) == want },
		"a completion event for each of the %d tasks", want)
	c.mu.Lock()
	defer c.mu.Unlock()
	var twice []uuid.UUID
	for id, n := range c.seen {
		if n > 1 {
			twice = append(twice, id)
		}
	}
	if len(twice) > 0 {
		t.Fatalf("%d tasks completed twice: %v", len(twice), twice)
	}
	t.Logf("%d events arrived twice (a retried PUBLISH)", c.redelivered)
}
