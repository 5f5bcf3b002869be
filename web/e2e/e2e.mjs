#!/usr/bin/env node
// End-to-end: the dashboard served by a running mesh (MESH_URL), driven in
// headless Chromium like an operator would.
//
//   1. the dashboard loads from the mesh and its WebSocket goes live;
//   2. a task submitted through the form reaches the Completed column;
//   3. the task detail (lookup by id) shows it completed, with its payload;
//   4. after a reload the same task is on the board again (snapshot on connect);
//   5. a dead letter (a task whose payload asks every attempt to fail:
//      {"sim":{"fail":true}}, max_attempts 1) shows in the dead-letter panel
//      and is requeued from it;
//   6. pausing admission from the header makes submissions fail with the
//      server's message, and resuming restores them.
//
// Env: MESH_URL (http://127.0.0.1:8080), MESH_API_TOKEN, E2E_TIMEOUT_MS
// (per step, 30000), E2E_FAIL_PAYLOAD ('{"sim":{"fail":true}}'),
// E2E_OUT (screenshots, e2e/out). Prints one line per step and
// "e2e: N passed, M failed"; exits 1 on any failure.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { launch } from './lib/browser.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const MESH_URL = (process.env.MESH_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '')
const TOKEN = process.env.MESH_API_TOKEN ?? ''
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS ?? 30_000)
const FAIL_PAYLOAD = process.env.E2E_FAIL_PAYLOAD ?? '{"sim":{"fail":true}}'
const OUT = path.resolve(here, '..', process.env.E2E_OUT ?? 'e2e/out')

const results = []
const headers = { 'Content-Type': 'application/json', ...(TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {}) }

async function api(method, route, body) {
  const res = await fetch(`${MESH_URL}/api/v1${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  let json
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${json?.error?.message ?? text}`)
  return json
}

