import { describe, expect, it } from 'vitest'
import { readConfig } from './config'

describe('readConfig', () => {
  it('reads the flush interval, thresholds and caps from the URL, clamped', () => {
    expect(readConfig('')).toMatchObject({ flushMs: 100, visiblePerColumn: 30, reducer: { cap: 200, highTrafficAt: 400 } })
    expect(readConfig('?flush=0').flushMs).toBe(0)
    expect(readConfig('?flush=250&htm=1000&cap=50&visible=10')).toMatchObject({ flushMs: 250, visiblePerColumn: 10, reducer: { cap: 50, highTrafficAt: 1000 } })
    expect(readConfig('?flush=-5').flushMs).toBe(0)
    expect(readConfig('?cap=1').reducer.cap).toBe(10)
    expect(readConfig('?flush=abc').flushMs).toBe(100)
  })
})
