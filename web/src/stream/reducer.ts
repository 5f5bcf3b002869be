// The pure reducer behind the dashboard store. It applies a run of frames
// (one flush) to the state and returns a new state, touching only what
// changed so that memoised components skip the rest:
//
//   - the latest event per task id wins (older events for a known id are
//     ignored), and a task sits in exactly one column;
//   - each column keeps at most `cap` tasks, newest last (a Map in insertion
//     order), so client memory is bounded whatever the traffic;
//   - aggregate counters and per-second series (the charts, the High Traffic
//     sparklines) cover every event, even those no card shows.

import { ROLES, STATES, type Frame, type Role, type Stats, type TaskEvent, type TaskState, type WorkerInfo } from '../api/types'
import { emptyStats } from './stats'

export type Column = ReadonlyMap<string, TaskEvent>
export type Columns = Readonly<Record<TaskState, Column>>

export interface Counters {
  /** Raw events the server reported (sum of batch.events). */
  events: number
  /** Coalesced task events applied, per state they entered. */
  byState: Readonly<Record<TaskState, number>>
  /** The same, per role. */
  byRole: Readonly<Record<Role, Readonly<Record<TaskState, number>>>>
  frames: number
  snapshots: number
  /** Frames the server says it dropped for this client (latest report). */
  dropped: number
  /** Last batch sequence number seen. */
  seq: number
  /** Tasks the server left out of frames (per-frame cap), in total and since the last snapshot. */
  omitted: number
  omittedSinceSnapshot: number
}

/** One point per second, oldest first; all arrays have the same length. */
export interface Series {
  /** Unix second of the last point. */
  endSec: number
  events: readonly number[]
  completed: readonly number[]
  submitted: readonly number[]
  p50: readonly number[]
  p99: readonly number[]
  byState: Readonly<Record<TaskState, readonly number[]>>
  /**
   * What each aggregate column charts: the mesh's depth for pending, active,
   * failed (retry scheduled) and dead; completions per second for completed.
   */
  column: Readonly<Record<TaskState, readonly number[]>>
}

/** The second being filled. */
interface Bucket {
  sec: number
  /** Frames applied in this second. */
  frames: number
  events: number
  byState: Record<TaskState, number>
}

export interface MeshState {
  columns: Columns
  stats: Stats
  /** True once a snapshot arrived (the state reflects the server). */
  synced: boolean
  workers: readonly WorkerInfo[]
  counters: Counters
  series: Series
  bucket: Bucket
  /** Above the event-rate threshold: the board shows aggregates, not cards. */
  highTraffic: boolean
  /** Consecutive closed seconds below the exit threshold. */
  calmSeconds: number
  /** Wall-clock ms of the last reduce/tick (renders compute ages from it). */
  clockMs: number
  /** Wall-clock ms of the last frame applied. */
  lastFrameMs: number
}

export interface ReducerOptions {
  /** Tasks kept per column. Defaults to 200. */
  cap: number
  /** Events per second that switch on High Traffic Mode. Defaults to 400. */
  highTrafficAt: number
  /** Seconds of history kept in the series. Defaults to 300 (5 min). */
  seriesLen: number
}

export const DEFAULT_REDUCER_OPTIONS: ReducerOptions = { cap: 200, highTrafficAt: 400, seriesLen: 300 }

/** High Traffic Mode ends after this many seconds below EXIT_RATIO × threshold. */
export const CALM_SECONDS_TO_EXIT = 3
export const EXIT_RATIO = 0.6

function perState<T>(f: (s: TaskState) => T): Record<TaskState, T> {
  return { pending: f('pending'), active: f('active'), completed: f('completed'), failed: f('failed'), dead: f('dead') }
}

function zeroStates(): Record<TaskState, number> {
  return perState(() => 0)
}

function emptySeries(endSec: number, len: number): Series {
  const zeros = (): number[] => new Array<number>(len).fill(0)
  return {
    endSec,
    events: zeros(),
    completed: zeros(),
    submitted: zeros(),
    p50: zeros(),
    p99: zeros(),
    byState: perState(zeros),
    column: perState(zeros),
  }
}

export function initialState(nowMs: number, opts: ReducerOptions = DEFAULT_REDUCER_OPTIONS): MeshState {
  const sec = Math.floor(nowMs / 1000)
  return {
    columns: perState(() => new Map<string, TaskEvent>()),
    stats: emptyStats(),
    synced: false,
    workers: [],
    counters: {
      events: 0,
      byState: zeroStates(),
      byRole: { ARCHITECT: zeroStates(), DEVELOPER: zeroStates(), QA: zeroStates() },
      frames: 0,
      snapshots: 0,
      dropped: 0,
      seq: 0,
      omitted: 0,
      omittedSinceSnapshot: 0,
    },
    series: emptySeries(sec - 1, opts.seriesLen),
    bucket: { sec, frames: 0, events: 0, byState: zeroStates() },
    highTraffic: false,
    calmSeconds: 0,
    clockMs: nowMs,
    lastFrameMs: 0,
  }
}

