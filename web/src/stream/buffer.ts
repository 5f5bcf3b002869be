// FrameBuffer sits between the WebSocket and the store. Frames land in a
// plain array (never React state), and are handed over in one flush at most
// once per interval: the number of React commits is bounded by the interval,
// not by the event rate. A snapshot discards what was buffered before it,
// since it replaces the state those frames would have changed.

import type { Frame } from '../api/types'

export interface FrameBufferOptions {
  /** Minimum time between two flushes. Defaults to 100 ms. */
  intervalMs?: number
  /**
   * Flush at once, whatever the interval, when this many task events are
   * buffered: bounds memory when timers are throttled (a hidden tab).
   * Defaults to 50,000.
   */
  maxEvents?: number
  /** Receives every buffered frame, oldest first, in one call. */
  onFlush: (frames: Frame[]) => void
  now?: () => number
}

export const DEFAULT_FLUSH_MS = 100
export const DEFAULT_MAX_BUFFERED_EVENTS = 50_000

export class FrameBuffer {
  private frames: Frame[] = []
  private events = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private lastFlush = Number.NEGATIVE_INFINITY
  private readonly intervalMs: number
  private readonly maxEvents: number
  private readonly onFlush: (frames: Frame[]) => void
  private readonly now: () => number
  /** How many flushes ran (for tests and the debug overlay). */
  flushes = 0

  constructor(opts: FrameBufferOptions) {
    this.intervalMs = opts.intervalMs ?? DEFAULT_FLUSH_MS
    this.maxEvents = opts.maxEvents ?? DEFAULT_MAX_BUFFERED_EVENTS
    this.onFlush = opts.onFlush
    this.now = opts.now ?? Date.now
  }

  /** size is the number of frames waiting. */
  get size(): number {
    return this.frames.length
  }

  push(frame: Frame): void {
    if (frame.type === 'snapshot') {
      this.frames = [frame]
      this.events = frame.tasks.length
    } else {
      this.frames.push(frame)
      this.events += frame.tasks.length
    }
    if (this.events >= this.maxEvents) {
      this.flush()
      return
    }
    this.schedule()
  }

  /** flush hands everything buffered to onFlush now. */
  flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer)
      this.timer = null
    }
    if (this.frames.length === 0) return
    const out = this.frames
    this.frames = []
    this.events = 0
    this.lastFlush = this.now()
    this.flushes++
    this.onFlush(out)
  }

  /** dispose drops the buffer and its timer. */
  dispose(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.frames = []
    this.events = 0
  }

  private schedule(): void {
    if (this.timer !== null) return
    const wait = Math.max(0, this.lastFlush + this.intervalMs - this.now())
    this.timer = setTimeout(() => {
      this.timer = null
      this.flush()
    }, wait)
  }
}

/**
 * splitPerEvent turns one frame into one frame per task event: the
 * "per-event rendering" baseline the performance test compares against.
 * Frame-level fields (stats, workers, counters) ride on the first piece.
 */
export function splitPerEvent(frame: Frame): Frame[] {
  if (frame.type === 'snapshot' || (frame.tasks.length) <= 1) return [frame]
  return frame.tasks.map((ev, i) =>
    i === 0
      ? { ...frame, tasks: [ev] }
      : { type: 'batch', seq: frame.seq, stats: frame.stats, tasks: [ev], events: 0, dropped: frame.dropped },
  )
}
