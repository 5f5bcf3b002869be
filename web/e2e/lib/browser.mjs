// Launches Debian's Chromium through playwright-core (no browser download):
// a persistent context in a fresh temporary profile, with the flags that work
// on this machine class (shared/notes.md).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { chromium } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** launch returns {context, close}; the profile directory is removed on close. */
export async function launch({ width = 1600, height = 1000 } = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (or set CHROMIUM)`)
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-chromium-'))
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width, height },
    deviceScaleFactor: 1,
    colorScheme: 'dark',
  })
  return {
    context,
    async close() {
      await context.close().catch(() => {})
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}
