import { memo, useMemo } from 'react'

export interface SparklineProps {
  values: readonly number[]
  stroke: string
  /** Fill the area under the line with a faint wash of the stroke colour. */
  area?: boolean
  /** Fixed top of the scale; defaults to the maximum of the values. */
  max?: number
  height?: number
  className?: string
  label?: string
}

const W = 100

/** pathFor turns values into an SVG path across a 100 × h box (pure, tested). */
export function pathFor(values: readonly number[], h: number, max?: number): string {
  const n = values.length
  if (n === 0) return ''
  let top = max ?? 0
  if (max === undefined) for (const v of values) if (v > top) top = v
  if (top <= 0) top = 1
  const step = n > 1 ? W / (n - 1) : 0
  let d = ''
  for (let i = 0; i < n; i++) {
    const v = values[i] ?? 0
    const y = h - (Math.min(Math.max(v, 0), top) / top) * (h - 1) - 0.5
    d += `${i === 0 ? 'M' : 'L'}${(i * step).toFixed(2)} ${y.toFixed(2)}`
  }
  return d
}

/** Sparkline is a hand-rolled SVG line: one path, no per-point nodes. */
export const Sparkline = memo(function Sparkline({ values, stroke, area = true, max, height = 32, className, label }: SparklineProps) {
  const d = useMemo(() => pathFor(values, height, max), [values, height, max])
  return (
    <svg
      viewBox={`0 0 ${W} ${height}`}
      preserveAspectRatio="none"
      className={className ?? 'h-8 w-full'}
      role="img"
      aria-label={label}
    >
      {area && d !== '' && <path d={`${d}L${W} ${height}L0 ${height}Z`} fill={stroke} fillOpacity={0.12} stroke="none" />}
      {d !== '' && <path d={d} fill="none" stroke={stroke} strokeWidth={1.5} vectorEffect="non-scaling-stroke" strokeLinejoin="round" />}
    </svg>
  )
})
