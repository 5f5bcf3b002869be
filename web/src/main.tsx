import { Profiler, StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App'
import { readConfig } from './stream/config'
import './index.css'

declare global {
  interface Window {
    /** React commits since load (profile build only; read by e2e/perf.mjs). */
    __meshCommits?: number
  }
  /** True in `vite build --mode profile` (react-dom/profiling aliased in). */
  const __MESH_PROFILE__: boolean
}

const config = readConfig(window.location.search)
const root = createRoot(document.getElementById('root') as HTMLElement)
const app = <App config={config} />

if (__MESH_PROFILE__) {
  window.__meshCommits = 0
  const onRender = () => {
    window.__meshCommits = (window.__meshCommits ?? 0) + 1
  }
  root.render(
    <Profiler id="mesh" onRender={onRender}>
      {app}
    </Profiler>,
  )
} else {
  root.render(<StrictMode>{app}</StrictMode>)
}
