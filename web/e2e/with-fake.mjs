#!/usr/bin/env node
// Runs a script against the DEV FAKE mesh (fake-mesh.mjs) instead of the real
// one: starts the fake on a free loopback port serving web/dist, sets
// MESH_URL, runs `node <script> …`, stops the fake. For developing the
// browser scripts only — CI runs them against `mesh dev`
// (scripts/with-mesh.sh).
//
//   node e2e/with-fake.mjs e2e/e2e.mjs
//   PERF_RATES=5000 node e2e/with-fake.mjs e2e/perf.mjs
import { spawn } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const [script, ...args] = process.argv.slice(2)
if (!script) {
  console.error('usage: node e2e/with-fake.mjs <script.mjs> [args…]')
  process.exit(2)
}

const port = await new Promise((resolve) => {
  const s = net.createServer()
  s.listen(0, '127.0.0.1', () => {
    const { port: p } = s.address()
    s.close(() => resolve(p))
  })
})
const fake = spawn(process.execPath, [path.join(here, 'fake-mesh.mjs')], {
  env: { ...process.env, FAKE_PORT: String(port) },
  stdio: ['ignore', 'inherit', 'inherit'],
})
const url = `http://127.0.0.1:${port}`
for (let i = 0; i < 100; i++) {
  try {
    if ((await fetch(`${url}/healthz`)).ok) break
  } catch {
    await new Promise((r) => setTimeout(r, 100))
  }
}
const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, MESH_URL: url }, stdio: 'inherit' })
const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)))
fake.kill('SIGTERM')
process.exit(code)
