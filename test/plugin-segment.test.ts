// segment: the conformance suite, then the forwarding behaviours — against a local
// server answering like Segment's Tracking API, and against a real firstparty router on
// 127.0.0.1 (a router forwarding to another router).
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import got from 'got'
import t, { type Test } from 'tap'
import { createRouter, AuthenticationError, PermanentError, RetryableError, type Logger, type SendResult } from '../src/index.js'
import { captureDestination, runDestinationConformance, startTestServer, type DestinationExample, type TestServer } from '../src/testing.js'
import { classifyError } from '../src/deliver/retry.js'
import segment, { MAX_EVENT_BYTES, MAX_REQUEST_BYTES, SegmentSettings } from '../plugins/segment/index.js'

const examples = JSON.parse(readFileSync(new URL('../plugins/segment/examples.json', import.meta.url), 'utf8')) as DestinationExample[]
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }
const WRITE_KEY = 'wk_relay'
const basic = (k: string) => 'Basic ' + Buffer.from(`${k}:`).toString('base64')

await runDestinationConformance(t, {
  plugin: segment,
  settings: { writeKey: WRITE_KEY },
  examples,
  // Segment answers 200 { success: true } to a good batch.
  vendor: { success: { status: 200, body: { success: true } }, maxEventsPerRequest: 500 },
  readme: new URL('../plugins/segment/README.md', import.meta.url),
  skip: { examples: 'the body carries sentAt, the time of the request; checked below with sentAt set aside' },
})

async function segmentServer(t: Test): Promise<TestServer> {
  const server = await startTestServer()
  server.fallback = { status: 200, body: { success: true } }
  t.teardown(() => server.close())
  return server
}

function ctxFor(server: TestServer, settings: Record<string, unknown> = {}) {
  return {
    settings: { writeKey: WRITE_KEY, endpoint: server.url, gzip: false, ...settings },
    http: got.extend({ retry: { limit: 0 } }),
    logger: quiet,
    signal: new AbortController().signal,
    attempt: 1,
    destination: 'segment',
    state: {},
  }
}

const ev = (i: number, extra: Record<string, unknown> = {}) => ({
  type: 'track', event: 'E', messageId: `m-${i}`, userId: 'u', timestamp: '2024-03-01T12:00:00.000Z',
  originalTimestamp: '2024-03-01T12:00:00.000Z', receivedAt: '2024-03-01T12:00:00.000Z', context: {}, ...extra,
})

t.test('examples: each reaches the endpoint as its out; sentAt is the time of the request', async (t) => {
  for (const ex of examples) {
    const server = await segmentServer(t)
    const before = Date.now()
    await segment.send([structuredClone(ex.in)] as never, ctxFor(server, { ...ex.settings, endpoint: server.url }))
    t.equal(server.requests.length, 1, `${ex.title}: one request`)
    const body = server.requests[0]!.json as { sentAt: string }
    const sentAt = Date.parse(body.sentAt)
    t.ok(sentAt >= before - 1 && sentAt <= Date.now() + 1, `${ex.title}: sentAt is now`)
    t.same({ ...body, sentAt: (ex.out as { sentAt: string }).sentAt }, ex.out, `${ex.title}: the endpoint receives out`)
    t.equal(server.requests[0]!.url, '/v1/batch')
    if (ex.settings?.gzip) t.equal(server.requests[0]!.headers['content-encoding'], 'gzip', 'gzip')
  }
})

t.test('Basic auth with the write key and an empty password; JSON content type', async (t) => {
  const server = await segmentServer(t)
  await segment.send([ev(1)] as never, ctxFor(server))
  t.equal(server.requests[0]!.headers.authorization, basic(WRITE_KEY))
  t.match(server.requests[0]!.headers['content-type'], /^application\/json/)
})

t.test('answers classified the way analytics-node does', async (t) => {
  const cases: Array<[number, string, Record<string, string>?]> = [
    [500, 'retry'], [502, 'retry'], [503, 'retry'], [504, 'retry'],
    [501, 'permanent'], [505, 'permanent'], [511, 'permanent'],
    [408, 'retry'], [410, 'retry'], [429, 'retry', { 'retry-after': '3' }], [460, 'retry'],
    [400, 'permanent'], [413, 'permanent'], [404, 'permanent'],
    [401, 'auth'], [403, 'auth'],
  ]
  const server = await segmentServer(t)
  for (const [status, rule, headers] of cases) {
    server.script({ status, body: { error: `status ${status}` }, ...(headers ? { headers } : {}) })
    const err = await segment.send([ev(status)] as never, ctxFor(server)).then(() => undefined, (e: unknown) => e)
    const c = classifyError(err)
    t.equal(c.rule, rule, `${status} → ${rule}`)
    t.equal(c.status, status, `${status}: status kept`)
    if (headers) t.equal(c.retryAfterMs, 3000, '429: Retry-After honoured')
  }
  server.script({ status: 400, body: { code: 'invalid_event', message: 'batch[0]/event: is required' } })
  const err = await segment.send([ev(1)] as never, ctxFor(server)).catch((e: unknown) => e)
  t.type(err, PermanentError)
  t.match((err as Error).message, /400: invalid_event batch\[0\]\/event: is required/, "the receiver's message is kept")
  t.type(await segment.send([ev(1)] as never, ctxFor(server, { endpoint: 'http://127.0.0.1:9' })).catch((e: unknown) => e), RetryableError, 'no answer: retried')
})

