/**
 * The HTTP collector: Segment's and RudderStack's endpoints, answered the way their
 * clients expect. Paths are matched below wherever the router is mounted, with any
 * `v1` segment ignored, so `/v1/batch`, `/batch` (under `app.use('/v1', …)`),
 * `/beacon/v1/batch` and `/pixel/v1/track` all resolve.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError } from '../errors.js'
import type { Logger } from '../logger.js'
import { normalizeEvent, toIso } from '../normalize/normalize.js'
import type { EventType, FirstpartyEvent } from '../normalize/schema.js'
import type { SourceDefinition } from '../plugin.js'
import { checkContentType, parseJson, readBody, scanEnvelope, scanJson, type BodyLimits } from './body.js'
import type { IpResolver } from './client-ip.js'
import { answerPreflight, setCorsHeaders, type OriginMatcher } from './cors.js'
import type { TokenBucket } from './rate-limit.js'

export interface SourceRuntime {
  name: string
  origin: OriginMatcher
  bucket: TokenBucket | undefined
  apiHost: string | undefined
  plugin: SourceDefinition | undefined
  settings: unknown
  writeKeys: string[]
}

/** Facts about the request that policies may need later (consent from headers). */
export interface IntakeMeta {
  source: string | undefined
  /** `Sec-GPC: 1` was sent: the user opted out of sale/sharing. */
  gpc: boolean
}

export interface IntakeCore {
  limits: BodyLimits
  resolveIp: IpResolver
  trustForwardedProto: boolean
  sourceByKey(key: string): SourceRuntime | undefined
  sourceByName(name: string): SourceRuntime | undefined
  /** Whether any source allows this origin (for preflights, which carry no key). */
  originAllowed(origin: string): boolean
  accept(events: FirstpartyEvent[], sizes: number[], meta: IntakeMeta): Promise<void>
  closing(): boolean
  count(what: 'metrics' | 'requests', n?: number): void
  rejected(code: string): void
  logger: Logger
}

const SHORT: Record<string, EventType> = { i: 'identify', t: 'track', p: 'page', s: 'screen', g: 'group', a: 'alias' }
const FULL = new Set<string>(['identify', 'track', 'page', 'screen', 'group', 'alias'])

type Route =
  | { kind: 'event'; type: EventType }
  | { kind: 'batch' }
  | { kind: 'beacon' }
  | { kind: 'pixel'; type: 'track' | 'page' }
  | { kind: 'metrics' }
  | { kind: 'settings'; writeKey: string }
  | { kind: 'source'; name: string; rest: string }

export function matchRoute(pathname: string): Route | undefined {
  const raw = pathname.split('/').filter((s) => s !== '')
  if (raw[0] === 'sources' && raw.length >= 2) return { kind: 'source', name: decodeURIComponent(raw[1]!), rest: '/' + raw.slice(2).join('/') }
  const seg = raw.filter((s) => s !== 'v1')
  if (seg.length === 1) {
    const s = seg[0]!
    if (FULL.has(s)) return { kind: 'event', type: s as EventType }
    if (SHORT[s]) return { kind: 'event', type: SHORT[s]! }
    if (s === 'batch' || s === 'b' || s === 'import') return { kind: 'batch' }
    if (s === 'm') return { kind: 'metrics' }
  }
  if (seg.length === 2 && seg[0] === 'beacon' && seg[1] === 'batch') return { kind: 'beacon' }
  if (seg.length === 2 && seg[0] === 'pixel' && (seg[1] === 'track' || seg[1] === 'page')) return { kind: 'pixel', type: seg[1] }
  if (seg.length === 3 && seg[0] === 'projects' && seg[2] === 'settings') return { kind: 'settings', writeKey: decodeURIComponent(seg[1]!) }
  return undefined
}

/** Whether the collector answers this method on this route (OPTIONS: only a CORS preflight). */
function servesMethod(route: Route, method: string): boolean {
  if (method === 'OPTIONS') return true
  if (route.kind === 'pixel' || route.kind === 'settings') return method === 'GET' || method === 'HEAD'
  return method === 'POST'
}

// A transparent 1×1 GIF.
const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64')
const OK = Buffer.from('{"success":true}')

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end()
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body))
  res.statusCode = status
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v)
  res.setHeader('Content-Type', 'application/json; charset=utf-8')
  res.setHeader('Content-Length', payload.length)
  res.end(payload)
}

export function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, { code: err.code, message: err.message }, err.headers)
}

