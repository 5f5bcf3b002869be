import { describe, expect, it } from 'vitest'
import { STATES } from '../api/types'
import { batch, ev, snapshot, uuid } from '../test/fixtures'
import { emptyStats } from './stats'
import { CALM_SECONDS_TO_EXIT, columnTotal, initialState, reduce, tick, type ReducerOptions } from './reducer'

const T0 = 1_800_000_000_000
const opts: ReducerOptions = { cap: 50, highTrafficAt: 400, seriesLen: 60 }

function held(st: ReturnType<typeof initialState>): number {
  return STATES.reduce((a, s) => a + st.columns[s].size, 0)
}

describe('reduce', () => {
  it('loses no event: every id lands once and the counters cover every event', () => {
    const frames = []
    for (let f = 0; f < 10; f++) {
      const tasks = []
      for (let i = 0; i < 4; i++) tasks.push(ev(uuid(f * 4 + i), 'pending', 10 + f))
      frames.push(batch(tasks, { events: 7 }))
    }
    const st = reduce(initialState(T0, opts), frames, T0 + 50, opts)
    expect(st.columns.pending.size).toBe(40)
    expect(st.counters.byState.pending).toBe(40)
    expect(st.counters.events).toBe(70)
    expect(st.counters.frames).toBe(10)
    expect(st.bucket.events).toBe(70)
  })

  it('keeps the latest state per task id, in exactly one column', () => {
    const id = uuid(1)
    let st = reduce(initialState(T0, opts), [batch([ev(id, 'pending', 1)]), batch([ev(id, 'active', 2, 'ARCHITECT', { attempts: 1 })])], T0, opts)
    st = reduce(st, [batch([ev(id, 'completed', 3)])], T0 + 100, opts)
    expect(st.columns.completed.get(id)?.state).toBe('completed')
    expect(held(st)).toBe(1)
    // An older event arriving late does not move the task back.
    st = reduce(st, [batch([ev(id, 'active', 2)])], T0 + 200, opts)
    expect(st.columns.completed.has(id)).toBe(true)
    expect(st.columns.active.has(id)).toBe(false)
    expect(held(st)).toBe(1)
  })

  it('bounds every column to the cap, keeping the newest', () => {
    const tasks = Array.from({ length: 500 }, (_, i) => ev(uuid(i), 'completed', i + 1))
    const st = reduce(initialState(T0, opts), [batch(tasks)], T0, opts)
    expect(st.columns.completed.size).toBe(opts.cap)
    const kept = Array.from(st.columns.completed.keys())
    expect(kept[kept.length - 1]).toBe(uuid(499))
    expect(kept[0]).toBe(uuid(450))
    expect(st.counters.byState.completed).toBe(500)
  })

  it('keeps memory bounded over a long run', () => {
    let st = initialState(T0, opts)
    let id = 0
    for (let f = 0; f < 200; f++) {
      const tasks = []
      for (let i = 0; i < 100; i++) {
        const s = STATES[i % STATES.length] ?? 'pending'
        tasks.push(ev(uuid(id++), s, id))
      }
      st = reduce(st, [batch(tasks)], T0 + f * 100, opts)
    }
    expect(held(st)).toBeLessThanOrEqual(opts.cap * STATES.length)
    for (const s of STATES) expect(st.series.byState[s].length).toBe(opts.seriesLen)
  })

  it('counts per role', () => {
    const st = reduce(
      initialState(T0, opts),
      [batch([ev(uuid(1), 'completed', 1, 'QA'), ev(uuid(2), 'completed', 1, 'QA'), ev(uuid(3), 'dead', 1, 'DEVELOPER')])],
      T0,
      opts,
    )
    expect(st.counters.byRole.QA.completed).toBe(2)
    expect(st.counters.byRole.DEVELOPER.dead).toBe(1)
    expect(st.counters.byRole.ARCHITECT.completed).toBe(0)
  })

  it('replaces the task state on a snapshot', () => {
    let st = reduce(initialState(T0, opts), [batch([ev(uuid(1), 'active', 1), ev(uuid(2), 'pending', 1)])], T0, opts)
    const stats = { ...emptyStats(), totals: { ...emptyStats().totals, completed: 42 } }
    st = reduce(st, [snapshot([ev(uuid(3), 'completed', 5), ev(uuid(4), 'completed', 4)], { stats })], T0 + 100, opts)
    expect(held(st)).toBe(2)
    expect(st.columns.active.size).toBe(0)
    // Newest first on the wire → newest last in the column.
    expect(Array.from(st.columns.completed.keys())).toEqual([uuid(4), uuid(3)])
    expect(st.synced).toBe(true)
    expect(st.counters.snapshots).toBe(1)
    expect(st.stats.totals.completed).toBe(42)
    expect(columnTotal(st, 'completed')).toBe(42)
  })

  it('ignores buffered frames from before a snapshot in the same flush', () => {
    const st = reduce(initialState(T0, opts), [batch([ev(uuid(1), 'active', 1)]), snapshot([ev(uuid(2), 'pending', 2)]), batch([ev(uuid(3), 'active', 3)])], T0, opts)
    expect(st.columns.active.has(uuid(1))).toBe(false)
    expect(st.columns.active.has(uuid(3))).toBe(true)
    expect(st.columns.pending.has(uuid(2))).toBe(true)
  })

  it('leaves untouched columns identical so memoised columns skip rendering', () => {
    const st1 = reduce(initialState(T0, opts), [batch([ev(uuid(1), 'pending', 1)])], T0, opts)
    const st2 = reduce(st1, [batch([ev(uuid(2), 'pending', 2)])], T0 + 100, opts)
    expect(st2.columns.completed).toBe(st1.columns.completed)
    expect(st2.columns.pending).not.toBe(st1.columns.pending)
    // and the previous state is not mutated
    expect(st1.columns.pending.size).toBe(1)
  })

  it('builds per-second series and switches High Traffic Mode with hysteresis', () => {
    let st = initialState(T0, opts)
    // 5 frames of 100 events within the first second: 500 events/s ≥ 400.
    for (let i = 0; i < 5; i++) st = reduce(st, [batch([ev(uuid(i), 'completed', i + 1)], { events: 100 })], T0 + i * 100, opts)
    expect(st.highTraffic).toBe(true)
    st = tick(st, T0 + 1000, opts)
    expect(st.series.events[st.series.events.length - 1]).toBe(500)
    expect(st.series.byState.completed[st.series.byState.completed.length - 1]).toBe(5)
    // Quiet seconds: stays on until CALM_SECONDS_TO_EXIT have passed.
    for (let s = 2; s <= CALM_SECONDS_TO_EXIT; s++) {
      st = tick(st, T0 + s * 1000, opts)
      expect(st.highTraffic).toBe(true)
    }
    st = tick(st, T0 + (CALM_SECONDS_TO_EXIT + 1) * 1000, opts)
    expect(st.highTraffic).toBe(false)
  })

  it('enters High Traffic Mode at once when the server reports a high rate', () => {
    const stats = { ...emptyStats(), rates: { submitted_per_s: 0, completed_per_s: 0, events_per_s: 5000 } }
    const st = reduce(initialState(T0, opts), [snapshot([], { stats })], T0, opts)
    expect(st.highTraffic).toBe(true)
  })

  it('fills silent seconds with zero throughput', () => {
    const stats = { ...emptyStats(), rates: { submitted_per_s: 100, completed_per_s: 90, events_per_s: 300 } }
    let st = reduce(initialState(T0, opts), [batch([ev(uuid(1), 'completed', 1)], { stats })], T0 + 10, opts)
    st = tick(st, T0 + 5000, opts)
    const c = st.series.completed
    expect(c[c.length - 5]).toBe(90)
    expect(c.slice(c.length - 4)).toEqual([0, 0, 0, 0])
  })
})

describe('omitted tasks', () => {
  it('counts what the server left out, and forgets it on a snapshot', () => {
    let st = reduce(initialState(T0, opts), [batch([ev(uuid(1), 'active', 1)], { omitted: 7 })], T0, opts)
    expect(st.counters.omitted).toBe(7)
    expect(st.counters.omittedSinceSnapshot).toBe(7)
    st = reduce(st, [snapshot([])], T0 + 100, opts)
    expect(st.counters.omitted).toBe(7)
    expect(st.counters.omittedSinceSnapshot).toBe(0)
  })
})