t.test('an event over 32 KB is refused alone, permanently; the others are sent', async (t) => {
  const server = await segmentServer(t)
  const big = ev(2, { properties: { blob: 'x'.repeat(MAX_EVENT_BYTES) } })
  const result = (await segment.send([ev(1), big, ev(3)] as never, ctxFor(server))) as SendResult
  t.equal(result.rejected?.length, 1)
  t.equal(result.rejected?.[0]?.index, 1)
  t.type(result.rejected?.[0]?.error, PermanentError)
  t.match(result.rejected?.[0]?.error.message, /event 1 is \d+ bytes as JSON; .* at most 32768/)
  t.same((server.requests[0]!.json as { batch: Array<{ messageId: string }> }).batch.map((e) => e.messageId), ['m-1', 'm-3'])
})

t.test('a batch over 500 KB is cut into several requests, each under 500 KB, nothing lost', async (t) => {
  const server = await segmentServer(t)
  const events = Array.from({ length: 40 }, (_, i) => ev(i, { properties: { blob: 'y'.repeat(30_000) } }))
  const result = (await segment.send(events as never, ctxFor(server))) as SendResult
  t.same(result.rejected, [])
  t.ok(server.requests.length >= 3, `${server.requests.length} requests`)
  for (const r of server.requests) t.ok(Buffer.byteLength(r.text) <= MAX_REQUEST_BYTES, `${Buffer.byteLength(r.text)} bytes ≤ 500 KB`)
  const ids = server.requests.flatMap((r) => (r.json as { batch: Array<{ messageId: string }> }).batch.map((e) => e.messageId))
  t.same(ids, events.map((e) => e.messageId), 'all events, in order, once')
})

t.test('a later request failing: the earlier ones count as delivered, the rest carry the error', async (t) => {
  const server = await segmentServer(t)
  server.script({ status: 200 }, { status: 503, headers: { 'retry-after': '2' } })
  const events = Array.from({ length: 40 }, (_, i) => ev(i, { properties: { blob: 'y'.repeat(30_000) } }))
  const result = (await segment.send(events as never, ctxFor(server))) as SendResult
  const firstCount = (server.requests[0]!.json as { batch: unknown[] }).batch.length
  t.equal(server.requests.length, 2, 'stops after the failed request')
  t.equal(result.rejected?.length, 40 - firstCount, 'the events not delivered are rejected')
  t.same(result.rejected?.map((r) => r.index), Array.from({ length: 40 - firstCount }, (_, i) => firstCount + i))
  t.ok(result.rejected?.every((r) => r.error instanceof RetryableError && (r.error as RetryableError).retryAfterMs === 2000), 'retryable, after 2 s')
})

t.test('auth error on the only request fails the batch as one', async (t) => {
  const server = await segmentServer(t)
  server.script({ status: 401, body: { code: 'unknown_write_key', message: 'The write key does not belong to any configured source.' } })
  const err = await segment.send([ev(1)] as never, ctxFor(server)).catch((e: unknown) => e)
  t.type(err, AuthenticationError)
  t.match((err as Error).message, /check writeKey/)
})

t.test('the schema names its settings', async (t) => {
  t.same(Object.keys(SegmentSettings.properties).sort(), ['endpoint', 'gzip', 'writeKey'])
})

// ─── A router forwarding to another router ─────────────────────────────────────────

