import { memo, useId, useState, type FormEvent, type ReactNode } from 'react'
import { ROLES, PRIORITIES, type Json, type Priority, type Role, type Task, type TaskSpec } from '../api/types'
import type { PipelineSpec, PipelineStarted } from '../api/pipelines'
import type { SimulateSpec } from '../api/simulate'
import { ApiError } from '../api/http'
import { shortId } from '../lib/format'
import { ROLE_STYLE } from '../lib/roles'

export interface ControlActions {
  submitTask: (spec: TaskSpec) => Promise<Task>
  startPipeline: (spec: PipelineSpec) => Promise<PipelineStarted>
  simulate: (spec: SimulateSpec) => Promise<SimulateSpec>
}

export interface ControlPanelProps {
  actions: ControlActions
  onOpenTask: (id: string) => void
}

type Tab = 'task' | 'pipeline' | 'simulate'

type Outcome = { kind: 'ok'; text: string; taskId?: string } | { kind: 'error'; text: string } | null

/** errorText is what a failed call shows: the server's message, naming the field when it did. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.field ? `${err.message} (${err.field})` : err.message
  return err instanceof Error ? err.message : String(err)
}

/** parsePayload reads the payload box: empty → {}, else JSON or a message. */
export function parsePayload(text: string): { ok: true; value: Json } | { ok: false; error: string } {
  if (text.trim() === '') return { ok: true, value: {} }
  try {
    return { ok: true, value: JSON.parse(text) as Json }
  } catch (err) {
    return { ok: false, error: `payload is not valid JSON: ${err instanceof Error ? err.message : String(err)}` }
  }
}

function Field({ label, htmlFor, children }: { label: string; htmlFor: string; children: ReactNode }) {
  return (
    <div className="flex flex-col gap-1">
      <label htmlFor={htmlFor} className="text-[11px] font-medium text-slate-400">
        {label}
      </label>
      {children}
    </div>
  )
}

function PrioritySelect({ id, value, onChange }: { id: string; value: Priority; onChange: (p: Priority) => void }) {
  return (
    <select id={id} className="input" value={value} onChange={(e) => onChange(Number(e.target.value) as Priority)}>
      {PRIORITIES.map((p) => (
        <option key={p} value={p}>
          P{p}
          {p === 0 ? ' · urgent' : p === 2 ? ' · default' : ''}
        </option>
      ))}
    </select>
  )
}

