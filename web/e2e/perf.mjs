#!/usr/bin/env node
// Dashboard performance under load, in headless Chromium, against a running
// mesh (MESH_URL). For each target event rate it loads the profiling build
// (dist-profile: react-dom/profiling + a <Profiler> counting commits on
// window.__meshCommits) twice — buffered (?flush=100, the product) and the
// per-event rendering baseline (?flush=0) — while load flows through the
// real producer's WebSocket, and measures:
//
//   idle_ratio     1 − ΔTaskDuration / ΔTimestamp (CDP Performance.getMetrics):
//                  the share of wall time the renderer's main thread was idle
//   main_thread_cpu_ratio  ΔThreadTime / ΔTimestamp: CPU the main thread used
//                  (less inflated than TaskDuration when other processes compete)
//   commits_per_s  React commits per second (window.__meshCommits)
//   events_per_s   raw events per second the page received (batch.events)
//
// Load: open-loop POSTs of batches to /api/v1/tasks/batch at
// rate / PERF_EVENTS_PER_TASK tasks per second (a task makes pending, active
// and completed events: 3).
//
// Env:
//   MESH_URL               mesh to load and watch (http://127.0.0.1:8080)
//   MESH_API_TOKEN         bearer token, when the mesh wants one
//   PERF_RATES             target events/s, comma-separated ("750,5000")
//   PERF_MODES             "buffered,per-event" (either or both)
//   PERF_SECONDS           measured seconds per run (15)
//   PERF_WARMUP            seconds of load before measuring (4)
//   PERF_EVENTS_PER_TASK   events one task produces (3)
//   PERF_FLUSH_MS          flush interval of the buffered mode (100)
//   PERF_OUT               write the JSON result here (also printed); relative to the caller's directory
//   PERF_SCREENSHOT_DIR    screenshots of each buffered run (e2e/out)
//   PERF_DIST              a profiling build to serve as is (default: dist-profile, rebuilt when src/ is newer)
//   PERF_ASSERT            "1": exit 1 unless the thresholds below hold
//   PERF_MAX_COMMITS       buffered commits/s ceiling (11)
//   PERF_MIN_IDLE          buffered idle floor at the highest rate (0.85)
//   PERF_MIN_RATIO         buffered idle / per-event idle floor at the highest rate (1.2)
//   PERF_MAX_CPU           optional: buffered main-thread CPU ratio ceiling at the highest rate
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { launch } from './lib/browser.mjs'
import { serveBuild } from './lib/serve.mjs'
import { startLoad } from './lib/load.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const web = path.resolve(here, '..')
const env = process.env
const MESH_URL = (env.MESH_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '')
const TOKEN = env.MESH_API_TOKEN ?? ''
const RATES = (env.PERF_RATES ?? '750,5000').split(',').map(Number).filter((n) => n > 0)
const MODES = (env.PERF_MODES ?? 'buffered,per-event').split(',').map((s) => s.trim())
const SECONDS = Number(env.PERF_SECONDS ?? 15)
const WARMUP = Number(env.PERF_WARMUP ?? 4)
const EVENTS_PER_TASK = Number(env.PERF_EVENTS_PER_TASK ?? 3)
const FLUSH_MS = Number(env.PERF_FLUSH_MS ?? 100)
const DIST = path.resolve(web, env.PERF_DIST ?? 'dist-profile')
const SHOTS = path.resolve(web, env.PERF_SCREENSHOT_DIR ?? 'e2e/out')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function reachable() {
  try {
    const res = await fetch(`${MESH_URL}/healthz`)
    return res.ok
  } catch {
    return false
  }
}

/** newest returns the latest modification time under dir (ms). */
function newest(dir) {
  let t = 0
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs)
  }
  return t
}

function ensureBuild() {
  const index = path.join(DIST, 'index.html')
  if (env.PERF_DIST && fs.existsSync(index)) return
  const built = fs.existsSync(index) ? fs.statSync(index).mtimeMs : 0
  if (built > newest(path.join(web, 'src'))) return
  console.error(`perf: building the profiling bundle into ${DIST}`)
  execFileSync('npm', ['run', 'build:profile'], { cwd: web, stdio: 'inherit' })
}