async function receivingRouter(t: Test): Promise<{ url: string; capture: ReturnType<typeof captureDestination>; router: ReturnType<typeof createRouter> }> {
  const capture = captureDestination()
  const router = createRouter({
    logger: quiet,
    sources: [{ name: 'relay', writeKey: WRITE_KEY }],
    destinations: [{ name: 'capture', type: capture.plugin, delivery: { batch: { maxWaitMs: 0 } } }],
  })
  const server: Server = createServer(router.handler())
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(async () => {
    await router.close({ timeoutMs: 1000 })
    server.closeAllConnections()
    await new Promise<void>((r) => server.close(() => r()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, capture, router }
}

for (const gzip of [false, true]) {
  t.test(`router → router${gzip ? ' (gzip)' : ''}: every type arrives with its messageId, context and the true timestamp`, async (t) => {
    const b = await receivingRouter(t)
    const a = createRouter({
      logger: quiet,
      destinations: [{
        name: 'relay', type: segment as never, settings: { writeKey: WRITE_KEY, endpoint: b.url, gzip },
        // The relay holds events 300 ms: the receiver must keep their time, not take the delivery's.
        delivery: { batch: { maxEvents: 10, maxWaitMs: 300 } },
      }],
    })
    t.teardown(() => a.close({ timeoutMs: 1000 }))
    // A client whose clock is 10 minutes fast: router A corrects it; B must not undo that.
    const skew = 10 * 60_000
    const clientNow = Date.now() + skew
    const sentAt = new Date(clientNow).toISOString()
    const base = { anonymousId: 'a-1', originalTimestamp: new Date(clientNow - 2000).toISOString(), sentAt, context: { consent: { categoryPreferences: { analytics: true } } } }
    await a.track({ ...base, userId: 'u-1', event: 'Order Completed', messageId: 'm-t', properties: { revenue: 30 } })
    await a.identify({ ...base, userId: 'u-1', messageId: 'm-i', traits: { plan: 'pro' } })
    await a.page({ ...base, name: 'Home', messageId: 'm-p' })
    await a.screen({ ...base, name: 'Main', messageId: 'm-s' })
    await a.group({ ...base, userId: 'u-1', groupId: 'g-1', messageId: 'm-g' })
    await a.alias({ ...base, userId: 'u-1', previousId: 'a-1', messageId: 'm-a' })
    const got = await b.capture.waitFor(6, 5000)
    t.same(got.map((e) => e.messageId), ['m-t', 'm-i', 'm-p', 'm-s', 'm-g', 'm-a'])
    t.same(got.map((e) => e.type), ['track', 'identify', 'page', 'screen', 'group', 'alias'])
    const expected = clientNow - skew - 2000 // the event's true time on the server clock
    for (const e of got) {
      const ts = Date.parse(e.timestamp)
      t.ok(Math.abs(ts - expected) < 250, `${e.type}: timestamp ${e.timestamp} is the event's time (not shifted by the skew or the 300 ms wait)`)
      t.ok(Date.parse(e.receivedAt) - ts >= 2000, `${e.type}: received after the wait`)
      t.same(e.context.consent, { categoryPreferences: { analytics: true } }, `${e.type}: consent travels`)
    }
    t.same((got[0] as { properties?: unknown }).properties, { revenue: 30 })
    t.same((got[1] as { traits?: unknown }).traits, { plan: 'pro' })
    const end = Date.now() + 2000
    while ((a.stats().destinations.relay?.delivered ?? 0) < 6 && Date.now() < end) await new Promise((r) => setTimeout(r, 5))
    t.equal(a.stats().destinations.relay?.delivered, 6, 'router A counts them delivered')
  })
}

t.test('router → router: a wrong write key is an auth error, dead-lettered, not retried', async (t) => {
  const b = await receivingRouter(t)
  const a = createRouter({
    logger: quiet,
    destinations: [{ name: 'relay', type: segment as never, settings: { writeKey: 'wrong', endpoint: b.url }, delivery: { batch: { maxWaitMs: 0 } } }],
  })
  t.teardown(() => a.close({ timeoutMs: 1000 }))
  await a.track({ userId: 'u-1', event: 'X' })
  const end = Date.now() + 5000
  while (a.deadLetters.count({ destination: 'relay' }) < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
  const letters = a.deadLetters.list({ destination: 'relay' })
  t.equal(letters.length, 1)
  t.equal(letters[0]?.error.code, 'DELIVERY_AUTH')
  t.match(letters[0]?.error.message, /401: unknown_write_key/)
  t.equal(b.capture.events.length, 0)
})

t.test('router → router: an event over 32 KB is dead-lettered at the relay; its neighbours arrive', async (t) => {
  const b = await receivingRouter(t)
  const a = createRouter({
    logger: quiet,
    // The relay itself takes bigger events (its own intake limit raised): the 32 KB limit is the endpoint's.
    limits: { maxEventBytes: 100_000 },
    destinations: [{ name: 'relay', type: segment as never, settings: { writeKey: WRITE_KEY, endpoint: b.url }, delivery: { batch: { maxEvents: 3, maxWaitMs: 100 } } }],
  })
  t.teardown(() => a.close({ timeoutMs: 1000 }))
  await a.track({ userId: 'u-1', event: 'small-1' })
  await a.track({ userId: 'u-1', event: 'big', properties: { blob: 'z'.repeat(20_000), more: 'w'.repeat(20_000) } })
  await a.track({ userId: 'u-1', event: 'small-2' })
  const got = await b.capture.waitFor(2, 5000)
  t.same(got.map((e) => (e as { event?: string }).event), ['small-1', 'small-2'])
  const end = Date.now() + 5000
  while (a.deadLetters.count({ destination: 'relay' }) < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
  const letters = a.deadLetters.list({ destination: 'relay' })
  t.equal(letters.length, 1)
  t.equal(letters[0]?.error.code, 'DELIVERY_PERMANENT')
})