/** Copy-on-write view of the columns during one reduce call. */
class ColumnWriter {
  private readonly out: Record<TaskState, Map<string, TaskEvent>>
  private readonly copied = new Set<TaskState>()
  private readonly cap: number

  constructor(cols: Columns, cap: number, fresh = false) {
    this.cap = cap
    if (fresh) {
      this.out = perState(() => new Map<string, TaskEvent>())
      for (const s of STATES) this.copied.add(s)
    } else {
      this.out = { ...cols } as Record<TaskState, Map<string, TaskEvent>>
    }
  }

  private writable(s: TaskState): Map<string, TaskEvent> {
    if (!this.copied.has(s)) {
      this.out[s] = new Map(this.out[s])
      this.copied.add(s)
    }
    return this.out[s]
  }

  /** find returns the event held for id and its column. */
  find(id: string): TaskEvent | undefined {
    for (const s of STATES) {
      const ev = this.out[s].get(id)
      if (ev) return ev
    }
    return undefined
  }

  /** put applies ev unless a newer event for the same id is already held; reports whether it applied. */
  put(ev: TaskEvent): boolean {
    const held = this.find(ev.id)
    if (held) {
      if (held.at_us > ev.at_us) return false
      this.writable(held.state).delete(ev.id)
    }
    const col = this.writable(ev.state)
    col.set(ev.id, ev)
    if (col.size > this.cap) {
      for (const oldest of col.keys()) {
        col.delete(oldest)
        if (col.size <= this.cap) break
      }
    }
    return true
  }

  result(): Columns {
    return this.out
  }
}

/** closeBuckets moves the bucket forward to nowSec, appending finished seconds to the series. */
function closeBuckets(st: MeshState, nowMs: number, opts: ReducerOptions): MeshState {
  const nowSec = Math.floor(nowMs / 1000)
  if (nowSec <= st.bucket.sec) return st
  const gap = nowSec - st.bucket.sec
  const len = opts.seriesLen
  if (gap > len) {
    // Nothing for longer than the window: the history is all quiet now.
    return {
      ...st,
      series: emptySeries(nowSec - 1, len),
      bucket: { sec: nowSec, frames: 0, events: 0, byState: zeroStates() },
      calmSeconds: st.calmSeconds + gap,
      highTraffic: st.highTraffic && st.calmSeconds + gap < CALM_SECONDS_TO_EXIT,
    }
  }
  // The closed bucket carries the stats of its second; empty seconds after it
  // count zero events and zero throughput, and keep the last latency.
  // A server that sent nothing lately had nothing to report: no throughput.
  const idle = st.bucket.frames === 0 && (st.lastFrameMs === 0 || nowMs - st.lastFrameMs > 2500)
  const completed = idle ? 0 : st.stats.rates.completed_per_s
  const submitted = idle ? 0 : st.stats.rates.submitted_per_s
  const p50 = st.stats.latency_ms.p50
  const p99 = st.stats.latency_ms.p99
  const push = (arr: readonly number[], first: number, rest: number): number[] => {
    const out = arr.slice(gap)
    out.push(first)
    for (let i = 1; i < gap; i++) out.push(rest)
    return out
  }
  const series: Series = {
    endSec: nowSec - 1,
    events: push(st.series.events, st.bucket.events, 0),
    completed: push(st.series.completed, completed, 0),
    submitted: push(st.series.submitted, submitted, 0),
    p50: push(st.series.p50, p50, p50),
    p99: push(st.series.p99, p99, p99),
    byState: perState((s) => push(st.series.byState[s], st.bucket.byState[s], 0)),
    column: perState((s) => {
      const v = s === 'completed' ? completed : depthTotal(st.stats, s)
      return push(st.series.column[s], v, s === 'completed' ? 0 : v)
    }),
  }
  // Hysteresis: leave High Traffic Mode only after a few calm seconds.
  let calm = st.calmSeconds
  const exitBelow = opts.highTrafficAt * EXIT_RATIO
  calm = st.bucket.events < exitBelow ? calm + 1 : 0
  if (gap > 1) calm += gap - 1
  const highTraffic = st.highTraffic && calm < CALM_SECONDS_TO_EXIT
  return { ...st, series, bucket: { sec: nowSec, frames: 0, events: 0, byState: zeroStates() }, calmSeconds: calm, highTraffic }
}

function addRole(
  byRole: Counters['byRole'],
  adds: Record<Role, Record<TaskState, number>>,
): Counters['byRole'] {
  const out = { ...byRole }
  for (const r of ROLES) {
    const a = adds[r]
    if (STATES.every((s) => a[s] === 0)) continue
    out[r] = perState((s) => byRole[r][s] + a[s])
  }
  return out
}

