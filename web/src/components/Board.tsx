import { memo, useMemo } from 'react'
import { motion } from 'framer-motion'
import { ROLES, STATES, type Priority, type Role, type TaskEvent, type TaskState } from '../api/types'
import { count } from '../lib/format'
import { ROLE_STYLE, STATE_STYLE } from '../lib/roles'
import type { Column } from '../stream/reducer'
import { Sparkline } from './Sparkline'
import { TaskCard } from './TaskCard'

export interface BoardFilter {
  roles: ReadonlySet<Role>
  priority: Priority | null
  /** Matches task ids, worker ids and errors (case-insensitive substring). */
  text: string
}

export const NO_FILTER: BoardFilter = { roles: new Set(ROLES), priority: null, text: '' }

export function filterActive(f: BoardFilter): boolean {
  return f.roles.size !== ROLES.length || f.priority !== null || f.text.trim() !== ''
}

export function matches(ev: TaskEvent, f: BoardFilter): boolean {
  if (!f.roles.has(ev.role)) return false
  if (f.priority !== null && ev.priority !== f.priority) return false
  const q = f.text.trim().toLowerCase()
  if (q === '') return true
  return ev.id.toLowerCase().includes(q) || (ev.worker_id ?? '').toLowerCase().includes(q) || (ev.error ?? '').toLowerCase().includes(q)
}

/** visibleCards picks the newest cards that match, and how many matching ones are not shown. */
export function visibleCards(col: Column, f: BoardFilter, limit: number, total: number): { cards: TaskEvent[]; more: number } {
  const all = Array.from(col.values())
  const cards: TaskEvent[] = []
  const filtering = filterActive(f)
  let matched = 0
  for (let i = all.length - 1; i >= 0; i--) {
    const ev = all[i]
    if (!ev || (filtering && !matches(ev, f))) continue
    matched++
    if (cards.length < limit) cards.push(ev)
    else if (!filtering) break
  }
  const more = filtering ? matched - cards.length : Math.max(0, total - cards.length)
  return { cards, more }
}

export interface ColumnAggregate {
  /** One point per second, last minute: depth (or completions per second). */
  spark: readonly number[]
  sparkLabel: string
  /** One line under the big number. */
  note: string
  perRole: Readonly<Record<Role, number>>
  perRoleLabel: string
}

export interface BoardProps {
  columns: Readonly<Record<TaskState, Column>>
  totals: Readonly<Record<TaskState, number>>
  aggregates: Readonly<Record<TaskState, ColumnAggregate>>
  aggregate: boolean
  visible: number
  filter: BoardFilter
  nowMs: number
  onOpen: (id: string) => void
  /** Where the Dead column's "+N more" leads (the dead-letter panel). */
  onMoreDead?: () => void
}

function ColumnHeader({ state, total }: { state: TaskState; total: number }) {
  const s = STATE_STYLE[state]
  return (
    <div className="flex items-center justify-between px-3 pt-3 pb-2">
      <h3 className="flex items-center gap-2 text-xs font-semibold tracking-wide text-slate-300 uppercase">
        <span className={`h-2 w-2 rounded-full ${s.dot}`} aria-hidden="true" />
        {s.label}
      </h3>
      <span className={`rounded-full px-2 py-0.5 font-mono text-[11px] tabular-nums ring-1 ${s.badge}`} data-testid={`count-${state}`}>
        {count(total)}
      </span>
    </div>
  )
}

