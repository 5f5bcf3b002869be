// Dashboard settings read from the page URL, so a test (or an operator) can
// change them without a rebuild:
//   ?flush=100   ms between store flushes; 0 = per-event rendering baseline
//   ?htm=400     events/s that switch the board to High Traffic Mode
//   ?cap=200     tasks kept per column
//   ?visible=30  cards rendered per column
//   ?token=…     bearer token (remembered in localStorage)

import { DEFAULT_FLUSH_MS } from './buffer'
import { DEFAULT_REDUCER_OPTIONS, type ReducerOptions } from './reducer'

export interface StreamConfig {
  flushMs: number
  reducer: ReducerOptions
  visiblePerColumn: number
}

export const DEFAULT_VISIBLE = 30

function intParam(q: URLSearchParams, name: string, def: number, min: number, max: number): number {
  const raw = q.get(name)
  if (raw === null || raw.trim() === '') return def
  const n = Number(raw)
  if (!Number.isFinite(n)) return def
  return Math.min(max, Math.max(min, Math.round(n)))
}

export function readConfig(search: string): StreamConfig {
  const q = new URLSearchParams(search)
  return {
    flushMs: intParam(q, 'flush', DEFAULT_FLUSH_MS, 0, 10_000),
    reducer: {
      cap: intParam(q, 'cap', DEFAULT_REDUCER_OPTIONS.cap, 10, 5_000),
      highTrafficAt: intParam(q, 'htm', DEFAULT_REDUCER_OPTIONS.highTrafficAt, 1, 10_000_000),
      seriesLen: DEFAULT_REDUCER_OPTIONS.seriesLen,
    },
    visiblePerColumn: intParam(q, 'visible', DEFAULT_VISIBLE, 1, 500),
  }
}
