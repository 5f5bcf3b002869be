#!/usr/bin/env node
// DEV FAKE — NOT the mesh. A small, in-memory, contract-faithful stand-in for
// `mesh dev` (docs/contracts.md: HTTP API, WebSocket frames, Stats,
// WorkerInfo, task.Event), used only to develop the dashboard and its
// e2e/perf scripts while the real stack is being built. CI runs those scripts
// against the real producer; nothing here is durable, nothing is fast on
// purpose, and no result measured against it says anything about the mesh.
//
//   node e2e/fake-mesh.mjs            # http://127.0.0.1:8080, serves web/dist at /
//
// Env: FAKE_PORT (8080), FAKE_HOST (127.0.0.1), FAKE_STATIC (web/dist),
// FAKE_TOKEN (bearer token required for mutating routes and /ws when set),
// FAKE_WORK_MS (simulated work per task, default 8), FAKE_WORKERS (4).
//
// Simulated work follows the real worker's payload convention (mesh/worker/sim.go):
// {"sim": {"work_ms": 50, "fail": true, "fail_attempts": 2}} — "fail" fails
// every attempt (retried with backoff, then dead-lettered: how e2e.mjs makes a
// dead letter), "fail_attempts" fails the first N attempts.

import http from 'node:http'
import fs from 'node:fs'
import path from 'node:path'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { WebSocketServer } from 'ws'

const here = path.dirname(fileURLToPath(import.meta.url))
const PORT = Number(process.env.FAKE_PORT ?? 8080)
const HOST = process.env.FAKE_HOST ?? '127.0.0.1'
const STATIC = path.resolve(process.env.FAKE_STATIC ?? path.join(here, '..', 'dist'))
const TOKEN = process.env.FAKE_TOKEN ?? ''
const WORK_MS = Number(process.env.FAKE_WORK_MS ?? 8)
const NUM_WORKERS = Number(process.env.FAKE_WORKERS ?? 4)

const ROLES = ['ARCHITECT', 'DEVELOPER', 'QA']
const MAX_KEPT = 50_000 // finished tasks kept for lookups; older ones are forgotten
const MAX_BODY = 1 << 20
const TICK_MS = 100
const SEND_BUFFER_FRAMES = 8
const MAX_TICK_TASKS = 2000 // distinct tasks per frame; the rest are counted as omitted

// ---------------------------------------------------------------- clock

const nowUs = () => Math.floor((performance.timeOrigin + performance.now()) * 1000)
const iso = (us) => (us ? new Date(us / 1000).toISOString() : undefined)

// ---------------------------------------------------------------- state

/** FIFO with O(1) shift (Array#shift is O(n) on big arrays). */
class Queue {
  items = []
  head = 0
  get length() {
    return this.items.length - this.head
  }
  push(v) {
    this.items.push(v)
  }
  peek() {
    return this.items[this.head]
  }
  shift() {
    if (this.head >= this.items.length) return undefined
    const v = this.items[this.head++]
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return v
  }
}

/** @type {Map<string, any>} id → task record (times in µs) */
const tasks = new Map()
const byClientKey = new Map()
const pending = Object.fromEntries(ROLES.map((r) => [r, [new Queue(), new Queue(), new Queue(), new Queue()]])) // per priority FIFO
const delayed = new Set() // ids waiting for a retry
const active = new Set()
const dead = new Set()
const finished = new Queue() // ids of completed tasks, oldest first (for eviction)
let paused = false

const totals = { submitted: 0, accepted: 0, rejected: 0, completed: 0, failed: 0, retried: 0, dead: 0 }
const perSecond = [] // {sec, submitted, completed, events}
const latencySamples = new Queue() // {atMs, ms}
let latencyCache = { p50: 0, p90: 0, p99: 0, at: 0 }

const workers = Array.from({ length: NUM_WORKERS }, (_, i) => ({
  id: `fake-${['arch', 'dev', 'qa', 'all'][i % 4]}-${i + 1}`,
  roles: i % 4 === 3 ? [...ROLES] : [ROLES[i % 4]],
  rss_bytes: 48 << 20,
  limit_bytes: 512 << 20,
  soft_limit_bytes: 384 << 20,
  health_score: 0.9,
  cpu_percent: 0,
  inflight: 0,
  paused: false,
  started_at: new Date().toISOString(),
  seen_at: new Date().toISOString(),
  version: 'dev-fake',
}))
let workersChanged = true

