#!/usr/bin/env node
// Screenshots of the dashboard served by the mesh at MESH_URL, under load:
// for each rate in SHOT_RATES (events/s; default "150,5000": card view, then
// High Traffic Mode) it drives load through /api/v1/tasks/batch for
// SHOT_WARMUP seconds (8) and saves e2e/out/dashboard-<rate>eps-<view>.png
// (SHOT_DIR overrides the folder). SHOT_FULL=1 captures the whole page.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { launch } from './lib/browser.mjs'
import { startLoad } from './lib/load.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const MESH_URL = (process.env.MESH_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '')
const RATES = (process.env.SHOT_RATES ?? '150,5000').split(',').map(Number)
const WARMUP = Number(process.env.SHOT_WARMUP ?? 8)
const DIR = path.resolve(here, '..', process.env.SHOT_DIR ?? 'e2e/out')
const TOKEN = process.env.MESH_API_TOKEN ?? ''

const browser = await launch({ width: 1600, height: 1000 })
try {
  fs.mkdirSync(DIR, { recursive: true })
  for (const rate of RATES) {
    const page = await browser.context.newPage()
    await page.goto(`${MESH_URL}/${TOKEN ? `?token=${encodeURIComponent(TOKEN)}` : ''}`)
    await page.waitForSelector('[data-testid="connection"][data-state="open"]', { timeout: 20_000 })
    const load = startLoad({ meshURL: MESH_URL, tasksPerSecond: rate / 3, token: TOKEN })
    await new Promise((r) => setTimeout(r, WARMUP * 1000))
    const view = await page.getAttribute('[data-testid="board"]', 'data-mode')
    const file = path.join(DIR, `dashboard-${rate}eps-${view}.png`)
    await page.screenshot({ path: file, fullPage: process.env.SHOT_FULL === '1' })
    load.stop()
    console.log(file)
    await page.close()
    await new Promise((r) => setTimeout(r, 1500))
  }
} finally {
  await browser.close()
}
