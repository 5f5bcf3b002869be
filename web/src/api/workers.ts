// Workers: the heartbeats seen recently.
import { request } from './http'
import type { WorkerInfo } from './types'

export async function listWorkers(signal?: AbortSignal): Promise<WorkerInfo[]> {
  const res = await request<{ workers: WorkerInfo[] }>('/workers', { signal })
  return res.workers
}
