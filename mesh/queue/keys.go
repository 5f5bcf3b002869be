package queue

import (
	"strconv"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// keys builds every Redis key of the queue; nothing else in the package
// concatenates key names. A role's keys carry the role in a hash tag
// ("am:{QA}:pending:0") so they share one Redis Cluster slot and every Lua
// script touches a single slot; keys shared by all roles carry "{meta}".
type keys struct{ prefix string }

// roleKeys are the fixed keys of one role, built once in New.
type roleKeys struct {
	role    task.Role
	base    string // "P:{R}:"
	pending [task.NumPriorities]string
	leases  string
	delayed string
	signal  string
}

func (k keys) forRole(r task.Role) *roleKeys {
	base := k.prefix + ":{" + string(r) + "}:"
	rk := &roleKeys{role: r, base: base, leases: base + "leases", delayed: base + "delayed", signal: base + "signal"}
	for p := range rk.pending {
		rk.pending[p] = base + "pending:" + strconv.Itoa(p)
	}
	return rk
}

// active is the processing list of one worker: ids claimed and not yet acked.
func (rk *roleKeys) active(worker string) string { return rk.base + "active:" + worker }

// wake is a per-call key a cancelled Claim pushes to, so that its BLPOP
// returns at once (go-redis does not abort a blocking read on cancellation).
func (rk *roleKeys) wake(worker string, seq uint64) string {
	return rk.base + "wake:" + worker + ":" + strconv.FormatUint(seq, 10)
}

func (k keys) meta(name string) string { return k.prefix + ":{meta}:" + name }

// workers is the hash worker id → latest heartbeat JSON.
func (k keys) workers() string { return k.meta("workers") }

// seen is the zset worker id → last heartbeat (unix ms).
func (k keys) seen() string { return k.meta("seen") }

// leader holds the id of the maintenance leader.
func (k keys) leader() string { return k.meta("leader") }

// epoch is set once per Redis lifetime; its absence means Redis lost its data.
func (k keys) epoch() string { return k.meta("epoch") }

// events is the pub/sub channel of task events.
func (k keys) events() string { return k.prefix + ":events" }

// admission holds "paused" while an operator has paused admission.
func (k keys) admission() string { return k.prefix + ":admission" }
