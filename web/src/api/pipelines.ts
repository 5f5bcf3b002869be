// Pipelines: ARCHITECT → DEVELOPER → QA, started with one call.
import { request } from './http'
import type { Json, Priority, Task } from './types'

export interface PipelineSpec {
  payload?: Json
  priority?: Priority
  client_key?: string
}

export interface PipelineStarted {
  pipeline_id: string
  /** The ARCHITECT stage. */
  task: Task
}

export function startPipeline(spec: PipelineSpec): Promise<PipelineStarted> {
  return request<PipelineStarted>('/pipelines', { method: 'POST', body: spec })
}
