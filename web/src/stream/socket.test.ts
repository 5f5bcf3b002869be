import { act, renderHook } from '@testing-library/react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { batch, ev, snapshot, uuid, worker } from '../test/fixtures'
import { fakeSockets } from '../test/fakeSocket'
import { readConfig } from './config'
import { MeshSocket, meshSocketURL, toFrame, type ConnStatus } from './socket'
import { useMeshStream } from './useMeshStream'

beforeEach(() => {
  vi.useFakeTimers()
  vi.setSystemTime(1_800_000_000_000)
})
afterEach(() => vi.useRealTimers())

describe('MeshSocket', () => {
  it('reconnects with growing delays and reports each step', () => {
    const { sockets, create } = fakeSockets()
    const statuses: ConnStatus[] = []
    const s = new MeshSocket({ url: () => 'ws://x/ws', onFrame: () => {}, onStatus: (st) => statuses.push(st), create, random: () => 1 })
    s.start()
    expect(sockets).toHaveLength(1)
    sockets[0]?.open()
    expect(statuses.at(-1)?.kind).toBe('open')
    sockets[0]?.drop()
    expect(statuses.at(-1)).toMatchObject({ kind: 'reconnecting', attempt: 1 })
    vi.advanceTimersByTime(499)
    expect(sockets).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(sockets).toHaveLength(2)
    sockets[1]?.drop()
    vi.advanceTimersByTime(999)
    expect(sockets).toHaveLength(2)
    vi.advanceTimersByTime(1)
    expect(sockets).toHaveLength(3)
    // A successful open resets the backoff.
    sockets[2]?.open()
    sockets[2]?.drop()
    vi.advanceTimersByTime(500)
    expect(sockets).toHaveLength(4)
    s.stop()
    expect(statuses.at(-1)?.kind).toBe('closed')
  })

  it('resyncs: closes the live connection and opens a new one at once', () => {
    const { sockets, create } = fakeSockets()
    const s = new MeshSocket({ url: () => 'ws://x/ws', onFrame: () => {}, onStatus: () => {}, create })
    s.start()
    sockets[0]?.open()
    s.resync()
    expect(sockets[0]?.closed).toBe(true)
    expect(sockets).toHaveLength(2)
    s.stop()
  })

  it('builds the socket URL with the token', () => {
    expect(meshSocketURL({ protocol: 'https:', host: 'mesh:443' }, 'a b')).toBe('wss://mesh:443/ws?token=a%20b')
    expect(meshSocketURL({ protocol: 'http:', host: 'h:8080' }, '')).toBe('ws://h:8080/ws')
  })

  it('normalises frames from a Go server (null slices, missing fields)', () => {
    const f = toFrame({ type: 'batch', seq: 3, stats: { totals: { completed: 5 } }, tasks: null, workers: null, events: 2 })
    expect(f).toMatchObject({ type: 'batch', seq: 3, tasks: [], events: 2, dropped: 0 })
    expect(f && 'workers' in f).toBe(false)
    expect(f?.stats.totals.completed).toBe(5)
    expect(f?.stats.depth.QA).toEqual({ pending: 0, active: 0, delayed: 0, dead: 0 })
    expect(toFrame({ type: 'snapshot', stats: {}, tasks: null, workers: null })).toMatchObject({ tasks: [], workers: [] })
    expect(toFrame({ type: 'other' })).toBeNull()
    expect(toFrame('x')).toBeNull()
  })
})

describe('useMeshStream', () => {
  it('batches frames into one commit per interval', () => {
    const { sockets, create } = fakeSockets()
    const cfg = readConfig('?flush=100')
    let renders = 0
    const { result } = renderHook(() => {
      renders++
      return useMeshStream(cfg, create)
    })
    act(() => {
      sockets[0]?.open()
      sockets[0]?.send(snapshot([]))
    })
    act(() => vi.advanceTimersByTime(100))
    const before = renders
    act(() => {
      for (let i = 0; i < 500; i++) sockets[0]?.send(batch([ev(uuid(i), 'pending', i + 1)]))
    })
    expect(renders).toBe(before) // buffered, not rendered
    act(() => vi.advanceTimersByTime(100))
    expect(renders).toBe(before + 1)
    expect(result.current.state.columns.pending.size).toBe(200)
    expect(result.current.state.counters.byState.pending).toBe(500)
  })

  it('replaces the state with the snapshot after a reconnect', () => {
    const { sockets, create } = fakeSockets()
    const cfg = readConfig('')
    const { result } = renderHook(() => useMeshStream(cfg, create))
    act(() => {
      sockets[0]?.open()
      sockets[0]?.send(snapshot([ev(uuid(1), 'active', 1)], { workers: [worker('w-1')] }))
      sockets[0]?.send(batch([ev(uuid(2), 'pending', 2)]))
      vi.advanceTimersByTime(100)
    })
    expect(result.current.state.columns.active.has(uuid(1))).toBe(true)
    expect(result.current.status.kind).toBe('open')

    act(() => sockets[0]?.drop())
    expect(result.current.status.kind).toBe('reconnecting')
    act(() => vi.advanceTimersByTime(15_000))
    expect(sockets.length).toBeGreaterThanOrEqual(2)
    act(() => {
      const s = sockets.at(-1)
      s?.open()
      s?.send(snapshot([ev(uuid(9), 'completed', 9)], { workers: [worker('w-2')] }))
      vi.advanceTimersByTime(100)
    })
    const st = result.current.state
    expect(result.current.status).toMatchObject({ kind: 'open', connects: 2 })
    expect(st.columns.active.size).toBe(0)
    expect(st.columns.pending.size).toBe(0)
    expect(Array.from(st.columns.completed.keys())).toEqual([uuid(9)])
    expect(st.workers.map((w) => w.id)).toEqual(['w-2'])
    expect(st.counters.snapshots).toBe(2)
  })

  it('renders per event in the baseline mode (flush=0)', () => {
    const { sockets, create } = fakeSockets()
    const cfg = readConfig('?flush=0')
    let renders = 0
    renderHook(() => {
      renders++
      return useMeshStream(cfg, create)
    })
    act(() => {
      sockets[0]?.open()
      sockets[0]?.send(snapshot([]))
    })
    const before = renders
    act(() => sockets[0]?.send(batch([ev(uuid(1), 'pending', 1), ev(uuid(2), 'pending', 1), ev(uuid(3), 'pending', 1)])))
    expect(renders - before).toBe(3)
  })
})
