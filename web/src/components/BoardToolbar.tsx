import { memo } from 'react'
import { ROLES, PRIORITIES, type Priority, type Role } from '../api/types'
import { ROLE_STYLE } from '../lib/roles'
import type { BoardFilter } from './Board'

export type ViewMode = 'auto' | 'cards' | 'aggregate'

export interface BoardToolbarProps {
  filter: BoardFilter
  onFilter: (f: BoardFilter) => void
  view: ViewMode
  onView: (v: ViewMode) => void
  highTraffic: boolean
  threshold: number
}

const VIEWS: { v: ViewMode; label: string }[] = [
  { v: 'auto', label: 'Auto' },
  { v: 'cards', label: 'Cards' },
  { v: 'aggregate', label: 'Aggregate' },
]

/** BoardToolbar: role chips, priority and text filters, and the view switch. */
export const BoardToolbar = memo(function BoardToolbar({ filter, onFilter, view, onView, highTraffic, threshold }: BoardToolbarProps) {
  const toggleRole = (r: Role) => {
    const roles = new Set(filter.roles)
    if (roles.has(r)) roles.delete(r)
    else roles.add(r)
    onFilter({ ...filter, roles })
  }
  return (
    <div className="flex flex-wrap items-center gap-x-4 gap-y-2">
      <div className="flex items-center gap-1.5" role="group" aria-label="Filter by role">
        {ROLES.map((r) => {
          const on = filter.roles.has(r)
          const rs = ROLE_STYLE[r]
          return (
            <button
              key={r}
              type="button"
              aria-pressed={on}
              onClick={() => toggleRole(r)}
              className={`flex items-center gap-1.5 rounded-full px-2.5 py-1 text-xs font-medium ring-1 transition-colors focus-ring ${on ? rs.chip : 'bg-transparent text-slate-500 ring-slate-700 hover:text-slate-300'}`}
            >
              <span className={`h-2 w-2 rounded-full ${on ? rs.dot : 'bg-slate-600'}`} aria-hidden="true" />
              {rs.label}
            </button>
          )
        })}
      </div>
      <label className="flex items-center gap-1.5 text-xs text-slate-500">
        Priority
        <select
          className="input w-auto py-1 text-xs"
          value={filter.priority === null ? '' : String(filter.priority)}
          onChange={(e) => onFilter({ ...filter, priority: e.target.value === '' ? null : (Number(e.target.value) as Priority) })}
        >
          <option value="">All</option>
          {PRIORITIES.map((p) => (
            <option key={p} value={p}>
              P{p}
            </option>
          ))}
        </select>
      </label>
      <label className="flex items-center gap-1.5 text-xs text-slate-500">
        <span className="sr-only">Filter cards by id, worker or error</span>
        <input
          type="search"
          className="input w-52 py-1 text-xs"
          placeholder="Filter id / worker / error"
          value={filter.text}
          onChange={(e) => onFilter({ ...filter, text: e.target.value })}
        />
      </label>
      <div className="ml-auto flex items-center gap-2">
        <span className="hidden text-[11px] text-slate-500 md:inline">
          {highTraffic ? `≥ ${threshold} events/s: aggregating` : `aggregates above ${threshold} events/s`}
        </span>
        <div className="flex rounded-md bg-slate-900 p-0.5 ring-1 ring-slate-800" role="radiogroup" aria-label="Board view">
          {VIEWS.map(({ v, label }) => (
            <button
              key={v}
              type="button"
              role="radio"
              aria-checked={view === v}
              onClick={() => onView(v)}
              className={`rounded px-2.5 py-1 text-xs font-medium transition-colors focus-ring ${view === v ? 'bg-slate-700 text-slate-50' : 'text-slate-400 hover:text-slate-200'}`}
            >
              {label}
            </button>
          ))}
        </div>
      </div>
    </div>
  )
})
