/**
 * Shared helpers for the collector and Express tests: a router with an in-memory
 * capture destination behind a real node:http server or a real Express 5 app on
 * 127.0.0.1, and a raw HTTP client that sends exactly the bytes and headers a test asks
 * for (fetch would add or refuse some).
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express, { type Express } from 'express'
import { createRouter, type Router } from '../../src/router.js'
import type { RouterOptions, SourceConfig } from '../../src/config.js'
import { captureDestination, type CaptureDestination } from '../../src/testing.js'
import { HTTP_ERRORS } from '../../src/errors.js'

/** What the helpers need from a tap test. */
export interface Teardown {
  teardown(fn: () => unknown): void
}

export const WRITE_KEY = 'wk_test_web'

export const DEFAULT_SOURCES: SourceConfig[] = [{ name: 'web', writeKey: WRITE_KEY }]

export type HostKind = 'http' | 'express'
export const HOSTS: HostKind[] = ['http', 'express']

export interface Reply {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  text: string
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: any
}

export interface SendOptions {
  method?: string
  headers?: Record<string, string | number>
  /** A string or Buffer is sent as is; anything else as JSON (Content-Type application/json unless given). */
  body?: unknown
}

/** One request on a fresh connection; resolves with the whole answer. */
export function send(url: string, opts: SendOptions = {}): Promise<Reply> {
  const headers: Record<string, string | number> = { ...opts.headers }
  let payload: Buffer | undefined
  if (opts.body !== undefined) {
    if (Buffer.isBuffer(opts.body)) payload = opts.body
    else if (typeof opts.body === 'string') payload = Buffer.from(opts.body, 'utf8')
    else {
      payload = Buffer.from(JSON.stringify(opts.body))
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json'
    }
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) headers['Content-Length'] = payload.length
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: opts.method ?? (payload ? 'POST' : 'GET'), headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        const text = body.toString('utf8')
        let json: unknown
        try {
          json = text ? JSON.parse(text) : undefined
        } catch {
          json = undefined
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json })
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/** `Authorization: Basic base64("<key>:")`, as Segment's and RudderStack's clients send it. */
export function basic(key: string, password = ''): string {
  return 'Basic ' + Buffer.from(`${key}:${password}`).toString('base64')
}

/** Listen on 127.0.0.1 with a random port; closed (connections too) at teardown. */
export async function listen(t: Teardown, listener: RequestListener | Express): Promise<{ server: Server; base: string }> {
  const server = createServer(listener as RequestListener)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

/** A router whose one destination captures what it is sent, delivered without batching delay. */
export function captureRouter(t: Teardown, options: Omit<RouterOptions, 'destinations'> = {}, name = 'capture'): { router: Router; capture: CaptureDestination } {
  const capture = captureDestination(name)
  const router = createRouter({
    sources: DEFAULT_SOURCES,
    logLevel: 'silent',
    ...options,
    destinations: [{ name, type: capture.plugin, delivery: { batch: { maxWaitMs: 0 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 2000 }))
  return { router, capture }
}

export interface Collector {
  kind: HostKind
  /** Server origin, `http://127.0.0.1:port`. */
  base: string
  /** Where clients point: the base plus the mount path (empty for node:http and a root mount). */
  url: string
  router: Router
  capture: CaptureDestination
}

export interface CollectorOptions {
  router?: Omit<RouterOptions, 'destinations'>
  /** Express only: the mount path (`app.use(mount, router.express())`). @default root */
  mount?: string
  /** Express only: middleware the host app installs before the router. */
  before?: (app: Express) => void
}

/** A router with a capture destination, served by node:http (`router.handler()`) or by an Express 5 app. */
export async function startCollector(t: Teardown, kind: HostKind, opts: CollectorOptions = {}): Promise<Collector> {
  const { router, capture } = captureRouter(t, opts.router)
  if (kind === 'http') {
    const { base } = await listen(t, router.handler())
    return { kind, base, url: base, router, capture }
  }
  const app = express()
  opts.before?.(app)
  if (opts.mount) app.use(opts.mount, router.express())
  else app.use(router.express())
  app.use((_req, res) => void res.status(404).json({ host: 'fallthrough' }))
  const { base } = await listen(t, app)
  return { kind, base, url: base + (opts.mount ?? ''), router, capture }
}

/** A minimal valid event of each type, without a writeKey. */
export function sampleEvent(type: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = { anonymousId: 'anon-1', ...extra }
  switch (type) {
    case 'track':
      return { event: 'Order Completed', properties: { total: 10 }, ...base }
    case 'identify':
      return { traits: { plan: 'pro' }, ...base }
    case 'page':
      return { name: 'Home', properties: { path: '/' }, ...base }
    case 'screen':
      return { name: 'Main', ...base }
    case 'group':
      return { groupId: 'g-1', ...base }
    case 'alias':
      return { previousId: 'old-1', ...base }
    default:
      throw new Error(`no sample for ${type}`)
  }
}

/** Assert-friendly shape check of an error answer: its code is one of the table's, with its status. */
export function errorShape(reply: Reply): { status: number; code: unknown; hasMessage: boolean; inTable: boolean; statusMatches: boolean; isJson: boolean } {
  const code = reply.json?.code
  const spec = typeof code === 'string' ? (HTTP_ERRORS as Record<string, { status: number }>)[code] : undefined
  return {
    status: reply.status,
    code,
    hasMessage: typeof reply.json?.message === 'string' && reply.json.message.length > 0,
    inTable: spec !== undefined,
    statusMatches: spec?.status === reply.status,
    isJson: String(reply.headers['content-type']).startsWith('application/json'),
  }
}

/** Events the router has accepted so far (counted before the 200 is sent, so exact right after a reply). */
export function acceptedCount(router: Router): number {
  return router.stats().accepted
}
