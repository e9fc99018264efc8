// ga4: the conformance suite, then GA4's own behaviours against a local server that
// answers like the Measurement Protocol (204 for /mp/collect whatever the payload,
// 200 with validationMessages for /debug/mp/collect).
import { readFileSync } from 'node:fs'
import got from 'got'
import t, { type Test } from 'tap'
import { createRouter, PermanentError, RetryableError, AuthenticationError, type DeliveryError, type Logger, type SendResult } from '../src/index.js'
import { runDestinationConformance, startTestServer, type DestinationExample, type RecordedRequest, type ScriptedResponse, type TestServer } from '../src/testing.js'
import { classifyError } from '../src/deliver/retry.js'
import ga4, { clientIdFromCookie, Ga4Settings, mapping } from '../plugins/ga4/index.js'
import { compileMapping } from '../dsl/index.js'

const examples = JSON.parse(readFileSync(new URL('../plugins/ga4/examples.json', import.meta.url), 'utf8')) as DestinationExample[]
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }
const SECRET = 'test-secret'

/** The Measurement Protocol's answers: 204 from /mp/collect, 200 + validationMessages from /debug/mp/collect. */
function googleAnswers(validationMessages: unknown[] = []): (req: RecordedRequest) => ScriptedResponse {
  return (req) => (req.url.startsWith('/debug/') ? { status: 200, body: { validationMessages } } : { status: 204 })
}

await runDestinationConformance(t, {
  plugin: ga4,
  settings: { measurementId: 'G-TEST123', apiSecret: SECRET },
  examples,
  vendor: { success: googleAnswers(), maxEventsPerRequest: 25 },
  readme: new URL('../plugins/ga4/README.md', import.meta.url),
})

async function ga4Server(t: Test): Promise<TestServer> {
  const server = await startTestServer()
  server.fallback = googleAnswers()
  t.teardown(() => server.close())
  return server
}

function ctxFor(server: TestServer, settings: Record<string, unknown> = {}) {
  return {
    settings: { measurementId: 'G-TEST123', apiSecret: SECRET, region: 'global' as const, validate: false, ga360: false, endpoint: server.url, ...settings },
    http: got.extend({ retry: { limit: 0 } }),
    logger: quiet,
    signal: new AbortController().signal,
    attempt: 1,
    destination: 'ga4',
    state: {},
  }
}

const toGa4 = compileMapping(mapping)
const body = (over: Record<string, unknown> = {}, event: Record<string, unknown> = { name: 'purchase', params: { value: 1 } }) => ({
  client_id: '123.456',
  timestamp_micros: 1709294400000000,
  events: [event],
  ...over,
})

