import { memo } from 'react'
import type { TaskEvent } from '../api/types'
import { ago, shortId } from '../lib/format'
import { ROLE_STYLE } from '../lib/roles'

export interface TaskCardProps {
  ev: TaskEvent
  nowMs: number
  onOpen: (id: string) => void
}

/** TaskCard: one task, coloured by role. A button: Tab to it, Enter opens the detail. */
export const TaskCard = memo(function TaskCard({ ev, nowMs, onOpen }: TaskCardProps) {
  const rs = ROLE_STYLE[ev.role] ?? ROLE_STYLE.ARCHITECT
  const attempts = ev.attempts ?? 0
  return (
    <li className="card-in">
      <button
        type="button"
        onClick={() => onOpen(ev.id)}
        className={`group w-full rounded-md border border-l-[3px] border-slate-800 ${rs.border} bg-slate-900/90 px-2.5 py-2 text-left transition-colors hover:border-slate-700 hover:bg-slate-800/80 focus-ring`}
        data-testid="task-card"
        data-task-id={ev.id}
        data-state={ev.state}
        aria-label={`${rs.label} task ${ev.id}, ${ev.state}`}
      >
        <div className="flex items-center justify-between gap-2">
          <span className="flex min-w-0 items-center gap-1.5">
            <span className={`rounded px-1 py-px text-[10px] font-semibold ring-1 ${rs.chip}`}>{rs.short}</span>
            <span className="truncate font-mono text-xs text-slate-200">{shortId(ev.id)}</span>
          </span>
          <span className={`font-mono text-[10px] ${ev.priority === 0 ? 'text-rose-300' : ev.priority === 1 ? 'text-amber-300' : 'text-slate-500'}`}>P{ev.priority}</span>
        </div>
        <div className="mt-1 flex items-center justify-between gap-2 text-[11px] text-slate-500">
          <span className="truncate">
            {ev.stage ? `stage ${ev.stage} · ` : ''}
            {attempts > 0 ? `try ${attempts}` : 'queued'}
            {ev.worker_id ? ` · ${ev.worker_id.length > 14 ? ev.worker_id.slice(-14) : ev.worker_id}` : ''}
          </span>
          <span className="shrink-0 font-mono tabular-nums">{ago(ev.at_us / 1000, nowMs)}</span>
        </div>
        {ev.error && <div className="mt-1 truncate text-[11px] text-rose-300/90">{ev.error}</div>}
      </button>
    </li>
  )
})
