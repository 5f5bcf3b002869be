package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/task"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bundle is what setup gives a test: a Queue on its own key prefix of the
// backend, the raw client, and the Queue's clock.
type bundle struct {
	ctx    context.Context
	q      *Queue
	rdb    redis.UniversalClient
	prefix string
	clock  *fakeClock
}

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func setup(t *testing.T, be backend, cfg ...Config) *bundle {
	t.Helper()
	rdb, prefix := be.shared(t)
	return setupOn(t, rdb, prefix, cfg...)
}

func setupOn(t *testing.T, rdb redis.UniversalClient, prefix string, cfg ...Config) *bundle {
	t.Helper()
	var c Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	clock := &fakeClock{t: time.UnixMilli(1_800_000_000_000)}
	c.Prefix = prefix
	c.Now = clock.Now
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return &bundle{ctx: ctx, q: New(rdb, c), rdb: rdb, prefix: prefix, clock: clock}
}

// newItems makes n items of one role and priority.
func newItems(r task.Role, p task.Priority, n int) []Item {
	out := make([]Item, n)
	for i := range out {
		out[i] = Item{ID: uuid.New(), Role: r, Priority: p}
	}
	return out
}

func (b *bundle) llen(t *testing.T, key string) int64 {
	t.Helper()
	n, err := b.rdb.LLen(b.ctx, key).Result()
	if err != nil {
		t.Fatalf("LLEN %s: %v", key, err)
	}
	return n
}

func (b *bundle) pendingTotal(t *testing.T, r task.Role) int64 {
	t.Helper()
	var n int64
	for _, k := range b.q.roles[r].pending {
		n += b.llen(t, k)
	}
	return n
}

func (b *bundle) claim(t *testing.T, r task.Role, worker string, max int) []Item {
	t.Helper()
	got, err := b.q.Claim(b.ctx, r, worker, max)
	if err != nil {
		t.Fatalf("Claim(%s, %s, %d): %v", r, worker, max, err)
	}
	return got
}

func sortedIDs(items []Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID.String()
	}
	slices.Sort(out)
	return out
}

func TestKeys(t *testing.T) {
	t.Parallel()
	k := keys{prefix: "am"}
	rk := k.forRole(task.QA, "QA")
	q := New(nil, Config{Tags: map[task.Role]string{task.Developer: "D2"}})
	for _, c := range []struct{ got, want string }{
		{rk.pending[0], "am:{QA}:pending:0"},
		{rk.pending[3], "am:{QA}:pending:3"},
		{rk.active("w1"), "am:{QA}:active:w1"},
		{rk.leases, "am:{QA}:leases"},
		{rk.delayed, "am:{QA}:delayed"},
		{rk.signal, "am:{QA}:signal"},
		{rk.epoch, "am:{QA}:epoch"},
		{rk.wake("w1", 7), "am:{QA}:wake:w1:7"},
		{q.roles[task.Architect].signal, "am:{ARCH}:signal"}, // a default tag
		{q.roles[task.Developer].signal, "am:{D2}:signal"},   // a configured one
		{q.roles[task.QA].signal, "am:{QA}:signal"},
		{k.workers(), "am:{meta}:workers"},
		{k.seen(), "am:{meta}:seen"},
		{k.leader(), "am:{meta}:leader"},
		{k.events(), "am:events"},
		{k.admission(), "am:admission"},
	} {
		if c.got != c.want {
			t.Errorf("key %q, want %q", c.got, c.want)
		}
	}
}

func TestMemberRoundTrip(t *testing.T) {
	t.Parallel()
	it := Item{ID: uuid.New(), Role: task.Developer, Priority: task.P3}
	m := it.member()
	if len(m) != memberLen || !strings.HasPrefix(m, "3:") {
		t.Fatalf("member %q", m)
	}
	got, err := decodeMember(task.Developer, m)
	if err != nil || got != it {
		t.Fatalf("decodeMember(%q) = %+v, %v; want %+v", m, got, err, it)
	}
	for _, bad := range []string{
		"",                                  // empty
		"4:" + it.ID.String(),               // priority out of range
		"2-" + it.ID.String(),               // wrong separator
		"2:" + it.ID.String()[:35] + "z",    // not a uuid
		"2:" + it.ID.String() + "x",         // too long
		"12:" + it.ID.String()[:35],         // two-digit priority
		"2:{" + it.ID.String()[:34] + "}",   // braces are not canonical form
		"2:urn:uuid:" + it.ID.String()[11:], // other uuid forms
	} {
		if _, err := decodeMember(task.QA, bad); err == nil {
			t.Errorf("decodeMember(%q) accepted a malformed member", bad)
		}
	}
}