function bucket() {
  const sec = Math.floor(Date.now() / 1000)
  let b = perSecond[perSecond.length - 1]
  if (!b || b.sec !== sec) {
    b = { sec, submitted: 0, completed: 0, events: 0 }
    perSecond.push(b)
    while (perSecond.length > 15) perSecond.shift()
  }
  return b
}

// ---------------------------------------------------------------- events and fan-out

/** @type {Set<{ws: import('ws').WebSocket, pending: Map<string, any>, events: number, dropped: number, drops: number, workers: boolean}>} */
const clients = new Set()
const completionClients = new Set()
let seq = 0

function eventOf(t) {
  const e = { id: t.id, role: t.role, priority: t.priority, state: t.state, created_us: t.created_us, at_us: t.updated_us }
  if (t.attempts) e.attempts = t.attempts
  if (t.worker_id) e.worker_id = t.worker_id
  if (t.pipeline_id) e.pipeline_id = t.pipeline_id
  if (t.stage) e.stage = t.stage
  if (t.last_error) e.error = t.last_error
  if (t.started_us) e.started_us = t.started_us
  if (t.completed_us) e.completed_us = t.completed_us
  return e
}

const terminalBatch = []

function publish(t) {
  const e = eventOf(t)
  bucket().events++
  for (const c of clients) {
    c.pending.set(e.id, e)
    c.events++
  }
  if (t.state === 'completed' || t.state === 'dead') terminalBatch.push(e)
}

function stats() {
  const now = Math.floor(Date.now() / 1000)
  // Rates over the last 3 full seconds.
  const win = perSecond.filter((b) => b.sec < now && b.sec >= now - 3)
  const n = Math.max(1, win.length)
  const sum = (k) => win.reduce((a, b) => a + b[k], 0) / n
  if (Date.now() - latencyCache.at > 1000) {
    const cut = Date.now() - 10_000
    while (latencySamples.length && latencySamples.peek().atMs < cut) latencySamples.shift()
    const v = new Float64Array(latencySamples.items.length - latencySamples.head)
    for (let i = latencySamples.head, j = 0; i < latencySamples.items.length; i++, j++) v[j] = latencySamples.items[i].ms
    v.sort()
    const q = (p) => (v.length ? v[Math.min(v.length - 1, Math.floor(p * v.length))] : 0)
    latencyCache = { p50: q(0.5), p90: q(0.9), p99: q(0.99), at: Date.now() }
  }
  const depth = {}
  for (const r of ROLES) depth[r] = { pending: pending[r].reduce((a, l) => a + l.length, 0), active: 0, delayed: 0, dead: 0 }
  for (const id of active) depth[tasks.get(id).role].active++
  for (const id of delayed) depth[tasks.get(id).role].delayed++
  for (const id of dead) depth[tasks.get(id).role].dead++
  const queued = ROLES.reduce((a, r) => a + depth[r].pending, 0)
  return {
    ts_ms: Date.now(),
    totals: { ...totals },
    rates: { submitted_per_s: sum('submitted'), completed_per_s: sum('completed'), events_per_s: sum('events') },
    latency_ms: { p50: latencyCache.p50, p90: latencyCache.p90, p99: latencyCache.p99 },
    depth,
    admission: { paused, state: queued > 200_000 ? 'overloaded' : 'open' },
  }
}

function send(c, frame) {
  // Bounded send buffer: a slow client loses frames (counted), then the connection.
  if (c.ws.bufferedAmount > SEND_BUFFER_FRAMES * 256 * 1024) {
    c.dropped++
    c.drops++
    if (c.drops >= 50) c.ws.terminate()
    return false
  }
  c.drops = 0
  c.ws.send(JSON.stringify(frame))
  return true
}

setInterval(() => {
  if (terminalBatch.length) {
    const msg = JSON.stringify({ type: 'completions', events: terminalBatch.splice(0) })
    for (const ws of completionClients) ws.send(msg)
  }
  if (clients.size === 0) {
    workersChanged = false
    return
  }
  const st = stats()
  for (const c of clients) {
    if (c.pending.size === 0 && !workersChanged) continue
    let tasks = [...c.pending.values()]
    const omitted = Math.max(0, tasks.length - MAX_TICK_TASKS)
    if (omitted) tasks = tasks.slice(omitted)
    const frame = { type: 'batch', seq: ++seq, stats: st, tasks, events: c.events, dropped: c.dropped }
    if (omitted) frame.omitted = omitted
    if (workersChanged) frame.workers = workers
    if (send(c, frame)) {
      c.pending.clear()
      c.events = 0
    }
  }
  workersChanged = false
}, TICK_MS)

