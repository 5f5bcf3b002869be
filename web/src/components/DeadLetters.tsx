import { memo, useCallback, useEffect, useRef, useState } from 'react'
import { ROLES, type Page, type Role, type Task } from '../api/types'
import type { DeadFilter } from '../api/dead'
import { ago, count, parseTime, shortId } from '../lib/format'
import { ROLE_STYLE } from '../lib/roles'
import { errorText } from './ControlPanel'

export interface DeadActions {
  listDead: (f: DeadFilter, signal?: AbortSignal) => Promise<Page<Task>>
  requeueDead: (id: string) => Promise<Task>
  requeueAllDead: (role?: Role) => Promise<number>
  purgeDead: (id: string) => Promise<number>
  purgeAllDead: (role?: Role) => Promise<number>
}

export interface DeadLettersProps {
  actions: DeadActions
  /** Dead letters the mesh reports (Stats): a change triggers a refresh. */
  total: number
  nowMs: number
  onOpen: (id: string) => void
}

const PAGE = 50
/** Automatic refreshes happen at most this often. */
const REFRESH_MS = 3000

type Confirm = 'requeue' | 'purge' | null

/** DeadLetters: the dead-letter queue — list, requeue one or all, purge. */
export const DeadLetters = memo(function DeadLetters({ actions, total, nowMs, onOpen }: DeadLettersProps) {
  const [role, setRole] = useState<Role | ''>('')
  const [items, setItems] = useState<Task[]>([])
  const [cursor, setCursor] = useState<string | undefined>(undefined)
  const [loading, setLoading] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [notice, setNotice] = useState<string | null>(null)
  const [confirm, setConfirm] = useState<Confirm>(null)
  const [busy, setBusy] = useState<string | null>(null)
  const lastLoad = useRef(0)

  const load = useCallback(
    async (more = false, signal?: AbortSignal) => {
      setLoading(true)
      lastLoad.current = Date.now()
      try {
        const page = await actions.listDead({ role: role || undefined, limit: PAGE, cursor: more ? cursor : undefined }, signal)
        setItems((prev) => (more ? [...prev, ...page.tasks] : page.tasks))
        setCursor(page.next_cursor || undefined)
        setError(null)
      } catch (err) {
        if (err instanceof DOMException && err.name === 'AbortError') return
        setError(errorText(err))
      } finally {
        setLoading(false)
      }
    },
    [actions, role, cursor],
  )

  // Load on mount and when the role filter changes.
  useEffect(() => {
    const ctl = new AbortController()
    void load(false, ctl.signal)
    return () => ctl.abort()
  }, [role])

  // Refresh (throttled) when the mesh's dead-letter count moves.
  const seenTotal = useRef(total)
  useEffect(() => {
    if (seenTotal.current === total) return
    seenTotal.current = total
    const wait = Math.max(0, lastLoad.current + REFRESH_MS - Date.now())
    const t = setTimeout(() => void load(false), wait)
    return () => clearTimeout(t)
  }, [total])

  const act = async (key: string, f: () => Promise<string>) => {
    setBusy(key)
    setNotice(null)
    try {
      setNotice(await f())
      setError(null)
      await load(false)
    } catch (err) {
      setError(errorText(err))
    } finally {
      setBusy(null)
      setConfirm(null)
    }
  }

  const scope = role ? `${role} ` : ''

  return (
    <section id="dead-letters" className="panel scroll-mt-16 p-4" aria-label="Dead letters" data-testid="dead-letters">
      <div className="mb-3 flex flex-wrap items-center gap-x-4 gap-y-2">
        <h2 className="text-sm font-semibold text-slate-200">
          Dead letters <span className="ml-1 font-mono text-xs text-rose-300">{count(total)}</span>
        </h2>
        <label className="flex items-center gap-1.5 text-xs text-slate-500">
          Role
          <select className="input w-auto py-1 text-xs" value={role} onChange={(e) => setRole(e.target.value as Role | '')}>
            <option value="">All</option>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <div className="ml-auto flex flex-wrap items-center gap-2">
          <button type="button" className="btn-ghost text-xs" onClick={() => void load(false)} disabled={loading}>
            {loading ? 'Loading…' : 'Refresh'}
          </button>
          {confirm === 'requeue' ? (
            <button type="button" className="btn-primary text-xs" disabled={busy !== null} onClick={() => void act('all', async () => `Requeued ${await actions.requeueAllDead(role || undefined)} ${scope}tasks`)}>
              Confirm requeue all
            </button>
          ) : (
            <button type="button" className="btn-ghost text-xs" disabled={items.length === 0} onClick={() => setConfirm('requeue')} data-testid="requeue-all">
              Requeue all
            </button>
          )}
          {confirm === 'purge' ? (
            <button type="button" className="btn-danger text-xs" disabled={busy !== null} onClick={() => void act('all', async () => `Purged ${await actions.purgeAllDead(role || undefined)} ${scope}tasks`)}>
              Confirm purge all
            </button>
          ) : (
            <button type="button" className="btn-danger text-xs" disabled={items.length === 0} onClick={() => setConfirm('purge')}>
              Purge all
            </button>
          )}
          {confirm && (
            <button type="button" className="text-xs text-slate-400 hover:text-slate-200 focus-ring rounded" onClick={() => setConfirm(null)}>
              Cancel
            </button>
          )}
        </div>
      </div>
      {error && (
        <p className="mb-2 rounded-md border border-rose-800/60 bg-rose-950/40 px-3 py-1.5 text-xs text-rose-200" role="alert">
          {error}
        </p>
      )}
      {notice && (
        <p className="mb-2 text-xs text-emerald-300" role="status" data-testid="dead-notice">
          {notice}
        </p>
      )}
      {items.length === 0 ? (
        <p className="py-6 text-center text-xs text-slate-600">{loading ? 'Loading…' : 'The dead-letter queue is empty'}</p>
      ) : (
        <div className="scroll-thin max-h-80 overflow-auto">
          <table className="w-full text-left text-xs">
            <thead className="sticky top-0 bg-slate-900 text-[11px] text-slate-500">
              <tr>
                <th className="py-1.5 pr-3 font-medium" scope="col">Task</th>
                <th className="py-1.5 pr-3 font-medium" scope="col">Role</th>
                <th className="py-1.5 pr-3 font-medium" scope="col">Attempts</th>
                <th className="w-full py-1.5 pr-3 font-medium" scope="col">Last error</th>
                <th className="py-1.5 pr-3 font-medium" scope="col">Died</th>
                <th className="py-1.5 font-medium" scope="col"><span className="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-800/70">
              {items.map((t) => {
                const died = parseTime(t.completed_at) ?? parseTime(t.updated_at)
                return (
                  <tr key={t.id} data-testid="dead-row" data-task-id={t.id}>
                    <td className="py-1.5 pr-3">
                      <button type="button" className="font-mono text-sky-300 hover:underline focus-ring rounded" onClick={() => onOpen(t.id)} title={t.id}>
                        {shortId(t.id)}
                      </button>
                    </td>
                    <td className="py-1.5 pr-3">
                      <span className={`rounded px-1 py-px text-[10px] font-semibold ring-1 ${ROLE_STYLE[t.role]?.chip ?? ''}`}>{ROLE_STYLE[t.role]?.short ?? t.role}</span>
                    </td>
                    <td className="py-1.5 pr-3 font-mono tabular-nums text-slate-300">
                      {t.attempts}/{t.max_attempts}
                    </td>
                    <td className="max-w-0 truncate py-1.5 pr-3 text-rose-200/90" title={t.last_error}>
                      {t.last_error || '—'}
                    </td>
                    <td className="py-1.5 pr-3 whitespace-nowrap text-slate-500">{died ? `${ago(died, nowMs)} ago` : '—'}</td>
                    <td className="py-1.5 whitespace-nowrap">
                      <span className="flex gap-1.5">
                        <button type="button" className="btn-ghost px-2 py-0.5 text-[11px]" disabled={busy !== null} onClick={() => void act(t.id, async () => `Requeued ${shortId((await actions.requeueDead(t.id)).id)}`)} data-testid="requeue-one">
                          Requeue
                        </button>
                        <button type="button" className="btn-danger px-2 py-0.5 text-[11px]" disabled={busy !== null} onClick={() => void act(t.id, async () => `Purged ${await actions.purgeDead(t.id)} task`)}>
                          Purge
                        </button>
                      </span>
                    </td>
                  </tr>
                )
              })}
            </tbody>
          </table>
          {cursor && (
            <div className="pt-2 text-center">
              <button type="button" className="btn-ghost text-xs" onClick={() => void load(true)} disabled={loading}>
                Load more
              </button>
            </div>
          )}
        </div>
      )}
    </section>
  )
})