func FuzzDecodeMember(f *testing.F) {
	f.Add("2:" + uuid.NewString())
	f.Add("0:00000000-0000-0000-0000-000000000000")
	f.Add("9:x")
	f.Fuzz(func(t *testing.T, m string) {
		it, err := decodeMember(task.QA, m)
		if err != nil {
			return
		}
		if !it.Priority.Valid() || it.Role != task.QA {
			t.Fatalf("decodeMember(%q) = %+v", m, it)
		}
		if !strings.EqualFold(it.member(), m) {
			t.Fatalf("decodeMember(%q) re-encodes as %q", m, it.member())
		}
	})
}

func testEnqueueClaimAck(t *testing.T, be backend) {
	b := setup(t, be)
	r := task.Architect
	in := append(append(newItems(r, task.P0, 1), newItems(r, task.P2, 2)...), newItems(task.QA, task.P1, 1)...)
	if err := b.q.Enqueue(b.ctx, in); err != nil {
		t.Fatal(err)
	}
	got := b.claim(t, r, "w1", 10)
	if want := sortedIDs(in[:3]); !slices.Equal(sortedIDs(got), want) {
		t.Fatalf("claimed %v, want %v", sortedIDs(got), want)
	}
	for _, it := range got {
		if i := slices.IndexFunc(in, func(x Item) bool { return x.ID == it.ID }); in[i] != it {
			t.Errorf("claimed %+v, enqueued %+v", it, in[i])
		}
	}
	active := b.q.roles[r].active("w1")
	if n := b.llen(t, active); n != 3 {
		t.Fatalf("processing list holds %d, want 3", n)
	}
	if n := b.pendingTotal(t, r); n != 0 {
		t.Fatalf("%d still pending, want 0", n)
	}
	if err := b.q.Ack(b.ctx, "w1", got); err != nil {
		t.Fatal(err)
	}
	if n := b.llen(t, active); n != 0 {
		t.Fatalf("processing list holds %d after ack, want 0", n)
	}
	if qa := b.claim(t, task.QA, "w2", 10); len(qa) != 1 || qa[0] != in[3] {
		t.Fatalf("QA claim = %+v, want %+v", qa, in[3])
	}
}

func testEnqueueRejectsBadItems(t *testing.T, be backend) {
	b := setup(t, be)
	good := newItems(task.QA, task.P1, 1)[0]
	for _, c := range []struct {
		name string
		it   Item
		want error
	}{
		{"unknown role", Item{ID: uuid.New(), Role: "CEO"}, task.ErrUnknownRole},
		{"priority out of range", Item{ID: uuid.New(), Role: task.QA, Priority: 4}, ErrInvalidArgument},
	} {
		err := b.q.Enqueue(b.ctx, []Item{good, c.it})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Enqueue error %v, want %v", c.name, err, c.want)
		}
	}
	if n := b.pendingTotal(t, task.QA); n != 0 {
		t.Fatalf("a rejected batch left %d pending, want 0", n)
	}
	if _, err := b.q.Claim(b.ctx, task.QA, "w", 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Claim max 0: %v", err)
	}
	if _, err := b.q.Claim(b.ctx, task.QA, "", 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Claim without worker: %v", err)
	}
	if _, err := b.q.Claim(b.ctx, "CEO", "w", 1); !errors.Is(err, task.ErrUnknownRole) {
		t.Errorf("Claim of unknown role: %v", err)
	}
}

func testClaimBatchAtMostMax(t *testing.T, be backend) {
	b := setup(t, be, Config{ClaimWait: 50 * time.Millisecond})
	r := task.Developer
	in := append(newItems(r, task.P1, 120), newItems(r, task.P3, 130)...)
	if err := b.q.Enqueue(b.ctx, in); err != nil {
		t.Fatal(err)
	}
	active := b.q.roles[r].active("w")
	seen := map[uuid.UUID]bool{}
	for i, want := range []int{100, 100, 50, 0} {
		got := b.claim(t, r, "w", 100)
		if len(got) != want {
			t.Fatalf("claim %d returned %d, want %d", i, len(got), want)
		}
		for _, it := range got {
			if seen[it.ID] {
				t.Fatalf("claim %d returned %s twice", i, it.ID)
			}
			seen[it.ID] = true
		}
		// The move is atomic: every id is in exactly one of the lists.
		if p, a := b.pendingTotal(t, r), b.llen(t, active); p+a != 250 || a != int64(len(seen)) {
			t.Fatalf("after claim %d: %d pending + %d active, want 250 with %d active", i, p, a, len(seen))
		}
	}
}

func testClaimTimesOutEmpty(t *testing.T, be backend) {
	b := setup(t, be, Config{ClaimWait: 50 * time.Millisecond})
	got, err := b.q.Claim(b.ctx, task.QA, "w", 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("Claim on an empty queue = %v, %v; want no items and no error", got, err)
	}
}

