import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiError, request } from './http'
import { submitTask } from './tasks'
import { requeueAllDead } from './dead'

afterEach(() => {
  vi.unstubAllGlobals()
  localStorage.clear()
})

function answer(status: number, body: unknown, headers: Record<string, string> = {}) {
  return vi.fn(async () => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } }))
}

describe('request', () => {
  it('surfaces the JSON error message, code, field and Retry-After', async () => {
    vi.stubGlobal('fetch', answer(422, { error: { code: 'validation', message: 'role: unknown role "X"', field: 'role' } }))
    const err = await submitTask({ role: 'ARCHITECT' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err).toMatchObject({ status: 422, code: 'validation', message: 'role: unknown role "X"', field: 'role' })

    vi.stubGlobal('fetch', answer(429, { error: { code: 'overloaded', message: 'mesh overloaded' } }, { 'Retry-After': '2' }))
    await expect(request('/tasks')).rejects.toMatchObject({ code: 'overloaded', retryAfter: 2, message: 'mesh overloaded' })
  })

  it('falls back to the status when the body is not the error shape', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('oops', { status: 502 })))
    await expect(request('/stats')).rejects.toMatchObject({ status: 502, message: 'HTTP 502' })
  })

  it('sends JSON, the idempotency key, query parameters and the bearer token', async () => {
    localStorage.setItem('mesh.token', 's3cret')
    const f = answer(202, { task: { id: 't1' } })
    vi.stubGlobal('fetch', f)
    await submitTask({ role: 'QA', client_key: 'k1' })
    const [url, init] = f.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/api/v1/tasks')
    const h = init.headers as Record<string, string>
    expect(h['Idempotency-Key']).toBe('k1')
    expect(h.Authorization).toBe('Bearer s3cret')
    expect(JSON.parse(String(init.body))).toEqual({ role: 'QA', client_key: 'k1' })

    const g = answer(200, { requeued: 3 })
    vi.stubGlobal('fetch', g)
    expect(await requeueAllDead('QA')).toBe(3)
    expect((g.mock.calls[0] as unknown as [string])[0]).toBe('/api/v1/dead/requeue?role=QA')
  })

  it('reports an unreachable mesh as a network error', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))))
    await expect(request('/stats')).rejects.toMatchObject({ code: 'network', status: 0 })
  })
})
