package queue

import (
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// TestClusterSpreadsRoles: with DefaultTags the three roles' slots sit on
// three different masters of a Cluster split evenly by redis-cli, and so do
// they on 4 to 8 masters (the slot ranges are computed as redis-cli does).
func TestClusterSpreadsRoles(t *testing.T) {
	t.Parallel()
	c := meshtest.StartCluster(t, 3, 0)
	q := New(c.Client(), Config{})
	seen := map[string]task.Role{}
	for _, r := range task.Roles {
		m := c.MasterOf(q.roles[r].signal)
		if o, ok := seen[m]; ok {
			t.Errorf("%s and %s share the master %s", o, r, m)
		}
		seen[m] = r
	}
	slots := map[task.Role]int{task.Architect: 14805, task.Developer: 2407, task.QA: 9579} // CLUSTER KEYSLOT
	for _, r := range task.Roles {
		if got := c.Client().ClusterKeySlot(t.Context(), q.roles[r].signal).Val(); got != int64(slots[r]) {
			t.Errorf("%s's keys are in slot %d, want %d", r, got, slots[r])
		}
	}
	for masters := 3; masters <= 8; masters++ {
		on := map[int]bool{}
		for _, s := range slots {
			on[evenMaster(s, masters)] = true
		}
		if len(on) != len(slots) {
			t.Errorf("on %d masters the roles share a master", masters)
		}
	}
}

// evenMaster is the master serving slot when redis-cli splits the 16384
// slots evenly over masters: master i gets [round(i·n), round((i+1)·n)-1].
func evenMaster(slot, masters int) int {
	per := 16384.0 / float64(masters)
	for i := range masters {
		if float64(slot) < float64(int(float64(i+1)*per+0.5)) {
			return i
		}
	}
	return masters - 1
}

// TestClusterShardLoss restarts the master serving DEVELOPER's slot empty
// (a Cluster without replicas, nothing on disk): CheckEpoch reports the loss
// once, and the other roles' queues, on other masters, are intact.
func TestClusterShardLoss(t *testing.T) {
	t.Parallel()
	c := meshtest.StartCluster(t, 3, 0)
	rdb, prefix := c.Redis(t)
	b := setupOn(t, rdb, prefix)
	if !b.checkEpoch(t) || b.checkEpoch(t) {
		t.Fatal("a fresh cluster did not report exactly one loss")
	}
	for _, r := range task.Roles {
		if err := b.q.Enqueue(b.ctx, newItems(r, task.P1, 5)); err != nil {
			t.Fatal(err)
		}
	}
	srv := c.Node(c.MasterOf(b.q.roles[task.Developer].signal))
	srv.Kill()
	srv.Start()
	c.WaitHealthy(20 * time.Second)
	if !b.checkEpoch(t) {
		t.Fatal("DEVELOPER's master came back empty and no loss was reported")
	}
	if b.checkEpoch(t) {
		t.Fatal("the loss was reported twice")
	}
	for _, r := range task.Roles {
		want := int64(5)
		if r == task.Developer {
			want = 0
		}
		if n := b.pendingTotal(t, r); n != want {
			t.Errorf("%s holds %d pending after the loss, want %d", r, n, want)
		}
	}
}