func testClaimPriorityWeighting(t *testing.T, be backend) {
	b := setup(t, be)
	r := task.QA
	const perPrio, claims = 3000, 3000
	for p := task.P0; p <= task.P3; p++ {
		if err := b.q.Enqueue(b.ctx, newItems(r, p, perPrio)); err != nil {
			t.Fatal(err)
		}
	}
	var count [task.NumPriorities]int
	for range claims {
		got := b.claim(t, r, "w", 1)
		if len(got) != 1 {
			t.Fatalf("claimed %d, want 1", len(got))
		}
		count[got[0].Priority]++
	}
	t.Logf("claims per priority over %d: %v (expect ≈ 8:4:2:1)", claims, count)
	// With weights 8/4/2/1 the shares are 53/27/13/7 %; the bounds are loose.
	if !(count[0] > count[1] && count[1] > count[2] && count[2] > count[3]) {
		t.Errorf("claims not ordered by priority: %v", count)
	}
	if share := float64(count[0]) / claims; share < 0.45 || share > 0.62 {
		t.Errorf("P0 share %.2f, want about 0.53", share)
	}
	if share := float64(count[3]) / claims; share < 0.03 {
		t.Errorf("P3 share %.3f: starved (want about 0.067)", share)
	}
}

func TestVisitOrderIsAPermutation(t *testing.T) {
	t.Parallel()
	q := New(nil, Config{})
	first := [task.NumPriorities]int{}
	for range 10000 {
		o := q.visitOrder()
		s := o
		slices.Sort(s[:])
		if s != [task.NumPriorities]task.Priority{0, 1, 2, 3} {
			t.Fatalf("visit order %v is not a permutation", o)
		}
		first[o[0]]++
	}
	if !(first[0] > first[1] && first[1] > first[2] && first[2] > first[3] && first[3] > 0) {
		t.Errorf("first visits %v, want decreasing and all > 0", first)
	}
}

