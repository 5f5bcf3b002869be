package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentmesh/agentmesh/mesh/metrics"
	"github.com/agentmesh/agentmesh/mesh/queue"
	"github.com/agentmesh/agentmesh/mesh/store"
	"github.com/agentmesh/agentmesh/mesh/task"
)

// errQueueFull: the inserter's queue is full; the submission gets 429.
var errQueueFull = errors.New("producer: insert queue full")

// errShuttingDown: the inserter is closed; the submission gets 503.
var errShuttingDown = errors.New("producer: shutting down")

// insertTimeout bounds one group commit (statement, push and publish). It
// runs on a context detached from any request, so a client that hangs up
// does not abort the batch of the others, and a shutdown still flushes.
const insertTimeout = 15 * time.Second

// inserter is the group commit of submissions: concurrent requests queue
// here and Config.InsertConcurrency flushers each take what has queued (the
// first request goes at once; while a statement runs the next batch grows,
// up to Config.InsertBatch tasks), insert it with one store.Insert, push the
// new tasks with one queue.Enqueue, answer every request, then publish one
// "pending" event per new task.
//
// A request is a unit: one task, or a whole keyless batch submission. The
// group's statement is atomic, so a unit is stored whole or not at all; a
// unit holding a spec that PostgreSQL refuses fails alone and the others
// are retried without it.
//
// A push that fails after the commit does not fail the request: the task is
// durable in PostgreSQL and pending, and the maintenance loop re-pushes
// pending rows that nobody claimed (store.StalePending), so the answer is
// 202 anyway; agentmesh_producer_enqueue_failures_total counts it.
type inserter struct {
	p        *Producer
	pipeline bool
	reqs     chan *insertReq
	waiting  atomic.Int64 // tasks queued, not yet taken by a flusher

	mu     sync.RWMutex // held for reading while queueing, for writing by close
	closed bool
	wg     sync.WaitGroup
}

type insertReq struct {
	specs []task.Spec
	batch bool           // a batch submission: field errors are named tasks[i].field
	res   chan insertRes // buffered: a flusher never blocks on an abandoned request
}

type insertRes struct {
	ins []store.Inserted // one per spec, in order
	err error
}

func newInserter(p *Producer, pipeline bool) *inserter {
	return &inserter{p: p, pipeline: pipeline, reqs: make(chan *insertReq, p.cfg.InsertQueue)}
}

func (in *inserter) start() {
	for range in.p.cfg.InsertConcurrency {
		in.wg.Add(1)
		go in.loop()
	}
}

// close stops taking requests and waits until everything queued is flushed.
func (in *inserter) close() {
	in.mu.Lock()
	if !in.closed {
		in.closed = true
		close(in.reqs)
	}
	in.mu.Unlock()
	in.wg.Wait()
}

// queue queues one unit without waiting. A unit that does not fit — more
// than Config.InsertQueue tasks would wait, unless nothing waits at all —
// or comes after close gets its error in its result channel.
func (in *inserter) queue(specs []task.Spec, batch bool) chan insertRes {
	r := &insertReq{specs: specs, batch: batch, res: make(chan insertRes, 1)}
	in.mu.RLock()
	defer in.mu.RUnlock()
	if in.closed {
		r.res <- insertRes{err: errShuttingDown}
		return r.res
	}
	n := int64(len(specs))
	if !reserve(&in.waiting, n, int64(in.p.cfg.InsertQueue)) {
		r.res <- insertRes{err: errQueueFull}
		return r.res
	}
	select {
	case in.reqs <- r:
	default:
		in.waiting.Add(-n)
		r.res <- insertRes{err: errQueueFull}
	}
	return r.res
}

// enqueue queues specs as single-task units without waiting.
func (in *inserter) enqueue(specs []task.Spec) []chan insertRes {
	out := make([]chan insertRes, len(specs))
	for i, sp := range specs {
		out[i] = in.queue([]task.Spec{sp}, false)
	}
	return out
}

// insert queues one spec and waits for its result or ctx.
func (in *inserter) insert(ctx context.Context, sp task.Spec) (store.Inserted, error) {
	ins, err := in.wait(ctx, in.queue([]task.Spec{sp}, false))
	if err != nil {
		return store.Inserted{}, err
	}
	return ins[0], nil
}

// insertBatch queues a batch submission as one unit — stored whole or not
// at all — and waits for its result or ctx.
func (in *inserter) insertBatch(ctx context.Context, specs []task.Spec) ([]store.Inserted, error) {
	return in.wait(ctx, in.queue(specs, true))
}