const CardColumn = memo(function CardColumn(p: {
  state: TaskState
  col: Column
  total: number
  visible: number
  filter: BoardFilter
  nowMs: number
  onOpen: (id: string) => void
  onMore?: () => void
}) {
  const { cards, more } = useMemo(() => visibleCards(p.col, p.filter, p.visible, p.total), [p.col, p.filter, p.visible, p.total])
  return (
    <section className={`flex min-h-0 min-w-0 flex-col rounded-lg border border-t-2 border-slate-800/80 ${STATE_STYLE[p.state].accent} bg-slate-950/40`} aria-label={`${STATE_STYLE[p.state].label} tasks`} data-testid={`column-${p.state}`}>
      <ColumnHeader state={p.state} total={p.total} />
      <ul className="scroll-thin flex min-h-0 flex-1 flex-col gap-1.5 overflow-y-auto px-2 pb-2">
        {cards.map((ev) => (
          <TaskCard key={ev.id} ev={ev} nowMs={p.nowMs} onOpen={p.onOpen} />
        ))}
        {cards.length === 0 && <li className="px-1 py-6 text-center text-xs text-slate-600">No tasks</li>}
      </ul>
      {more > 0 &&
        (p.onMore ? (
          <button type="button" onClick={p.onMore} className="border-t border-slate-800/80 px-3 py-1.5 text-center text-[11px] text-sky-400 hover:text-sky-300 focus-ring" data-testid={`more-${p.state}`}>
            +{count(more)} more · open the dead-letter queue
          </button>
        ) : (
          <div className="border-t border-slate-800/80 px-3 py-1.5 text-center text-[11px] text-slate-500" data-testid={`more-${p.state}`}>
            +{count(more)} more
          </div>
        ))}
    </section>
  )
})

const AggregateColumn = memo(function AggregateColumn(p: { state: TaskState; total: number; agg: ColumnAggregate }) {
  const s = STATE_STYLE[p.state]
  const roleMax = Math.max(1, ...ROLES.map((r) => p.agg.perRole[r]))
  return (
    <section className={`flex min-w-0 flex-col rounded-lg border border-t-2 border-slate-800/80 ${s.accent} bg-slate-950/40`} aria-label={`${s.label} aggregate`} data-testid={`column-${p.state}`}>
      <ColumnHeader state={p.state} total={p.total} />
      <div className="flex flex-1 flex-col gap-3 px-3 pb-3">
        <div>
          <div className="font-mono text-3xl font-semibold tabular-nums tracking-tight text-slate-50">{count(p.total)}</div>
          <div className={`text-xs ${s.text}`}>{p.agg.note}</div>
        </div>
        <div className="relative flex min-h-16 flex-1 flex-col">
          <span className="absolute top-0 right-0 font-mono text-[10px] text-slate-600">{count(Math.max(0, ...p.agg.spark))}</span>
          <Sparkline values={p.agg.spark} stroke={s.stroke} className="w-full flex-1" label={p.agg.sparkLabel} />
          <div className="mt-1 flex justify-between font-mono text-[10px] text-slate-600">
            <span>−60s</span>
            <span>now</span>
          </div>
        </div>
        <div className="space-y-1.5">
          <div className="label">{p.agg.perRoleLabel}</div>
          {ROLES.map((r) => (
            <div key={r} className="grid grid-cols-[2.5rem_1fr_3.5rem] items-center gap-2 text-[11px]">
              <span className={ROLE_STYLE[r].text}>{ROLE_STYLE[r].short}</span>
              <span className="h-1.5 overflow-hidden rounded-full bg-slate-800">
                <span className={`block h-full rounded-full ${ROLE_STYLE[r].dot}`} style={{ width: `${(p.agg.perRole[r] / roleMax) * 100}%` }} />
              </span>
              <span className="text-right font-mono tabular-nums text-slate-300">{count(p.agg.perRole[r])}</span>
            </div>
          ))}
        </div>
      </div>
    </section>
  )
})

/** Board: the five state columns, as capped cards or (High Traffic Mode) as aggregates. */
export function Board(p: BoardProps) {
  return (
    <div className="scroll-thin overflow-x-auto">
      <motion.div
        key={p.aggregate ? 'aggregate' : 'cards'}
        initial={{ opacity: 0 }}
        animate={{ opacity: 1 }}
        transition={{ duration: 0.2 }}
        className="grid h-[31rem] min-w-[960px] grid-cols-5 gap-2.5"
        data-testid="board"
        data-mode={p.aggregate ? 'aggregate' : 'cards'}
      >
        {STATES.map((s) =>
          p.aggregate ? (
            <AggregateColumn key={s} state={s} total={p.totals[s]} agg={p.aggregates[s]} />
          ) : (
            <CardColumn key={s} state={s} col={p.columns[s]} total={p.totals[s]} visible={p.visible} filter={p.filter} nowMs={p.nowMs} onOpen={p.onOpen} onMore={s === 'dead' ? p.onMoreDead : undefined} />
          ),
        )}
      </motion.div>
    </div>
  )
}