// ---------------------------------------------------------------- the simulated workers

function enqueue(t) {
  pending[t.role][t.priority].push(t.id)
}

function forget() {
  while (finished.length > MAX_KEPT) {
    const id = finished.shift()
    const t = tasks.get(id)
    if (t && t.state === 'completed') {
      tasks.delete(id)
      if (t.client_key) byClientKey.delete(t.client_key)
    }
  }
}

function simOf(payload) {
  const sim = payload && typeof payload === 'object' ? payload.sim : undefined
  return sim && typeof sim === 'object' ? sim : {}
}

function claim(role, max) {
  const out = []
  const lists = pending[role]
  for (let p = 0; p < 4 && out.length < max; p++) {
    const l = lists[p]
    while (l.length && out.length < max) out.push(l.shift())
  }
  return out
}

function finish(t, worker) {
  const now = nowUs()
  active.delete(t.id)
  worker.inflight = Math.max(0, worker.inflight - 1)
  const sim = simOf(t.payload)
  const fails = sim.fail === true || (Number(sim.fail_attempts) || 0) >= t.attempts
  if (!fails) {
    t.state = 'completed'
    t.completed_us = now
    t.updated_us = now
    totals.completed++
    bucket().completed++
    latencySamples.push({ atMs: Date.now(), ms: (now - t.created_us) / 1000 })
    while (latencySamples.length > 100_000) latencySamples.shift()
    publish(t)
    finished.push(t.id)
    if (t.pipeline_id && t.stage < 3) {
      const next = newTask({ role: ROLES[t.stage], priority: t.priority, payload: t.payload }, { pipeline_id: t.pipeline_id, stage: t.stage + 1 })
      enqueue(next)
      publish(next)
    }
    forget()
    return
  }
  t.last_error = sim.fail ? 'simulated failure (payload asks every attempt to fail)' : `simulated failure (payload asks ${sim.fail_attempts} attempts to fail)`
  t.updated_us = now
  totals.failed++
  if (t.attempts >= t.max_attempts) {
    t.state = 'dead'
    t.completed_us = now
    dead.add(t.id)
    totals.dead++
    publish(t)
    return
  }
  t.state = 'failed'
  const backoff = 100 * 2 ** (t.attempts - 1)
  t.run_us = now + backoff * 1000
  delayed.add(t.id)
  publish(t)
  setTimeout(() => {
    if (!delayed.delete(t.id) || t.state !== 'failed') return
    totals.retried++
    enqueue(t)
  }, backoff)
}

function work() {
  for (const w of workers) {
    if (w.paused) continue
    const room = 64 - w.inflight
    if (room <= 0) continue
    for (const role of w.roles) {
      const ids = claim(role, Math.ceil(room / w.roles.length))
      for (const id of ids) {
        const t = tasks.get(id)
        if (!t || t.state === 'dead' || t.state === 'completed') continue
        const now = nowUs()
        t.state = 'active'
        t.attempts++
        t.worker_id = w.id
        t.started_us = now
        t.updated_us = now
        active.add(id)
        w.inflight++
        publish(t)
        const ms = Number(simOf(t.payload).work_ms)
        setTimeout(() => finish(t, w), Number.isFinite(ms) && ms >= 0 ? ms : WORK_MS * (0.5 + Math.random()))
      }
    }
  }
}
setInterval(work, 5)

setInterval(() => {
  const load = active.size
  for (const w of workers) {
    w.rss_bytes = Math.round((48 << 20) + load * 40_000 + Math.random() * (4 << 20))
    w.health_score = Math.max(0, Math.min(1, 1 - w.rss_bytes / w.limit_bytes))
    w.cpu_percent = Math.min(100, 2 + w.inflight * 1.5 + Math.random() * 3)
    w.seen_at = new Date().toISOString()
  }
  workersChanged = true
}, 1000)

// ---------------------------------------------------------------- HTTP API

function newTask(spec, extra = {}) {
  const now = nowUs()
  const t = {
    id: randomUUID(),
    client_key: spec.client_key || undefined,
    role: spec.role,
    priority: spec.priority ?? 2,
    state: 'pending',
    attempts: 0,
    max_attempts: spec.max_attempts || 3,
    payload: spec.payload ?? {},
    worker_id: undefined,
    pipeline_id: extra.pipeline_id,
    stage: extra.stage ?? 0,
    last_error: undefined,
    created_us: now,
    started_us: 0,
    completed_us: 0,
    run_us: 0,
    updated_us: now,
  }
  tasks.set(t.id, t)
  if (t.client_key) byClientKey.set(t.client_key, t)
  return t
}

