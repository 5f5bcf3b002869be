import { useCallback, useEffect, useRef, useState } from 'react'
import { motion } from 'framer-motion'
import type { Task, TaskEvent, TaskState } from '../api/types'
import { ApiError } from '../api/http'
import { between, clock, parseTime } from '../lib/format'
import { ROLE_STYLE, STATE_STYLE } from '../lib/roles'
import { errorText } from './ControlPanel'

export interface DrawerActions {
  getTask: (id: string, signal?: AbortSignal) => Promise<Task>
  requeueDead: (id: string) => Promise<Task>
  purgeDead: (id: string) => Promise<number>
}

export interface TaskDrawerProps {
  id: string
  /** The latest event the stream holds for this task, if any. */
  live: TaskEvent | undefined
  actions: DrawerActions
  onClose: () => void
}

interface Step {
  label: string
  at: number
  note?: string
  tone: TaskState
}

/** timeline orders what is known about a task's transitions (ms instants). */
export function timeline(t: Task | null, live: TaskEvent | undefined): Step[] {
  const created = parseTime(t?.created_at) ?? (live ? live.created_us / 1000 : undefined)
  const started = parseTime(t?.started_at) ?? (live?.started_us ? live.started_us / 1000 : undefined)
  const completed = parseTime(t?.completed_at) ?? (live?.completed_us ? live.completed_us / 1000 : undefined)
  const state = t?.state ?? live?.state
  const steps: Step[] = []
  if (created !== undefined) steps.push({ label: 'Created', at: created, tone: 'pending' })
  if (started !== undefined) steps.push({ label: 'Started', at: started, note: `waited ${between(created, started)}`, tone: 'active' })
  const runAt = parseTime(t?.run_at)
  if (state === 'failed' && runAt !== undefined) steps.push({ label: 'Retry scheduled', at: runAt, tone: 'failed' })
  if (completed !== undefined) {
    const label = state === 'dead' ? 'Dead-lettered' : 'Completed'
    steps.push({ label, at: completed, note: `ran ${between(started, completed)} · total ${between(created, completed)}`, tone: state === 'dead' ? 'dead' : 'completed' })
  } else if (state === 'dead') {
    const at = parseTime(t?.updated_at) ?? (live ? live.at_us / 1000 : undefined)
    if (at !== undefined) steps.push({ label: 'Dead-lettered', at, note: `after ${t?.attempts ?? live?.attempts ?? 0} attempts`, tone: 'dead' })
  }
  return steps.sort((a, b) => a.at - b.at)
}

