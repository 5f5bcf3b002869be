// The optional bearer token: ?token= in the URL (remembered), else localStorage.

export const TOKEN_KEY = 'mesh.token'

function storage(): Storage | undefined {
  try {
    return typeof localStorage === 'undefined' ? undefined : localStorage
  } catch {
    return undefined
  }
}

/** authToken returns the token to send, or '' when none is configured. */
export function authToken(): string {
  if (typeof location !== 'undefined') {
    const fromURL = new URLSearchParams(location.search).get('token')
    if (fromURL) {
      storage()?.setItem(TOKEN_KEY, fromURL)
      return fromURL
    }
  }
  return storage()?.getItem(TOKEN_KEY) ?? ''
}
