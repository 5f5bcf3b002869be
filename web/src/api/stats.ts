// Stats: totals, rates, latency, depth, admission.
import { request } from './http'
import type { Stats } from './types'

export function getStats(signal?: AbortSignal): Promise<Stats> {
  return request<Stats>('/stats', { signal })
}
