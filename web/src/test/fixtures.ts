// Frame and event builders for tests.
import type { BatchFrame, Role, SnapshotFrame, TaskEvent, TaskState, WorkerInfo } from '../api/types'
import { emptyStats } from '../stream/stats'

let n = 0

export function uuid(i: number): string {
  const hex = i.toString(16).padStart(12, '0')
  return `00000000-0000-4000-8000-${hex}`
}

export function ev(id: string, state: TaskState, atUs: number, role: Role = 'ARCHITECT', extra: Partial<TaskEvent> = {}): TaskEvent {
  return { id, role, priority: 2, state, created_us: 1_000, at_us: atUs, ...extra }
}

export function batch(tasks: TaskEvent[], extra: Partial<BatchFrame> = {}): BatchFrame {
  n++
  return { type: 'batch', seq: n, stats: emptyStats(), tasks, events: tasks.length, dropped: 0, ...extra }
}

export function snapshot(tasks: TaskEvent[], extra: Partial<SnapshotFrame> = {}): SnapshotFrame {
  return { type: 'snapshot', stats: emptyStats(), workers: [], tasks, ...extra }
}

export function worker(id: string, extra: Partial<WorkerInfo> = {}): WorkerInfo {
  return {
    id,
    roles: ['ARCHITECT'],
    rss_bytes: 64 << 20,
    limit_bytes: 512 << 20,
    soft_limit_bytes: 384 << 20,
    health_score: 0.875,
    cpu_percent: 12,
    inflight: 3,
    paused: false,
    started_at: '2026-11-27T10:00:00Z',
    seen_at: '2026-11-27T10:00:01Z',
    version: 'dev',
    ...extra,
  }
}