t.test('limits: a body GA4 would drop is refused alone, permanently, naming the limit; the rest are sent', async (t) => {
  const server = await ga4Server(t)
  const many = Object.fromEntries(Array.from({ length: 26 }, (_, i) => [`p${i}`, i]))
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['name over 40', body({}, { name: 'a'.repeat(41) }), /events\[0\]\.name "a{41}" is 41 characters; GA4 allows 40/],
    ['name with a dash', body({}, { name: 'order-completed' }), /must start with a letter and hold only letters, digits and underscores/],
    ['name starting with a digit', body({}, { name: '1st_order' }), /must start with a letter/],
    ['reserved name', body({}, { name: 'session_start' }), /"session_start" is reserved by GA4/],
    ['reserved prefix', body({}, { name: 'google_thing' }), /reserved prefix "google_"/],
    ['26 parameters', body({}, { name: 'x', params: many }), /has 26 parameters; GA4 allows 25/],
    ['parameter name over 40', body({}, { name: 'x', params: { ['b'.repeat(41)]: 1 } }), /parameter name .* is 41 characters; GA4 allows 40/],
    ['reserved parameter prefix', body({}, { name: 'x', params: { ga_session: 1 } }), /reserved prefix "ga_"/],
    ['value over 100', body({}, { name: 'x', params: { note: 'c'.repeat(101) } }), /events\[0\]\.params\.note is 101 characters; GA4 allows 100/],
    ['page_location over 1000', body({}, { name: 'page_view', params: { page_location: 'https://x/' + 'd'.repeat(991) } }), /page_location is 1001 characters; GA4 allows 1000/],
    ['object parameter', body({}, { name: 'x', params: { nested: { a: 1 } } }), /must be a string, number or boolean \(got object\)/],
    ['item value over 100', body({}, { name: 'purchase', params: { items: [{ item_id: 'e'.repeat(101) }] } }), /items\[0\]\.item_id is 101 characters/],
    ['no client_id', body({ client_id: undefined }), /client_id is missing: the event has no _ga cookie and no anonymousId/],
    ['user property name over 24', body({ user_properties: { ['f'.repeat(25)]: { value: 'x' } } }), /is 25 characters; GA4 allows 24/],
    ['user property value over 36', body({ user_properties: { plan: { value: 'g'.repeat(37) } } }), /user_properties\.plan\.value is 37 characters; GA4 allows 36/],
    ['26 events in one body', body({ events: Array.from({ length: 26 }, () => ({ name: 'x' })) }), /26 events in one body; GA4 allows 25/],
  ]
  const good = body({ client_id: 'good.1' })
  const goodLong = body({ client_id: 'good.1' }, { name: 'page_view', params: { page_location: 'https://x/' + 'd'.repeat(990), page_title: 't'.repeat(300) } })
  const result = (await ga4.send([good, ...cases.map((c) => c[1]), goodLong] as never, ctxFor(server))) as SendResult
  const rejected = new Map(result.rejected!.map((r) => [r.index, r.error]))
  cases.forEach(([what, , message], i) => {
    const err = rejected.get(i + 1)
    t.type(err, PermanentError, `${what}: permanent`)
    t.match(err?.message, message, `${what}: says why`)
  })
  t.notOk(rejected.has(0), 'the good body is not rejected')
  t.notOk(rejected.has(cases.length + 1), 'page_location ≤ 1000 and page_title ≤ 300 are fine')
  t.equal(server.requests.length, 1, 'one request for the two good bodies')
  t.same((server.requests[0]!.json as { events: Array<{ name: string }> }).events.map((e) => e.name), ['purchase', 'page_view'])
})

t.test('ga360: parameter values may be 500 characters', async (t) => {
  const server = await ga4Server(t)
  const long = body({}, { name: 'x', params: { note: 'c'.repeat(500) } })
  t.equal(await ga4.send([long] as never, ctxFor(server, { ga360: true })), undefined)
  const err = await ga4.send([body({}, { name: 'x', params: { note: 'c'.repeat(501) } })] as never, ctxFor(server, { ga360: true })).catch((e: unknown) => e)
  t.match(err, { message: /501 characters; GA4 allows 500/ })
})

t.test('batching: one client per request, at most 25 events, arrival order kept', async (t) => {
  const server = await ga4Server(t)
  const events = [
    ...Array.from({ length: 30 }, (_, i) => body({ client_id: 'A.1' }, { name: 'e', params: { i } })),
    ...Array.from({ length: 3 }, (_, i) => body({ client_id: 'B.2', user_id: 'u-b' }, { name: 'e', params: { i } })),
  ]
  await ga4.send(events as never, ctxFor(server))
  const reqs = server.requests.map((r) => r.json as { client_id: string; user_id?: string; events: Array<{ params: { i: number } }> })
  t.same(reqs.map((r) => [r.client_id, r.events.length]).sort(), [['A.1', 25], ['A.1', 5], ['B.2', 3]])
  const a = reqs.filter((r) => r.client_id === 'A.1').flatMap((r) => r.events.map((e) => e.params.i))
  t.same(a, Array.from({ length: 30 }, (_, i) => i), 'client A in order, none lost')
  t.equal(reqs.find((r) => r.client_id === 'B.2')!.user_id, 'u-b')
})

