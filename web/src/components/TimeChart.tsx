import { memo, useMemo } from 'react'
import { pathFor } from './Sparkline'

export interface ChartSeries {
  name: string
  values: readonly number[]
  stroke: string
  format: (v: number) => string
  area?: boolean
}

export interface TimeChartProps {
  title: string
  series: readonly ChartSeries[]
  /** Seconds the x axis covers (the series length). */
  seconds: number
  /** Formats the axis maximum. */
  axis: (v: number) => string
}

const H = 120

function niceMax(v: number): number {
  if (v <= 0) return 1
  const p = Math.pow(10, Math.floor(Math.log10(v)))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

/** TimeChart draws a few series over the last minutes: one path each, shared scale. */
export const TimeChart = memo(function TimeChart({ title, series, seconds, axis }: TimeChartProps) {
  const top = useMemo(() => {
    let m = 0
    for (const s of series) for (const v of s.values) if (v > m) m = v
    return niceMax(m)
  }, [series])
  const paths = useMemo(() => series.map((s) => pathFor(s.values, H, top)), [series, top])
  const minutes = Math.round(seconds / 60)
  return (
    <section className="panel flex h-full flex-col p-4" aria-label={title}>
      <div className="mb-3 flex flex-wrap items-baseline justify-between gap-x-4 gap-y-1">
        <h2 className="text-sm font-semibold text-slate-200">{title}</h2>
        <div className="flex flex-wrap gap-x-4 gap-y-1">
          {series.map((s) => (
            <span key={s.name} className="flex items-center gap-1.5 text-xs text-slate-400">
              <span className="h-0.5 w-3 rounded" style={{ background: s.stroke }} />
              {s.name}
              <span className="font-mono tabular-nums text-slate-200">{s.format(s.values[s.values.length - 1] ?? 0)}</span>
            </span>
          ))}
        </div>
      </div>
      <div className="relative mt-auto">
        <div className="pointer-events-none absolute inset-0 flex flex-col justify-between">
          {[0, 1, 2, 3].map((i) => (
            <div key={i} className="border-t border-dashed border-slate-800" />
          ))}
        </div>
        <svg viewBox={`0 0 100 ${H}`} preserveAspectRatio="none" className="relative h-44 w-full" role="img" aria-label={`${title} over the last ${minutes} minutes`}>
          {paths.map((d, i) => {
            const s = series[i]
            if (!s || d === '') return null
            return (
              <g key={s.name}>
                {s.area && <path d={`${d}L100 ${H}L0 ${H}Z`} fill={s.stroke} fillOpacity={0.1} />}
                <path d={d} fill="none" stroke={s.stroke} strokeWidth={1.6} vectorEffect="non-scaling-stroke" strokeLinejoin="round" />
              </g>
            )
          })}
        </svg>
        <span className="absolute top-0 right-0 -translate-y-1/2 rounded bg-slate-900 px-1 font-mono text-[10px] text-slate-500">{axis(top)}</span>
      </div>
      <div className="mt-1 flex justify-between font-mono text-[10px] text-slate-600">
        <span>−{minutes}m</span>
        <span>−{Math.round(minutes / 2)}m</span>
        <span>now</span>
      </div>
    </section>
  )
})
