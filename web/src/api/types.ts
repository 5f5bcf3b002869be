// Wire types of the Agent Mesh HTTP API and WebSocket (docs/contracts.md,
// mesh/task/task.go). Keep them in step with the contract.

export type Role = 'ARCHITECT' | 'DEVELOPER' | 'QA'
export const ROLES: readonly Role[] = ['ARCHITECT', 'DEVELOPER', 'QA']

export type TaskState = 'pending' | 'active' | 'completed' | 'failed' | 'dead'
export const STATES: readonly TaskState[] = ['pending', 'active', 'completed', 'failed', 'dead']

/** 0 (most urgent) to 3. */
export type Priority = 0 | 1 | 2 | 3
export const PRIORITIES: readonly Priority[] = [0, 1, 2, 3]

/** Any JSON value (task payloads are free-form JSON). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** task.Task: one unit of work and its recorded history. */
export interface Task {
  id: string
  client_key?: string
  role: Role
  priority: Priority
  state: TaskState
  attempts: number
  max_attempts: number
  payload: Json
  worker_id?: string
  pipeline_id?: string
  stage?: number
  last_error?: string
  created_at: string
  started_at?: string
  completed_at?: string
  run_at?: string
  updated_at: string
}

/** task.Spec: what a client may set on a new task. */
export interface TaskSpec {
  role: Role
  priority?: Priority
  payload?: Json
  max_attempts?: number
  client_key?: string
}

/** task.Event: one observed transition. Times are Unix microseconds. */
export interface TaskEvent {
  id: string
  role: Role
  priority: Priority
  state: TaskState
  attempts?: number
  worker_id?: string
  pipeline_id?: string
  stage?: number
  error?: string
  created_us: number
  started_us?: number
  completed_us?: number
  at_us: number
}

export interface WorkerInfo {
  id: string
  roles: Role[]
  rss_bytes: number
  limit_bytes: number
  soft_limit_bytes: number
  /** 1 − rss/limit, in [0, 1]. */
  health_score: number
  cpu_percent: number
  inflight: number
  paused: boolean
  started_at: string
  seen_at: string
  version: string
}

export interface Totals {
  submitted: number
  accepted: number
  rejected: number
  completed: number
  failed: number
  retried: number
  dead: number
}

export interface Rates {
  submitted_per_s: number
  completed_per_s: number
  events_per_s: number
}

export interface Latency {
  p50: number
  p90: number
  p99: number
}

export interface RoleDepth {
  pending: number
  active: number
  delayed: number
  dead: number
}

export type AdmissionState = 'open' | 'overloaded' | 'unhealthy'

export interface Stats {
  ts_ms: number
  totals: Totals
  rates: Rates
  latency_ms: Latency
  depth: Partial<Record<Role, RoleDepth>>
  /** roles: per-role admission (a role can shed while others are open). */
  admission: { paused: boolean; state: AdmissionState; roles?: Partial<Record<Role, AdmissionState>> }
}

/** WebSocket frames, server → client. */
export interface SnapshotFrame {
  type: 'snapshot'
  stats: Stats
  workers: WorkerInfo[]
  tasks: TaskEvent[]
}

export interface BatchFrame {
  type: 'batch'
  seq: number
  stats: Stats
  workers?: WorkerInfo[]
  tasks: TaskEvent[]
  events: number
  /** Tasks of the tick left out (more distinct tasks than the server's per-frame cap). */
  omitted?: number
  dropped: number
}

export type Frame = SnapshotFrame | BatchFrame

export interface Page<T> {
  tasks: T[]
  next_cursor?: string
}