function wire(t) {
  return {
    id: t.id,
    client_key: t.client_key,
    role: t.role,
    priority: t.priority,
    state: t.state,
    attempts: t.attempts,
    max_attempts: t.max_attempts,
    payload: t.payload,
    worker_id: t.worker_id,
    pipeline_id: t.pipeline_id,
    stage: t.stage || undefined,
    last_error: t.last_error,
    created_at: iso(t.created_us),
    started_at: iso(t.started_us),
    completed_at: iso(t.completed_us),
    run_at: t.state === 'failed' ? iso(t.run_us) : undefined,
    updated_at: iso(t.updated_us),
  }
}

class HttpError extends Error {
  constructor(status, code, message, field, retryAfter) {
    super(message)
    Object.assign(this, { status, code, field, retryAfter })
  }
}

function validate(spec, i) {
  const at = (f) => (i === undefined ? f : `tasks[${i}].${f}`)
  if (typeof spec !== 'object' || spec === null) throw new HttpError(422, 'validation', `${at('task')}: must be an object`, at('task'))
  if (!ROLES.includes(spec.role)) throw new HttpError(422, 'validation', `${at('role')}: unknown role ${JSON.stringify(spec.role ?? '')} (want ARCHITECT, DEVELOPER or QA)`, at('role'))
  if (spec.priority !== undefined && (!Number.isInteger(spec.priority) || spec.priority < 0 || spec.priority > 3))
    throw new HttpError(422, 'validation', `${at('priority')}: priority ${spec.priority} out of range (want 0 to 3)`, at('priority'))
  if (spec.max_attempts !== undefined && spec.max_attempts !== 0 && (!Number.isInteger(spec.max_attempts) || spec.max_attempts < 1 || spec.max_attempts > 25))
    throw new HttpError(422, 'validation', `${at('max_attempts')}: max_attempts ${spec.max_attempts} out of range (want 1 to 25)`, at('max_attempts'))
  if (spec.payload !== undefined && JSON.stringify(spec.payload).length > 64 << 10)
    throw new HttpError(413, 'too_large', `${at('payload')}: payload is too large (limit 65536)`, at('payload'))
}

function admit(n) {
  totals.submitted += n
  bucket().submitted += n
  if (paused) {
    totals.rejected += n
    throw new HttpError(503, 'unavailable', 'admission paused by an operator', undefined, 1)
  }
}

function accept(t) {
  totals.accepted++
  enqueue(t)
  publish(t)
}

async function readJSON(req) {
  const type = req.headers['content-type'] ?? ''
  if (!type.startsWith('application/json')) throw new HttpError(415, 'unsupported_media_type', 'Content-Type must be application/json')
  let size = 0
  const chunks = []
  for await (const c of req) {
    size += c.length
    if (size > MAX_BODY) throw new HttpError(413, 'too_large', `request body exceeds ${MAX_BODY} bytes`)
    chunks.push(c)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') return {}
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new HttpError(400, 'bad_json', `malformed JSON: ${err.message}`)
  }
}

function json(res, status, body, headers = {}) {
  const data = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), ...headers })
  res.end(data)
}

function getDead(id) {
  const t = tasks.get(id)
  if (!t || t.state !== 'dead') throw new HttpError(404, 'not_found', `no dead task ${id}`)
  return t
}

function requeue(t) {
  dead.delete(t.id)
  t.state = 'pending'
  t.attempts = 0
  t.last_error = undefined
  t.completed_us = 0
  t.updated_us = nowUs()
  enqueue(t)
  publish(t)
}

function page(list, url) {
  const limit = Math.min(500, Math.max(1, Number(url.searchParams.get('limit') ?? 100) || 100))
  const cursor = Number(url.searchParams.get('cursor') ?? 0) || 0
  const slice = list.slice(cursor, cursor + limit)
  const next = cursor + limit < list.length ? String(cursor + limit) : undefined
  return { tasks: slice.map(wire), next_cursor: next }
}

function newestFirst(filter) {
  const out = []
  for (const t of tasks.values()) if (filter(t)) out.push(t)
  return out.sort((a, b) => b.created_us - a.created_us)
}

let simulation = null

