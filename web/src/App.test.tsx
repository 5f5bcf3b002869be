import { act, render, screen, within } from '@testing-library/react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { App, type ApiBundle } from './App'
import { readConfig } from './stream/config'
import { emptyStats } from './stream/stats'
import { batch, ev, snapshot, uuid, worker } from './test/fixtures'
import { fakeSockets } from './test/fakeSocket'

const api: ApiBundle = {
  control: { submitTask: vi.fn(), startPipeline: vi.fn(), simulate: vi.fn() },
  drawer: { getTask: vi.fn(), requeueDead: vi.fn(), purgeDead: vi.fn() },
  dead: { listDead: vi.fn(async () => ({ tasks: [] })), requeueDead: vi.fn(), requeueAllDead: vi.fn(), purgeDead: vi.fn(), purgeAllDead: vi.fn() },
  setAdmission: vi.fn(async (p: boolean) => p),
}

beforeEach(() => {
  vi.useFakeTimers({ shouldAdvanceTime: true })
})
afterEach(() => vi.useRealTimers())

describe('App', () => {
  it('fills the board from the snapshot and batches, and switches to aggregates under load', async () => {
    const { sockets, create } = fakeSockets()
    render(<App config={readConfig('?htm=400')} api={api} socketFactory={create} />)
    expect(screen.getByTestId('connection')).toHaveAttribute('data-state', 'connecting')
    act(() => {
      sockets[0]?.open()
      sockets[0]?.send(snapshot([ev(uuid(1), 'active', 1, 'DEVELOPER')], { workers: [worker('w-1', { paused: true })] }))
      vi.advanceTimersByTime(100)
    })
    expect(screen.getByTestId('connection')).toHaveAttribute('data-state', 'open')
    expect(within(screen.getByTestId('column-active')).getAllByTestId('task-card')).toHaveLength(1)
    expect(screen.getByText('PAUSED')).toBeInTheDocument()

    const stats = { ...emptyStats(), rates: { submitted_per_s: 2000, completed_per_s: 2000, events_per_s: 6000 } }
    act(() => {
      sockets[0]?.send(batch([ev(uuid(2), 'completed', 2)], { events: 600, stats }))
      vi.advanceTimersByTime(100)
    })
    expect(screen.getByTestId('board')).toHaveAttribute('data-mode', 'aggregate')
    expect(screen.getByTestId('htm-badge')).toBeInTheDocument()
  })
})
