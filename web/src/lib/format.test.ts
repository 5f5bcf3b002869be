import { describe, expect, it } from 'vitest'
import { ago, bytes, count, ms, rate, shortId } from './format'

describe('format', () => {
  it('renders counts, rates, durations and sizes for humans', () => {
    expect(count(1234)).toBe('1,234')
    expect(count(1_234_567)).toBe('1.2M')
    expect(rate(4.25)).toBe('4.3')
    expect(rate(742.4)).toBe('742')
    expect(ms(0)).toBe('—')
    expect(ms(0.25)).toBe('250 µs')
    expect(ms(8.66)).toBe('8.7 ms')
    expect(ms(1500)).toBe('1.50 s')
    expect(bytes(64 << 20)).toBe('64 MiB')
    expect(bytes(1.5 * 1024)).toBe('1.5 KiB')
    expect(shortId('019abcde-1111-7222-8333-444455556666')).toBe('55556666')
    expect(ago(0, 500)).toBe('now')
    expect(ago(0, 65_000)).toBe('1m')
  })
})
