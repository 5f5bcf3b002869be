// A scripted stand-in for the browser WebSocket.
import type { Frame } from '../api/types'
import type { SocketFactory, SocketLike } from '../stream/socket'

export class FakeSocket implements SocketLike {
  onopen: ((ev: Event) => void) | null = null
  onmessage: ((ev: MessageEvent) => void) | null = null
  onclose: ((ev: CloseEvent) => void) | null = null
  onerror: ((ev: Event) => void) | null = null
  closed = false
  readonly url: string

  constructor(url: string) {
    this.url = url
  }

  open(): void {
    this.onopen?.(new Event('open'))
  }

  send(frame: Frame | string): void {
    const data = typeof frame === 'string' ? frame : JSON.stringify(frame)
    this.onmessage?.(new MessageEvent('message', { data }))
  }

  /** drop simulates the server going away. */
  drop(code = 1006): void {
    this.onclose?.(new CloseEvent('close', { code }))
  }

  close(): void {
    this.closed = true
  }
}

export function fakeSockets(): { sockets: FakeSocket[]; create: SocketFactory } {
  const sockets: FakeSocket[] = []
  return {
    sockets,
    create: (url) => {
      const s = new FakeSocket(url)
      sockets.push(s)
      return s
    },
  }
}