/** reduce applies one flush worth of frames, oldest first. */
export function reduce(prev: MeshState, frames: readonly Frame[], nowMs: number, opts: ReducerOptions = DEFAULT_REDUCER_OPTIONS): MeshState {
  if (frames.length === 0) return tick(prev, nowMs, opts)
  let st = closeBuckets({ ...prev, clockMs: nowMs }, nowMs, opts)

  // A snapshot replaces the task state; only frames after the last one matter.
  let from = 0
  for (let i = frames.length - 1; i >= 0; i--) {
    if (frames[i]?.type === 'snapshot') {
      from = i
      break
    }
  }
  const first = frames[from]
  const fresh = first?.type === 'snapshot'
  const cols = new ColumnWriter(st.columns, opts.cap, fresh)

  let events = 0
  let frameCount = 0
  let stats = st.stats
  let workers = st.workers
  let seq = fresh ? 0 : st.counters.seq
  let dropped = st.counters.dropped
  let omitted = 0
  let omittedAfterSnapshot = 0
  const byState = zeroStates()
  const byRole: Record<Role, Record<TaskState, number>> = { ARCHITECT: zeroStates(), DEVELOPER: zeroStates(), QA: zeroStates() }

  for (let i = from; i < frames.length; i++) {
    const f = frames[i]
    if (!f) continue
    frameCount++
    stats = f.stats
    if (f.type === 'snapshot') {
      workers = f.workers
      // Newest first on the wire: insert oldest first so the newest ends last.
      for (let j = f.tasks.length - 1; j >= 0; j--) {
        const ev = f.tasks[j]
        if (ev) cols.put(ev)
      }
      continue
    }
    if (f.workers) workers = f.workers
    seq = f.seq
    dropped = f.dropped
    events += f.events
    omitted += f.omitted ?? 0
    omittedAfterSnapshot += f.omitted ?? 0
    for (const ev of f.tasks) {
      if (!cols.put(ev)) continue
      byState[ev.state]++
      const r = byRole[ev.role]
      if (r) r[ev.state]++
    }
  }
  // Frames before the last snapshot still count as traffic seen.
  for (let i = 0; i < from; i++) {
    const f = frames[i]
    if (f?.type === 'batch') {
      events += f.events
      omitted += f.omitted ?? 0
    }
  }

  const c = st.counters
  const counters: Counters = {
    events: c.events + events,
    byState: perState((s) => c.byState[s] + byState[s]),
    byRole: addRole(c.byRole, byRole),
    frames: c.frames + frameCount,
    snapshots: c.snapshots + (fresh ? 1 : 0),
    dropped,
    seq,
    omitted: c.omitted + omitted,
    omittedSinceSnapshot: (fresh ? 0 : c.omittedSinceSnapshot) + omittedAfterSnapshot,
  }
  const bucket: Bucket = {
    sec: st.bucket.sec,
    frames: st.bucket.frames + frameCount,
    events: st.bucket.events + events,
    byState: perState((s) => st.bucket.byState[s] + byState[s]),
  }
  // Enter High Traffic Mode as soon as this second (or the server's own rate) crosses the threshold.
  const lastSecond = st.series.events[st.series.events.length - 1] ?? 0
  const rate = Math.max(bucket.events, st.series.endSec === bucket.sec - 1 ? lastSecond : 0, stats.rates.events_per_s)
  const highTraffic = st.highTraffic || rate >= opts.highTrafficAt
  st = {
    ...st,
    columns: cols.result(),
    stats,
    synced: st.synced || fresh,
    workers,
    counters,
    bucket,
    highTraffic,
    calmSeconds: rate >= opts.highTrafficAt * EXIT_RATIO ? 0 : st.calmSeconds,
    lastFrameMs: nowMs,
  }
  return st
}

/**
 * tick advances the clock without frames: it closes finished seconds (so an
 * idle mesh shows zero throughput) and lets High Traffic Mode end.
 */
export function tick(prev: MeshState, nowMs: number, opts: ReducerOptions = DEFAULT_REDUCER_OPTIONS): MeshState {
  return closeBuckets({ ...prev, clockMs: nowMs }, nowMs, opts)
}

/** depthTotal sums one state's depth over the roles (Stats.depth; failed = delayed retries). */
export function depthTotal(stats: Stats, s: TaskState): number {
  let total = 0
  for (const r of ROLES) {
    const d = stats.depth[r]
    if (!d) continue
    if (s === 'pending') total += d.pending
    else if (s === 'active') total += d.active
    else if (s === 'failed') total += d.delayed
    else if (s === 'dead') total += d.dead
  }
  return total
}

/** columnTotal is how many tasks the mesh holds in a state (from Stats), at least what the client holds. */
export function columnTotal(st: MeshState, s: TaskState): number {
  const held = st.columns[s].size
  const total = s === 'completed' ? st.stats.totals.completed : depthTotal(st.stats, s)
  return Math.max(total, held)
}

/** liveRate is the current event rate: the last full second, or the server's figure when higher. */
export function liveRate(st: MeshState): number {
  const last = st.series.events[st.series.events.length - 1] ?? 0
  return Math.max(last, st.stats.rates.events_per_s)
}

/** isIdle reports a server silent for a while: it sends frames only when something changed. */
export function isIdle(st: MeshState): boolean {
  return st.lastFrameMs === 0 || st.clockMs - st.lastFrameMs > 2500
}
