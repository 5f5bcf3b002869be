// Simulate: the producer generates demo load by itself.
import { request } from './http'

export interface SimulateSpec {
  /** Tasks per second. */
  rate: number
  seconds: number
  /** Share of submissions that start a whole pipeline, 0..1. */
  pipeline_fraction?: number
}

export function simulate(spec: SimulateSpec): Promise<SimulateSpec> {
  return request<SimulateSpec>('/simulate', { method: 'POST', body: spec })
}
