import { memo } from 'react'
import type { WorkerInfo } from '../api/types'
import { ago, bytes, percent } from '../lib/format'
import { ROLE_STYLE } from '../lib/roles'

export interface WorkersPanelProps {
  workers: readonly WorkerInfo[]
  nowMs: number
  /** Rows rendered at most. Defaults to 24. */
  max?: number
}

function healthColour(score: number): string {
  if (score >= 0.5) return 'bg-emerald-500'
  if (score >= 0.2) return 'bg-amber-500'
  return 'bg-rose-500'
}

function Bar({ ratio, colour, mark, label }: { ratio: number; colour: string; mark?: number; label: string }) {
  const w = Math.max(0, Math.min(1, ratio))
  return (
    <div className="relative h-1.5 overflow-hidden rounded-full bg-slate-800" role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(w * 100)}>
      <div className={`h-full rounded-full ${colour}`} style={{ width: `${w * 100}%` }} />
      {mark !== undefined && mark > 0 && mark < 1 && <div className="absolute top-0 h-full w-px bg-amber-300/80" style={{ left: `${mark * 100}%` }} aria-hidden="true" />}
    </div>
  )
}

function WorkerRow({ w, nowMs }: { w: WorkerInfo; nowMs: number }) {
  const rssRatio = w.limit_bytes > 0 ? w.rss_bytes / w.limit_bytes : 0
  const soft = w.limit_bytes > 0 ? w.soft_limit_bytes / w.limit_bytes : undefined
  const seen = Date.parse(w.seen_at)
  return (
    <li className="rounded-lg border border-slate-800/80 bg-slate-950/40 p-2.5" data-testid="worker">
      <div className="flex items-center justify-between gap-2">
        <div className="flex min-w-0 items-center gap-1.5">
          <span className="truncate font-mono text-xs text-slate-200" title={w.id}>
            {w.id}
          </span>
          {w.paused && (
            <span className="shrink-0 rounded bg-amber-500/15 px-1.5 py-px text-[10px] font-semibold text-amber-300 ring-1 ring-amber-500/30" title="Paused by backpressure">
              PAUSED
            </span>
          )}
        </div>
        <div className="flex shrink-0 gap-1">
          {w.roles.map((r) => (
            <span key={r} className={`rounded px-1 py-px text-[10px] font-semibold ring-1 ${ROLE_STYLE[r]?.chip ?? ''}`}>
              {ROLE_STYLE[r]?.short ?? r}
            </span>
          ))}
        </div>
      </div>
      <div className="mt-2 grid grid-cols-2 gap-x-4 gap-y-1.5 text-[11px]">
        <div className="col-span-2">
          <div className="mb-0.5 flex justify-between text-slate-500">
            <span>RSS</span>
            <span className="font-mono tabular-nums text-slate-300">
              {bytes(w.rss_bytes)}
              <span className="text-slate-600"> / {bytes(w.limit_bytes)}</span>
            </span>
          </div>
          <Bar ratio={rssRatio} colour={rssRatio > (soft ?? 0.8) ? 'bg-amber-500' : 'bg-sky-500'} mark={soft} label={`RSS ${percent(rssRatio)} of limit`} />
        </div>
        <div className="col-span-2">
          <div className="mb-0.5 flex justify-between text-slate-500">
            <span>HealthScore</span>
            <span className="font-mono tabular-nums text-slate-300">{w.health_score.toFixed(2)}</span>
          </div>
          <Bar ratio={w.health_score} colour={healthColour(w.health_score)} label={`HealthScore ${w.health_score.toFixed(2)}`} />
        </div>
        <div className="flex justify-between text-slate-500">
          <span>CPU</span>
          <span className="font-mono tabular-nums text-slate-300">{w.cpu_percent.toFixed(0)}%</span>
        </div>
        <div className="flex justify-between text-slate-500">
          <span>In flight</span>
          <span className="font-mono tabular-nums text-slate-300">{w.inflight}</span>
        </div>
      </div>
      <div className="mt-1.5 flex justify-between text-[10px] text-slate-600">
        <span>{w.version || 'dev'}</span>
        <span>seen {Number.isNaN(seen) ? '—' : ago(seen, nowMs)} ago</span>
      </div>
    </li>
  )
}

/** WorkersPanel: every worker's roles, memory, HealthScore, CPU, in-flight work and backpressure. */
export const WorkersPanel = memo(function WorkersPanel({ workers, nowMs, max = 24 }: WorkersPanelProps) {
  const sorted = [...workers].sort((a, b) => a.id.localeCompare(b.id))
  const shown = sorted.slice(0, max)
  const paused = workers.filter((w) => w.paused).length
  const inflight = workers.reduce((a, w) => a + w.inflight, 0)
  return (
    <section className="panel flex min-h-0 flex-col p-4" aria-label="Workers">
      <div className="mb-3 flex items-baseline justify-between">
        <h2 className="text-sm font-semibold text-slate-200">
          Workers <span className="ml-1 font-mono text-xs text-slate-500">{workers.length}</span>
        </h2>
        <span className="text-[11px] text-slate-500">
          {inflight} in flight{paused > 0 ? <span className="text-amber-300"> · {paused} paused</span> : null}
        </span>
      </div>
      {shown.length === 0 ? (
        <p className="py-6 text-center text-xs text-slate-600">No worker heartbeats yet</p>
      ) : (
        <ul className="scroll-thin grid max-h-[30rem] grid-cols-[repeat(auto-fill,minmax(17rem,1fr))] gap-2 overflow-y-auto">
          {shown.map((w) => (
            <WorkerRow key={w.id} w={w} nowMs={nowMs} />
          ))}
        </ul>
      )}
      {sorted.length > shown.length && <p className="mt-2 text-center text-[11px] text-slate-500">+{sorted.length - shown.length} more</p>}
    </section>
  )
})
