// useMeshStream wires the WebSocket, the frame buffer and the reducer into
// one store held by the App. Frames never touch React state directly: they go
// into the FrameBuffer, which flushes them (every flushMs) through the pure
// reducer in a single setState — one commit per flush, whatever the rate.
// With flushMs = 0 it renders per event instead (the performance baseline):
// every task event is its own synchronous commit.

import { useCallback, useEffect, useRef, useState } from 'react'
import { flushSync } from 'react-dom'
import type { Frame } from '../api/types'
import { authToken } from '../lib/token'
import { FrameBuffer, splitPerEvent } from './buffer'
import type { StreamConfig } from './config'
import { initialState, reduce, tick, type MeshState } from './reducer'
import { MeshSocket, meshSocketURL, type ConnStatus, type SocketFactory } from './socket'

/** Counters kept outside React for the perf test and the debug line (never rendered per frame). */
export interface StreamProbe {
  frames: number
  events: number
  flushes: number
}

declare global {
  interface Window {
    __meshStream?: StreamProbe
  }
}

export interface MeshStream {
  state: MeshState
  status: ConnStatus
  reconnectNow: () => void
  /** Reconnect at once to get a fresh snapshot. */
  resync: () => void
}

/** How often an idle store advances its clock (no frames → no other commits). */
export const IDLE_TICK_MS = 1000

export function useMeshStream(cfg: StreamConfig, create?: SocketFactory): MeshStream {
  const [state, setState] = useState<MeshState>(() => initialState(Date.now(), cfg.reducer))
  const [status, setStatus] = useState<ConnStatus>({ kind: 'connecting', attempt: 0, connects: 0 })
  const socketRef = useRef<MeshSocket | null>(null)

  useEffect(() => {
    const opts = cfg.reducer
    const probe: StreamProbe = { frames: 0, events: 0, flushes: 0 }
    if (typeof window !== 'undefined') window.__meshStream = probe
    let lastApply = Date.now()

    const apply = (frames: Frame[]): void => {
      probe.flushes++
      lastApply = Date.now()
      setState((prev) => reduce(prev, frames, lastApply, opts))
    }
    const buffer = new FrameBuffer({ intervalMs: cfg.flushMs, onFlush: apply })

    const onFrame = (frame: Frame): void => {
      probe.frames++
      probe.events += frame.type === 'batch' ? frame.events : 0
      if (cfg.flushMs > 0) {
        buffer.push(frame)
        return
      }
      for (const piece of splitPerEvent(frame)) {
        probe.flushes++
        lastApply = Date.now()
        const at = lastApply
        flushSync(() => setState((prev) => reduce(prev, [piece], at, opts)))
      }
    }

    const socket = new MeshSocket({
      url: () => meshSocketURL(window.location, authToken()),
      onFrame,
      onStatus: setStatus,
      create,
    })
    socketRef.current = socket
    socket.start()

    // Without traffic, advance the clock once a second so charts scroll and
    // rates fall to zero; under traffic the flushes already do it.
    const idle = setInterval(() => {
      const now = Date.now()
      if (now - lastApply < IDLE_TICK_MS) return
      lastApply = now
      setState((prev) => tick(prev, now, opts))
    }, IDLE_TICK_MS)

    return () => {
      clearInterval(idle)
      socket.stop()
      buffer.dispose()
      socketRef.current = null
    }
  }, [cfg, create])

  const reconnectNow = useCallback(() => socketRef.current?.reconnectNow(), [])
  const resync = useCallback(() => socketRef.current?.resync(), [])
  return { state, status, reconnectNow, resync }
}
