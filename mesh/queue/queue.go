// Package queue is the Redis side of Agent Mesh's reliable task queue:
// enqueue, claim by move into a per-worker processing list, ack, scheduled
// retries, the reaper's return of a dead worker's claims, worker heartbeats,
// leader election for the maintenance loop, the epoch check that detects a
// Redis which lost its data, queue depths, the event channel and the
// admission switch.
//
// Redis holds only ids; PostgreSQL (mesh/store) is the system of record, so
// everything here can be rebuilt from it. Every multi-key change is one Lua
// script (lua/*.lua, each with a KEYS/ARGV block) over the keys of a single
// role, which share a Redis Cluster slot through a "{ROLE}" hash tag; keys.go
// is the only place that builds key names.
//
// # Member encoding
//
// Pending lists, processing lists and the delayed set all hold the same
// member for a task: "<prio>:<uuid>", the priority as one digit 0–3, a colon
// and the task id in canonical form, e.g.
// "2:0b5e1a5c-3f49-4d7e-9f5c-8d0e2a1b4c6d" (38 bytes). Carrying the priority
// lets a claim report it and lets the reaper and the promoter put a task back
// in the right pending list without asking PostgreSQL; members move between
// keys verbatim.
//
// # Claiming
//
// [Queue.Claim] runs one script that moves up to max members from the role's
// four pending lists into the worker's processing list, visiting the
// priorities in an order drawn per call with weights 8/4/2/1 (P0 first most
// of the time, P3 never starved). When nothing is pending it blocks on the
// role's signal list (BLPOP, at most one token) for up to Config.ClaimWait,
// then tries once more. Enqueue, promotion and the reaper arm the signal;
// a claim that leaves work behind re-arms it, so idle claimers wake in a
// chain without polling.
//
// # Redis Cluster
//
// New takes a Cluster client as well (go-redis chooses it from a list of
// seed addresses). Every Lua script and every BLPOP touches the keys of one
// role, which share a slot through the role's hash tag (Config.Tags): the
// wake keys of a cancelled claim and the role's epoch key too. The other
// multi-key operations (an Enqueue of mixed roles, Settle, Depths,
// Heartbeat, PromoteDue) are pipelines, which the Cluster client splits per
// master; there is no MULTI, no SCAN and no cross-slot command. Events go
// out with plain PUBLISH, which a Cluster delivers to subscribers on every
// node.
//
// One role's queue is one slot, hence one master. A claim is an atomic move
// out of the role's four priority lists guarded by one signal key; spread
// over several slots, a claim would become a fan-out that cannot block on
// all of them at once, and every Item would have to carry its shard. One
// master moves ids through batched claims several times faster than
// PostgreSQL, the system of record, can transition them, so the unit of
// scale is the role: DefaultTags put the three roles on three different
// masters of an evenly split Cluster.
//
// A failover (a master dies, its replica takes over) keeps the replica's
// data, and asynchronous replication may drop the last writes before the
// crash. Nothing accepted is lost by that: a dropped push or next-stage
// enqueue leaves a pending row, and a dropped retry a failed row, that the
// maintenance sweep pushes again; a dropped claim puts ids back in a
// pending list while a worker runs them, and their second claim fails its
// conditional activation and acks them; a dropped ack leaves an id in a
// processing list until the worker leaves, and then the same happens to it.
// A master that loses its data altogether (restarted empty, with no replica)
// loses its roles' epoch keys: CheckEpoch reports that, and the maintenance
// loop rebuilds the queues from PostgreSQL.
package queue

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// Defaults of Config.
const (
	// DefaultPrefix starts every key.
	DefaultPrefix = "am"
	// DefaultClaimWait is how long an idle Claim blocks for work.
	DefaultClaimWait = time.Second
	// DefaultClaimLease is the lease a claim gives a worker that holds none.
	DefaultClaimLease = 15 * time.Second
	// MaxClaim bounds the max of one Claim.
	MaxClaim = 1000
	// ForgetWorkersAfter is how long Workers keeps a worker that stopped
	// heartbeating.
	ForgetWorkersAfter = time.Minute
)

// DefaultWeights are the claim weights of P0..P3.
var DefaultWeights = [task.NumPriorities]int{8, 4, 2, 1}

// DefaultTags are the hash tags of the roles' keys. They are chosen so that
// on a Redis Cluster whose slots are split evenly (as `redis-cli --cluster
// create` does) each role's slot lands on a different master for 3 to 8
// masters: ARCH is slot 14805, DEV 2407, QA 9579. The role names themselves
// would not spread: ARCHITECT (8297), DEVELOPER (10634) and QA all fall on
// the middle one of 3 masters.
var DefaultTags = map[task.Role]string{task.Architect: "ARCH", task.Developer: "DEV", task.QA: "QA"}

// ErrInvalidArgument is wrapped by errors about arguments a caller got wrong
// (an empty worker id, max out of range, mismatched slices, a bad priority).
// Unknown roles wrap task.ErrUnknownRole instead.
var ErrInvalidArgument = errors.New("queue: invalid argument")

