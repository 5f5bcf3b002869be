package queue

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/meshtest"
)

// suite is the queue's behaviour on a Redis: TestQueue runs it on the shared
// single Redis, TestCluster on a private Redis Cluster. Each runs in
// parallel on its own key prefix.
var suite = []struct {
	name string
	run  func(t *testing.T, be backend)
}{
	{"EnqueueClaimAck", testEnqueueClaimAck},
	{"EnqueueRejectsBadItems", testEnqueueRejectsBadItems},
	{"ClaimBatchAtMostMax", testClaimBatchAtMostMax},
	{"ClaimTimesOutEmpty", testClaimTimesOutEmpty},
	{"ClaimPriorityWeighting", testClaimPriorityWeighting},
	{"BlockingClaimWakesOnEnqueue", testBlockingClaimWakesOnEnqueue},
	{"BlockingClaimHonoursCancel", testBlockingClaimHonoursCancel},
	{"IdleClaimersWakeInAChain", testIdleClaimersWakeInAChain},
	{"ConcurrentClaimersNeverShare", testConcurrentClaimersNeverShare},
	{"RetryThenPromote", testRetryThenPromote},
	{"PromoteDueRespectsMax", testPromoteDueRespectsMax},
	{"ReaperReturnsClaimsOnce", testReaperReturnsClaimsOnce},
	{"ClaimGivesALease", testClaimGivesALease},
	{"HeartbeatAndWorkers", testHeartbeatAndWorkers},
	{"RemoveWorker", testRemoveWorker},
	{"Leader", testLeader},
	{"LeaderExclusiveUnderContention", testLeaderExclusiveUnderContention},
	{"CheckEpochDetectsRoleLoss", testCheckEpochDetectsRoleLoss},
	{"BatchRetriesNoScript", testBatchRetriesNoScript},
	{"Depths", testDepths},
	{"PublishSubscribe", testPublishSubscribe},
	{"Paused", testPaused},
	{"SettleInOneRoundTrip", testSettleInOneRoundTrip},
}

// backend is the Redis a suite test runs on.
type backend struct {
	// shared returns a client and a key prefix no other test uses; the
	// client is named after the prefix (CLIENT SETNAME), and the keys under
	// the prefix are deleted when the test ends.
	shared func(t *testing.T) (redis.UniversalClient, string)
	// private is shared for a Redis whose script cache the test may flush.
	private func(t *testing.T) (redis.UniversalClient, string)
}

func runSuite(t *testing.T, be backend) {
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, be)
		})
	}
}

// TestQueue runs the suite on the shared test Redis (TEST_REDIS_URL).
func TestQueue(t *testing.T) {
	t.Parallel()
	runSuite(t, backend{shared: sharedRedis, private: privateRedis})
}

// TestCluster runs the suite on a private Redis Cluster of 3 masters: the
// roles' slots on three different masters, pipelines split per master,
// pub/sub across nodes, and cleanup on every master.
func TestCluster(t *testing.T) {
	t.Parallel()
	c := meshtest.StartCluster(t, 3, 0)
	shared := func(t *testing.T) (redis.UniversalClient, string) { return c.Redis(t) }
	// Every path of the queue re-sends its scripts on NOSCRIPT, so the
	// suite's tests may flush the scripts of the cluster they share.
	runSuite(t, backend{shared: shared, private: shared})
}

func sharedRedis(t *testing.T) (redis.UniversalClient, string) {
	t.Helper()
	_, prefix := meshtest.Redis(t) // checks the server and deletes the prefix's keys at the end
	opt, err := redis.ParseURL(meshtest.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	opt.PoolSize, opt.ClientName = 16, prefix
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, prefix
}

// privateRedis gives a test its own server.
func privateRedis(t *testing.T) (redis.UniversalClient, string) {
	srv := meshtest.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, "am"
}

// forEachMaster runs fn on every master of a Cluster client, concurrently,
// or on the one server of a plain client.
func forEachMaster(ctx context.Context, rdb redis.UniversalClient, fn func(context.Context, *redis.Client) error) error {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	}
	panic("forEachMaster: a client of neither kind")
}
