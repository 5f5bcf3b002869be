// Reconnect delays: exponential growth, capped, with "equal jitter" so a
// fleet of dashboards that lost the same producer does not return in lockstep.

export interface BackoffOptions {
  /** First delay. Defaults to 500 ms. */
  baseMs: number
  /** Upper bound. Defaults to 15 s. */
  maxMs: number
  /** Growth per attempt. Defaults to 2. */
  factor: number
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 15_000, factor: 2 }

/**
 * backoffDelay returns the wait before reconnect attempt `attempt` (0-based):
 * half of the capped exponential delay, plus a random share of the other half.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const exp = Math.min(opts.maxMs, opts.baseMs * Math.pow(opts.factor, Math.max(0, attempt)))
  const half = exp / 2
  return Math.round(half + random() * half)
}
