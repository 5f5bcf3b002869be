import { memo, useEffect, useRef, useState, type FormEvent } from 'react'
import type { AdmissionState } from '../api/types'
import type { ConnStatus } from '../stream/socket'
import { ConnectionBadge } from './ConnectionBadge'

export interface TopBarProps {
  status: ConnStatus
  nowMs: number
  dropped: number
  paused: boolean
  admission: AdmissionState
  admissionBusy: boolean
  highTraffic: boolean
  onRetry: () => void
  onToggleAdmission: () => void
  onLookup: (id: string) => void
}

const ADMISSION_LOOK: Record<AdmissionState | 'paused', { text: string; label: string }> = {
  open: { text: 'text-emerald-300 ring-emerald-500/30', label: 'Admission open' },
  overloaded: { text: 'text-amber-300 ring-amber-500/40', label: 'Overloaded · shedding' },
  unhealthy: { text: 'text-rose-300 ring-rose-500/40', label: 'Unhealthy · shedding' },
  paused: { text: 'text-amber-300 ring-amber-500/40', label: 'Admission paused' },
}

/** TopBar: brand, connection, admission switch and lookup by id. */
export const TopBar = memo(function TopBar(p: TopBarProps) {
  const [id, setId] = useState('')
  const input = useRef<HTMLInputElement>(null)
  // "/" jumps to the lookup box, as in most ops consoles.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target
      const typing = t instanceof HTMLElement && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable)
      if (e.key === '/' && !typing) {
        e.preventDefault()
        input.current?.focus()
      }
    }
    document.addEventListener('keydown', onKey)
    return () => document.removeEventListener('keydown', onKey)
  }, [])
  const look = ADMISSION_LOOK[p.paused ? 'paused' : p.admission]
  const submit = (e: FormEvent) => {
    e.preventDefault()
    const v = id.trim()
    if (v) p.onLookup(v)
  }
  return (
    <header className="sticky top-0 z-30 border-b border-slate-800/80 bg-[#070b14]">
      <div className="mx-auto flex max-w-[1800px] flex-wrap items-center gap-x-5 gap-y-2 px-4 py-2.5 sm:px-6">
        <div className="flex items-center gap-2.5">
          <svg viewBox="0 0 32 32" className="h-7 w-7" aria-hidden="true">
            <rect width="32" height="32" rx="7" fill="#0f172a" />
            <path d="M9 10L23 10L16 23Z" fill="none" stroke="#475569" strokeWidth="1.5" />
            <circle cx="9" cy="10" r="3.5" fill="#f97316" />
            <circle cx="23" cy="10" r="3.5" fill="#3b82f6" />
            <circle cx="16" cy="23" r="3.5" fill="#22c55e" />
          </svg>
          <div className="leading-tight">
            <h1 className="text-sm font-semibold tracking-tight text-slate-100">Agent Mesh</h1>
            <p className="text-[11px] text-slate-500">Command Center</p>
          </div>
        </div>
        <ConnectionBadge status={p.status} nowMs={p.nowMs} dropped={p.dropped} onRetry={p.onRetry} />
        <span
          className={`rounded-full bg-slate-900 px-2.5 py-1 text-xs font-medium ring-1 ${look.text} ${p.status.kind === 'open' ? '' : 'opacity-40'}`}
          title={p.status.kind === 'open' ? undefined : 'last known state (not connected)'}
          data-testid="admission-state"
        >
          {look.label}
        </span>
        {p.highTraffic && (
          <span className="rounded-full bg-fuchsia-500/10 px-2.5 py-1 text-xs font-medium text-fuchsia-300 ring-1 ring-fuchsia-500/30" data-testid="htm-badge">
            High Traffic Mode
          </span>
        )}
        <div className="ml-auto flex flex-wrap items-center gap-2">
          <form onSubmit={submit} className="flex items-center gap-1.5" role="search">
            <label htmlFor="lookup" className="sr-only">
              Look up a task by id
            </label>
            <input
              ref={input}
              id="lookup"
              className="input w-64 font-mono text-xs"
              placeholder="Task id…  ( / )"
              value={id}
              onChange={(e) => setId(e.target.value)}
              spellCheck={false}
              autoComplete="off"
            />
            <button type="submit" className="btn-ghost text-xs">
              Open
            </button>
          </form>
          <button
            type="button"
            className={p.paused ? 'btn-primary' : 'btn-ghost'}
            onClick={p.onToggleAdmission}
            disabled={p.admissionBusy}
            aria-pressed={p.paused}
            data-testid="admission-toggle"
          >
            {p.paused ? 'Resume admission' : 'Pause admission'}
          </button>
        </div>
      </div>
    </header>
  )
})