async function until(what, f, timeout = TIMEOUT) {
  const end = Date.now() + timeout
  let last
  while (Date.now() < end) {
    try {
      const v = await f()
      if (v) return v
    } catch (err) {
      last = err
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`)
}

async function step(name, f) {
  const t0 = Date.now()
  try {
    await f()
    results.push({ name, ok: true })
    console.log(`ok   ${name} (${Date.now() - t0} ms)`)
  } catch (err) {
    results.push({ name, ok: false, error: err.message })
    console.log(`FAIL ${name}: ${err.message}`)
  }
}

async function live(page) {
  await page.waitForSelector('[data-testid="connection"][data-state="open"]', { timeout: TIMEOUT })
}

async function cardsView(page) {
  // Cards, not High Traffic aggregates, whatever else the mesh is doing.
  await page.getByRole('radio', { name: 'Cards' }).click()
}

async function main() {
  try {
    const res = await fetch(`${MESH_URL}/healthz`)
    if (!res.ok) throw new Error(`status ${res.status}`)
  } catch (err) {
    console.error(`e2e: no mesh answers at ${MESH_URL}/healthz (${err.message}); start \`mesh dev\` or set MESH_URL`)
    process.exit(2)
  }
  fs.mkdirSync(OUT, { recursive: true })
  const browser = await launch({ width: 1600, height: 1000 })
  const page = await browser.context.newPage()
  const pageErrors = []
  page.on('pageerror', (e) => pageErrors.push(String(e)))
  const url = `${MESH_URL}/${TOKEN ? `?token=${encodeURIComponent(TOKEN)}` : ''}`
  let taskId = ''
  let deadId = ''

  try {
    await step('dashboard loads from the mesh and goes live', async () => {
      const res = await page.goto(url)
      if (!res?.ok()) throw new Error(`GET / answered ${res?.status()}`)
      await live(page)
      await page.getByRole('heading', { name: 'Task board' }).waitFor({ timeout: TIMEOUT })
    })

    await step('a task submitted through the form reaches Completed', async () => {
      await cardsView(page)
      const form = page.getByTestId('form-task')
      await form.getByLabel('Role').selectOption('DEVELOPER')
      await form.getByLabel('Payload (JSON)').fill(JSON.stringify({ e2e: 'submit', at: new Date().toISOString() }))
      await form.getByTestId('submit').click()
      const open = page.getByTestId('outcome').getByRole('button', { name: 'Open' })
      await open.waitFor({ timeout: TIMEOUT })
      taskId = (await open.getAttribute('data-task-id')) ?? ''
      if (!/^[0-9a-f-]{36}$/.test(taskId)) throw new Error(`no task id in the outcome (${taskId})`)
      await page.locator(`[data-testid="column-completed"] [data-task-id="${taskId}"]`).waitFor({ timeout: TIMEOUT })
    })

    await step('the task detail shows it completed, with payload and timeline', async () => {
      if (!taskId) throw new Error('no task from the previous step')
      await page.locator('#lookup').fill(taskId)
      await page.locator('#lookup').press('Enter')
      const drawer = page.getByTestId('drawer')
      await drawer.getByTestId('drawer-state').filter({ hasText: 'Completed' }).waitFor({ timeout: TIMEOUT })
      await drawer.getByTestId('payload').filter({ hasText: '"e2e": "submit"' }).waitFor({ timeout: TIMEOUT })
      await drawer.getByTestId('timeline').filter({ hasText: 'Completed' }).waitFor({ timeout: TIMEOUT })
      await page.screenshot({ path: path.join(OUT, 'e2e-task-detail.png') })
      await page.keyboard.press('Escape')
      await drawer.waitFor({ state: 'detached', timeout: TIMEOUT })
    })

    await step('after a reload the same task is on the board (snapshot)', async () => {
      if (!taskId) throw new Error('no task from the previous step')
      const before = await page.getByTestId('count-completed').textContent()
      await page.reload()
      await live(page)
      await cardsView(page)
      await page.locator(`[data-testid="column-completed"] [data-task-id="${taskId}"]`).waitFor({ timeout: TIMEOUT })
      const after = await page.getByTestId('count-completed').textContent()
      const n = (s) => Number(String(s).replace(/[^0-9]/g, ''))
      if (n(after) < n(before)) throw new Error(`completed count went back after reload: ${before} → ${after}`)
      const unknown = await page.getByText(/unknown/i).count()
      if (unknown > 0) throw new Error('the board shows "unknown" after the reload')
    })

    await step('a dead letter is listed and requeued from the dashboard', async () => {
      const payload = JSON.parse(FAIL_PAYLOAD)
      const res = await api('POST', '/tasks', { role: 'QA', max_attempts: 1, payload: { ...payload, e2e: 'dead' } })
      deadId = res.task.id
      await until(`task ${deadId} to be dead-lettered (payload ${FAIL_PAYLOAD} must make every attempt fail)`, async () => {
        const t = (await api('GET', `/tasks/${deadId}`)).task
        return t.state === 'dead'
      })
      const before = (await api('GET', `/tasks/${deadId}`)).task
      const panel = page.getByTestId('dead-letters')
      await panel.scrollIntoViewIfNeeded()
      const row = panel.locator(`[data-testid="dead-row"][data-task-id="${deadId}"]`)
      await until('the dead letter to show in the panel', async () => {
        if (await row.count()) return true
        await panel.getByRole('button', { name: 'Refresh' }).click()
        return false
      })
      await page.screenshot({ path: path.join(OUT, 'e2e-dead-letters.png'), fullPage: true })
      await row.getByTestId('requeue-one').click()
      await panel.getByTestId('dead-notice').filter({ hasText: 'Requeued' }).waitFor({ timeout: TIMEOUT })
      await until('the requeued task to run again', async () => {
        const t = (await api('GET', `/tasks/${deadId}`)).task
        return t.updated_at !== before.updated_at && (t.state !== 'dead' || t.attempts >= 1)
      })
    })

    await step('pausing admission rejects submissions with the server message; resuming restores them', async () => {
      const toggle = page.getByTestId('admission-toggle')
      await toggle.scrollIntoViewIfNeeded()
      await toggle.click()
      await page.getByTestId('admission-state').filter({ hasText: 'paused' }).waitFor({ timeout: TIMEOUT })
      const form = page.getByTestId('form-task')
      await form.getByTestId('submit').click()
      const alert = form.getByTestId('form-error')
      await alert.waitFor({ timeout: TIMEOUT })
      const text = (await alert.textContent()) ?? ''
      if (!/paus/i.test(text)) throw new Error(`expected a "paused" message, got ${JSON.stringify(text)}`)
      await toggle.click()
      await page.getByTestId('admission-state').filter({ hasText: /open|shedding/ }).waitFor({ timeout: TIMEOUT })
      await form.getByTestId('submit').click()
      await page.getByTestId('outcome').waitFor({ timeout: TIMEOUT })
    })

    if (pageErrors.length) {
      results.push({ name: 'no page errors', ok: false, error: pageErrors.join('; ') })
      console.log(`FAIL no page errors: ${pageErrors.join('; ')}`)
    }
  } finally {
    await page.screenshot({ path: path.join(OUT, 'e2e-final.png'), fullPage: true }).catch(() => {})
    await api('PUT', '/admission', { paused: false }).catch(() => {})
    await browser.close()
  }
  const passed = results.filter((r) => r.ok).length
  const failed = results.length - passed
  console.log(`e2e: ${passed} passed, ${failed} failed`)
  process.exit(failed === 0 ? 0 : 1)
}

main().catch((err) => {
  console.error(`e2e: ${err.stack ?? err}`)
  process.exit(1)
})
