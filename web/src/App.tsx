import { useCallback, useEffect, useMemo, useRef, useState } from 'react'
import { ROLES, STATES, type Role, type TaskEvent, type TaskState } from './api/types'
import * as tasksApi from './api/tasks'
import * as pipelinesApi from './api/pipelines'
import * as deadApi from './api/dead'
import * as admissionApi from './api/admission'
import * as simulateApi from './api/simulate'
import { count, ms, rate } from './lib/format'
import type { StreamConfig } from './stream/config'
import { columnTotal, isIdle, type MeshState } from './stream/reducer'
import { depthOf } from './stream/stats'
import type { SocketFactory } from './stream/socket'
import { useMeshStream } from './stream/useMeshStream'
import { Board, NO_FILTER, type BoardFilter, type ColumnAggregate } from './components/Board'
import { BoardToolbar, type ViewMode } from './components/BoardToolbar'
import { ControlPanel, errorText, type ControlActions } from './components/ControlPanel'
import { DeadLetters, type DeadActions } from './components/DeadLetters'
import { KpiStrip } from './components/KpiStrip'
import { TaskDrawer, type DrawerActions } from './components/TaskDrawer'
import { TimeChart, type ChartSeries } from './components/TimeChart'
import { TopBar } from './components/TopBar'
import { WorkersPanel } from './components/WorkersPanel'

/** Everything the UI asks of the HTTP API (tests pass fakes). */
export interface ApiBundle {
  control: ControlActions
  drawer: DrawerActions
  dead: DeadActions
  setAdmission: (paused: boolean) => Promise<boolean>
}

export const defaultApi: ApiBundle = {
  control: { submitTask: tasksApi.submitTask, startPipeline: pipelinesApi.startPipeline, simulate: simulateApi.simulate },
  drawer: { getTask: tasksApi.getTask, requeueDead: deadApi.requeueDead, purgeDead: deadApi.purgeDead },
  dead: {
    listDead: deadApi.listDead,
    requeueDead: deadApi.requeueDead,
    requeueAllDead: deadApi.requeueAllDead,
    purgeDead: deadApi.purgeDead,
    purgeAllDead: deadApi.purgeAllDead,
  },
  setAdmission: admissionApi.setAdmission,
}

export interface AppProps {
  config: StreamConfig
  api?: ApiBundle
  socketFactory?: SocketFactory
}

const SPARK_SECONDS = 60

function findEvent(st: MeshState, id: string): TaskEvent | undefined {
  for (const s of STATES) {
    const ev = st.columns[s].get(id)
    if (ev) return ev
  }
  return undefined
}

/** sparksOf cuts the last minute of each column's series (recomputed once a second). */
function sparksOf(series: MeshState['series']): Record<TaskState, readonly number[]> {
  const out = {} as Record<TaskState, readonly number[]>
  for (const s of STATES) {
    const v = series.column[s]
    out[s] = v.slice(Math.max(0, v.length - SPARK_SECONDS))
  }
  return out
}

function aggregatesOf(st: MeshState, idle: boolean, sparks: Record<TaskState, readonly number[]>): Record<TaskState, ColumnAggregate> {
  const by = (f: (r: Role) => number): Record<Role, number> => ({ ARCHITECT: f('ARCHITECT'), DEVELOPER: f('DEVELOPER'), QA: f('QA') })
  const stats = st.stats
  const perRole: Record<TaskState, Record<Role, number>> = {
    pending: by((r) => depthOf(stats, r).pending),
    active: by((r) => depthOf(stats, r).active),
    completed: by((r) => st.counters.byRole[r].completed),
    failed: by((r) => depthOf(stats, r).delayed),
    dead: by((r) => depthOf(stats, r).dead),
  }
  const inflight = st.workers.reduce((a, w) => a + w.inflight, 0)
  const notes: Record<TaskState, string> = {
    pending: `${rate(idle ? 0 : stats.rates.submitted_per_s)}/s submitted`,
    active: `${count(inflight)} in flight on ${st.workers.length} worker${st.workers.length === 1 ? "" : "s"}`,
    completed: `${rate(idle ? 0 : stats.rates.completed_per_s)}/s completed`,
    failed: `${count(stats.totals.retried)} retried so far`,
    dead: `${count(stats.totals.dead)} dead-lettered so far`,
  }
  const out = {} as Record<TaskState, ColumnAggregate>
  for (const s of STATES) {
    out[s] = {
      spark: sparks[s],
      sparkLabel: s === 'completed' ? 'completed per second, last minute' : `${s} depth, last minute`,
      note: notes[s],
      perRole: perRole[s],
      perRoleLabel: s === 'completed' ? 'completed this session, by role' : 'now, by role',
    }
  }
  return out
}

