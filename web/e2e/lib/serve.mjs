// A static server for a dashboard build that forwards the mesh's routes
// (/api, /ws, /healthz, /readyz, /metrics) to MESH_URL — how perf.mjs loads
// the profiling build (dist-profile) against the real producer's WebSocket.
// Upgrades are piped as raw TCP; the Origin and Host headers are rewritten to
// the mesh's own, so an origin allowlist sees a same-origin dashboard.
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'

const FORWARD = /^\/(api\/|ws(\/|$|\?)|healthz|readyz|metrics)/
const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png' }

export function serveBuild(dir, meshURL) {
  const mesh = new URL(meshURL)
  const root = path.resolve(dir)
  const target = { host: mesh.hostname, port: Number(mesh.port || 80) }
  const rewrite = (headers) => ({ ...headers, host: mesh.host, ...(headers.origin ? { origin: mesh.origin } : {}) })

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (FORWARD.test(url.pathname)) {
      const up = http.request({ ...target, method: req.method, path: req.url, headers: rewrite(req.headers) }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers)
        r.pipe(res)
      })
      up.on('error', (err) => {
        res.writeHead(502, { 'Content-Type': 'application/json' })
        res.end(JSON.stringify({ error: { code: 'unavailable', message: `mesh unreachable: ${err.message}` } }))
      })
      req.pipe(up)
      return
    }
    let file = path.join(root, path.normalize(url.pathname))
    if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) file = path.join(root, 'index.html')
    res.writeHead(200, { 'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream' })
    fs.createReadStream(file).pipe(res)
  })

  server.on('upgrade', (req, socket, head) => {
    const up = net.connect(target, () => {
      const headers = rewrite(req.headers)
      let raw = `${req.method} ${req.url} HTTP/1.1\r\n`
      for (const [k, v] of Object.entries(headers)) {
        for (const one of Array.isArray(v) ? v : [v]) raw += `${k}: ${one}\r\n`
      }
      up.write(raw + '\r\n')
      if (head?.length) up.write(head)
      up.pipe(socket)
      socket.pipe(up)
    })
    const end = () => {
      up.destroy()
      socket.destroy()
    }
    up.on('error', end)
    socket.on('error', end)
    up.on('close', end)
    socket.on('close', end)
  })

  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) })
    })
  })
}