// Config configures a Queue.
type Config struct {
	// Prefix starts every key. Defaults to "am".
	Prefix string
	// ClaimWait is how long Claim blocks on the role's signal when nothing is
	// pending. Waits of a second or more are rounded down to whole seconds.
	// Defaults to 1 second.
	ClaimWait time.Duration
	// ClaimLease is the lease deadline (from now) a claim records for a
	// worker that holds no lease on the role yet, so that the reaper finds
	// its processing list even if it dies before its first heartbeat.
	// Heartbeats then renew it with their own ttl. Defaults to 15 seconds.
	ClaimLease time.Duration
	// Weights are the claim weights of P0..P3: a claim visits priority p
	// first with probability Weights[p]/sum. Each must be at least 1.
	// Defaults to 8, 4, 2, 1.
	Weights [task.NumPriorities]int
	// Tags are the hash tags of each role's keys ("P:{T}:pending:0"): one
	// role's keys share one Redis Cluster slot, so the master serving that
	// slot serves the whole role. Pick tags whose slots (CLUSTER KEYSLOT)
	// sit on different masters to spread the roles. Every process of a mesh
	// must use the same tags. Tags must be distinct, non-empty and free of
	// braces. Roles left out default to DefaultTags.
	Tags map[task.Role]string
	// Now is the clock (heartbeat deadlines, worker expiry, claim leases).
	// Defaults to time.Now.
	Now func() time.Time
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Prefix = cmp.Or(c.Prefix, DefaultPrefix)
	c.ClaimWait = cmp.Or(c.ClaimWait, DefaultClaimWait)
	c.ClaimLease = cmp.Or(c.ClaimLease, DefaultClaimLease)
	if c.Weights == [task.NumPriorities]int{} {
		c.Weights = DefaultWeights
	}
	tags := maps.Clone(c.Tags) // the caller's map stays as it was
	if tags == nil {
		tags = make(map[task.Role]string, len(task.Roles))
	}
	for _, r := range task.Roles {
		tags[r] = cmp.Or(tags[r], DefaultTags[r])
	}
	c.Tags = tags
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	if c.ClaimWait < 0 || c.ClaimLease < 0 {
		return fmt.Errorf("%w: negative ClaimWait %s or ClaimLease %s", ErrInvalidArgument, c.ClaimWait, c.ClaimLease)
	}
	for p, w := range c.Weights {
		if w < 1 {
			return fmt.Errorf("%w: weight of P%d is %d (want at least 1)", ErrInvalidArgument, p, w)
		}
	}
	return c.validateTags()
}

func (c Config) validateTags() error {
	owner := make(map[string]task.Role, len(c.Tags))
	for r, tag := range c.Tags {
		if !r.Valid() {
			return fmt.Errorf("%w: a tag for role %q", task.ErrUnknownRole, r)
		}
		if tag == "" || strings.ContainsAny(tag, "{}") {
			return fmt.Errorf("%w: tag %q of %s is empty or holds a brace", ErrInvalidArgument, tag, r)
		}
		if o, ok := owner[tag]; ok {
			return fmt.Errorf("%w: %s and %s share the tag %q", ErrInvalidArgument, o, r, tag)
		}
		owner[tag] = r
	}
	return nil
}

// Queue is the Redis queue. It is safe for concurrent use.
type Queue struct {
	rdb   redis.UniversalClient
	cfg   Config
	keys  keys
	roles map[task.Role]*roleKeys
	wsum  int
	seq   atomic.Uint64 // numbers wake keys

	epochMu sync.Mutex
	epoch   map[task.Role]string // the epochs this Queue last saw; none before the first CheckEpoch
}

// New returns a Queue on rdb, which may be a Cluster client. It panics if
// cfg (after WithDefaults) is invalid: that is a programming error.
func New(rdb redis.UniversalClient, cfg Config) *Queue {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		panic(fmt.Sprintf("queue.New: %v", err))
	}
	q := &Queue{rdb: rdb, cfg: cfg, keys: keys{prefix: cfg.Prefix}, roles: make(map[task.Role]*roleKeys),
		epoch: make(map[task.Role]string)}
	for _, r := range task.Roles {
		q.roles[r] = q.keys.forRole(r, cfg.Tags[r])
	}
	for _, w := range cfg.Weights {
		q.wsum += w
	}
	return q
}

// Item is one task as the queue knows it: its id, role and priority.
type Item struct {
	ID       uuid.UUID
	Role     task.Role
	Priority task.Priority
}

// member encodes the item as "<prio>:<uuid>" (see the package doc).
func (it Item) member() string {
	return string(rune('0'+it.Priority)) + ":" + it.ID.String()
}

// memberLen is the length of an encoded member.
const memberLen = 2 + 36

// decodeMember parses "<prio>:<uuid>" into an Item of role.
func decodeMember(role task.Role, m string) (Item, error) {
	if len(m) != memberLen || m[1] != ':' || m[0] < '0' || m[0] > '3' {
		return Item{}, fmt.Errorf("malformed queue member %q (want \"<0-3>:<uuid>\")", m)
	}
	id, err := uuid.Parse(m[2:])
	if err != nil {
		return Item{}, fmt.Errorf("malformed queue member %q: %w", m, err)
	}
	return Item{ID: id, Role: role, Priority: task.Priority(m[0] - '0')}, nil
}

// roleKeys returns the keys of role, or an error wrapping task.ErrUnknownRole.
func (q *Queue) roleKeys(r task.Role) (*roleKeys, error) {
	rk, ok := q.roles[r]
	if !ok {
		return nil, fmt.Errorf("%w %q", task.ErrUnknownRole, r)
	}
	return rk, nil
}

// checkItem validates an item's role and priority and returns its role's keys.
func (q *Queue) checkItem(it Item) (*roleKeys, error) {
	rk, err := q.roleKeys(it.Role)
	if err != nil {
		return nil, err
	}
	if !it.Priority.Valid() {
		return nil, fmt.Errorf("%w: task %s has priority %d (want 0 to 3)", ErrInvalidArgument, it.ID, int(it.Priority))
	}
	return rk, nil
}

func checkWorker(worker string) error {
	if worker == "" {
		return fmt.Errorf("%w: empty worker id", ErrInvalidArgument)
	}
	return nil
}

func (q *Queue) nowMS() int64 { return q.cfg.Now().UnixMilli() }