t.test('batching: a body that would pass 130 kB starts a new request', async (t) => {
  const server = await ga4Server(t)
  // 25 params of 100 characters ≈ 3 kB per event: ~40 would pass 130 kB, so 25-event requests stay under it;
  // use the item list to make each event ~11 kB, so ~11 fit.
  const item = (i: number) => ({ item_id: `i${i}`, item_name: 'n'.repeat(100), item_brand: 'b'.repeat(100), item_category: 'c'.repeat(100) })
  const big = (k: number) => body({}, { name: 'view_item_list', params: { k, items: Array.from({ length: 35 }, (_, i) => item(i)) } })
  await ga4.send(Array.from({ length: 25 }, (_, k) => big(k)) as never, ctxFor(server))
  t.ok(server.requests.length >= 2, `${server.requests.length} requests`)
  for (const r of server.requests) t.ok(Buffer.byteLength(r.text) < 130_000, `${Buffer.byteLength(r.text)} bytes < 130 kB`)
  t.equal(server.requests.reduce((n, r) => n + (r.json as { events: unknown[] }).events.length, 0), 25)
})

t.test('merged bodies keep each event’s own timestamp_micros', async (t) => {
  const server = await ga4Server(t)
  await ga4.send([body({ timestamp_micros: 1000000 }, { name: 'a' }), body({ timestamp_micros: 2000000 }, { name: 'b' })] as never, ctxFor(server))
  t.same(server.requests[0]!.json, { client_id: '123.456', timestamp_micros: 1000000, events: [{ name: 'a' }, { name: 'b', timestamp_micros: 2000000 }] })
})

t.test('client_id: the _ga cookie value, or the anonymousId; a raw cookie value from a custom mapping is accepted', async (t) => {
  t.equal(clientIdFromCookie('GA1.1.123.456'), '123.456')
  t.equal(clientIdFromCookie('GA1.2.987654321.1709000000'), '987654321.1709000000')
  t.equal(clientIdFromCookie('anon-7'), 'anon-7')
  const ev = { type: 'track', event: 'Signed Up', anonymousId: 'anon-1', timestamp: '2024-03-01T12:00:00Z', properties: { method: 'email' } }
  t.equal(toGa4({ ...ev, context: { cookies: { _ga: 'GA1.1.42.43' } } })!.client_id, '42.43')
  t.equal(toGa4(ev)!.client_id, 'anon-1')
  t.equal(toGa4({ ...ev, context: { cookies: { _ga: 'garbage' } } })!.client_id, 'anon-1', 'a malformed cookie falls back to the anonymousId')
  const server = await ga4Server(t)
  await ga4.send([body({ client_id: 'GA1.1.777.888' })] as never, ctxFor(server))
  t.equal((server.requests[0]!.json as { client_id: string }).client_id, '777.888')
})

t.test('session parameters: from the GS1/GS2 session cookie, context.sessionId or properties', async (t) => {
  const ev = { type: 'track', event: 'Signed In', anonymousId: 'a', timestamp: '2024-03-01T12:00:00Z', properties: {} as Record<string, unknown> }
  const params = (e: Record<string, unknown>) => (toGa4(e)!.events as Array<{ params: Record<string, unknown> }>)[0]!.params
  t.match(params({ ...ev, context: { cookies: { _ga_XYZ: 'GS1.1.1709294000.3.1.1709294400.0.0.0' } } }), { session_id: '1709294000', engagement_time_msec: 1 })
  t.match(params({ ...ev, context: { cookies: { _ga_XYZ: 'GS2.1.s1709295000$o4$g1$t1709295100$j0$l0$h0' } } }), { session_id: '1709295000' })
  t.match(params({ ...ev, context: { sessionId: 1709296000 } }), { session_id: '1709296000' })
  t.match(params({ ...ev, properties: { session_id: 'abc', engagement_time_msec: 2500 } }), { session_id: 'abc', engagement_time_msec: 2500 })
  const none = params(ev)
  t.notOk('session_id' in none || 'engagement_time_msec' in none, 'no session: neither parameter')
  t.same(params({ ...ev, event: 'Signed In', properties: { method: 'google' } }), { method: 'google' })
})

