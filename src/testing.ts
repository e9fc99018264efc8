/**
 * `firstparty/testing`: what a destination's tests need — a real HTTP server on
 * 127.0.0.1 that records requests and answers as scripted (a vendor's success,
 * validation error, rate limit with Retry-After, or no answer at all), and an
 * in-memory destination that captures what the router delivers.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { gunzipSync } from 'node:zlib'
import type { AddressInfo } from 'node:net'
import Type from 'typebox'
import { defineDestination, type DestinationDefinition } from './plugin.js'
import type { FirstpartyEvent } from './normalize/schema.js'

export interface RecordedRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  /** The raw body (inflated when gzip). */
  text: string
  /** The body parsed as JSON, when it is JSON. */
  json: unknown
  receivedAt: number
}

/** How to answer one request: a status, headers and body, after an optional delay; `hang` never answers. */
export interface ScriptedResponse {
  status?: number
  headers?: Record<string, string>
  body?: unknown
  delayMs?: number
  hang?: boolean
}

export interface TestServer {
  url: string
  port: number
  requests: RecordedRequest[]
  /** Answers for the next requests, in order; after they run out, `fallback` answers. */
  script(...responses: ScriptedResponse[]): void
  /** The answer once the script is used up. @default { status: 200, body: { ok: true } } */
  fallback: ScriptedResponse | ((req: RecordedRequest) => ScriptedResponse)
  /** Resolves when at least `n` requests have arrived (rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<RecordedRequest[]>
  close(): Promise<void>
}

/** Start a recording HTTP server on 127.0.0.1 with a random port. */
export async function startTestServer(): Promise<TestServer> {
  const queue: ScriptedResponse[] = []
  const waiters: Array<{ n: number; resolve: () => void }> = []
  const hanging = new Set<import('node:http').ServerResponse>()
  const state: TestServer = {
    url: '',
    port: 0,
    requests: [],
    fallback: { status: 200, body: { ok: true } },
    script: (...r) => void queue.push(...r),
    waitFor(n, timeoutMs = 10_000) {
      if (state.requests.length >= n) return Promise.resolve(state.requests)
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`waited ${timeoutMs} ms for ${n} requests; got ${state.requests.length}`)), timeoutMs)
        waiters.push({ n, resolve: () => (clearTimeout(t), resolve(state.requests)) })
      })
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      let buf = Buffer.concat(chunks)
      if (req.headers['content-encoding'] === 'gzip') buf = gunzipSync(buf)
      const text = buf.toString('utf8')
      let json: unknown
      try {
        json = text ? JSON.parse(text) : undefined
      } catch {
        json = undefined
      }
      const rec: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, text, json, receivedAt: Date.now() }
      state.requests.push(rec)
      for (const w of [...waiters]) {
        if (state.requests.length >= w.n) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve()
        }
      }
      const answer = queue.shift() ?? (typeof state.fallback === 'function' ? state.fallback(rec) : state.fallback)
      if (answer.hang) {
        hanging.add(res)
        return
      }
      const send = () => {
        const body = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body)
        res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers })
        res.end(body)
      }
      if (answer.delayMs) setTimeout(send, answer.delayMs)
      else send()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  state.port = (server.address() as AddressInfo).port
  state.url = `http://127.0.0.1:${state.port}`
  return state
}

export interface CaptureDestination {
  plugin: DestinationDefinition
  /** Every event delivered, in order. */
  events: FirstpartyEvent[]
  /** Every batch as `send` received it. */
  batches: FirstpartyEvent[][]
  /** Resolves when at least `n` events have been delivered. */
  waitFor(n: number, timeoutMs?: number): Promise<FirstpartyEvent[]>
}

/** An in-memory destination plugin (type name `capture` unless given) recording what it is sent. */
export function captureDestination(name = 'capture'): CaptureDestination {
  const events: FirstpartyEvent[] = []
  const batches: FirstpartyEvent[][] = []
  const waiters: Array<{ n: number; resolve: () => void }> = []
  const plugin = defineDestination({
    name,
    version: '0.0.0',
    settings: Type.Object({}),
    async send(batch) {
      batches.push([...batch])
      events.push(...batch)
      for (const w of [...waiters]) {
        if (events.length >= w.n) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve()
        }
      }
    },
  }) as unknown as DestinationDefinition
  return {
    plugin,
    events,
    batches,
    waitFor(n, timeoutMs = 10_000) {
      if (events.length >= n) return Promise.resolve(events)
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`waited ${timeoutMs} ms for ${n} events; got ${events.length}`)), timeoutMs)
        waiters.push({ n, resolve: () => (clearTimeout(t), resolve(events)) })
      })
    },
  }
}
