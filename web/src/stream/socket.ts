// MeshSocket keeps one WebSocket to the mesh open: it reconnects with
// exponential backoff and jitter, reports its status, and hands every decoded
// frame to onFrame. It holds no dashboard state: each (re)connect begins with a
// snapshot frame that replaces whatever the store had.

import type { BatchFrame, Frame, TaskEvent, WorkerInfo } from '../api/types'
import { isRecord, normalizeStats, num } from './stats'
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff'

export type ConnKind = 'connecting' | 'open' | 'reconnecting' | 'closed'

export interface ConnStatus {
  kind: ConnKind
  /** Consecutive failed attempts (0 while open). */
  attempt: number
  /** When kind is 'reconnecting': the wall-clock ms of the next attempt. */
  retryAt?: number
  /** Why the last connection ended, when known. */
  reason?: string
  /** How many times a connection was established. */
  connects: number
}

/** The part of the WebSocket API the client uses (tests pass a fake). */
export interface SocketLike {
  onopen: ((ev: Event) => void) | null
  onmessage: ((ev: MessageEvent) => void) | null
  onclose: ((ev: CloseEvent) => void) | null
  onerror: ((ev: Event) => void) | null
  close(code?: number, reason?: string): void
}

export type SocketFactory = (url: string) => SocketLike

export interface MeshSocketOptions {
  url: () => string
  onFrame: (frame: Frame) => void
  onStatus: (status: ConnStatus) => void
  backoff?: BackoffOptions
  create?: SocketFactory
  random?: () => number
  now?: () => number
}

/**
 * toFrame checks a decoded message and normalises it: a Go server encodes an
 * empty slice as null, so `tasks` and `workers` become arrays (a batch without
 * heartbeat changes has no workers at all), and missing stats fields become
 * zeros. Anything that is not a frame → null.
 */
export function toFrame(v: unknown): Frame | null {
  if (!isRecord(v)) return null
  const stats = normalizeStats(v.stats)
  const tasks = Array.isArray(v.tasks) ? (v.tasks as TaskEvent[]) : []
  if (v.type === 'snapshot') {
    const workers = Array.isArray(v.workers) ? (v.workers as WorkerInfo[]) : []
    return { type: 'snapshot', stats, workers, tasks }
  }
  if (v.type === 'batch') {
    const frame: BatchFrame = {
      type: 'batch',
      seq: num(v.seq),
      stats,
      tasks,
      events: typeof v.events === 'number' ? v.events : tasks.length,
      dropped: num(v.dropped),
    }
    if (num(v.omitted) > 0) frame.omitted = num(v.omitted)
    if (Array.isArray(v.workers)) frame.workers = v.workers as WorkerInfo[]
    return frame
  }
  return null
}

export class MeshSocket {
  private ws: SocketLike | null = null
  private timer: ReturnType<typeof setTimeout> | null = null
  private attempt = 0
  private connects = 0
  private stopped = true
  private readonly opts: MeshSocketOptions

  constructor(opts: MeshSocketOptions) {
    this.opts = opts
  }

  /** start opens the connection (idempotent). */
  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.open()
  }

  /** stop closes the connection and cancels any pending reconnect. */
  stop(): void {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    const ws = this.ws
    this.ws = null
    if (ws) {
      ws.onclose = null
      ws.onmessage = null
      ws.onerror = null
      ws.onopen = null
      ws.close(1000, 'client stopped')
    }
    this.emit({ kind: 'closed', attempt: this.attempt, connects: this.connects })
  }

  /**
   * resync drops the connection and opens a new one at once, so the next
   * snapshot replaces state the client may have got wrong (frames the
   * server had to omit).
   */
  resync(): void {
    if (this.stopped) return
    const ws = this.ws
    this.ws = null
    if (ws) {
      ws.onclose = null
      ws.onmessage = null
      ws.onerror = null
      ws.onopen = null
      ws.close(1000, 'resync')
    }
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.open()
  }

  /** reconnectNow skips the remaining backoff wait. */
  reconnectNow(): void {
    if (this.stopped || this.ws !== null) return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.open()
  }

  private emit(s: ConnStatus): void {
    this.opts.onStatus(s)
  }

  private open(): void {
    this.emit({ kind: 'connecting', attempt: this.attempt, connects: this.connects })
    const create = this.opts.create ?? ((url: string) => new WebSocket(url))
    let ws: SocketLike
    try {
      ws = create(this.opts.url())
    } catch (err) {
      this.scheduleReconnect(err instanceof Error ? err.message : 'cannot open WebSocket')
      return
    }
    this.ws = ws
    ws.onopen = () => {
      this.attempt = 0
      this.connects++
      this.emit({ kind: 'open', attempt: 0, connects: this.connects })
    }
    ws.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data !== 'string') return
      let decoded: unknown
      try {
        decoded = JSON.parse(ev.data)
      } catch {
        return
      }
      const frame = toFrame(decoded)
      if (frame) this.opts.onFrame(frame)
    }
    ws.onerror = () => {
      // onclose follows and carries the decision.
    }
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return
      this.ws = null
      const reason = ev.reason || (ev.code ? `closed (${ev.code})` : 'connection lost')
      this.scheduleReconnect(reason)
    }
  }

  private scheduleReconnect(reason: string): void {
    if (this.stopped) return
    const delay = backoffDelay(this.attempt, this.opts.backoff ?? DEFAULT_BACKOFF, this.opts.random)
    this.attempt++
    const now = this.opts.now ?? Date.now
    this.emit({ kind: 'reconnecting', attempt: this.attempt, retryAt: now() + delay, reason, connects: this.connects })
    this.timer = setTimeout(() => {
      this.timer = null
      this.open()
    }, delay)
  }
}

/** meshSocketURL is the dashboard's WebSocket address, with the token when one is set. */
export function meshSocketURL(loc: Pick<Location, 'protocol' | 'host'>, token: string): string {
  const scheme = loc.protocol === 'https:' ? 'wss' : 'ws'
  const q = token ? `?token=${encodeURIComponent(token)}` : ''
  return `${scheme}://${loc.host}/ws${q}`
}
