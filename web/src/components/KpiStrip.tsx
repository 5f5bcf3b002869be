import { memo, useMemo, type ReactNode } from 'react'
import { ROLES, type Stats } from '../api/types'
import { count, ms, percent, rate } from '../lib/format'
import { ROLE_STYLE } from '../lib/roles'
import { depthOf } from '../stream/stats'
import type { Series } from '../stream/reducer'
import { Sparkline } from './Sparkline'

export interface KpiStripProps {
  stats: Stats
  series: Series
  /** The server has been silent: show zero rates rather than stale ones. */
  idle: boolean
}

function Kpi({ label, children, testId, wide }: { label: string; children: ReactNode; testId?: string; wide?: boolean }) {
  return (
    <div className={`panel flex min-w-0 flex-col gap-1.5 p-3.5 ${wide ? 'col-span-2 sm:col-span-1' : ''}`} data-testid={testId}>
      <div className="label">{label}</div>
      {children}
    </div>
  )
}

function Big({ value, unit }: { value: string; unit?: string }) {
  return (
    <div className="flex items-baseline gap-1">
      <span className="font-mono text-2xl font-semibold tabular-nums tracking-tight text-slate-50">{value}</span>
      {unit && <span className="text-xs text-slate-500">{unit}</span>}
    </div>
  )
}

const LAST_MINUTE = 60

function tail(v: readonly number[], n: number): readonly number[] {
  return v.length > n ? v.slice(v.length - n) : v
}

/** KpiStrip: the header figures — throughput, latency, admission, totals, depth per role. */
export const KpiStrip = memo(function KpiStrip({ stats, series, idle }: KpiStripProps) {
  // Sparklines change once a second (with the series), not with every frame's stats.
  const sparks = useMemo(
    () => ({ completed: tail(series.completed, LAST_MINUTE), events: tail(series.events, LAST_MINUTE), p99: tail(series.p99, LAST_MINUTE), seen: series.events.reduce((a, b) => a + b, 0) }),
    [series],
  )
  const completed = idle ? 0 : stats.rates.completed_per_s
  const submitted = idle ? 0 : stats.rates.submitted_per_s
  const evRate = series.events[series.events.length - 1] ?? 0
  const t = stats.totals
  const decided = t.accepted + t.rejected
  const acceptedShare = decided > 0 ? t.accepted / decided : 1
  return (
    <div className="grid grid-cols-2 gap-3 lg:grid-cols-3 2xl:grid-cols-6">
      <Kpi label="Throughput" testId="kpi-throughput">
        <Big value={rate(completed)} unit="tasks/s" />
        <div className="text-xs text-slate-500">
          submitted <span className="font-mono tabular-nums text-slate-300">{rate(submitted)}</span>/s
        </div>
        <Sparkline values={sparks.completed} stroke="#34d399" label="completed per second, last minute" />
      </Kpi>
      <Kpi label="Events" testId="kpi-events">
        <Big value={rate(evRate)} unit="events/s" />
        <div className="text-xs text-slate-500">
          seen <span className="font-mono tabular-nums text-slate-300">{count(sparks.seen)}</span> in 5 min
        </div>
        <Sparkline values={sparks.events} stroke="#a78bfa" label="events per second, last minute" />
      </Kpi>
      <Kpi label="End-to-end latency" testId="kpi-latency" wide>
        <div className="flex items-baseline gap-3">
          <div>
            <span className="mr-1 text-[11px] text-slate-500">p50</span>
            <span className="font-mono text-xl font-semibold tabular-nums text-slate-50">{ms(stats.latency_ms.p50)}</span>
          </div>
          <div>
            <span className="mr-1 text-[11px] text-slate-500">p99</span>
            <span className="font-mono text-xl font-semibold tabular-nums text-amber-200">{ms(stats.latency_ms.p99)}</span>
          </div>
        </div>
        <div className="text-xs text-slate-500">
          p90 <span className="font-mono tabular-nums text-slate-300">{ms(stats.latency_ms.p90)}</span> · last 10 s
        </div>
        <Sparkline values={sparks.p99} stroke="#fbbf24" label="p99 latency, last minute" />
      </Kpi>
      <Kpi label="Admission" testId="kpi-admission" wide>
        <Big value={count(t.accepted)} unit="accepted" />
        <div className="text-xs text-slate-500">
          <span className={`font-mono tabular-nums ${t.rejected > 0 ? 'text-rose-300' : 'text-slate-300'}`}>{count(t.rejected)}</span> rejected (429/503)
        </div>
        <div className="flex h-2 overflow-hidden rounded-full bg-slate-800" role="img" aria-label={`${percent(acceptedShare, 1)} accepted`}>
          <div className="h-full bg-emerald-500/80" style={{ width: percent(acceptedShare, 2) }} />
          <div className="h-full flex-1 bg-rose-500/80" style={{ display: t.rejected > 0 ? undefined : 'none' }} />
        </div>
        <div className="text-[11px] text-slate-500">{percent(acceptedShare, 2)} of submissions accepted</div>
      </Kpi>
      <Kpi label="Totals" testId="kpi-totals">
        <dl className="grid grid-cols-1 gap-y-0.5 text-xs">
          {(
            [
              ['submitted', t.submitted, 'text-slate-200'],
              ['completed', t.completed, 'text-emerald-300'],
              ['failed', t.failed, 'text-amber-300'],
              ['retried', t.retried, 'text-sky-300'],
              ['dead', t.dead, 'text-rose-300'],
            ] as const
          ).map(([k, v, c]) => (
            <div key={k} className="flex items-baseline justify-between gap-2">
              <dt className="text-slate-500">{k}</dt>
              <dd className={`font-mono tabular-nums ${c}`}>{count(v)}</dd>
            </div>
          ))}
        </dl>
      </Kpi>
      <Kpi label="Queue depth" testId="kpi-depth" wide>
        <table className="w-full text-xs">
          <thead>
            <tr className="text-[10px] text-slate-600">
              <th className="text-left font-normal" scope="col">
                role
              </th>
              <th className="text-right font-normal" scope="col">
                pend
              </th>
              <th className="text-right font-normal" scope="col">
                act
              </th>
              <th className="text-right font-normal" scope="col">
                retry
              </th>
              <th className="text-right font-normal" scope="col">
                dead
              </th>
            </tr>
          </thead>
          <tbody>
            {ROLES.map((r) => {
              const d = depthOf(stats, r)
              return (
                <tr key={r}>
                  <th scope="row" className="py-0.5 text-left font-normal">
                    <span className="flex items-center gap-1.5">
                      <span className={`h-2 w-2 rounded-sm ${ROLE_STYLE[r].dot}`} aria-hidden="true" />
                      <span className={ROLE_STYLE[r].text}>{ROLE_STYLE[r].short}</span>
                      {(stats.admission.roles?.[r] ?? 'open') !== 'open' && (
                        <span className="rounded bg-rose-500/15 px-1 text-[9px] font-semibold text-rose-300 uppercase" title={`admission ${stats.admission.roles?.[r] ?? ''}`}>
                          shed
                        </span>
                      )}
                    </span>
                  </th>
                  <td className="text-right font-mono tabular-nums text-slate-200">{count(d.pending)}</td>
                  <td className="text-right font-mono tabular-nums text-sky-300">{count(d.active)}</td>
                  <td className="text-right font-mono tabular-nums text-amber-300">{count(d.delayed)}</td>
                  <td className="text-right font-mono tabular-nums text-rose-300">{count(d.dead)}</td>
                </tr>
              )
            })}
          </tbody>
        </table>
      </Kpi>
    </div>
  )
})