/** TaskDrawer: one task in full — payload, attempts, timeline, last error, and dead-letter actions. */
export function TaskDrawer({ id, live, actions, onClose }: TaskDrawerProps) {
  const [task, setTask] = useState<Task | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [loading, setLoading] = useState(true)
  const close = useRef<HTMLButtonElement>(null)

  const load = useCallback(
    (signal?: AbortSignal) => {
      setLoading(true)
      actions
        .getTask(id, signal)
        .then((t) => {
          setTask(t)
          setError(null)
        })
        .catch((err: unknown) => {
          if (err instanceof DOMException && err.name === 'AbortError') return
          setError(err instanceof ApiError && err.status === 404 ? `No task with id ${id}` : errorText(err))
        })
        .finally(() => setLoading(false))
    },
    [actions, id],
  )

  // Fetch on open, and again whenever the stream shows the task moved.
  const liveKey = live ? `${live.state}:${live.attempts ?? 0}` : ''
  useEffect(() => {
    const ctl = new AbortController()
    load(ctl.signal)
    return () => ctl.abort()
  }, [load, liveKey])

  useEffect(() => {
    close.current?.focus()
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') onClose()
    }
    document.addEventListener('keydown', onKey)
    return () => document.removeEventListener('keydown', onKey)
  }, [onClose])

  const act = async (f: () => Promise<unknown>, reload = true) => {
    setBusy(true)
    try {
      await f()
      if (reload) load()
    } catch (err) {
      setError(errorText(err))
    } finally {
      setBusy(false)
    }
  }

  const state = task?.state ?? live?.state
  const role = task?.role ?? live?.role
  const rs = role ? ROLE_STYLE[role] : undefined
  const steps = timeline(task, live)
  const lastError = task?.last_error || live?.error

  return (
    <div className="fixed inset-0 z-40 flex justify-end" data-testid="drawer">
      <motion.div className="absolute inset-0 bg-black/50" initial={{ opacity: 0 }} animate={{ opacity: 1 }} transition={{ duration: 0.15 }} onClick={onClose} aria-hidden="true" />
      <motion.aside
        role="dialog"
        aria-modal="true"
        aria-labelledby="drawer-title"
        className="relative flex h-full w-full max-w-xl flex-col border-l border-slate-800 bg-[#0a101d] shadow-2xl"
        initial={{ x: 48, opacity: 0 }}
        animate={{ x: 0, opacity: 1 }}
        transition={{ duration: 0.18, ease: 'easeOut' }}
      >
        <div className="flex items-start justify-between gap-3 border-b border-slate-800 px-5 py-4">
          <div className="min-w-0">
            <div className="mb-1 flex items-center gap-2">
              {rs && <span className={`rounded px-1.5 py-px text-[10px] font-semibold ring-1 ${rs.chip}`}>{role}</span>}
              {state && (
                <span className={`rounded-full px-2 py-px text-[11px] font-medium ring-1 ${STATE_STYLE[state].badge}`} data-testid="drawer-state">
                  {STATE_STYLE[state].label}
                </span>
              )}
              {loading && <span className="text-[11px] text-slate-500">loading…</span>}
            </div>
            <h2 id="drawer-title" className="truncate font-mono text-sm text-slate-100" title={id}>
              {id}
            </h2>
          </div>
          <button ref={close} type="button" className="btn-ghost px-2 py-1 text-xs" onClick={onClose} aria-label="Close task detail">
            Esc ✕
          </button>
        </div>
        <div className="scroll-thin flex-1 space-y-5 overflow-y-auto px-5 py-4">
          {error && (
            <p className="rounded-md border border-rose-800/60 bg-rose-950/40 px-3 py-2 text-xs text-rose-200" role="alert">
              {error}
            </p>
          )}
          <dl className="grid grid-cols-2 gap-x-4 gap-y-2.5 text-xs sm:grid-cols-3">
            {(
              [
                ['Priority', task ? `P${task.priority}` : live ? `P${live.priority}` : '—'],
                ['Attempts', task ? `${task.attempts} / ${task.max_attempts}` : String(live?.attempts ?? '—')],
                ['Worker', task?.worker_id || live?.worker_id || '—'],
                ['Pipeline', task?.pipeline_id || live?.pipeline_id || '—'],
                ['Stage', String(task?.stage ?? live?.stage ?? '—')],
                ['Client key', task?.client_key || '—'],
              ] as const
            ).map(([k, v]) => (
              <div key={k} className="min-w-0">
                <dt className="label">{k}</dt>
                <dd className="mt-0.5 truncate font-mono text-slate-200" title={v}>
                  {v}
                </dd>
              </div>
            ))}
          </dl>

          <div>
            <h3 className="label mb-2">Timeline</h3>
            {steps.length === 0 ? (
              <p className="text-xs text-slate-600">No transitions recorded yet</p>
            ) : (
              <ol className="relative ml-1.5 border-l border-slate-800" data-testid="timeline">
                {steps.map((s) => (
                  <li key={s.label} className="relative pb-3 pl-4 last:pb-0">
                    <span className={`absolute top-1 -left-[5px] h-2.5 w-2.5 rounded-full ring-2 ring-[#0a101d] ${STATE_STYLE[s.tone].dot}`} aria-hidden="true" />
                    <div className="flex items-baseline justify-between gap-3">
                      <span className="text-xs font-medium text-slate-200">{s.label}</span>
                      <span className="font-mono text-[11px] text-slate-500">{clock(s.at)}</span>
                    </div>
                    {s.note && <div className="text-[11px] text-slate-500">{s.note}</div>}
                  </li>
                ))}
              </ol>
            )}
          </div>

          {lastError && (
            <div>
              <h3 className="label mb-2">Last error</h3>
              <pre className="rounded-md border border-rose-900/60 bg-rose-950/30 p-3 font-mono text-xs whitespace-pre-wrap text-rose-200">{lastError}</pre>
            </div>
          )}

          <div>
            <h3 className="label mb-2">Payload</h3>
            <pre className="scroll-thin max-h-72 overflow-auto rounded-md border border-slate-800 bg-slate-950 p-3 font-mono text-xs text-slate-300" data-testid="payload">
              {task ? JSON.stringify(task.payload, null, 2) : '…'}
            </pre>
          </div>
        </div>
        <div className="flex items-center gap-2 border-t border-slate-800 px-5 py-3">
          <button type="button" className="btn-ghost text-xs" onClick={() => load()} disabled={busy}>
            Refresh
          </button>
          {state === 'dead' && (
            <>
              <button type="button" className="btn-primary text-xs" disabled={busy} onClick={() => void act(() => actions.requeueDead(id))}>
                Requeue
              </button>
              <button type="button" className="btn-danger text-xs" disabled={busy} onClick={() =>
                  void act(async () => {
                    await actions.purgeDead(id)
                    onClose()
                  }, false)
                }
              >
                Purge
              </button>
            </>
          )}
        </div>
      </motion.aside>
    </div>
  )
}
