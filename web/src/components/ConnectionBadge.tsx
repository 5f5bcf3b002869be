import type { ConnStatus } from '../stream/socket'

export interface ConnectionBadgeProps {
  status: ConnStatus
  nowMs: number
  dropped: number
  onRetry: () => void
}

const LOOK = {
  open: { dot: 'bg-emerald-400', ring: 'ring-emerald-500/30', text: 'text-emerald-300', label: 'Live' },
  connecting: { dot: 'bg-sky-400 animate-pulse', ring: 'ring-sky-500/30', text: 'text-sky-300', label: 'Connecting' },
  reconnecting: { dot: 'bg-amber-400 animate-pulse', ring: 'ring-amber-500/30', text: 'text-amber-300', label: 'Reconnecting' },
  closed: { dot: 'bg-slate-500', ring: 'ring-slate-500/30', text: 'text-slate-400', label: 'Offline' },
} as const

/** ConnectionBadge shows the WebSocket's state; while waiting to reconnect it offers "retry now". */
export function ConnectionBadge({ status, nowMs, dropped, onRetry }: ConnectionBadgeProps) {
  const look = LOOK[status.kind]
  const wait = status.retryAt !== undefined ? Math.max(0, Math.ceil((status.retryAt - nowMs) / 1000)) : 0
  return (
    <div className="flex items-center gap-2" role="status" aria-live="polite" data-testid="connection" data-state={status.kind}>
      <span className={`inline-flex items-center gap-2 rounded-full bg-slate-900 px-2.5 py-1 text-xs font-medium ring-1 ${look.ring} ${look.text}`}>
        <span className={`h-2 w-2 rounded-full ${look.dot}`} aria-hidden="true" />
        {look.label}
        {status.kind === 'reconnecting' && (
          <span className="text-slate-400">
            · attempt {status.attempt}
            {wait > 0 ? ` · ${wait}s` : ''}
          </span>
        )}
        {status.kind === 'open' && dropped > 0 && <span className="text-amber-300">· {dropped} dropped</span>}
      </span>
      {status.kind === 'reconnecting' && (
        <button type="button" className="text-xs text-sky-400 underline-offset-2 hover:underline focus-ring rounded" onClick={onRetry}>
          Retry now
        </button>
      )}
    </div>
  )
}