async function metrics(cdp) {
  const { metrics: list } = await cdp.send('Performance.getMetrics')
  const m = Object.fromEntries(list.map((x) => [x.name, x.value]))
  return { task: m.TaskDuration ?? 0, ts: m.Timestamp ?? 0, thread: m.ThreadTime ?? 0 }
}

async function probe(page) {
  return page.evaluate(() => ({
    commits: window.__meshCommits ?? -1,
    events: window.__meshStream?.events ?? 0,
    frames: window.__meshStream?.frames ?? 0,
    flushes: window.__meshStream?.flushes ?? 0,
  }))
}

async function run(context, base, rate, mode) {
  const flush = mode === 'per-event' ? 0 : FLUSH_MS
  const page = await context.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e)))
  await page.goto(`${base}/?flush=${flush}${TOKEN ? `&token=${encodeURIComponent(TOKEN)}` : ''}`)
  await page.waitForSelector('[data-testid="connection"][data-state="open"]', { timeout: 20_000 })
  const first = await probe(page)
  if (first.commits < 0) throw new Error('window.__meshCommits missing: is this the profiling build (npm run build:profile)?')

  const load = startLoad({ meshURL: MESH_URL, tasksPerSecond: rate / EVENTS_PER_TASK, token: TOKEN })
  await sleep(WARMUP * 1000)
  const cdp = await context.newCDPSession(page)
  await cdp.send('Performance.enable', { timeDomain: 'timeTicks' })
  const m0 = await metrics(cdp)
  const p0 = await probe(page)
  const t0 = performance.now()
  const load0 = os.loadavg()[0]
  const sent0 = load.stats.accepted
  await sleep(SECONDS * 1000)
  const m1 = await metrics(cdp)
  const p1 = await probe(page)
  const wall = (performance.now() - t0) / 1000
  const accepted = load.stats.accepted - sent0
  if (mode === 'buffered') {
    fs.mkdirSync(SHOTS, { recursive: true })
    await page.screenshot({ path: path.join(SHOTS, `dashboard-${rate}eps.png`), fullPage: true })
  }
  const totals = load.stop()
  await cdp.detach().catch(() => {})
  await page.close()

  const span = m1.ts - m0.ts
  const busy = span > 0 ? (m1.task - m0.task) / span : 1
  return {
    mode,
    flush_ms: flush,
    target_events_per_s: rate,
    events_per_s: round((p1.events - p0.events) / span, 1),
    idle_ratio: round(1 - busy, 4),
    // CPU the main thread actually used (ThreadTime): less sensitive to a busy machine than wall-clock TaskDuration.
    main_thread_cpu_ratio: round(span > 0 ? (m1.thread - m0.thread) / span : 1, 4),
    commits_per_s: round((p1.commits - p0.commits) / span, 2),
    frames_per_s: round((p1.frames - p0.frames) / span, 2),
    flushes_per_s: round((p1.flushes - p0.flushes) / span, 2),
    tasks_accepted_per_s: round(accepted / wall, 1),
    load: { sent: totals.sent, accepted: totals.accepted, rejected: totals.rejected, errors: totals.errors, skipped: totals.skipped, last_error: totals.lastError || undefined },
    measured_s: round(span, 2),
    // The machine's 1-minute load average around the run (2 cores here): wall-clock idle suffers above ~2.
    loadavg_1m: [round(load0, 2), round(os.loadavg()[0], 2)],
    page_errors: errors,
  }
}

function round(v, d) {
  const k = 10 ** d
  return Math.round(v * k) / k
}

