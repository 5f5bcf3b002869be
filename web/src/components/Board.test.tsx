import { render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { STATES, type TaskEvent, type TaskState } from '../api/types'
import { ev, uuid } from '../test/fixtures'
import { Board, NO_FILTER, type ColumnAggregate } from './Board'

function cols(events: TaskEvent[]): Record<TaskState, Map<string, TaskEvent>> {
  const out = { pending: new Map(), active: new Map(), completed: new Map(), failed: new Map(), dead: new Map() } as Record<TaskState, Map<string, TaskEvent>>
  for (const e of events) out[e.state].set(e.id, e)
  return out
}

const zeros = { pending: 0, active: 0, completed: 0, failed: 0, dead: 0 }
const agg = (n: number): ColumnAggregate => ({ spark: [1, 2, 3], sparkLabel: 'depth', note: '5/s', perRole: { ARCHITECT: n, DEVELOPER: 2, QA: 1 }, perRoleLabel: 'now, by role' })
const aggregates = Object.fromEntries(STATES.map((s) => [s, agg(5)])) as Record<TaskState, ColumnAggregate>

describe('Board', () => {
  it('renders role-coloured cards newest first, capped, with "+N more"', () => {
    const events = Array.from({ length: 12 }, (_, i) => ev(uuid(i), 'pending', i + 1, i % 2 ? 'DEVELOPER' : 'QA'))
    render(<Board columns={cols(events)} totals={{ ...zeros, pending: 1000 }} aggregates={aggregates} aggregate={false} visible={5} filter={NO_FILTER} nowMs={Date.now()} onOpen={() => {}} />)
    const col = screen.getByTestId('column-pending')
    const cards = within(col).getAllByTestId('task-card')
    expect(cards).toHaveLength(5)
    expect(cards[0]).toHaveAttribute('data-task-id', uuid(11))
    expect(cards[0]?.className).toContain('border-l-blue-500')
    expect(cards[1]?.className).toContain('border-l-green-500')
    expect(within(col).getByTestId('more-pending')).toHaveTextContent('+995 more')
    expect(screen.getByTestId('count-pending')).toHaveTextContent('1,000')
  })

  it('filters by role and opens a card with the keyboard', async () => {
    const onOpen = vi.fn()
    const events = [ev(uuid(1), 'active', 1, 'ARCHITECT'), ev(uuid(2), 'active', 2, 'QA')]
    render(<Board columns={cols(events)} totals={{ ...zeros, active: 2 }} aggregates={aggregates} aggregate={false} visible={5} filter={{ ...NO_FILTER, roles: new Set(['ARCHITECT'] as const) }} nowMs={Date.now()} onOpen={onOpen} />)
    const cards = screen.getAllByTestId('task-card')
    expect(cards).toHaveLength(1)
    expect(cards[0]?.className).toContain('border-l-orange-500')
    cards[0]?.focus()
    await userEvent.keyboard('{Enter}')
    expect(onOpen).toHaveBeenCalledWith(uuid(1))
  })

  it('shows aggregates instead of cards in High Traffic Mode', () => {
    render(<Board columns={cols([ev(uuid(1), 'pending', 1)])} totals={{ ...zeros, completed: 123456 }} aggregates={aggregates} aggregate visible={5} filter={NO_FILTER} nowMs={Date.now()} onOpen={() => {}} />)
    expect(screen.queryAllByTestId('task-card')).toHaveLength(0)
    expect(screen.getByTestId('board')).toHaveAttribute('data-mode', 'aggregate')
    expect(within(screen.getByTestId('column-completed')).getAllByText('123.5K').length).toBeGreaterThan(0)
  })
})