func (in *inserter) wait(ctx context.Context, res chan insertRes) ([]store.Inserted, error) {
	select {
	case r := <-res:
		return r.ins, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (in *inserter) loop() {
	defer in.wg.Done()
	batch := make([]*insertReq, 0, in.p.cfg.InsertBatch)
	for first := range in.reqs {
		batch = append(batch[:0], first)
		tasks := len(first.specs)
		in.waiting.Add(-int64(tasks))
	fill:
		for tasks < in.p.cfg.InsertBatch {
			select {
			case r, ok := <-in.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
				tasks += len(r.specs)
				in.waiting.Add(-int64(len(r.specs)))
			default:
				break fill
			}
		}
		in.flush(batch, tasks)
		clear(batch)
	}
}

// fieldIndex reads the index of a store field error ("tasks[12].payload").
var fieldIndex = regexp.MustCompile(`^tasks\[(\d+)\]\.(.*)$`)

// flush inserts one group of units (tasks specs in all) and answers every
// request in it.
func (in *inserter) flush(batch []*insertReq, tasks int) {
	ctx, cancel := context.WithTimeout(context.Background(), insertTimeout)
	defer cancel()
	p := in.p
	p.m.InsertBatch(tasks)
	for len(batch) > 0 {
		specs := make([]task.Spec, 0, tasks)
		for _, r := range batch {
			specs = append(specs, r.specs...)
		}
		res, err := p.s.Insert(ctx, specs, in.pipeline)
		if u, fe := badUnit(err, batch); fe != nil {
			// A spec the handler's validation let through: fail its unit
			// alone and retry the others.
			batch[u].res <- insertRes{err: fe}
			tasks -= len(batch[u].specs)
			batch = append(batch[:u:u], batch[u+1:]...)
			continue
		}
		if err != nil {
			for _, r := range batch {
				r.res <- insertRes{err: err}
			}
			return
		}
		in.settle(ctx, batch, res)
		return
	}
}

// badUnit returns the unit of batch that a store field error blames, and the
// error as that unit's submitter should read it: the bare field for a single
// task, tasks[i].field (i within the submission) for a batch.
func badUnit(err error, batch []*insertReq) (int, *task.FieldError) {
	n := 0
	for _, r := range batch {
		n += len(r.specs)
	}
	i, fe := badSpec(err, n)
	if fe == nil {
		return 0, nil
	}
	for u, r := range batch {
		if i < len(r.specs) {
			if r.batch {
				fe = &task.FieldError{Field: fmt.Sprintf("tasks[%d].%s", i, fe.Field), Msg: fe.Msg, Err: fe.Err}
			}
			return u, fe
		}
		i -= len(r.specs)
	}
	return 0, nil
}

// badSpec returns the index and field error when err blames one spec.
func badSpec(err error, n int) (int, *task.FieldError) {
	var fe *task.FieldError
	if !errors.As(err, &fe) {
		return 0, nil
	}
	m := fieldIndex.FindStringSubmatch(fe.Field)
	if m == nil {
		return 0, nil
	}
	i, _ := strconv.Atoi(m[1])
	if i >= n {
		return 0, nil
	}
	return i, &task.FieldError{Field: m[2], Msg: fe.Msg, Err: fe.Err}
}

// reserve counts n more waiting tasks in c, unless that passes limit while
// others already wait: a submission larger than the limit still goes when
// nothing else waits.
func reserve(c *atomic.Int64, n, limit int64) bool {
	if w := c.Add(n); w-n > 0 && w > limit {
		c.Add(-n)
		return false
	}
	return true
}

// settle pushes and announces the new tasks, then answers the requests.
func (in *inserter) settle(ctx context.Context, batch []*insertReq, res []store.Inserted) {
	in.p.pending(ctx, res)
	for _, r := range batch {
		r.res <- insertRes{ins: res[:len(r.specs):len(r.specs)]}
		res = res[len(r.specs):]
	}
}

// pending pushes the tasks res created and hands their events to the
// announcer.
func (p *Producer) pending(ctx context.Context, res []store.Inserted) {
	created := make([]task.Task, 0, len(res))
	for _, r := range res {
		if !r.Existing && !r.Conflict {
			created = append(created, r.Task)
		}
	}
	at := time.Now() // before the push: no worker can observe the task earlier
	p.push(ctx, created)
	p.publishPending(ctx, created, at)
}

// push makes new tasks pending in Redis and counts them for admission. A
// failure is logged and counted, never returned: the tasks are durable and
// the maintenance loop re-pushes them.
func (p *Producer) push(ctx context.Context, ts []task.Task) {
	if len(ts) == 0 {
		return
	}
	items := make([]queue.Item, len(ts))
	for i := range ts {
		items[i] = queue.Item{ID: ts[i].ID, Role: ts[i].Role, Priority: ts[i].Priority}
		p.adm.accept(ts[i].Role, 1)
	}
	if err := p.q.Enqueue(ctx, items); err != nil {
		p.m.EnqueueFailed(len(items))
		p.log.Warn("pushing accepted tasks to Redis failed; they are durable and the maintenance sweeper will re-push them",
			slog.Int("tasks", len(items)), slog.Any("err", err))
	}
}

// publishPending hands new pending tasks' events to the announcer, which
// publishes them off the submission path. The events only feed dashboards,
// so when the announcer is behind by announceQueue batches they are dropped
// (and logged at debug), never queued without bound.
func (p *Producer) publishPending(_ context.Context, ts []task.Task, at time.Time) {
	if len(ts) == 0 {
		return
	}
	p.annMu.RLock()
	defer p.annMu.RUnlock()
	if p.annClosed {
		return
	}
	select {
	case p.announce <- task.Events(ts, at):
	default:
		p.log.Debug("announcer behind; dropping pending events", slog.Int("tasks", len(ts)))
	}
}

// announceQueue bounds the event batches waiting to be published.
const announceQueue = 256

// announcer publishes queued event batches until the channel is closed.
func (p *Producer) announcer() {
	for evs := range p.announce {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.q.Publish(ctx, evs); err != nil {
			p.log.Debug("publishing pending events failed", slog.Int("events", len(evs)), slog.Any("err", err))
		}
		cancel()
	}
}

// rejectReason is the metrics reason of an inserter error.
func rejectReason(err error) string {
	if errors.Is(err, errQueueFull) {
		return metrics.ReasonOverloaded
	}
	return metrics.ReasonError
}
