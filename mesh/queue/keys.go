package queue

import (
	"strconv"

	"github.com/agentmesh/agentmesh/mesh/task"
)

// keys builds every Redis key of the queue; nothing else in the package
// concatenates key names. A role's keys carry the role's tag (Config.Tags)
// as a hash tag ("am:{QA}:pending:0") so they share one Redis Cluster slot
// and every Lua script touches a single slot; keys shared by all roles
// carry "{meta}".
type keys struct{ prefix string }

// roleKeys are the fixed keys of one role, built once in New.
type roleKeys struct {
	role    task.Role
	base    string // "P:{T}:", T the role's tag
	pending [task.NumPriorities]string
	leases  string
	delayed string
	signal  string
	// epoch is set once per lifetime of the data of the role's slot: its
	// absence means the Redis (or Cluster master) serving it lost its data.
	epoch string
}

func (k keys) forRole(r task.Role, tag string) *roleKeys {
	base := k.prefix + ":{" + tag + "}:"
	rk := &roleKeys{role: r, base: base, leases: base + "leases", delayed: base + "delayed",
		signal: base + "signal", epoch: base + "epoch"}
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

// events is the pub/sub channel of task events.
func (k keys) events() string { return k.prefix + ":events" }

// admission holds "paused" while an operator has paused admission.
func (k keys) admission() string { return k.prefix + ":admission" }