function simulate(rate, seconds, fraction) {
  if (simulation) clearInterval(simulation)
  const end = Date.now() + seconds * 1000
  let carry = 0
  simulation = setInterval(() => {
    if (Date.now() > end) {
      clearInterval(simulation)
      simulation = null
      return
    }
    carry += rate / 20
    const n = Math.floor(carry)
    carry -= n
    for (let i = 0; i < n; i++) {
      try {
        admit(1)
      } catch {
        continue
      }
      const pipe = Math.random() < fraction
      const t = pipe
        ? newTask({ role: 'ARCHITECT', payload: { simulated: true } }, { pipeline_id: randomUUID(), stage: 1 })
        : newTask({ role: ROLES[Math.floor(Math.random() * 3)], priority: Math.floor(Math.random() * 4), payload: { simulated: true } })
      accept(t)
    }
  }, 50)
}

function authorized(req, url) {
  if (!TOKEN) return true
  const h = req.headers.authorization ?? ''
  return h === `Bearer ${TOKEN}` || url.searchParams.get('token') === TOKEN
}

async function api(req, res, url) {
  const p = url.pathname.replace(/^\/api\/v1/, '')
  const m = req.method
  const mutating = m !== 'GET' && m !== 'HEAD'
  if (mutating && !authorized(req, url)) throw new HttpError(401, 'unauthorized', 'missing or wrong bearer token')
  let match
  if (p === '/tasks' && m === 'POST') {
    const spec = await readJSON(req)
    const key = req.headers['idempotency-key'] || spec.client_key
    if (key) spec.client_key = key
    validate(spec)
    if (key && byClientKey.has(key)) {
      const t = byClientKey.get(key)
      if (t.role !== spec.role) throw new HttpError(409, 'conflict', `client_key ${JSON.stringify(key)} was used for a different task`, 'client_key')
      return json(res, 200, { task: wire(t) })
    }
    admit(1)
    const t = newTask(spec)
    accept(t)
    return json(res, 202, { task: wire(t) })
  }
  if (p === '/tasks/batch' && m === 'POST') {
    const body = await readJSON(req)
    if (!Array.isArray(body.tasks) || body.tasks.length === 0) throw new HttpError(422, 'validation', 'tasks: want 1 to 1000 tasks', 'tasks')
    if (body.tasks.length > 1000) throw new HttpError(413, 'too_large', `tasks: ${body.tasks.length} tasks (limit 1000)`, 'tasks')
    body.tasks.forEach((s, i) => validate(s, i))
    admit(body.tasks.length)
    const out = body.tasks.map((s) => newTask(s))
    out.forEach(accept)
    return json(res, 202, { tasks: out.map(wire) })
  }
  if (p === '/pipelines' && m === 'POST') {
    const body = await readJSON(req)
    validate({ role: 'ARCHITECT', priority: body.priority, payload: body.payload })
    admit(1)
    const pid = randomUUID()
    const t = newTask({ role: 'ARCHITECT', priority: body.priority, payload: body.payload, client_key: body.client_key }, { pipeline_id: pid, stage: 1 })
    accept(t)
    return json(res, 202, { pipeline_id: pid, task: wire(t) })
  }
  if ((match = p.match(/^\/tasks\/([^/]+)$/)) && m === 'GET') {
    const t = tasks.get(decodeURIComponent(match[1]))
    if (!t) throw new HttpError(404, 'not_found', `no task ${match[1]}`)
    return json(res, 200, { task: wire(t) })
  }
  if (p === '/tasks' && m === 'GET') {
    const state = url.searchParams.get('state')
    const role = url.searchParams.get('role')
    return json(res, 200, page(newestFirst((t) => (!state || t.state === state) && (!role || t.role === role)), url))
  }
  if (p === '/stats' && m === 'GET') return json(res, 200, stats())
  if (p === '/workers' && m === 'GET') return json(res, 200, { workers })
  if (p === '/dead' && m === 'GET') {
    const role = url.searchParams.get('role')
    return json(res, 200, page(newestFirst((t) => t.state === 'dead' && (!role || t.role === role)), url))
  }
  if ((match = p.match(/^\/dead\/([^/]+)\/requeue$/)) && m === 'POST') {
    const t = getDead(decodeURIComponent(match[1]))
    requeue(t)
    return json(res, 200, { task: wire(t) })
  }
  if (p === '/dead/requeue' && m === 'POST') {
    const role = url.searchParams.get('role')
    let n = 0
    for (const id of [...dead]) {
      const t = tasks.get(id)
      if (!role || t.role === role) {
        requeue(t)
        n++
      }
    }
    return json(res, 200, { requeued: n })
  }
  if ((match = p.match(/^\/dead\/([^/]+)$/)) && m === 'DELETE') {
    const t = getDead(decodeURIComponent(match[1]))
    dead.delete(t.id)
    tasks.delete(t.id)
    return json(res, 200, { purged: 1 })
  }
  if (p === '/dead' && m === 'DELETE') {
    const role = url.searchParams.get('role')
    let n = 0
    for (const id of [...dead]) {
      const t = tasks.get(id)
      if (!role || t.role === role) {
        dead.delete(id)
        tasks.delete(id)
        n++
      }
    }
    return json(res, 200, { purged: n })
  }
  if (p === '/admission' && m === 'GET') return json(res, 200, { paused })
  if (p === '/admission' && m === 'PUT') {
    const body = await readJSON(req)
    if (typeof body.paused !== 'boolean') throw new HttpError(422, 'validation', 'paused: want true or false', 'paused')
    paused = body.paused
    return json(res, 200, { paused })
  }
  if (p === '/simulate' && m === 'POST') {
    const body = await readJSON(req)
    const rate = Number(body.rate)
    const seconds = Number(body.seconds)
    if (!(rate > 0 && rate <= 50_000)) throw new HttpError(422, 'validation', 'rate: want 1 to 50000', 'rate')
    if (!(seconds > 0 && seconds <= 3600)) throw new HttpError(422, 'validation', 'seconds: want 1 to 3600', 'seconds')
    simulate(rate, seconds, Number(body.pipeline_fraction ?? 0))
    return json(res, 202, { rate, seconds })
  }
  const known = /^\/(tasks|tasks\/batch|pipelines|stats|workers|dead|admission|simulate)(\/.*)?$/.test(p)
  throw known ? new HttpError(405, 'method_not_allowed', `${m} not allowed on ${url.pathname}`) : new HttpError(404, 'not_found', `no route ${url.pathname}`)
}

