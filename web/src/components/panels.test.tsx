import { render, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { ApiError } from '../api/http'
import type { Task } from '../api/types'
import { emptyStats } from '../stream/stats'
import { initialState } from '../stream/reducer'
import { worker } from '../test/fixtures'
import { ControlPanel, type ControlActions } from './ControlPanel'
import { DeadLetters, type DeadActions } from './DeadLetters'
import { KpiStrip } from './KpiStrip'
import { TaskDrawer } from './TaskDrawer'
import { WorkersPanel } from './WorkersPanel'

const task = (over: Partial<Task> = {}): Task => ({
  id: '11111111-2222-4333-8444-555555555555',
  role: 'DEVELOPER',
  priority: 1,
  state: 'dead',
  attempts: 3,
  max_attempts: 3,
  payload: { title: 'ship it', fail: true },
  last_error: 'simulated failure',
  created_at: '2026-11-27T10:00:00.000Z',
  started_at: '2026-11-27T10:00:00.250Z',
  completed_at: '2026-11-27T10:00:01.000Z',
  updated_at: '2026-11-27T10:00:01.000Z',
  ...over,
})

describe('KpiStrip', () => {
  it('shows throughput, latency, admission and depth', () => {
    const s = emptyStats()
    const stats = {
      ...s,
      totals: { ...s.totals, submitted: 1000, accepted: 990, rejected: 10, completed: 900 },
      rates: { submitted_per_s: 750, completed_per_s: 742, events_per_s: 2250 },
      latency_ms: { p50: 3.2, p90: 5, p99: 8.7 },
      depth: { ...s.depth, QA: { pending: 17, active: 4, delayed: 1, dead: 2 } },
    }
    render(<KpiStrip stats={stats} series={initialState(0).series} idle={false} />)
    expect(screen.getByTestId('kpi-throughput')).toHaveTextContent('742')
    expect(screen.getByTestId('kpi-latency')).toHaveTextContent('8.7 ms')
    expect(screen.getByTestId('kpi-admission')).toHaveTextContent('10 rejected')
    expect(screen.getByTestId('kpi-admission')).toHaveTextContent('99.00% of submissions accepted')
    expect(screen.getByTestId('kpi-depth')).toHaveTextContent('17')
  })

  it('shows zero throughput when the mesh is idle', () => {
    const s = emptyStats()
    render(<KpiStrip stats={{ ...s, rates: { ...s.rates, completed_per_s: 500 } }} series={initialState(0).series} idle />)
    expect(screen.getByTestId('kpi-throughput')).toHaveTextContent('0.0')
  })
})

describe('WorkersPanel', () => {
  it('lists roles, RSS, health and backpressure pauses', () => {
    render(<WorkersPanel workers={[worker('w-b', { paused: true, roles: ['QA'] }), worker('w-a')]} nowMs={Date.parse('2026-11-27T10:00:05Z')} />)
    const rows = screen.getAllByTestId('worker')
    expect(rows[0]).toHaveTextContent('w-a')
    expect(rows[1]).toHaveTextContent('PAUSED')
    expect(rows[0]).toHaveTextContent('64 MiB')
    expect(rows[0]).toHaveTextContent('0.88')
    expect(screen.getAllByRole('meter').length).toBe(4)
  })
})

describe('ControlPanel', () => {
  const actions = (): ControlActions => ({
    submitTask: vi.fn(async (spec) => task({ role: spec.role, state: 'pending' })),
    startPipeline: vi.fn(async () => ({ pipeline_id: 'p-1', task: task({ role: 'ARCHITECT' }) })),
    simulate: vi.fn(async (s) => s),
  })

  it('submits a task and offers to open it', async () => {
    const a = actions()
    const onOpen = vi.fn()
    render(<ControlPanel actions={a} onOpenTask={onOpen} />)
    await userEvent.selectOptions(screen.getByLabelText('Role'), 'QA')
    await userEvent.click(screen.getByTestId('submit'))
    expect(a.submitTask).toHaveBeenCalledWith(expect.objectContaining({ role: 'QA', priority: 2, max_attempts: 3, payload: { title: 'Design the billing service' } }))
    expect(await screen.findByTestId('outcome')).toHaveTextContent('Accepted QA task 55555555')
    await userEvent.click(screen.getByRole('button', { name: 'Open' }))
    expect(onOpen).toHaveBeenCalledWith('11111111-2222-4333-8444-555555555555')
  })

  it('shows the server error message', async () => {
    const a = actions()
    a.submitTask = vi.fn(async () => Promise.reject(new ApiError(422, 'validation', 'max_attempts 99 out of range (want 1 to 25)', 'max_attempts')))
    render(<ControlPanel actions={a} onOpenTask={() => {}} />)
    await userEvent.click(screen.getByTestId('submit'))
    expect(await screen.findByRole('alert')).toHaveTextContent('max_attempts 99 out of range (want 1 to 25) (max_attempts)')
  })

  it('rejects a payload that is not JSON before sending', async () => {
    const a = actions()
    render(<ControlPanel actions={a} onOpenTask={() => {}} />)
    const box = screen.getByLabelText('Payload (JSON)')
    await userEvent.clear(box)
    await userEvent.type(box, 'not json')
    await userEvent.click(screen.getByTestId('submit'))
    expect(await screen.findByRole('alert')).toHaveTextContent('payload is not valid JSON')
    expect(a.submitTask).not.toHaveBeenCalled()
  })

  it('starts a simulation', async () => {
    const a = actions()
    render(<ControlPanel actions={a} onOpenTask={() => {}} />)
    await userEvent.click(screen.getByRole('tab', { name: 'Simulate load' }))
    await userEvent.click(screen.getByTestId('submit'))
    expect(a.simulate).toHaveBeenCalledWith({ rate: 200, seconds: 30, pipeline_fraction: 0.2 })
    expect(await screen.findByTestId('outcome')).toHaveTextContent('Simulating 200 tasks/s for 30 s')
  })
})

describe('TaskDrawer', () => {
  it('shows payload, attempts, timeline and last error; requeues a dead task', async () => {
    const t = task()
    const actions = { getTask: vi.fn(async () => t), requeueDead: vi.fn(async () => ({ ...t, state: 'pending' as const })), purgeDead: vi.fn(async () => 1) }
    const onClose = vi.fn()
    render(<TaskDrawer id={t.id} live={undefined} actions={actions} onClose={onClose} />)
    expect(await screen.findByTestId('payload')).toHaveTextContent('"fail": true')
    expect(screen.getByText('3 / 3')).toBeInTheDocument()
    expect(screen.getByTestId('timeline')).toHaveTextContent('Created')
    expect(screen.getByTestId('timeline')).toHaveTextContent('waited 250 ms')
    expect(screen.getByTestId('timeline')).toHaveTextContent('Dead-lettered')
    expect(screen.getByText('simulated failure')).toBeInTheDocument()
    await userEvent.click(screen.getByRole('button', { name: 'Requeue' }))
    expect(actions.requeueDead).toHaveBeenCalledWith(t.id)
    await userEvent.keyboard('{Escape}')
    expect(onClose).toHaveBeenCalled()
  })

  it('says so when the id is unknown', async () => {
    const actions = { getTask: vi.fn(async () => Promise.reject(new ApiError(404, 'not_found', 'task not found'))), requeueDead: vi.fn(), purgeDead: vi.fn() }
    render(<TaskDrawer id="nope" live={undefined} actions={actions} onClose={() => {}} />)
    expect(await screen.findByRole('alert')).toHaveTextContent('No task with id nope')
  })
})

describe('DeadLetters', () => {
  it('lists dead tasks and requeues one', async () => {
    const t = task()
    const a: DeadActions = {
      listDead: vi.fn(async () => ({ tasks: [t] })),
      requeueDead: vi.fn(async () => t),
      requeueAllDead: vi.fn(async () => 1),
      purgeDead: vi.fn(async () => 1),
      purgeAllDead: vi.fn(async () => 1),
    }
    render(<DeadLetters actions={a} total={1} nowMs={Date.now()} onOpen={() => {}} />)
    const row = await screen.findByTestId('dead-row')
    expect(row).toHaveTextContent('simulated failure')
    a.listDead = vi.fn(async () => ({ tasks: [] }))
    await userEvent.click(screen.getByTestId('requeue-one'))
    expect(a.requeueDead).toHaveBeenCalledWith(t.id)
    await waitFor(() => expect(screen.getByTestId('dead-notice')).toHaveTextContent('Requeued 55555555'))
  })

  it('asks for confirmation before requeueing all', async () => {
    const a: DeadActions = {
      listDead: vi.fn(async () => ({ tasks: [task()] })),
      requeueDead: vi.fn(),
      requeueAllDead: vi.fn(async () => 7),
      purgeDead: vi.fn(),
      purgeAllDead: vi.fn(),
    }
    render(<DeadLetters actions={a} total={7} nowMs={Date.now()} onOpen={() => {}} />)
    await screen.findByTestId('dead-row')
    await userEvent.click(screen.getByTestId('requeue-all'))
    expect(a.requeueAllDead).not.toHaveBeenCalled()
    await userEvent.click(screen.getByRole('button', { name: 'Confirm requeue all' }))
    expect(a.requeueAllDead).toHaveBeenCalledWith(undefined)
    expect(await screen.findByTestId('dead-notice')).toHaveTextContent('Requeued 7 tasks')
  })
})