t.test('e-commerce spec events become GA4 recommended events', async (t) => {
  const ev = (event: string, properties: Record<string, unknown> = {}) => ({ type: 'track', event, anonymousId: 'a', timestamp: '2024-03-01T12:00:00Z', properties })
  const name = (e: Record<string, unknown>) => (toGa4(e)?.events as Array<{ name: string }> | undefined)?.[0]?.name
  const table: Array<[string, string]> = [
    ['Products Searched', 'search'], ['Product List Viewed', 'view_item_list'], ['Product Clicked', 'select_item'],
    ['Product Viewed', 'view_item'], ['Product Added', 'add_to_cart'], ['Product Removed', 'remove_from_cart'],
    ['Product Added to Wishlist', 'add_to_wishlist'], ['Cart Viewed', 'view_cart'], ['Checkout Started', 'begin_checkout'],
    ['Payment Info Entered', 'add_payment_info'], ['Order Completed', 'purchase'], ['Order Refunded', 'refund'],
    ['Promotion Viewed', 'view_promotion'], ['Promotion Clicked', 'select_promotion'], ['Signed Up', 'sign_up'], ['Signed In', 'login'],
    ['Video Played', 'video_played'], ['Newsletter.Sign-up', 'newsletter_sign_up'],
  ]
  for (const [segment, g] of table) t.equal(name(ev(segment)), g, `${segment} → ${g}`)
  t.equal(name({ type: 'page', anonymousId: 'a', timestamp: '2024-03-01T12:00:00Z' }), 'page_view')
  for (const type of ['identify', 'screen', 'group', 'alias']) t.equal(toGa4({ type, anonymousId: 'a' }), null, `${type} → nothing`)
  const cart = toGa4(ev('Cart Viewed', { products: [{ product_id: 'p', price: 2, quantity: 3 }, { product_id: 'q', price: 1 }] }))!
  t.match(cart.events, [{ params: { value: 7, currency: 'USD' } }], 'cart value = Σ price × quantity when not given')
})

t.test('validate: /debug/mp/collect, validation messages become permanent errors', async (t) => {
  const server = await ga4Server(t)
  server.fallback = googleAnswers([{ fieldPath: 'events', description: 'Event at index: [1] has invalid name [_bad]. Names must start with an alphabetic character.', validationCode: 'NAME_INVALID' }])
  const result = (await ga4.send([body({}, { name: 'ok' }), body({}, { name: 'also_ok' })] as never, ctxFor(server, { validate: true }))) as SendResult
  t.match(server.requests[0]!.url, /^\/debug\/mp\/collect\?measurement_id=G-TEST123&api_secret=test-secret$/)
  t.equal(result.rejected!.length, 1, 'only the event the message names')
  t.equal(result.rejected![0]!.index, 1)
  t.type(result.rejected![0]!.error, PermanentError)
  t.match(result.rejected![0]!.error.message, /GA4 validation: NAME_INVALID at events: Event at index: \[1\] has invalid name/)

  server.fallback = googleAnswers([{ fieldPath: 'client_id', description: 'Measurement requires a client_id.', validationCode: 'VALUE_REQUIRED' }])
  const err = await ga4.send([body(), body()] as never, ctxFor(server, { validate: true })).catch((e: unknown) => e)
  t.type(err, PermanentError, 'a message about the whole request fails the batch')
  t.match(err, { message: /VALUE_REQUIRED at client_id/ })

  server.fallback = googleAnswers([])
  t.equal(await ga4.send([body()] as never, ctxFor(server, { validate: true })), undefined, 'no messages: valid')
})

