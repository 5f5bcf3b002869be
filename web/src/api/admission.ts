// Admission: the operator's pause switch for new submissions.
import { request } from './http'

export async function getAdmission(signal?: AbortSignal): Promise<boolean> {
  const res = await request<{ paused: boolean }>('/admission', { signal })
  return res.paused
}

/** setAdmission pauses (true) or resumes (false) admission; returns the new state. */
export async function setAdmission(paused: boolean): Promise<boolean> {
  const res = await request<{ paused: boolean }>('/admission', { method: 'PUT', body: { paused } })
  return res.paused
}
