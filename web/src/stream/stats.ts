// Defensive decoding of the Stats object: every number present, every role
// in the depth map, so the UI never renders "undefined" or NaN.

import { ROLES, type AdmissionState, type Role, type RoleDepth, type Stats } from '../api/types'

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0
}

function rec(v: unknown): Record<string, unknown> {
  return isRecord(v) ? v : {}
}

/** emptyStats is what the header shows before the first frame. */
export function emptyStats(): Stats {
  return normalizeStats(undefined)
}

export function normalizeStats(v: unknown): Stats {
  const s = rec(v)
  const totals = rec(s.totals)
  const rates = rec(s.rates)
  const lat = rec(s.latency_ms)
  const depthIn = rec(s.depth)
  const adm = rec(s.admission)
  const depth: Partial<Record<Role, RoleDepth>> = {}
  for (const role of ROLES) {
    const d = rec(depthIn[role])
    depth[role] = { pending: num(d.pending), active: num(d.active), delayed: num(d.delayed), dead: num(d.dead) }
  }
  const admState = (v: unknown): AdmissionState => (v === 'overloaded' || v === 'unhealthy' ? v : 'open')
  const rolesIn = rec(adm.roles)
  const roles: Partial<Record<Role, AdmissionState>> = {}
  for (const role of ROLES) if (rolesIn[role] !== undefined) roles[role] = admState(rolesIn[role])
  return {
    ts_ms: num(s.ts_ms),
    totals: {
      submitted: num(totals.submitted),
      accepted: num(totals.accepted),
      rejected: num(totals.rejected),
      completed: num(totals.completed),
      failed: num(totals.failed),
      retried: num(totals.retried),
      dead: num(totals.dead),
    },
    rates: {
      submitted_per_s: num(rates.submitted_per_s),
      completed_per_s: num(rates.completed_per_s),
      events_per_s: num(rates.events_per_s),
    },
    latency_ms: { p50: num(lat.p50), p90: num(lat.p90), p99: num(lat.p99) },
    depth,
    admission: { paused: adm.paused === true, state: admState(adm.state), roles },
  }
}

/** depthOf returns one role's depth (zeros when absent). */
export function depthOf(stats: Stats, role: Role): RoleDepth {
  return stats.depth[role] ?? { pending: 0, active: 0, delayed: 0, dead: 0 }
}