const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json' }

function serveStatic(res, url) {
  let file = path.join(STATIC, path.normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, ''))
  if (!file.startsWith(STATIC) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) file = path.join(STATIC, 'index.html')
  if (!fs.existsSync(file)) {
    res.writeHead(404, { 'Content-Type': 'text/plain' })
    res.end(`dev fake: no dashboard build in ${STATIC} (run npm run build)\n`)
    return
  }
  res.writeHead(200, { 'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-cache' })
  fs.createReadStream(file).pipe(res)
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`)
  try {
    if (url.pathname.startsWith('/api/v1/')) return await api(req, res, url)
    if (url.pathname === '/healthz' || url.pathname === '/readyz') return json(res, 200, { status: 'ok', fake: true })
    if (url.pathname === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' })
      return res.end(`# dev fake\nagentmesh_ws_clients ${clients.size}\n`)
    }
    return serveStatic(res, url)
  } catch (err) {
    if (err instanceof HttpError) {
      const headers = err.retryAfter ? { 'Retry-After': String(err.retryAfter) } : {}
      return json(res, err.status, { error: { code: err.code, message: err.message, field: err.field } }, headers)
    }
    console.error(err)
    return json(res, 500, { error: { code: 'error', message: String(err) } })
  }
})

const wss = new WebSocketServer({ noServer: true })
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`)
  if (url.pathname !== '/ws' && url.pathname !== '/ws/completions') return socket.destroy()
  if (!authorized(req, url)) {
    socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n')
    return
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (url.pathname === '/ws/completions') {
      completionClients.add(ws)
      ws.on('close', () => completionClients.delete(ws))
      return
    }
    const c = { ws, pending: new Map(), events: 0, dropped: 0, drops: 0 }
    const recent = []
    for (const t of tasks.values()) recent.push(t)
    recent.sort((a, b) => b.updated_us - a.updated_us)
    ws.send(JSON.stringify({ type: 'snapshot', stats: stats(), workers, tasks: recent.slice(0, 200).map(eventOf) }))
    clients.add(c)
    ws.on('close', () => clients.delete(c))
    ws.on('error', () => clients.delete(c))
  })
})

server.listen(PORT, HOST, () => {
  console.log(`dev fake mesh (NOT the real mesh) on http://${HOST}:${PORT} — dashboard from ${STATIC}`)
})

const stop = () => {
  server.close()
  for (const c of clients) c.ws.terminate()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