export function App({ config, api = defaultApi, socketFactory }: AppProps) {
  const { state, status, reconnectNow, resync } = useMeshStream(config, socketFactory)
  const [view, setView] = useState<ViewMode>('auto')
  const [filter, setFilter] = useState<BoardFilter>(NO_FILTER)
  const [openId, setOpenId] = useState<string | null>(null)
  const [admissionBusy, setAdmissionBusy] = useState(false)
  const [pausedOverride, setPausedOverride] = useState<boolean | null>(null)
  const [banner, setBanner] = useState<string | null>(null)

  const nowSec = Math.floor(state.clockMs / 1000) * 1000
  const idle = isIdle(state)
  const aggregate = view === 'aggregate' || (view === 'auto' && state.highTraffic)
  const paused = pausedOverride ?? state.stats.admission.paused

  // Leaving the aggregate view after the server had to omit tasks from frames:
  // the cards may be stale, so take a fresh snapshot.
  const wasAggregate = useRef(aggregate)
  const omitted = state.counters.omittedSinceSnapshot
  useEffect(() => {
    if (wasAggregate.current && !aggregate && omitted > 0) resync()
    wasAggregate.current = aggregate
  }, [aggregate, omitted, resync])

  const totals = useMemo(() => {
    const t = {} as Record<TaskState, number>
    for (const s of STATES) t[s] = columnTotal(state, s)
    return t
  }, [state.columns, state.stats])
  const sparks = useMemo(() => sparksOf(state.series), [state.series])
  const aggregates = useMemo(() => aggregatesOf(state, idle, sparks), [sparks, state.stats, state.counters.byRole, state.workers, idle])

  const throughput = useMemo<ChartSeries[]>(
    () => [
      { name: 'completed/s', values: state.series.completed, stroke: '#34d399', format: rate, area: true },
      { name: 'submitted/s', values: state.series.submitted, stroke: '#60a5fa', format: rate },
      { name: 'events/s', values: state.series.events, stroke: '#a78bfa', format: rate },
    ],
    [state.series],
  )
  const latency = useMemo<ChartSeries[]>(
    () => [
      { name: 'p50', values: state.series.p50, stroke: '#38bdf8', format: ms, area: true },
      { name: 'p99', values: state.series.p99, stroke: '#fbbf24', format: ms },
    ],
    [state.series],
  )

  const onOpen = useCallback((id: string) => setOpenId(id), [])
  const onClose = useCallback(() => setOpenId(null), [])
  const onMoreDead = useCallback(() => {
    const el = document.getElementById('dead-letters')
    el?.scrollIntoView({ behavior: 'smooth', block: 'start' })
    el?.querySelector<HTMLElement>('button, select')?.focus({ preventScroll: true })
  }, [])

  const toggleAdmission = useCallback(async () => {
    setAdmissionBusy(true)
    setBanner(null)
    try {
      setPausedOverride(await api.setAdmission(!paused))
    } catch (err) {
      setBanner(`Admission: ${errorText(err)}`)
    } finally {
      setAdmissionBusy(false)
    }
  }, [api, paused])
  const onToggleAdmission = useCallback(() => void toggleAdmission(), [toggleAdmission])
  // The stream's stats win once they agree with what the operator set.
  if (pausedOverride !== null && state.stats.admission.paused === pausedOverride && state.synced) {
    setPausedOverride(null)
  }

  const deadTotal = ROLES.reduce((a, r) => a + depthOf(state.stats, r).dead, 0)

  return (
    <div className="min-h-screen">
      <TopBar
        status={status}
        nowMs={nowSec}
        dropped={state.counters.dropped}
        paused={paused}
        admission={state.stats.admission.state}
        admissionBusy={admissionBusy}
        highTraffic={aggregate}
        onRetry={reconnectNow}
        onToggleAdmission={onToggleAdmission}
        onLookup={onOpen}
      />
      <main className="mx-auto flex max-w-[1800px] flex-col gap-4 px-4 py-4 sm:px-6">
        {banner && (
          <div className="rounded-md border border-rose-800/60 bg-rose-950/40 px-3 py-2 text-sm text-rose-200" role="alert">
            {banner}
          </div>
        )}
        {!state.synced && status.kind !== 'open' && (
          <div className="rounded-md border border-slate-800 bg-slate-900/60 px-3 py-2 text-sm text-slate-400" role="status">
            Waiting for the mesh… the dashboard connects to <span className="font-mono text-slate-300">/ws</span> and fills in from the first snapshot.
          </div>
        )}
        <KpiStrip stats={state.stats} series={state.series} idle={idle} />
        <section className="panel flex min-w-0 flex-col gap-3 p-4" aria-label="Task board">
            <div className="flex items-baseline justify-between gap-3">
              <h2 className="text-sm font-semibold text-slate-200">Task board</h2>
              <span className="text-[11px] text-slate-500">
                newest first · {config.visiblePerColumn} cards per column · {config.reducer.cap} kept
              </span>
            </div>
            <BoardToolbar filter={filter} onFilter={setFilter} view={view} onView={setView} highTraffic={aggregate} threshold={config.reducer.highTrafficAt} />
            <Board columns={state.columns} totals={totals} aggregates={aggregates} aggregate={aggregate} visible={config.visiblePerColumn} filter={filter} nowMs={nowSec} onOpen={onOpen} onMoreDead={onMoreDead} />
        </section>
        <div className="grid grid-cols-1 gap-4 lg:grid-cols-2 xl:grid-cols-[minmax(0,1fr)_minmax(0,1fr)_24rem]">
          <TimeChart title="Throughput" series={throughput} seconds={state.series.events.length} axis={rate} />
          <TimeChart title="End-to-end latency" series={latency} seconds={state.series.events.length} axis={ms} />
          <div className="lg:col-span-2 xl:col-span-1">
            <ControlPanel actions={api.control} onOpenTask={onOpen} />
          </div>
        </div>
        <WorkersPanel workers={state.workers} nowMs={nowSec} />
        <DeadLetters actions={api.dead} total={deadTotal} nowMs={nowSec} onOpen={onOpen} />
        <footer className="flex flex-wrap gap-x-4 gap-y-1 pb-4 font-mono text-[11px] text-slate-600">
          <span>{config.flushMs > 0 ? `flush every ${config.flushMs} ms` : 'per-event rendering (baseline)'}</span>
          <span>snapshots {state.counters.snapshots}</span>
          <span>connects {status.connects}</span>
          <span>keys: / lookup · Esc close · Tab/Enter everywhere</span>
          {state.counters.omitted > 0 && <span>omitted by server {count(state.counters.omitted)}</span>}
        </footer>
      </main>
      {openId !== null && <TaskDrawer key={openId} id={openId} live={findEvent(state, openId)} actions={api.drawer} onClose={onClose} />}
    </div>
  )
}