// blocked counts the test's clients blocked in a command (BLPOP) on every
// master: those whose CLIENT LIST entry is named after the test's prefix
// and flagged "b".
func (b *bundle) blocked(t *testing.T) int {
	t.Helper()
	var mu sync.Mutex
	n := 0
	err := forEachMaster(b.ctx, b.rdb, func(ctx context.Context, node *redis.Client) error {
		list, err := node.ClientList(ctx).Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(list, "\n") {
			f := map[string]string{}
			for _, kv := range strings.Fields(line) {
				k, v, _ := strings.Cut(kv, "=")
				f[k] = v
			}
			if f["name"] == b.prefix && strings.Contains(f["flags"], "b") {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	return n
}

func testBlockingClaimWakesOnEnqueue(t *testing.T, be backend) {
	b := setup(t, be, Config{ClaimWait: 20 * time.Second})
	type result struct {
		items []Item
		err   error
	}
	done := make(chan result, 1)
	go func() {
		items, err := b.q.Claim(b.ctx, task.Developer, "w", 10)
		done <- result{items, err}
	}()
	meshtest.Eventually(t, 5*time.Second, func() bool { return b.blocked(t) == 1 },
		"the claimer never blocked")
	in := newItems(task.Developer, task.P2, 1)
	if err := b.q.Enqueue(b.ctx, in); err != nil {
		t.Fatal(err)
	}
	res := <-done // a missed wake-up returns nothing after ClaimWait
	if res.err != nil || len(res.items) != 1 || res.items[0] != in[0] {
		t.Fatalf("blocked claim returned %+v, %v; want %+v", res.items, res.err, in[0])
	}
}

func testBlockingClaimHonoursCancel(t *testing.T, be backend) {
	b := setup(t, be, Config{ClaimWait: 60 * time.Second})
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() {
		_, err := b.q.Claim(ctx, task.QA, "w", 10)
		done <- err
	}()
	meshtest.Eventually(t, 5*time.Second, func() bool { return b.blocked(t) == 1 },
		"the claimer never blocked")
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled claim returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second): // far below ClaimWait
		t.Fatal("a cancelled claim kept blocking")
	}
	// A later enqueue is still claimable: no token was swallowed.
	if err := b.q.Enqueue(b.ctx, newItems(task.QA, task.P0, 1)); err != nil {
		t.Fatal(err)
	}
	if got := b.claim(t, task.QA, "w2", 1); len(got) != 1 {
		t.Fatalf("claimed %d after the cancel, want 1", len(got))
	}
}

func testIdleClaimersWakeInAChain(t *testing.T, be backend) {
	b := setup(t, be, Config{ClaimWait: 20 * time.Second})
	const claimers = 3
	results := make(chan int, claimers)
	for i := range claimers {
		go func() {
			got, err := b.q.Claim(b.ctx, task.QA, fmt.Sprintf("w%d", i), 10)
			if err != nil {
				t.Error(err)
			}
			results <- len(got)
		}()
	}
	meshtest.Eventually(t, 5*time.Second, func() bool { return b.blocked(t) == claimers },
		"the claimers never all blocked")
	// One enqueue, one token: the first claimer takes 10 and re-arms the
	// signal for the next, and so on.
	if err := b.q.Enqueue(b.ctx, newItems(task.QA, task.P1, 10*claimers)); err != nil {
		t.Fatal(err)
	}
	total := 0
	for range claimers {
		total += <-results
	}
	if total != 10*claimers {
		t.Fatalf("claimers took %d, want %d", total, 10*claimers)
	}
}

func testConcurrentClaimersNeverShare(t *testing.T, be backend) {
	b := setup(t, be, Config{ClaimWait: 50 * time.Millisecond})
	r := task.Architect
	const n, workers = 5000, 16
	var in []Item
	for p := task.P0; p <= task.P3; p++ {
		in = append(in, newItems(r, p, n/4)...)
	}
	if err := b.q.Enqueue(b.ctx, in); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	owner := make(map[uuid.UUID]string, n)
	dups := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			worker := fmt.Sprintf("w%d", w)
			for {
				got, err := b.q.Claim(b.ctx, r, worker, 1+w*3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, it := range got {
					if _, ok := owner[it.ID]; ok {
						dups++
					}
					owner[it.ID] = worker
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if dups != 0 || len(owner) != n {
		t.Fatalf("%d distinct ids claimed with %d duplicates; want %d and 0", len(owner), dups, n)
	}
	var active int64
	for w := range workers {
		active += b.llen(t, b.q.roles[r].active(fmt.Sprintf("w%d", w)))
	}
	if active != n {
		t.Fatalf("processing lists hold %d, want %d", active, n)
	}
}

func testRetryThenPromote(t *testing.T, be backend) {
	b := setup(t, be)
	r := task.Developer
	in := append(newItems(r, task.P1, 2), newItems(task.QA, task.P3, 1)...)
	if err := b.q.Enqueue(b.ctx, in); err != nil {
		t.Fatal(err)
	}
	dev := b.claim(t, r, "w", 10)
	qa := b.claim(t, task.QA, "w", 10)
	now := b.clock.Now()
	retries := append(dev, qa...)
	at := []time.Time{now.Add(time.Minute), now.Add(time.Minute), now.Add(2 * time.Minute)}
	if err := b.q.Retry(b.ctx, "w", retries, at); err != nil {
		t.Fatal(err)
	}
	if n := b.llen(t, b.q.roles[r].active("w")); n != 0 {
		t.Fatalf("processing list holds %d after retry, want 0", n)
	}
	for _, c := range []struct {
		now  time.Time
		want int
	}{
		{now, 0}, // nothing due yet
		{now.Add(time.Minute - time.Millisecond), 0}, // one ms early
		{now.Add(time.Minute), 2},                    // the developer retries are due
		{now.Add(90 * time.Second), 0},               // already promoted
		{now.Add(3 * time.Minute), 1},                // the QA retry
	} {
		n, err := b.q.PromoteDue(b.ctx, c.now, 100)
		if err != nil || n != c.want {
			t.Fatalf("PromoteDue(now+%s) = %d, %v; want %d", c.now.Sub(now), n, err, c.want)
		}
	}
	again := b.claim(t, r, "w2", 10)
	if !slices.Equal(sortedIDs(again), sortedIDs(dev)) || again[0].Priority != task.P1 {
		t.Fatalf("re-claimed %+v, want %+v with their priority", again, dev)
	}
	// A retry for a claim the worker no longer holds adds nothing.
	if err := b.q.Retry(b.ctx, "w", dev, at[:2]); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.rdb.ZCard(b.ctx, b.q.roles[r].delayed).Result(); n != 0 {
		t.Fatalf("retry of unheld claims added %d to the delayed set", n)
	}
	if err := b.q.Retry(b.ctx, "w", dev, at[:1]); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Retry with mismatched slices: %v", err)
	}
}

func testPromoteDueRespectsMax(t *testing.T, be backend) {
	b := setup(t, be)
	in := newItems(task.QA, task.P2, 5)
	if err := b.q.Enqueue(b.ctx, in); err != nil {
		t.Fatal(err)
	}
	got := b.claim(t, task.QA, "w", 5)
	at := slices.Repeat([]time.Time{b.clock.Now()}, 5)
	if err := b.q.Retry(b.ctx, "w", got, at); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{3, 2, 0} {
		if n, err := b.q.PromoteDue(b.ctx, b.clock.Now(), 3); err != nil || n != want {
			t.Fatalf("PromoteDue = %d, %v; want %d", n, err, want)
		}
	}
}

func testReaperReturnsClaimsOnce(t *testing.T, be backend) {
	b := setup(t, be)
	r := task.Architect
	in := append(newItems(r, task.P0, 2), newItems(r, task.P3, 3)...)
	if err := b.q.Enqueue(b.ctx, in); err != nil {
		t.Fatal(err)
	}
	ttl := 10 * time.Second
	if err := b.q.Heartbeat(b.ctx, "dead", []task.Role{r}, ttl, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.q.Heartbeat(b.ctx, "alive", []task.Role{r}, time.Hour, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	claimed := b.claim(t, r, "dead", 10)
	if len(claimed) != 5 {
		t.Fatalf("claimed %d, want 5", len(claimed))
	}
	now := b.clock.Now()
	if ws, err := b.q.ExpiredWorkers(b.ctx, r, now); err != nil || len(ws) != 0 {
		t.Fatalf("ExpiredWorkers before the deadline = %v, %v; want none", ws, err)
	}
	ws, err := b.q.ExpiredWorkers(b.ctx, r, now.Add(ttl))
	if err != nil || !slices.Equal(ws, []string{"dead"}) {
		t.Fatalf("ExpiredWorkers after the deadline = %v, %v; want [dead]", ws, err)
	}
	dropped := claimed[0]
	n, err := b.q.ReturnWorker(b.ctx, r, "dead", []uuid.UUID{dropped.ID})
	if err != nil || n != 4 {
		t.Fatalf("ReturnWorker = %d, %v; want 4", n, err)
	}
	if n, err := b.q.ReturnWorker(b.ctx, r, "dead", nil); err != nil || n != 0 {
		t.Fatalf("second ReturnWorker = %d, %v; want 0", n, err)
	}
	if ws, _ := b.q.ExpiredWorkers(b.ctx, r, now.Add(ttl)); len(ws) != 0 {
		t.Fatalf("lease not deleted: expired workers %v", ws)
	}
	if n := b.llen(t, b.q.roles[r].active("dead")); n != 0 {
		t.Fatalf("dead worker's processing list holds %d", n)
	}
	again := b.claim(t, r, "alive", 10)
	want := slices.DeleteFunc(slices.Clone(claimed), func(it Item) bool { return it.ID == dropped.ID })
	if !slices.Equal(sortedIDs(again), sortedIDs(want)) {
		t.Fatalf("re-claimed %v, want %v (each once, without the dropped one)", sortedIDs(again), sortedIDs(want))
	}
	for _, it := range again {
		if orig := in[slices.IndexFunc(in, func(x Item) bool { return x.ID == it.ID })]; orig != it {
			t.Errorf("returned %+v lost its priority (was %+v)", it, orig)
		}
	}
}

func testClaimGivesALease(t *testing.T, be backend) {
	b := setup(t, be, Config{ClaimLease: 5 * time.Second})
	if err := b.q.Enqueue(b.ctx, newItems(task.QA, task.P1, 1)); err != nil {
		t.Fatal(err)
	}
	b.claim(t, task.QA, "no-heartbeat", 1)
	ws, err := b.q.ExpiredWorkers(b.ctx, task.QA, b.clock.Now().Add(5*time.Second))
	if err != nil || !slices.Equal(ws, []string{"no-heartbeat"}) {
		t.Fatalf("a worker that claimed without a heartbeat is not reapable: %v, %v", ws, err)
	}
	// A heartbeat's lease is not shortened by a later claim.
	if err := b.q.Heartbeat(b.ctx, "no-heartbeat", []task.Role{task.QA}, time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.q.Enqueue(b.ctx, newItems(task.QA, task.P1, 1)); err != nil {
		t.Fatal(err)
	}
	b.claim(t, task.QA, "no-heartbeat", 1)
	if ws, _ := b.q.ExpiredWorkers(b.ctx, task.QA, b.clock.Now().Add(time.Minute)); len(ws) != 0 {
		t.Fatalf("claim shortened the heartbeat lease: expired %v", ws)
	}
}

func testHeartbeatAndWorkers(t *testing.T, be backend) {
	b := setup(t, be)
	started := b.clock.Now().Add(-time.Hour).UTC()
	info := WorkerInfo{ID: "w1", Roles: []task.Role{task.QA, task.Developer}, RSSBytes: 100 << 20,
		LimitBytes: 512 << 20, SoftLimitBytes: 400 << 20, HealthScore: 0.8, CPUPercent: 12.5,
		Inflight: 7, StartedAt: started, Version: "v1"}
	js, _ := json.Marshal(info)
	if err := b.q.Heartbeat(b.ctx, "w1", info.Roles, time.Minute, js); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(30 * time.Second)
	if err := b.q.Heartbeat(b.ctx, "w2", []task.Role{task.QA}, time.Minute, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	ws, err := b.q.Workers(b.ctx)
	if err != nil || len(ws) != 2 {
		t.Fatalf("Workers = %+v, %v; want 2", ws, err)
	}
	want := info
	want.SeenAt = b.clock.Now().Add(-30 * time.Second)
	ws[0].StartedAt = ws[0].StartedAt.UTC()
	if !workerInfoEqual(ws[0], want) {
		t.Errorf("Workers[0] = %+v\nwant %+v", ws[0], want)
	}
	if ws[1].ID != "w2" || !ws[1].SeenAt.Equal(b.clock.Now()) {
		t.Errorf("Workers[1] = %+v, want w2 seen now", ws[1])
	}
	b.clock.Advance(ForgetWorkersAfter) // w1 unseen for 90 s, w2 for 60 s
	ws, err = b.q.Workers(b.ctx)
	if err != nil || len(ws) != 1 || ws[0].ID != "w2" {
		t.Fatalf("Workers after a minute = %+v, %v; want only w2", ws, err)
	}
	if ok, _ := b.rdb.HExists(b.ctx, b.q.keys.workers(), "w1").Result(); ok {
		t.Fatal("a forgotten worker's info was kept")
	}
	if err := b.q.Heartbeat(b.ctx, "w3", []task.Role{"CEO"}, time.Minute, nil); !errors.Is(err, task.ErrUnknownRole) {
		t.Fatalf("Heartbeat with an unknown role: %v", err)
	}
}

func workerInfoEqual(a, b WorkerInfo) bool {
	return a.ID == b.ID && slices.Equal(a.Roles, b.Roles) && a.RSSBytes == b.RSSBytes &&
		a.LimitBytes == b.LimitBytes && a.SoftLimitBytes == b.SoftLimitBytes &&
		a.HealthScore == b.HealthScore && a.CPUPercent == b.CPUPercent && a.Inflight == b.Inflight &&
		a.Paused == b.Paused && a.StartedAt.Equal(b.StartedAt) && a.SeenAt.Equal(b.SeenAt) && a.Version == b.Version
}

func testRemoveWorker(t *testing.T, be backend) {
	b := setup(t, be)
	roles := []task.Role{task.QA, task.Developer}
	if err := b.q.Heartbeat(b.ctx, "w", roles, time.Second, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.q.Enqueue(b.ctx, newItems(task.QA, task.P0, 1)); err != nil {
		t.Fatal(err)
	}
	b.claim(t, task.QA, "w", 1) // still held at exit
	if err := b.q.RemoveWorker(b.ctx, "w", roles); err != nil {
		t.Fatal(err)
	}
	later := b.clock.Now().Add(time.Hour)
	if ws, _ := b.q.ExpiredWorkers(b.ctx, task.Developer, later); len(ws) != 0 {
		t.Errorf("lease on an empty role kept: %v", ws)
	}
	if ws, _ := b.q.ExpiredWorkers(b.ctx, task.QA, later); !slices.Equal(ws, []string{"w"}) {
		t.Errorf("lease over a held claim dropped: %v (the reaper could not return it)", ws)
	}
	if ws, _ := b.q.Workers(b.ctx); len(ws) != 0 {
		t.Errorf("removed worker still listed: %+v", ws)
	}
}

func testLeader(t *testing.T, be backend) {
	b := setup(t, be)
	acquire := func(id string, ttl time.Duration) bool {
		t.Helper()
		ok, err := b.q.AcquireLeader(b.ctx, id, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !acquire("a", time.Second) {
		t.Fatal("a could not take a free leadership")
	}
	if acquire("b", time.Minute) {
		t.Fatal("b took a's leadership")
	}
	if !acquire("a", time.Minute) {
		t.Fatal("a could not renew")
	}
	if ttl, _ := b.rdb.PTTL(b.ctx, b.q.keys.leader()).Result(); ttl <= time.Second {
		t.Fatalf("renewal did not extend the lease: pttl %s", ttl)
	}
	if err := b.q.ResignLeader(b.ctx, "b"); err != nil { // not b's to give up
		t.Fatal(err)
	}
	if acquire("b", time.Minute) {
		t.Fatal("b's resignation released a's leadership")
	}
	if err := b.q.ResignLeader(b.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if !acquire("b", 50*time.Millisecond) {
		t.Fatal("b could not take a resigned leadership")
	}
	meshtest.Eventually(t, 5*time.Second, func() bool { return acquire("a", time.Minute) },
		"b's lease never lapsed")
}

func testLeaderExclusiveUnderContention(t *testing.T, be backend) {
	b := setup(t, be)
	var mu sync.Mutex
	var winners []string
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			id := fmt.Sprintf("c%d", i)
			ok, err := b.q.AcquireLeader(b.ctx, id, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				winners = append(winners, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("leaders %v, want exactly one", winners)
	}
}

func TestCheckEpochDetectsRestart(t *testing.T) {
	t.Parallel()
	srv := meshtest.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	leader := setupOn(t, rdb, "am")
	other := setupOn(t, rdb, "am") // a second process
	check := func(b *bundle) bool { t.Helper(); return b.checkEpoch(t) }
	for i, c := range []struct {
		b    *bundle
		want bool
	}{
		{leader, true},  // fresh Redis: the key was missing
		{leader, false}, // nothing happened since
		{other, false},  // another process's first look, data intact
	} {
		if got := check(c.b); got != c.want {
			t.Fatalf("step %d: lost = %t, want %t", i, got, c.want)
		}
	}
	if err := leader.q.Enqueue(leader.ctx, newItems(task.QA, task.P1, 3)); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Start() // comes back empty
	for i, c := range []struct {
		b    *bundle
		want bool
	}{
		{leader, true},  // the key is gone
		{leader, false}, // reported once
		{other, true},   // re-created since it last looked
		{other, false},
	} {
		if got := check(c.b); got != c.want {
			t.Fatalf("after restart, step %d: lost = %t, want %t", i, got, c.want)
		}
	}
	// A failed rebuild is retried: ForgetEpoch makes the next check report a loss once.
	leader.q.ForgetEpoch()
	if !check(leader) || check(leader) {
		t.Fatal("after ForgetEpoch, CheckEpoch did not report exactly one loss")
	}
	// Scripts work again on the new server (NOSCRIPT is handled).
	if err := leader.q.Enqueue(leader.ctx, newItems(task.QA, task.P1, 1)); err != nil {
		t.Fatal(err)
	}
	if got := leader.claim(t, task.QA, "w", 10); len(got) != 1 {
		t.Fatalf("claimed %d after the restart, want 1", len(got))
	}
}

// checkEpoch runs CheckEpoch until it answers: the first call after a
// server restart may meet a dead connection.
func (b *bundle) checkEpoch(t *testing.T) bool {
	t.Helper()
	var lost bool
	meshtest.Eventually(t, 10*time.Second, func() bool {
		var err error
		lost, err = b.q.CheckEpoch(b.ctx)
		return err == nil
	}, "CheckEpoch kept failing")
	return lost
}

// testCheckEpochDetectsRoleLoss: on a Cluster one master can lose its data
// alone — here every key of DEVELOPER's slot goes — and every process
// notices, once.
func testCheckEpochDetectsRoleLoss(t *testing.T, be backend) {
	rdb, prefix := be.shared(t)
	leader := setupOn(t, rdb, prefix)
	other := setupOn(t, rdb, prefix) // a second process
	for i, want := range []bool{true, false} {
		if got := leader.checkEpoch(t); got != want {
			t.Fatalf("step %d: lost = %t, want %t", i, got, want)
		}
	}
	if other.checkEpoch(t) {
		t.Fatal("a second process's first look reported a loss")
	}
	if err := leader.q.Enqueue(leader.ctx, newItems(task.QA, task.P1, 1)); err != nil {
		t.Fatal(err)
	}
	leader.deleteKeys(t, leader.q.roles[task.Developer].base)
	for i, c := range []struct {
		b    *bundle
		want bool
	}{
		{leader, true},  // DEVELOPER's epoch is gone
		{leader, false}, // reported once
		{other, true},   // re-created since it last looked
		{other, false},
	} {
		if got := c.b.checkEpoch(t); got != c.want {
			t.Fatalf("after the loss, step %d: lost = %t, want %t", i, got, c.want)
		}
	}
	if n := leader.pendingTotal(t, task.QA); n != 1 {
		t.Fatalf("QA holds %d pending after DEVELOPER's loss, want 1", n)
	}
}

// deleteKeys deletes every key that starts with prefix, on every master.
func (b *bundle) deleteKeys(t *testing.T, prefix string) {
	t.Helper()
	err := forEachMaster(b.ctx, b.rdb, func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := node.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	})
	if err != nil {
		t.Fatalf("deleting %s*: %v", prefix, err)
	}
}

func testBatchRetriesNoScript(t *testing.T, be backend) {
	rdb, prefix := be.private(t)
	b := setupOn(t, rdb, prefix)
	in := newItems(task.QA, task.P1, 2)
	if err := b.q.Enqueue(b.ctx, in); err != nil {
		t.Fatal(err)
	}
	got := b.claim(t, task.QA, "w", 2)
	err := forEachMaster(b.ctx, rdb, func(ctx context.Context, node *redis.Client) error {
		return node.ScriptFlush(ctx).Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	at := []time.Time{b.clock.Now(), b.clock.Now()}
	if err := b.q.Retry(b.ctx, "w", got, at); err != nil { // pipelined EVALSHA meets NOSCRIPT
		t.Fatalf("Retry after SCRIPT FLUSH: %v", err)
	}
	if n, err := b.q.PromoteDue(b.ctx, b.clock.Now(), 10); err != nil || n != 2 {
		t.Fatalf("PromoteDue after SCRIPT FLUSH = %d, %v; want 2", n, err)
	}
}

func testDepths(t *testing.T, be backend) {
	b := setup(t, be)
	var in []Item
	in = append(in, newItems(task.QA, task.P0, 3)...)
	in = append(in, newItems(task.QA, task.P3, 4)...)
	in = append(in, newItems(task.Developer, task.P2, 5)...)
	if err := b.q.Enqueue(b.ctx, in); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"w1", "w2"} {
		if err := b.q.Heartbeat(b.ctx, w, []task.Role{task.Developer}, time.Minute, nil); err != nil {
			t.Fatal(err)
		}
	}
	c1 := b.claim(t, task.Developer, "w1", 2)
	b.claim(t, task.Developer, "w2", 1)
	if err := b.q.Retry(b.ctx, "w1", c1[:1], []time.Time{b.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, err := b.q.Depths(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[task.Role]Depth{
		task.Architect: {},
		task.Developer: {Pending: [4]int64{0, 0, 2, 0}, Active: 2, Delayed: 1},
		task.QA:        {Pending: [4]int64{3, 0, 0, 4}},
	}
	for _, r := range task.Roles {
		if got[r] != want[r] {
			t.Errorf("Depths[%s] = %+v, want %+v", r, got[r], want[r])
		}
	}
}

func testPublishSubscribe(t *testing.T, be backend) {
	b := setup(t, be)
	sub := b.q.Subscribe(b.ctx)
	defer sub.Close()
	if _, err := sub.Receive(b.ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	evs := []task.Event{
		{ID: uuid.New(), Role: task.QA, Priority: task.P1, State: task.Completed, CreatedUS: 1, AtUS: 2},
		{ID: uuid.New(), Role: task.Architect, State: task.Active, WorkerID: "w", AtUS: 3},
	}
	if err := b.q.Publish(b.ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := b.q.Publish(b.ctx, nil); err != nil { // sends nothing
		t.Fatal(err)
	}
	msg, err := sub.ReceiveMessage(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEvents(msg.Payload)
	if err != nil || !slices.Equal(got, evs) {
		t.Fatalf("received %+v, %v; want %+v", got, err, evs)
	}
}

func testPaused(t *testing.T, be backend) {
	b := setup(t, be)
	for i, want := range []bool{false, true, true, false} {
		if i > 0 {
			if err := b.q.SetPaused(b.ctx, want); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := b.q.Paused(b.ctx); err != nil || got != want {
			t.Fatalf("step %d: Paused = %t, %v; want %t", i, got, err, want)
		}
	}
}

func testSettleInOneRoundTrip(t *testing.T, be backend) {
	b := setup(t, be)
	in := newItems(task.Architect, task.P1, 3)
	if err := b.q.Enqueue(b.ctx, in); err != nil {
		t.Fatal(err)
	}
	got := b.claim(t, task.Architect, "w", 3)
	next := newItems(task.Developer, task.P1, 2)
	err := b.q.Settle(b.ctx, "w", Settlement{
		Ack: got[:2], Retry: got[2:], RetryAt: []time.Time{b.clock.Now()}, Enqueue: next,
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := b.q.Depths(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d[task.Architect] != (Depth{Delayed: 1}) || d[task.Developer] != (Depth{Pending: [4]int64{0, 2, 0, 0}}) {
		t.Fatalf("depths after Settle: %+v", d)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"zero weight", Config{Weights: [4]int{1, 1, 0, 1}}},
		{"negative claim wait", Config{ClaimWait: -time.Second}},
		{"tag with a brace", Config{Tags: map[task.Role]string{task.QA: "Q}A"}}},
		{"two roles, one tag", Config{Tags: map[task.Role]string{task.QA: "DEV"}}}, // DEVELOPER's default
		{"tag of an unknown role", Config{Tags: map[task.Role]string{"CEO": "C"}}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New accepted a config with a %s", c.name)
				}
			}()
			New(nil, c.cfg)
		}()
	}
}

func TestWithDefaultsKeepsCallersTags(t *testing.T) {
	t.Parallel()
	tags := map[task.Role]string{task.QA: "Q"}
	c := Config{Tags: tags}.WithDefaults()
	if len(tags) != 1 || c.Tags[task.QA] != "Q" || c.Tags[task.Architect] != DefaultTags[task.Architect] {
		t.Fatalf("WithDefaults: tags %v, caller's map now %v", c.Tags, tags)
	}
}