async function main() {
  if (!(await reachable())) {
    console.error(`perf: no mesh answers at ${MESH_URL}/healthz (start \`mesh dev\`, or set MESH_URL)`)
    process.exit(2)
  }
  ensureBuild()
  const server = await serveBuild(DIST, MESH_URL)
  const browser = await launch()
  const runs = []
  try {
    // Warm the browser (code caches, fonts) so the first measured run is not the odd one out.
    const warm = await browser.context.newPage()
    await warm.goto(`${server.url}/?flush=${FLUSH_MS}${TOKEN ? `&token=${encodeURIComponent(TOKEN)}` : ''}`)
    await warm.waitForSelector('[data-testid="connection"][data-state="open"]', { timeout: 20_000 }).catch(() => {})
    await sleep(2000)
    await warm.close()
    for (const rate of RATES) {
      for (const mode of MODES) {
        const r = await run(browser.context, server.url, rate, mode)
        runs.push(r)
        console.error(`perf: ${mode.padEnd(9)} @ ${String(rate).padStart(5)} ev/s target → ${r.events_per_s} ev/s seen, idle ${(r.idle_ratio * 100).toFixed(1)}%, ${r.commits_per_s} commits/s`)
        await sleep(1500) // let the queue drain between runs
      }
    }
  } finally {
    await browser.close()
    await server.close()
  }
  const ratios = {}
  for (const rate of RATES) {
    const b = runs.find((r) => r.target_events_per_s === rate && r.mode === 'buffered')
    const p = runs.find((r) => r.target_events_per_s === rate && r.mode === 'per-event')
    if (b && p) ratios[rate] = round(b.idle_ratio / Math.max(p.idle_ratio, 0.01), 2)
  }
  const result = {
    mesh_url: MESH_URL,
    chromium: '/usr/bin/chromium (headless)',
    cpus: os.cpus().length,
    measured_at: new Date().toISOString(),
    seconds: SECONDS,
    runs,
    idle_ratio_buffered_over_per_event: ratios,
  }
  const text = JSON.stringify(result, null, 2)
  console.log(text)
  if (env.PERF_OUT) {
    // Relative to where `npm run perf` was invoked (npm sets INIT_CWD), not web/.
    const out = path.resolve(env.INIT_CWD ?? process.cwd(), env.PERF_OUT)
    fs.mkdirSync(path.dirname(out), { recursive: true })
    fs.writeFileSync(out, text + '\n')
  }
  if (env.PERF_ASSERT === '1') process.exit(check(result) ? 0 : 1)
}

function check(result) {
  const maxCommits = Number(env.PERF_MAX_COMMITS ?? 11)
  const minIdle = Number(env.PERF_MIN_IDLE ?? 0.85)
  const minRatio = Number(env.PERF_MIN_RATIO ?? 1.2)
  const top = Math.max(...RATES)
  const checks = []
  const expect = (ok, what) => checks.push({ ok, what })
  for (const r of result.runs.filter((x) => x.mode === 'buffered')) {
    const at = `${r.target_events_per_s} ev/s`
    expect(r.commits_per_s <= maxCommits, `${at}: ${r.commits_per_s} commits/s ≤ ${maxCommits}`)
    expect(r.events_per_s >= r.target_events_per_s * 0.5, `${at}: ${r.events_per_s} ev/s reached the page (≥ half the target)`)
    if (r.target_events_per_s === top) expect(r.idle_ratio >= minIdle, `${at}: idle ${r.idle_ratio} ≥ ${minIdle}`)
    if (r.target_events_per_s === top && env.PERF_MAX_CPU) {
      const maxCpu = Number(env.PERF_MAX_CPU)
      expect(r.main_thread_cpu_ratio <= maxCpu, `${at}: main-thread CPU ${r.main_thread_cpu_ratio} ≤ ${maxCpu}`)
    }
  }
  const ratio = result.idle_ratio_buffered_over_per_event[top]
  if (ratio !== undefined) expect(ratio >= minRatio, `${top} ev/s: idle buffered / per-event ${ratio} ≥ ${minRatio}`)
  for (const c of checks) console.error(`perf: ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}`)
  const failed = checks.filter((c) => !c.ok).length
  console.log(`perf: ${checks.length - failed} passed, ${failed} failed`)
  return failed === 0
}

main().catch((err) => {
  console.error(`perf: ${err.stack ?? err}`)
  process.exit(1)
})
