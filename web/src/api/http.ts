// The one place that talks HTTP to the mesh. Every resource module goes
// through request(); components never call fetch themselves.

import { authToken } from '../lib/token'

/** ApiError carries the mesh's JSON error: {"error":{"code","message","field"}}. */
export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly field: string | undefined
  readonly retryAfter: number | undefined

  constructor(status: number, code: string, message: string, field?: string, retryAfter?: number) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.field = field
    this.retryAfter = retryAfter
  }
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE'
  body?: unknown
  query?: Record<string, string | number | undefined>
  headers?: Record<string, string>
  signal?: AbortSignal
}

/** Base path of the API; the dashboard is served by the mesh (or proxied by Vite). */
export const API_BASE = '/api/v1'

function buildURL(path: string, query?: RequestOptions['query']): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== '') params.set(k, String(v))
  }
  const qs = params.toString()
  return `${API_BASE}${path}${qs ? `?${qs}` : ''}`
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** errorFrom turns a non-2xx answer into an ApiError carrying the server's message. */
export function errorFrom(status: number, body: unknown, retryAfter: string | null): ApiError {
  const ra = retryAfter !== null && retryAfter !== '' ? Number(retryAfter) : undefined
  const retry = ra !== undefined && Number.isFinite(ra) ? ra : undefined
  if (isRecord(body) && isRecord(body.error)) {
    const e = body.error
    const message = typeof e.message === 'string' && e.message !== '' ? e.message : `HTTP ${status}`
    const code = typeof e.code === 'string' ? e.code : 'error'
    const field = typeof e.field === 'string' && e.field !== '' ? e.field : undefined
    return new ApiError(status, code, message, field, retry)
  }
  return new ApiError(status, 'error', `HTTP ${status}`, undefined, retry)
}

/** request sends one JSON request and returns the decoded answer, or throws ApiError. */
export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers }
  const token = authToken()
  if (token) headers.Authorization = `Bearer ${token}`
  let body: string | undefined
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(opts.body)
  }
  let res: Response
  try {
    res = await fetch(buildURL(path, opts.query), {
      method: opts.method ?? 'GET',
      headers,
      body,
      signal: opts.signal,
    })
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err
    throw new ApiError(0, 'network', `cannot reach the mesh: ${err instanceof Error ? err.message : String(err)}`)
  }
  const text = await res.text()
  let decoded: unknown = undefined
  if (text !== '') {
    try {
      decoded = JSON.parse(text)
    } catch {
      decoded = undefined
    }
  }
  if (!res.ok) throw errorFrom(res.status, decoded, res.headers.get('Retry-After'))
  return decoded as T
}