/** ControlPanel: submit a task, start a pipeline, or ask the producer to simulate load. */
export const ControlPanel = memo(function ControlPanel({ actions, onOpenTask }: ControlPanelProps) {
  const uid = useId()
  const [tab, setTab] = useState<Tab>('task')
  const [role, setRole] = useState<Role>('ARCHITECT')
  const [priority, setPriority] = useState<Priority>(2)
  const [maxAttempts, setMaxAttempts] = useState('3')
  const [clientKey, setClientKey] = useState('')
  const [payload, setPayload] = useState('{\n  "title": "Design the billing service"\n}')
  const [simRate, setSimRate] = useState('200')
  const [simSeconds, setSimSeconds] = useState('30')
  const [simPipelines, setSimPipelines] = useState('0.2')
  const [busy, setBusy] = useState(false)
  const [outcome, setOutcome] = useState<Outcome>(null)

  const run = async (f: () => Promise<Outcome>) => {
    setBusy(true)
    setOutcome(null)
    try {
      setOutcome(await f())
    } catch (err) {
      setOutcome({ kind: 'error', text: errorText(err) })
    } finally {
      setBusy(false)
    }
  }

  const onSubmit = (e: FormEvent) => {
    e.preventDefault()
    if (tab === 'simulate') {
      const spec: SimulateSpec = { rate: Number(simRate), seconds: Number(simSeconds), pipeline_fraction: Number(simPipelines) }
      void run(async () => {
        const r = await actions.simulate(spec)
        return { kind: 'ok', text: `Simulating ${r.rate} tasks/s for ${r.seconds} s` }
      })
      return
    }
    const p = parsePayload(payload)
    if (!p.ok) {
      setOutcome({ kind: 'error', text: p.error })
      return
    }
    const key = clientKey.trim() || undefined
    if (tab === 'task') {
      const spec: TaskSpec = { role, priority, payload: p.value, max_attempts: Number(maxAttempts) || undefined, client_key: key }
      void run(async () => {
        const t = await actions.submitTask(spec)
        return { kind: 'ok', text: `Accepted ${ROLE_STYLE[t.role]?.short ?? t.role} task ${shortId(t.id)}`, taskId: t.id }
      })
    } else {
      void run(async () => {
        const r = await actions.startPipeline({ payload: p.value, priority, client_key: key })
        return { kind: 'ok', text: `Pipeline ${shortId(r.pipeline_id)} started`, taskId: r.task.id }
      })
    }
  }

  const tabs: { t: Tab; label: string }[] = [
    { t: 'task', label: 'Task' },
    { t: 'pipeline', label: 'Pipeline' },
    { t: 'simulate', label: 'Simulate load' },
  ]
  const submitLabel = tab === 'task' ? 'Submit task' : tab === 'pipeline' ? 'Start pipeline' : 'Start simulation'

  return (
    <section className="panel p-4" aria-label="Controls">
      <div className="mb-3 flex items-center justify-between">
        <h2 className="text-sm font-semibold text-slate-200">Controls</h2>
      </div>
      <div className="mb-3 flex rounded-md bg-slate-950/60 p-0.5 ring-1 ring-slate-800" role="tablist" aria-label="Control forms">
        {tabs.map(({ t, label }) => (
          <button
            key={t}
            type="button"
            role="tab"
            id={`${uid}-tab-${t}`}
            aria-selected={tab === t}
            aria-controls={`${uid}-panel`}
            onClick={() => {
              setTab(t)
              setOutcome(null)
            }}
            className={`flex-1 rounded px-2 py-1 text-xs font-medium transition-colors focus-ring ${tab === t ? 'bg-slate-700 text-slate-50' : 'text-slate-400 hover:text-slate-200'}`}
          >
            {label}
          </button>
        ))}
      </div>
      <form id={`${uid}-panel`} role="tabpanel" aria-labelledby={`${uid}-tab-${tab}`} onSubmit={onSubmit} className="flex flex-col gap-2.5" data-testid={`form-${tab}`}>
        {tab === 'task' && (
          <div className="grid grid-cols-2 gap-2.5">
            <Field label="Role" htmlFor={`${uid}-role`}>
              <select id={`${uid}-role`} name="role" className="input" value={role} onChange={(e) => setRole(e.target.value as Role)}>
                {ROLES.map((r) => (
                  <option key={r} value={r}>
                    {r}
                  </option>
                ))}
              </select>
            </Field>
            <Field label="Priority" htmlFor={`${uid}-prio`}>
              <PrioritySelect id={`${uid}-prio`} value={priority} onChange={setPriority} />
            </Field>
            <Field label="Max attempts" htmlFor={`${uid}-max`}>
              <input id={`${uid}-max`} name="max_attempts" className="input" type="number" min={1} max={25} value={maxAttempts} onChange={(e) => setMaxAttempts(e.target.value)} />
            </Field>
            <Field label="Idempotency key" htmlFor={`${uid}-key`}>
              <input id={`${uid}-key`} name="client_key" className="input" placeholder="optional" value={clientKey} onChange={(e) => setClientKey(e.target.value)} />
            </Field>
          </div>
        )}
        {tab === 'pipeline' && (
          <div className="grid grid-cols-2 gap-2.5">
            <Field label="Priority" htmlFor={`${uid}-pprio`}>
              <PrioritySelect id={`${uid}-pprio`} value={priority} onChange={setPriority} />
            </Field>
            <Field label="Idempotency key" htmlFor={`${uid}-pkey`}>
              <input id={`${uid}-pkey`} className="input" placeholder="optional" value={clientKey} onChange={(e) => setClientKey(e.target.value)} />
            </Field>
            <p className="col-span-2 text-[11px] text-slate-500">
              Runs <span className={ROLE_STYLE.ARCHITECT.text}>ARCHITECT</span> → <span className={ROLE_STYLE.DEVELOPER.text}>DEVELOPER</span> → <span className={ROLE_STYLE.QA.text}>QA</span>, each stage enqueued when the previous completes.
            </p>
          </div>
        )}
        {tab !== 'simulate' && (
          <Field label="Payload (JSON)" htmlFor={`${uid}-payload`}>
            <textarea id={`${uid}-payload`} name="payload" className="input h-20 resize-y font-mono text-xs" spellCheck={false} value={payload} onChange={(e) => setPayload(e.target.value)} />
            <span className="text-[11px] text-slate-500">
              Simulated workers read <code className="font-mono text-slate-400">{'"sim": {"work_ms": 50, "fail": true, "fail_attempts": 1}'}</code>
            </span>
          </Field>
        )}
        {tab === 'simulate' && (
          <div className="grid grid-cols-3 gap-2.5">
            <Field label="Rate (tasks/s)" htmlFor={`${uid}-rate`}>
              <input id={`${uid}-rate`} className="input" type="number" min={1} value={simRate} onChange={(e) => setSimRate(e.target.value)} />
            </Field>
            <Field label="Seconds" htmlFor={`${uid}-secs`}>
              <input id={`${uid}-secs`} className="input" type="number" min={1} value={simSeconds} onChange={(e) => setSimSeconds(e.target.value)} />
            </Field>
            <Field label="Pipelines" htmlFor={`${uid}-frac`}>
              <input id={`${uid}-frac`} className="input" type="number" min={0} max={1} step={0.05} value={simPipelines} onChange={(e) => setSimPipelines(e.target.value)} />
            </Field>
            <p className="col-span-3 text-[11px] text-slate-500">The producer generates the load itself; watch the board switch to High Traffic Mode above the threshold.</p>
          </div>
        )}
        <div className="flex items-center gap-3">
          <button type="submit" className="btn-primary" disabled={busy} data-testid="submit">
            {busy ? 'Sending…' : submitLabel}
          </button>
          {outcome?.kind === 'ok' && (
            <span className="flex min-w-0 items-center gap-2 text-xs text-emerald-300" role="status" data-testid="outcome">
              <span className="truncate">{outcome.text}</span>
              {outcome.taskId && (
                <button type="button" className="shrink-0 text-sky-400 underline-offset-2 hover:underline focus-ring rounded" onClick={() => outcome.taskId && onOpenTask(outcome.taskId)} data-task-id={outcome.taskId}>
                  Open
                </button>
              )}
            </span>
          )}
        </div>
        {outcome?.kind === 'error' && (
          <p className="rounded-md border border-rose-800/60 bg-rose-950/40 px-2.5 py-1.5 text-xs text-rose-200" role="alert" data-testid="form-error">
            {outcome.text}
          </p>
        )}
      </form>
    </section>
  )
})
