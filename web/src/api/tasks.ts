// Tasks: submit one or many, look one up, list with filters.
import { request } from './http'
import type { Page, Role, Task, TaskSpec, TaskState } from './types'

export interface TaskFilter {
  state?: TaskState
  role?: Role
  limit?: number
  cursor?: string
}

/** submitTask POSTs one task; the idempotency key, when given, is sent as the header too. */
export async function submitTask(spec: TaskSpec): Promise<Task> {
  const headers: Record<string, string> = {}
  if (spec.client_key) headers['Idempotency-Key'] = spec.client_key
  const res = await request<{ task: Task }>('/tasks', { method: 'POST', body: spec, headers })
  return res.task
}

/** submitBatch POSTs up to 1000 tasks at once, all or nothing. */
export async function submitBatch(specs: TaskSpec[]): Promise<Task[]> {
  const res = await request<{ tasks: Task[] }>('/tasks/batch', { method: 'POST', body: { tasks: specs } })
  return res.tasks
}

/** getTask fetches one task by id (404 → ApiError code not_found). */
export async function getTask(id: string, signal?: AbortSignal): Promise<Task> {
  const res = await request<{ task: Task }>(`/tasks/${encodeURIComponent(id)}`, { signal })
  return res.task
}

/** listTasks pages through tasks, newest first, with optional filters. */
export function listTasks(f: TaskFilter = {}, signal?: AbortSignal): Promise<Page<Task>> {
  return request<Page<Task>>('/tasks', {
    query: { state: f.state, role: f.role, limit: f.limit, cursor: f.cursor },
    signal,
  })
}
