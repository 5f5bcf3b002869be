import { describe, expect, it } from 'vitest'
import { backoffDelay, DEFAULT_BACKOFF } from './backoff'

describe('backoffDelay', () => {
  it('grows exponentially up to the cap, with jitter in the upper half', () => {
    const lo = (a: number) => backoffDelay(a, DEFAULT_BACKOFF, () => 0)
    const hi = (a: number) => backoffDelay(a, DEFAULT_BACKOFF, () => 0.999999)
    expect(lo(0)).toBe(250)
    expect(hi(0)).toBe(500)
    expect(lo(1)).toBe(500)
    expect(lo(3)).toBe(2000)
    expect(hi(20)).toBe(DEFAULT_BACKOFF.maxMs)
    expect(lo(20)).toBe(DEFAULT_BACKOFF.maxMs / 2)
  })
})
