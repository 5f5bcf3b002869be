// Number and time formatting shared by the components.

const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 })
const plain = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

/** count renders 1234 as "1,234" and big numbers compactly ("1.2M"). */
export function count(n: number): string {
  if (!Number.isFinite(n)) return '—'
  return Math.abs(n) >= 100_000 ? compact.format(n) : plain.format(n)
}

/** rate renders a per-second figure with one decimal below 10. */
export function rate(n: number): string {
  if (!Number.isFinite(n)) return '—'
  if (n >= 10_000) return compact.format(n)
  if (n >= 10) return plain.format(n)
  return n.toFixed(1)
}

/** ms renders milliseconds, switching to seconds above 1 s. */
export function ms(n: number): string {
  if (!Number.isFinite(n) || n <= 0) return '—'
  if (n < 1) return `${(n * 1000).toFixed(0)} µs`
  if (n < 10) return `${n.toFixed(1)} ms`
  if (n < 1000) return `${n.toFixed(0)} ms`
  if (n < 60_000) return `${(n / 1000).toFixed(n < 10_000 ? 2 : 1)} s`
  return `${(n / 60_000).toFixed(1)} min`
}

export function bytes(n: number): string {
  if (!Number.isFinite(n) || n <= 0) return '0 B'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  const whole = v >= 100 || i === 0 || Math.abs(v - Math.round(v)) < 0.05
  return `${v.toFixed(whole ? 0 : 1)} ${units[i] ?? 'B'}`
}

export function percent(ratio: number, digits = 0): string {
  if (!Number.isFinite(ratio)) return '—'
  return `${(ratio * 100).toFixed(digits)}%`
}

/**
 * shortId is the last 8 hex digits of a UUID: enough to tell cards apart.
 * Not the first block: the mesh's ids are time-ordered (UUIDv7), so tasks
 * created in the same minute share their leading digits.
 */
export function shortId(id: string): string {
  return id.length > 8 ? id.slice(-8) : id
}

/** ago renders the time from `then` to `now` (both ms) as "3s", "4m", "2h". */
export function ago(thenMs: number, nowMs: number): string {
  const d = Math.max(0, nowMs - thenMs)
  if (d < 1000) return 'now'
  if (d < 60_000) return `${Math.floor(d / 1000)}s`
  if (d < 3_600_000) return `${Math.floor(d / 60_000)}m`
  if (d < 86_400_000) return `${Math.floor(d / 3_600_000)}h`
  return `${Math.floor(d / 86_400_000)}d`
}

/** duration between two ms instants, or '—'. */
export function between(fromMs: number | undefined, toMs: number | undefined): string {
  if (fromMs === undefined || toMs === undefined) return '—'
  return ms(toMs - fromMs)
}

/** clock renders an instant as local HH:MM:SS.mmm. */
export function clock(msTime: number): string {
  const d = new Date(msTime)
  const p = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
}

/** parseTime turns an RFC 3339 string into ms, or undefined. */
export function parseTime(s: string | undefined): number | undefined {
  if (!s) return undefined
  const t = Date.parse(s)
  return Number.isNaN(t) || t <= 0 ? undefined : t
}