function basicKey(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization
  if (!h) return undefined
  const m = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(h)
  if (!m) throw new HttpError('unknown_write_key', 'the Authorization header is not Basic auth; send Basic base64("<writeKey>:")')
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8')
  const i = decoded.indexOf(':')
  return i === -1 ? decoded : decoded.slice(0, i)
}

/** Where a host app's body parser has been before us, use what it left. */
function preParsed(req: IncomingMessage): { body: unknown } | undefined {
  const r = req as IncomingMessage & { body?: unknown; _body?: boolean }
  if (!r._body && !(r.readableEnded && r.body !== undefined)) return undefined
  const type = String(req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase()
  if (type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data') {
    throw new HttpError(
      'body_consumed',
      `a body parser in the host app (express.urlencoded()?) consumed this ${type} body before firstparty could read it; mount router.express() before it`,
    )
  }
  return { body: r.body }
}

function toBuffer(body: unknown): Buffer | undefined {
  if (Buffer.isBuffer(body)) return body
  if (typeof body === 'string') return Buffer.from(body, 'utf8')
  return undefined
}

/** The pixel's query string as an event: `properties.price=3` nests, prototype keys never. */
function queryToEvent(query: URLSearchParams): Record<string, unknown> {
  const ev: Record<string, unknown> = {}
  for (const [key, value] of query) {
    if (key === 'writeKey') continue
    const parts = key.split('.')
    if (parts.some((p) => p === '__proto__' || p === 'constructor' || p === 'prototype' || p === '')) {
      throw new HttpError('invalid_body', `query parameter "${key}" is not allowed`)
    }
    if (parts.length > 8) throw new HttpError('too_deep', `query parameter "${key}" nests too deeply`)
    let node = ev
    for (let i = 0; i < parts.length - 1; i++) {
      const next = node[parts[i]!]
      if (next === null || typeof next !== 'object') node[parts[i]!] = {}
      node = node[parts[i]!] as Record<string, unknown>
    }
    node[parts[parts.length - 1]!] = value
  }
  return ev
}

export function createHttpHandler(core: IntakeCore) {
  const l = core.limits

  function settingsAnswer(req: IncomingMessage, src: SourceRuntime, writeKey: string, pathname: string): unknown {
    const proto = core.trustForwardedProto && typeof req.headers['x-forwarded-proto'] === 'string'
      ? req.headers['x-forwarded-proto'].split(',')[0]!.trim()
      : (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'
    const original = (req as { originalUrl?: string }).originalUrl ?? req.url ?? pathname
    const base = original.split('?')[0]!.replace(/\/projects\/[^/]*\/settings\/?$/, '')
    const apiHost = src.apiHost ?? `${req.headers.host ?? 'localhost'}${base}`
    return {
      integrations: {
        'Segment.io': { apiKey: writeKey, apiHost, protocol: proto === 'https' ? 'https' : 'http', unbundledIntegrations: [], addBundledMetadata: true, maybeBundledConfigIds: {} },
      },
      plan: { track: { __default: { enabled: true, integrations: {} } }, identify: { __default: { enabled: true } }, group: { __default: { enabled: true } } },
      edgeFunction: {},
      analyticsNextEnabled: true,
      middlewareSettings: {},
      enabledMiddleware: {},
      metrics: { sampleRate: 0 },
      legacyVideoPluginsEnabled: false,
      remotePlugins: [],
    }
  }

  function findSource(key: string | undefined): SourceRuntime {
    if (key === undefined || key === '') {
      throw new HttpError('missing_write_key', 'no write key: send Basic auth with the write key as user name, "writeKey" in the body, or ?writeKey=')
    }
    const src = core.sourceByKey(key)
    if (!src) throw new HttpError('unknown_write_key', 'the write key does not match any configured source')
    return src
  }

  function checkOrigin(req: IncomingMessage, src: SourceRuntime): void {
    const origin = req.headers.origin
    // `Origin: null` (sandboxed frames, file://) must be listed like any other origin.
    if (typeof origin === 'string' && !src.origin(origin)) {
      throw new HttpError('origin_not_allowed', `origin ${origin.slice(0, 200)} is not in allowedOrigins of source "${src.name}"`)
    }
  }

  function takeTokens(src: SourceRuntime, n: number): void {
    if (!src.bucket) return
    const wait = src.bucket.take(n)
    if (wait > 0) {
      const seconds = Math.max(1, Math.ceil(wait / 1000))
      throw new HttpError('rate_limited', `source "${src.name}" is over its rate limit; retry in ${seconds} s`, { 'Retry-After': String(seconds) })
    }
  }

  /** Validate, size-check and normalize the events of one request. */
  function prepare(items: unknown[], opts: { type?: EventType; sentAt?: unknown; ip: string | undefined; single: boolean; bodyBytes: number }): { events: FirstpartyEvent[]; sizes: number[] } {
    if (items.length > l.maxBatchEvents) {
      throw new HttpError('batch_too_large', `the batch holds ${items.length} events; the limit is ${l.maxBatchEvents}`)
    }
    const receivedAt = new Date()
    const receivedAtIso = toIso(receivedAt.getTime())
    const events: FirstpartyEvent[] = []
    const sizes: number[] = []
    for (let i = 0; i < items.length; i++) {
      const where = opts.single ? '' : `batch[${i}]`
      const item = items[i]
      if (item !== null && typeof item === 'object' && !Array.isArray(item)) delete (item as Record<string, unknown>).writeKey
      const size = opts.single ? Math.min(opts.bodyBytes, scanJson(item, l.maxDepth, where)) : scanJson(item, l.maxDepth - 2, where)
      if (size > l.maxEventBytes) {
        throw new HttpError('event_too_large', `${where || 'the event'} is about ${size} bytes; the limit per event is ${l.maxEventBytes}`)
      }
      const input: Parameters<typeof normalizeEvent>[1] = { receivedAt, receivedAtIso, where }
      if (opts.type) input.type = opts.type
      if (opts.sentAt !== undefined) input.sentAt = opts.sentAt
      if (opts.ip) input.ip = opts.ip
      events.push(normalizeEvent(item, input))
      sizes.push(size)
    }
    return { events, sizes }
  }

  async function handle(req: IncomingMessage, res: ServerResponse, route: Route, url: URL): Promise<void> {
    const method = req.method ?? 'GET'
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined
    if (origin && core.originAllowed(origin)) setCorsHeaders(res, origin)

    if (route.kind === 'settings') {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError('method_not_allowed', 'use GET for the settings endpoint')
      const src = findSource(route.writeKey)
      res.setHeader('Cache-Control', 'public, max-age=300')
      return sendJson(res, 200, settingsAnswer(req, src, route.writeKey, url.pathname))
    }
    if (route.kind === 'pixel') {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError('method_not_allowed', 'the pixel endpoint answers GET')
      const src = findSource(url.searchParams.get('writeKey') ?? basicKey(req))
      // HEAD is what link checkers and prefetchers send: answer it, record nothing.
      if (method === 'GET') {
        takeTokens(src, 1)
        const ev = queryToEvent(url.searchParams)
        const { events, sizes } = prepare([ev], { type: route.type, ip: core.resolveIp(req), single: true, bodyBytes: Infinity })
        await core.accept(events, sizes, { source: src.name, gpc: req.headers['sec-gpc'] === '1' })
      }
      res.statusCode = 200
      res.setHeader('Content-Type', 'image/gif')
      res.setHeader('Content-Length', GIF.length)
      res.setHeader('Cache-Control', 'no-store')
      return void res.end(GIF)
    }
    if (method !== 'POST') throw new HttpError('method_not_allowed', `use POST for ${url.pathname}`)
    checkContentType(req.headers['content-type'] as string | undefined)

    let body: unknown
    let bodyBytes: number
    const pre = preParsed(req)
    if (pre) {
      const buf = toBuffer(pre.body)
      body = buf ? parseJson(buf) : pre.body
      // Content-Length is the wire size: for a body the host inflated, measure what it parsed.
      const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase()
      const wire = encoding === 'identity' || encoding === '' ? Number(req.headers['content-length']) : NaN
      bodyBytes = buf ? buf.length : wire || scanJson(body, l.maxDepth, '')
      if (bodyBytes > l.maxRequestBytes) throw new HttpError('request_too_large', `the body is ${bodyBytes} bytes; the limit is ${l.maxRequestBytes}`)
    } else {
      const buf = await readBody(req, l.maxRequestBytes)
      bodyBytes = buf.length
      body = route.kind === 'metrics' ? undefined : parseJson(buf)
    }
    if (route.kind === 'metrics') {
      core.count('metrics')
      return sendJson(res, 200, OK)
    }

    if (route.kind === 'source') {
      const src = core.sourceByName(route.name)
      if (!src?.plugin) throw new HttpError('not_found', `no source plugin is configured with the name "${route.name}"`)
      if (src.writeKeys.length > 0) {
        const key = basicKey(req) ?? url.searchParams.get('writeKey') ?? undefined
        if (key === undefined) throw new HttpError('missing_write_key', `source "${src.name}" needs its write key (Basic auth or ?writeKey=)`)
        if (!src.writeKeys.includes(key)) throw new HttpError('unknown_write_key', `the write key is not the key of source "${src.name}"`)
      }
      scanJson(body, l.maxDepth, '')
      const raw = await src.plugin.handle(
        { method, path: route.rest, query: url.searchParams, headers: req.headers, body, ip: core.resolveIp(req) },
        { settings: src.settings, logger: core.logger, source: src.name },
      )
      if (!Array.isArray(raw)) throw new HttpError('internal_error', `source plugin "${src.plugin.name}" returned no array of events`)
      takeTokens(src, raw.length)
      const { events, sizes } = prepare(raw, { ip: core.resolveIp(req), single: false, bodyBytes })
      await core.accept(events, sizes, { source: src.name, gpc: req.headers['sec-gpc'] === '1' })
      return sendJson(res, 200, OK)
    }

    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new HttpError('invalid_body', 'the body must be a JSON object (an event, or { "batch": [...] })')
    }
    const envelope = body as Record<string, unknown>
    const bodyKey = typeof envelope.writeKey === 'string' ? envelope.writeKey : undefined
    const src = findSource(basicKey(req) ?? bodyKey ?? url.searchParams.get('writeKey') ?? undefined)
    checkOrigin(req, src)
    const ip = core.resolveIp(req)
    const meta: IntakeMeta = { source: src.name, gpc: req.headers['sec-gpc'] === '1' }

    let prepared: { events: FirstpartyEvent[]; sizes: number[] }
    if (route.kind === 'event') {
      takeTokens(src, 1)
      prepared = prepare([envelope], { type: route.type, ip, single: true, bodyBytes })
    } else {
      const batch = envelope.batch
      if (!Array.isArray(batch)) throw new HttpError('invalid_body', 'batch: must be an array of events')
      if (batch.length === 0) throw new HttpError('invalid_body', 'batch: is empty; send at least one event')
      scanEnvelope(envelope, l.maxDepth, 'batch')
      takeTokens(src, batch.length)
      prepared = prepare(batch, { sentAt: envelope.sentAt, ip, single: false, bodyBytes })
    }
    await core.accept(prepared.events, prepared.sizes, meta)
    return sendJson(res, 200, OK)
  }

  /**
   * Handle a request. Returns false (without touching `res`) when the path is not one
   * of the collector's, so a host framework can pass it on.
   */
  /**
   * `fallthrough` (Express): a request the collector would only refuse for its method —
   * a host's own `GET /track` under a root mount — is left to the host's routes.
   */
  return function collector(req: IncomingMessage, res: ServerResponse, onDone?: (err?: unknown) => void, fallthrough = false): boolean {
    const url = new URL(req.url ?? '/', 'http://x')
    const route = matchRoute(url.pathname)
    if (!route) return false
    if (fallthrough && !servesMethod(route, req.method ?? 'GET')) return false
    core.count('requests')
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined
    if (req.method === 'OPTIONS') {
      if (origin && core.originAllowed(origin)) answerPreflight(req, res, origin)
      else if (origin) sendError(res, new HttpError('origin_not_allowed', `origin ${origin.slice(0, 200)} is not allowed by any source`))
      else {
        res.statusCode = 204
        res.setHeader('Allow', 'GET, POST, OPTIONS')
        res.end()
      }
      onDone?.()
      return true
    }
    if (core.closing()) {
      core.rejected('shutting_down')
      sendError(res, new HttpError('shutting_down', 'the router is closing; retry shortly', { 'Retry-After': '5' }))
      onDone?.()
      return true
    }
    handle(req, res, route, url).then(
      () => onDone?.(),
      (err: unknown) => {
        if (err instanceof HttpError) {
          core.rejected(err.code)
          sendError(res, err)
        } else {
          core.rejected('internal_error')
          core.logger.error({ err: (err as Error)?.message ?? String(err) }, 'collector failed')
          sendError(res, new HttpError('internal_error', 'the router failed to process the request; it was not accepted'))
        }
        onDone?.()
      },
    )
    return true
  }
}
