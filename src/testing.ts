/**
 * `firstparty/testing`: what a destination's tests need — a real HTTP server on
 * 127.0.0.1 that records requests and answers as scripted (a vendor's success,
 * validation error, rate limit with Retry-After, or no answer at all), and an
 * in-memory destination that captures what the router delivers — and the conformance
 * suite every destination plugin runs (`runDestinationConformance`).
 */
import nodeHttp, { createServer, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions, type Server } from 'node:http'
import nodeHttps from 'node:https'
import { readFileSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { Socket as NetSocket, type AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'
import got, { type Got } from 'got'
import Type from 'typebox'
import Value from 'typebox/value'
import { checkMapping, compileMapping, formatDiagnostic, type CompiledMapping } from '../dsl/index.js'
import { MemoryDeadLetterStore } from './deliver/dead-letters.js'
import { DestinationQueue, type QueueEvent } from './deliver/destination-queue.js'
import { classifyError, DEFAULT_RETRY } from './deliver/retry.js'
import type { RetryRule } from './errors.js'
import type { Logger } from './logger.js'
import { defineDestination, type DestinationContext, type DestinationDefinition, type SendResult } from './plugin.js'
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

// ─── The destination conformance suite ────────────────────────────────────────────

/**
 * The part of a tap `Test` the conformance suite uses (tap's `t` fits), so this module
 * does not depend on tap's types.
 */
export interface ConformanceTest {
  /** `test(name, fn)` or `test(name, { skip: reason }, fn)`; `fn` gets a ConformanceTest. Resolves when the subtest ends. */
  // Loosely typed so tap's overloaded `test` fits.
  test(...args: any[]): unknown
  ok(value: unknown, message: string): unknown
  equal(found: unknown, wanted: unknown, message: string): unknown
  same(found: unknown, wanted: unknown, message: string): unknown
  match(found: unknown, pattern: unknown, message: string): unknown
  fail(message: string): unknown
  comment(...args: unknown[]): unknown
  teardown(fn: () => unknown): unknown
}

/**
 * One worked example of a destination: an event, the settings, and what the vendor
 * receives. Examples live in the plugin's `examples.json`, double as its README's
 * examples, and are run by {@link runDestinationConformance}.
 */
export interface DestinationExample {
  /** Shown in the test output. @default the event's type and name */
  title?: string
  /**
   * The event as the router hands it to the mapping: a normalized Segment-spec event.
   * Give `messageId` and `timestamp` so `out` is stable.
   */
  in: Record<string, unknown>
  /** Settings for this example, over the suite's `settings`. */
  settings?: Record<string, unknown>
  /**
   * The body of the one request the vendor receives (parsed JSON, or the text when it
   * is not JSON), or `null` when nothing is sent (the mapping drops the event).
   */
  out: unknown
  /** Also check the request line. `url` is the URL the plugin asked for (before the test server took it). */
  request?: { method?: string; url?: string }
}

/** The error answers the suite plays, and the retry rule each must end in. */
export type ConformanceErrorCase = 'server-error' | 'rate-limited' | 'invalid' | 'unauthorized' | 'forbidden'

/** How the vendor's API behaves, so the suite's test server can answer like it. */
export interface VendorSimulation {
  /** The vendor's answer to a good request. @default { status: 200, body: {} } */
  success?: ScriptedResponse | ((req: RecordedRequest) => ScriptedResponse)
  /**
   * Vendor-shaped error answers, replacing the generic ones (500, 429 with
   * `Retry-After: 7`, 400, 401, 403). Each must still end in the same rule:
   * retry, retry after 7 s, permanent, auth, auth.
   */
  errors?: Partial<Record<ConformanceErrorCase, ScriptedResponse>>
  /** Most events the vendor takes in one request. @default the plugin's `batch.maxEvents` */
  maxEventsPerRequest?: number
  /**
   * How many events one request carries. @default the length of the body if it is an
   * array, else of its `events`, `data` or `batch` array, else 1
   */
  countEvents?(req: RecordedRequest): number
}

/** The checks of the suite, by name; each can be skipped with a reason. */
export type ConformanceCheck = 'schema' | 'mapping' | 'examples' | 'errors' | 'retry-after' | 'abort' | 'batch' | 'io' | 'readme'

export interface ConformanceOptions {
  /** The plugin under test (what `defineDestination` returned). */
  plugin: DestinationDefinition<any>
  /**
   * Settings for every check (schema defaults are applied, then they are validated).
   * Use the vendor's real endpoints: the suite's `ctx.http` sends every request to its
   * local test server whatever the URL says, and records the URL asked for.
   */
  settings: Record<string, unknown>
  /** At least one; the first whose `out` is not null also feeds the error, abort and batch checks. */
  examples: ReadonlyArray<DestinationExample>
  vendor?: VendorSimulation
  /** Path of the plugin's README: the suite checks it names every setting. */
  readme?: string | URL
  /** Checks to skip, each with the reason (printed in the test output). */
  skip?: Partial<Record<ConformanceCheck, string>>
}

const GENERIC_ERRORS: Record<ConformanceErrorCase, ScriptedResponse> = {
  'server-error': { status: 500, body: { error: 'internal' } },
  'rate-limited': { status: 429, headers: { 'retry-after': '7' }, body: { error: 'rate limited' } },
  invalid: { status: 400, body: { error: 'invalid' } },
  unauthorized: { status: 401, body: { error: 'unauthorized' } },
  forbidden: { status: 403, body: { error: 'forbidden' } },
}

const EXPECTED_RULE: Record<ConformanceErrorCase, RetryRule> = {
  'server-error': 'retry',
  'rate-limited': 'retry',
  invalid: 'permanent',
  unauthorized: 'auth',
  forbidden: 'auth',
}

function defaultCountEvents(req: RecordedRequest): number {
  const b = req.json as Record<string, unknown> | unknown[] | undefined
  if (Array.isArray(b)) return b.length
  if (b && typeof b === 'object') {
    for (const k of ['events', 'data', 'batch']) {
      const v = (b as Record<string, unknown>)[k]
      if (Array.isArray(v)) return v.length
    }
  }
  return 1
}

/** What one run of `send` against the test server saw. */
interface Harness {
  server: TestServer
  /** The URLs the plugin asked ctx.http for, in order (before the rewrite). */
  asked: Array<{ method: string; url: string }>
  /** ClientRequests made through ctx.http, to see whether an abort reached them. */
  clientRequests: ClientRequest[]
  http: Got
  logger: Logger & { lines: string[] }
}

async function startHarness(vendor: VendorSimulation | undefined): Promise<Harness> {
  const server = await startTestServer()
  server.fallback = vendor?.success ?? { status: 200, body: {} }
  const asked: Harness['asked'] = []
  const clientRequests: ClientRequest[] = []
  const target = new URL(server.url)
  const lines: string[] = []
  const rec = (level: string) => (obj: object, msg?: string) => void lines.push(JSON.stringify({ level, ...obj, msg }))
  const http = got.extend({
    retry: { limit: 0 },
    // The untouched node:http request, so the I/O guard below can tell ctx.http from a plugin's own call.
    request: ((url: URL, options: RequestOptions, cb?: (res: IncomingMessage) => void) => {
      const req = ORIGINAL.httpRequest(url, options, cb)
      clientRequests.push(req)
      return req
    }) as unknown as Got['defaults']['options']['request'],
    handlers: [
      (options, next) => {
        const u = new URL(options.url as URL)
        asked.push({ method: String(options.method), url: u.href })
        u.protocol = 'http:'
        u.host = target.host
        options.url = u
        return next(options)
      },
    ],
  })
  return { server, asked, clientRequests, http, logger: { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') } }
}

const ORIGINAL = {
  httpRequest: nodeHttp.request,
  httpGet: nodeHttp.get,
  httpsRequest: nodeHttps.request,
  httpsGet: nodeHttps.get,
  socketConnect: NetSocket.prototype.connect,
}

/**
 * Refuses every network call that does not go through the harness's ctx.http while
 * `fn` runs: global fetch, node:http(s) request/get, and any TCP connection to
 * another address than the test server. Returns what was refused.
 */
async function guardIo<T>(allowPort: number, fn: () => Promise<T>): Promise<{ result?: T; error?: unknown; refused: string[] }> {
  const refused: string[] = []
  const originalFetch = globalThis.fetch
  const refuse = (what: string): Error => {
    refused.push(what)
    return new Error(`firstparty conformance: ${what} is not allowed; use ctx.http`)
  }
  globalThis.fetch = ((input: unknown) => Promise.reject(refuse(`fetch(${String(input instanceof Request ? input.url : input)})`))) as typeof fetch
  const block = (name: string) =>
    function (this: unknown, ...args: unknown[]): never {
      const a = args[0]
      throw refuse(`${name}(${a instanceof URL ? a.href : typeof a === 'string' ? a : JSON.stringify({ host: (a as { host?: string })?.host, hostname: (a as { hostname?: string })?.hostname })})`)
    }
  nodeHttp.request = block('http.request') as typeof nodeHttp.request
  nodeHttp.get = block('http.get') as typeof nodeHttp.get
  nodeHttps.request = block('https.request') as typeof nodeHttps.request
  nodeHttps.get = block('https.get') as typeof nodeHttps.get
  NetSocket.prototype.connect = function (this: NetSocket, ...args: unknown[]) {
    // net.connect passes its already-normalized [options, callback] array.
    const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0]
    const a = first as { port?: unknown; host?: unknown; path?: unknown } | number | string
    const port = typeof a === 'object' && a !== null ? Number(a.port) : typeof a === 'number' ? a : Number(a)
    const host = typeof a === 'object' && a !== null ? String(a.host ?? 'localhost') : String(args[1] ?? 'localhost')
    if (port !== allowPort || !['127.0.0.1', 'localhost', '::1'].includes(host)) {
      const err = refuse(`a connection to ${host}:${String(Number.isNaN(port) ? (a as { path?: unknown }).path : port)}`)
      process.nextTick(() => this.destroy(err))
      return this
    }
    return (ORIGINAL.socketConnect as (...a: unknown[]) => NetSocket).apply(this, args)
  } as typeof NetSocket.prototype.connect
  syncBuiltinESMExports()
  try {
    return { result: await fn(), refused }
  } catch (error) {
    return { error, refused }
  } finally {
    globalThis.fetch = originalFetch
    nodeHttp.request = ORIGINAL.httpRequest
    nodeHttp.get = ORIGINAL.httpGet
    nodeHttps.request = ORIGINAL.httpsRequest
    nodeHttps.get = ORIGINAL.httpsGet
    NetSocket.prototype.connect = ORIGINAL.socketConnect
    syncBuiltinESMExports()
  }
}

/**
 * Runs a plugin's `send` (with `setup` before and `close` after, sharing one
 * `ctx.state`) against the harness.
 */
async function runSend(
  plugin: DestinationDefinition<any>,
  settings: unknown,
  h: Harness,
  batches: ReadonlyArray<ReadonlyArray<unknown>>,
  signal: AbortSignal = new AbortController().signal,
): Promise<void> {
  const state: Record<string, unknown> = {}
  const base = { settings, http: h.http, logger: h.logger, destination: `${plugin.name}-conformance`, state }
  await plugin.setup?.(base)
  try {
    for (const events of batches) {
      const result = await plugin.send(events as FirstpartyEvent[], { ...base, signal, attempt: 1 })
      const rejected = (result as SendResult | undefined)?.rejected ?? []
      if (rejected.length) throw rejected[0]!.error
    }
  } finally {
    await plugin.close?.(base)
  }
}

function exampleTitle(ex: DestinationExample, i: number): string {
  if (ex.title) return ex.title
  const e = ex.in as { type?: string; event?: string; name?: string }
  return `example ${i + 1}: ${e.type ?? 'event'}${e.event ? ` "${e.event}"` : e.name ? ` "${e.name}"` : ''}`
}

/**
 * The conformance suite every destination runs from its own test:
 *
 * - `schema`: the settings schema is a TypeBox object, every property has a
 *   `description`, and the suite's settings (defaults applied) validate;
 *   `batch.maxEvents` is declared.
 * - `mapping`: the default mapping (if any) compiles without errors or warnings.
 * - `examples`: each example's `in`, run through the default mapping and `send`,
 *   reaches the test server as `out` (and at `request.url`, when given).
 * - `errors`: 500 → retry; 429 with `Retry-After: 7` → retry after 7000 ms; 400 →
 *   permanent; 401 and 403 → auth — classified the way the router classifies them.
 * - `retry-after`: through the real delivery queue, a 429 with `Retry-After: 1` is
 *   retried no sooner than one second later, then delivered.
 * - `abort`: against a server that never answers, aborting `ctx.signal` makes `send`
 *   reject promptly and destroys its request (`ctx.http` has no timeout of its own here).
 * - `batch`: `2 × maxEvents + 1` events, cut into batches the way the router cuts them,
 *   arrive in requests of at most `vendor.maxEventsPerRequest`, none lost.
 * - `io`: while the examples run, nothing but `ctx.http` touches the network (global
 *   fetch, node:http(s), and TCP connections to anything but the test server are
 *   refused), and every request the server saw went through `ctx.http`.
 * - `readme`: the README names every setting.
 *
 * @example
 * import t from 'tap'
 * import { runDestinationConformance } from 'firstparty/testing'
 * import plugin from '../index.js'
 * import examples from '../examples.json' with { type: 'json' }
 * await runDestinationConformance(t, { plugin, settings: { apiKey: 'k' }, examples })
 */
export async function runDestinationConformance(t: ConformanceTest, options: ConformanceOptions): Promise<void> {
  const { plugin, vendor } = options
  const skip = options.skip ?? {}
  const check = (name: ConformanceCheck, title: string, fn: (t: ConformanceTest) => Promise<void>): unknown =>
    skip[name] !== undefined ? t.test(`${name}: ${title}`, { skip: skip[name] }, fn) : t.test(`${name}: ${title}`, fn)
  const settingsFor = (extra?: Record<string, unknown>): unknown =>
    Value.Default(plugin.settings, structuredClone({ ...options.settings, ...extra }))
  const mapping = typeof plugin.mapping === 'string' ? compileMappingOrNull(plugin.mapping) : undefined
  const mapEvent = (e: Record<string, unknown>): Record<string, unknown> | null => (mapping ? mapping(e) : e)
  const sample = options.examples.find((ex) => ex.out !== null && mapEvent(ex.in) !== null)
  const maxEvents = plugin.batch?.maxEvents ?? 100
  const perRequest = vendor?.maxEventsPerRequest ?? maxEvents
  const countEvents = vendor?.countEvents ?? defaultCountEvents

  await check('schema', 'settings schema and metadata', async (t) => {
    t.ok(isPluginValid(plugin), 'defineDestination accepts the plugin')
    const schema = plugin.settings as { type?: string; properties?: Record<string, { description?: unknown }> }
    t.equal(schema.type, 'object', 'settings is a TypeBox object')
    for (const [key, prop] of Object.entries(schema.properties ?? {})) {
      t.ok(typeof prop.description === 'string' && prop.description.trim().length > 0, `setting "${key}" has a description`)
    }
    const settings = settingsFor()
    const issues = [...Value.Errors(plugin.settings, settings)].map((e) => `${e.instancePath || '/'} ${e.message}`)
    t.same(issues, [], 'the suite settings validate (defaults applied)')
    for (const [i, ex] of options.examples.entries()) {
      const exIssues = [...Value.Errors(plugin.settings, settingsFor(ex.settings))].map((e) => `${e.instancePath || '/'} ${e.message}`)
      t.same(exIssues, [], `${exampleTitle(ex, i)}: its settings validate`)
    }
    t.ok(typeof plugin.batch?.maxEvents === 'number' && plugin.batch.maxEvents >= 1, 'batch.maxEvents is declared')
    t.ok(options.examples.length > 0, 'at least one example')
  })

  await check('mapping', 'the default mapping compiles cleanly', async (t) => {
    if (typeof plugin.mapping !== 'string') {
      t.comment('no default mapping: send receives the events as the router normalized them')
      return
    }
    const { errors, warnings } = checkMapping(plugin.mapping)
    t.same(errors.map((d) => formatDiagnostic(d, `${plugin.name} mapping`)), [], 'no errors')
    t.same(warnings.map((d) => formatDiagnostic(d, `${plugin.name} mapping`)), [], 'no warnings')
  })

  await check('examples', 'every example produces its out', async (t) => {
    for (const [i, ex] of options.examples.entries()) {
      await t.test(exampleTitle(ex, i), async (t: ConformanceTest) => {
        const h = await startHarness(vendor)
        t.teardown(() => h.server.close())
        const mapped = mapEvent(structuredClone(ex.in))
        if (mapped !== null) await runSend(plugin, settingsFor(ex.settings), h, [[mapped]])
        if (ex.out === null) {
          t.equal(h.server.requests.length, 0, 'nothing is sent')
          return
        }
        t.equal(h.server.requests.length, 1, 'one request')
        const req = h.server.requests[0]
        if (!req) return
        t.same(req.json !== undefined ? req.json : req.text, ex.out, 'the vendor receives out')
        if (ex.request?.method) t.equal(h.asked[0]?.method, ex.request.method, 'method')
        if (ex.request?.url) t.equal(h.asked[0]?.url, ex.request.url, 'url')
      })
    }
  })

  const sampleEvent = (): Record<string, unknown> => {
    if (!sample) throw new Error('no example with a non-null out: the error, abort and batch checks need one')
    return mapEvent(structuredClone(sample.in))!
  }

  await check('errors', 'vendor answers are classified', async (t) => {
    for (const c of Object.keys(GENERIC_ERRORS) as ConformanceErrorCase[]) {
      await t.test(c, async (t: ConformanceTest) => {
        const h = await startHarness(vendor)
        t.teardown(() => h.server.close())
        const answer = vendor?.errors?.[c] ?? GENERIC_ERRORS[c]
        h.server.fallback = answer
        let thrown: unknown
        try {
          await runSend(plugin, settingsFor(sample?.settings), h, [[sampleEvent()]])
        } catch (err) {
          thrown = err
        }
        t.ok(thrown !== undefined, `send fails on ${answer.status ?? 200}`)
        if (thrown === undefined) return
        const got = classifyError(thrown)
        t.equal(got.rule, EXPECTED_RULE[c], `${c} → ${EXPECTED_RULE[c]} (${got.message})`)
        if (c === 'rate-limited') t.equal(got.retryAfterMs, 7000, 'Retry-After: 7 → retryAfterMs 7000')
      })
    }
  })

  await check('retry-after', 'the delivery queue honours Retry-After', async (t) => {
    const h = await startHarness(vendor)
    t.teardown(() => h.server.close())
    const limited = vendor?.errors?.['rate-limited'] ?? GENERIC_ERRORS['rate-limited']
    h.server.script({ ...limited, headers: { ...limited.headers, 'retry-after': '1' } })
    const emitted: QueueEvent[] = []
    const q = new DestinationQueue({
      name: `${plugin.name}-conformance`,
      plugin: plugin as unknown as DestinationDefinition,
      settings: settingsFor(sample?.settings),
      options: {
        concurrency: 1,
        batch: { maxEvents, maxBytes: 512_000, maxWaitMs: 5 },
        retry: { ...DEFAULT_RETRY, minDelayMs: 5 },
        maxBufferedEvents: 1000,
        timeoutMs: 5000,
      },
      deadLetters: new MemoryDeadLetterStore(),
      http: h.http,
      logger: h.logger,
      emit: (e) => void emitted.push(e),
    })
    q.enqueue({ event: sampleEvent() as FirstpartyEvent, bytes: 100, acceptedAt: Date.now(), attempts: 0 })
    const reqs = await h.server.waitFor(2, 5000)
    const gap = reqs[1]!.receivedAt - reqs[0]!.receivedAt
    t.ok(gap >= 950, `retried after ${gap} ms (Retry-After: 1)`)
    await q.close(2000)
    t.equal(q.stats.delivered, 1, 'delivered on the second try')
    t.match(emitted.find((e) => e.type === 'retry'), { delayMs: 1000 }, 'the retry waits the 1000 ms asked for')
  })

  await check('abort', 'ctx.signal aborts the request', async (t) => {
    const h = await startHarness(vendor)
    t.teardown(() => h.server.close())
    h.server.fallback = { hang: true }
    const ac = new AbortController()
    const sending = runSend(plugin, settingsFor(sample?.settings), h, [[sampleEvent()]], ac.signal).then(
      () => 'resolved' as const,
      () => 'rejected' as const,
    )
    await h.server.waitFor(1, 5000)
    const abortedAt = Date.now()
    ac.abort(new Error('conformance: send timed out'))
    const outcome = await Promise.race([sending, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 2000).unref())])
    t.equal(outcome, 'rejected', 'send rejects once its signal is aborted')
    t.ok(Date.now() - abortedAt < 1000, 'promptly')
    t.ok(h.clientRequests.length > 0 && h.clientRequests.every((r) => r.destroyed), 'the request was destroyed, not left hanging')
  })

  await check('batch', `batches are cut to the vendor's limit (${perRequest} per request)`, async (t) => {
    const h = await startHarness(vendor)
    t.teardown(() => h.server.close())
    const n = maxEvents * 2 + 1
    const template = sample?.in ?? {}
    const events: Array<Record<string, unknown>> = []
    for (let i = 0; i < n; i++) {
      const e = mapEvent({ ...structuredClone(template), messageId: `${String(template.messageId ?? 'm')}-${i}` })
      if (e) events.push(e)
    }
    t.equal(events.length, n, `${n} events mapped`)
    const batches: Array<Array<Record<string, unknown>>> = []
    for (let i = 0; i < events.length; i += maxEvents) batches.push(events.slice(i, i + maxEvents))
    await runSend(plugin, settingsFor(sample?.settings), h, batches)
    const counts = h.server.requests.map((r) => countEvents(r))
    t.ok(counts.length >= Math.ceil(n / perRequest), `${counts.length} requests for ${n} events`)
    t.ok(counts.every((c) => c <= perRequest), `each request holds at most ${perRequest} events (${counts.join(', ')})`)
    t.equal(counts.reduce((a, b) => a + b, 0), n, 'no event lost or duplicated')
  })

  await check('io', 'no I/O except through ctx.http', async (t) => {
    const h = await startHarness(vendor)
    t.teardown(() => h.server.close())
    const run = await guardIo(h.server.port, async () => {
      for (const ex of options.examples) {
        const mapped = mapEvent(structuredClone(ex.in))
        if (mapped !== null) await runSend(plugin, settingsFor(ex.settings), h, [[mapped]])
      }
    })
    t.same(run.refused, [], 'nothing reached the network behind ctx.http')
    if (run.error !== undefined) t.fail(`send failed: ${(run.error as Error)?.message ?? String(run.error)}`)
    t.equal(h.server.requests.length, h.asked.length, 'every request the vendor got went through ctx.http')
  })

  await check('readme', 'the README names every setting', async (t) => {
    if (options.readme === undefined) {
      t.comment('no readme given')
      return
    }
    const text = readFileSync(options.readme, 'utf8')
    const schema = plugin.settings as { properties?: Record<string, unknown> }
    for (const key of Object.keys(schema.properties ?? {})) t.ok(text.includes(`\`${key}\``), `README names \`${key}\``)
  })
}

function isPluginValid(plugin: DestinationDefinition<any>): boolean {
  try {
    defineDestination(plugin)
    return true
  } catch {
    return false
  }
}

function compileMappingOrNull(source: string): CompiledMapping | undefined {
  try {
    return compileMapping(source)
  } catch {
    return undefined // the `mapping` check reports the errors
  }
}

/**
 * A `ctx` for calling a plugin's `send` or `deleteUser` directly in a test: got with no
 * retries (like the router's), a quiet logger unless given, a fresh signal, empty state.
 * @example
 * await plugin.send(payloads, createTestContext({ apiKey: 'k', endpoint: server.url }))
 */
export function createTestContext<S>(settings: S, options: { signal?: AbortSignal; logger?: Logger; state?: Record<string, unknown> } = {}): DestinationContext<S> {
  return {
    settings,
    http: got.extend({ retry: { limit: 0 } }),
    logger: options.logger ?? { debug() {}, info() {}, warn() {}, error() {} },
    signal: options.signal ?? new AbortController().signal,
    attempt: 1,
    destination: 'test',
    state: options.state ?? {},
  }
}
