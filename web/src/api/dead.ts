// Dead letters: tasks out of attempts. List, requeue, purge.
import { request } from './http'
import type { Page, Role, Task } from './types'

export interface DeadFilter {
  role?: Role
  limit?: number
  cursor?: string
}

export function listDead(f: DeadFilter = {}, signal?: AbortSignal): Promise<Page<Task>> {
  return request<Page<Task>>('/dead', { query: { role: f.role, limit: f.limit, cursor: f.cursor }, signal })
}

/** requeueDead moves one dead task back to pending. */
export async function requeueDead(id: string): Promise<Task> {
  const res = await request<{ task: Task }>(`/dead/${encodeURIComponent(id)}/requeue`, { method: 'POST' })
  return res.task
}

/** requeueAllDead requeues every dead task (of one role when given); returns how many. */
export async function requeueAllDead(role?: Role): Promise<number> {
  const res = await request<{ requeued: number }>('/dead/requeue', { method: 'POST', query: { role } })
  return res.requeued
}

/** purgeDead deletes one dead task; returns how many were purged (0 or 1). */
export async function purgeDead(id: string): Promise<number> {
  const res = await request<{ purged: number }>(`/dead/${encodeURIComponent(id)}`, { method: 'DELETE' })
  return res.purged
}

/** purgeAllDead deletes every dead task (of one role when given). */
export async function purgeAllDead(role?: Role): Promise<number> {
  const res = await request<{ purged: number }>('/dead', { method: 'DELETE', query: { role } })
  return res.purged
}
