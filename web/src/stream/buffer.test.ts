import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Frame } from '../api/types'
import { batch, ev, snapshot, uuid } from '../test/fixtures'
import { FrameBuffer, splitPerEvent } from './buffer'
import { initialState, reduce } from './reducer'

beforeEach(() => {
  vi.useFakeTimers()
  vi.setSystemTime(1_800_000_000_000)
})
afterEach(() => vi.useRealTimers())

describe('FrameBuffer', () => {
  it('flushes at most 10 times per second at 5,000 events/s, losing nothing', () => {
    const flushed: Frame[][] = []
    const buf = new FrameBuffer({ intervalMs: 100, onFlush: (f) => flushed.push(f) })
    // 5,000 events/s for 3 s, as one frame per event (the worst case: no server batching).
    let id = 0
    for (let ms = 0; ms < 3000; ms++) {
      for (let k = 0; k < 5; k++) {
        buf.push(batch([ev(uuid(id), 'completed', id + 1)]))
        id++
      }
      vi.advanceTimersByTime(1)
    }
    vi.advanceTimersByTime(200)
    expect(id).toBe(15_000)
    expect(flushed.length).toBeLessThanOrEqual(31)
    expect(flushed.length).toBeGreaterThanOrEqual(29)
    // Per one-second window: ≤ 10 flushes.
    expect(buf.flushes).toBe(flushed.length)
    const delivered = flushed.reduce((a, f) => a + f.length, 0)
    expect(delivered).toBe(15_000)
    // And all of them reach the store.
    const st = flushed.reduce((s, f, i) => reduce(s, f, 1_800_000_000_000 + i * 100, { cap: 20_000, highTrafficAt: 1e9, seriesLen: 60 }), initialState(1_800_000_000_000))
    expect(st.counters.byState.completed).toBe(15_000)
    expect(st.columns.completed.size).toBe(15_000)
  })

  it('never flushes more than once per interval, in any one-second window', () => {
    const times: number[] = []
    const buf = new FrameBuffer({ intervalMs: 100, onFlush: () => times.push(Date.now()) })
    for (let ms = 0; ms < 5000; ms += 3) {
      buf.push(batch([ev(uuid(ms), 'pending', ms + 1)]))
      vi.advanceTimersByTime(3)
    }
    for (let i = 1; i < times.length; i++) expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual(100)
    for (const t of times) expect(times.filter((u) => u >= t && u < t + 1000).length).toBeLessThanOrEqual(10)
  })

  it('flushes promptly after a quiet period', () => {
    const flushed: Frame[][] = []
    const buf = new FrameBuffer({ intervalMs: 100, onFlush: (f) => flushed.push(f) })
    vi.advanceTimersByTime(5000)
    buf.push(batch([ev(uuid(1), 'pending', 1)]))
    vi.advanceTimersByTime(0)
    expect(flushed.length).toBe(1)
  })

  it('keeps frames in order and drops those before a snapshot', () => {
    const flushed: Frame[][] = []
    const buf = new FrameBuffer({ intervalMs: 100, onFlush: (f) => flushed.push(f) })
    buf.flush()
    const a = batch([ev(uuid(1), 'pending', 1)])
    const s = snapshot([ev(uuid(2), 'active', 2)])
    const b = batch([ev(uuid(3), 'active', 3)])
    const c = batch([ev(uuid(4), 'active', 4)])
    buf.push(a)
    buf.push(s)
    buf.push(b)
    buf.push(c)
    vi.advanceTimersByTime(100)
    expect(flushed).toEqual([[s, b, c]])
  })

  it('flushes at once when the buffer holds too many events (throttled timers)', () => {
    const flushed: Frame[][] = []
    const buf = new FrameBuffer({ intervalMs: 100, maxEvents: 10, onFlush: (f) => flushed.push(f) })
    buf.flush()
    for (let i = 0; i < 10; i++) buf.push(batch([ev(uuid(i), 'pending', i + 1)]))
    expect(flushed.length).toBe(1)
    expect(buf.size).toBe(0)
  })

  it('dispose drops the timer and the frames', () => {
    const onFlush = vi.fn()
    const buf = new FrameBuffer({ intervalMs: 100, onFlush })
    buf.push(batch([ev(uuid(1), 'pending', 1)]))
    buf.dispose()
    vi.advanceTimersByTime(1000)
    expect(onFlush).toHaveBeenCalledTimes(0)
  })
})

describe('splitPerEvent', () => {
  it('splits a batch into one frame per event, counting events once', () => {
    const f = batch([ev(uuid(1), 'pending', 1), ev(uuid(2), 'pending', 1), ev(uuid(3), 'pending', 1)], { events: 9 })
    const parts = splitPerEvent(f)
    expect(parts).toHaveLength(3)
    expect(parts.map((p) => p.tasks[0]?.id)).toEqual([uuid(1), uuid(2), uuid(3)])
    expect(parts.reduce((a, p) => a + (p.type === 'batch' ? p.events : 0), 0)).toBe(9)
  })
})
