// Open-loop load for the dashboard tests: POSTs batches to
// /api/v1/tasks/batch on a fixed schedule (every tickMs, the tasks due by
// then), without waiting for answers; at most maxInFlight requests are
// outstanding, and ticks that find that many still open are counted as skipped.
import { randomUUID } from 'node:crypto'

const ROLES = ['ARCHITECT', 'DEVELOPER', 'QA']

export function startLoad({ meshURL, tasksPerSecond, tickMs = 100, maxInFlight = 16, token = '' }) {
  const started = performance.now()
  const st = { sent: 0, accepted: 0, rejected: 0, errors: 0, skipped: 0, inFlight: 0, lastError: '' }
  let due = 0
  let n = 0
  let stopped = false
  const headers = { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) }

  async function post(count) {
    const tasks = []
    for (let i = 0; i < count; i++, n++) tasks.push({ role: ROLES[n % 3], priority: n % 4, payload: { load: n, run: started.toFixed(0) } })
    st.inFlight++
    st.sent += count
    try {
      const res = await fetch(`${meshURL}/api/v1/tasks/batch`, { method: 'POST', headers, body: JSON.stringify({ tasks }) })
      if (res.status === 202) st.accepted += count
      else if (res.status === 429 || res.status === 503) st.rejected += count
      else {
        st.errors += count
        st.lastError = `${res.status} ${(await res.text()).slice(0, 200)}`
      }
      if (!res.bodyUsed) await res.arrayBuffer()
    } catch (err) {
      st.errors += count
      st.lastError = String(err)
    } finally {
      st.inFlight--
    }
  }

  const timer = setInterval(() => {
    if (stopped) return
    const elapsed = (performance.now() - started) / 1000
    const target = Math.floor(elapsed * tasksPerSecond)
    let owed = target - due
    if (owed <= 0) return
    if (st.inFlight >= maxInFlight) {
      st.skipped += owed
      due = target
      return
    }
    due = target
    while (owed > 0) {
      const k = Math.min(1000, owed)
      owed -= k
      void post(k)
    }
  }, tickMs)

  return {
    stats: st,
    stop() {
      stopped = true
      clearInterval(timer)
      return { ...st, seconds: (performance.now() - started) / 1000 }
    },
  }
}

export { randomUUID }
