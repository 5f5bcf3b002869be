import { defineConfig } from 'vitest/config'
import type { Alias, ProxyOptions } from 'vite'
import react from '@vitejs/plugin-react'
import tailwindcss from '@tailwindcss/vite'

// The mesh the dev server proxies to. Override with MESH_API_URL.
const meshURL = process.env.MESH_API_URL ?? 'http://127.0.0.1:8080'

// proxied forwards one path prefix to the mesh. The WebSocket upgrade carries
// the mesh's own origin so a server-side origin allowlist sees a same-origin
// client, exactly as it would when the producer serves the built dashboard.
function proxied(ws = false): ProxyOptions {
  return {
    target: meshURL,
    changeOrigin: true,
    ws,
    configure: (proxy) => {
      proxy.on('proxyReqWs', (req) => req.setHeader('origin', meshURL))
    },
  }
}

// `vite build --mode profile` is the production build the performance test
// loads: react-dom is swapped for its profiling build so the <Profiler> in
// main.tsx reports commits (window.__meshCommits). The normal build is untouched.
export default defineConfig(({ mode }) => {
  const profile = mode === 'profile'
  const alias: Alias[] = profile
    ? [{ find: /^react-dom$/, replacement: 'react-dom/profiling' }]
    : []
  return {
    plugins: [react(), tailwindcss()],
    resolve: { alias },
    define: { __MESH_PROFILE__: JSON.stringify(profile) },
    build: {
      outDir: profile ? 'dist-profile' : 'dist',
      emptyOutDir: true,
      sourcemap: false,
      chunkSizeWarningLimit: 800,
    },
    server: {
      port: 5173,
      strictPort: true,
      proxy: {
        '/api': proxied(),
        '/ws': proxied(true),
        '/healthz': proxied(),
        '/readyz': proxied(),
        '/metrics': proxied(),
      },
    },
    test: {
      environment: 'jsdom',
      globals: true,
      setupFiles: ['src/test/setup.ts'],
      include: ['src/**/*.test.{ts,tsx}'],
      css: false,
    },
  }
})