t.test('HTTP failures keep their rule and never show the api_secret', async (t) => {
  const server = await ga4Server(t)
  const cases: Array<[ScriptedResponse, new (...a: never[]) => DeliveryError]> = [
    [{ status: 503, headers: { 'retry-after': '30' } }, RetryableError],
    [{ status: 429, headers: { 'retry-after': '2' } }, RetryableError],
    [{ status: 403, body: { error: 'forbidden' } }, AuthenticationError],
    [{ status: 400, body: 'bad' }, PermanentError],
  ]
  for (const [answer, type] of cases) {
    server.script(answer)
    const err = await ga4.send([body()] as never, ctxFor(server)).catch((e: unknown) => e)
    t.type(err, type, `${answer.status} → ${type.name}`)
    t.notMatch((err as Error).message, SECRET, 'no secret in the message')
  }
  t.equal(classifyError(await ga4.send([body()] as never, (server.script({ status: 503, headers: { 'retry-after': '30' } }), ctxFor(server))).catch((e: unknown) => e)).retryAfterMs, 30_000)
  const down = ctxFor(server, { endpoint: 'http://127.0.0.1:1' })
  const netErr = await ga4.send([body()] as never, down).catch((e: unknown) => e)
  t.type(netErr, RetryableError, 'connection refused → retry')
  t.notMatch((netErr as Error).message, SECRET)
})

t.test('regions and endpoint', async (t) => {
  const server = await ga4Server(t)
  const asked: string[] = []
  const http = got.extend({ retry: { limit: 0 }, handlers: [(o, next) => (asked.push(String(o.url)), (o.url = new URL(server.url + new URL(String(o.url)).pathname + new URL(String(o.url)).search)), next(o))] })
  for (const region of ['global', 'eu'] as const) {
    const ctx = { ...ctxFor(server, { region }), http }
    delete (ctx.settings as { endpoint?: string }).endpoint
    await ga4.send([body()] as never, ctx)
  }
  t.same(asked, [
    'https://www.google-analytics.com/mp/collect?measurement_id=G-TEST123&api_secret=test-secret',
    'https://region1.google-analytics.com/mp/collect?measurement_id=G-TEST123&api_secret=test-secret',
  ])
  t.same(Object.keys(Ga4Settings.properties).sort(), ['apiSecret', 'endpoint', 'ga360', 'measurementId', 'region', 'validate'])
})

t.test('through the router: registered as type ga4, mapped by its default mapping, consent-gated on analytics', async (t) => {
  const server = await ga4Server(t)
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'analytics', type: 'ga4', settings: { measurementId: 'G-ROUTER1', apiSecret: SECRET, endpoint: server.url }, delivery: { batch: { maxWaitMs: 10 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 500 }))
  const cookies = { _ga: 'GA1.1.111.222' }
  await router.track({ userId: 'u-1', event: 'Order Completed', context: { cookies }, properties: { order_id: 'o-8' } })
  await router.track({ userId: 'u-1', event: 'Order Completed', context: { cookies, consent: { categoryPreferences: { analytics: true } } }, properties: { order_id: 'o-9', revenue: 12, products: [{ sku: 's', price: 12 }] } })
  await router.track({ userId: 'u-1', event: 'Order Completed', context: { cookies, consent: { categoryPreferences: { analytics: false } } }, properties: { order_id: 'o-10' } })
  await router.identify({ userId: 'u-1', traits: { plan: 'pro' } })
  const [req] = await server.waitFor(1)
  await new Promise((r) => setTimeout(r, 100))
  t.equal(server.requests.length, 1, 'no consent (consent.missing defaults to deny), analytics denied, identify: nothing sent')
  t.equal(req!.url, `/mp/collect?measurement_id=G-ROUTER1&api_secret=${SECRET}`)
  t.match(req!.json, { client_id: '111.222', user_id: 'u-1', events: [{ name: 'purchase', params: { transaction_id: 'o-9', value: 12, currency: 'USD', items: [{ item_id: 's', price: 12, quantity: 1 }] } }] })
})
