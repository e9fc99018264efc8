// meta-capi: the conformance suite, then Meta's own behaviours against a local server
// that answers like the Graph API ({ events_received, messages, fbtrace_id } on success,
// { error: { code, type, error_subcode, message, fbtrace_id } } on failure).
import { readFileSync } from 'node:fs'
import got from 'got'
import t, { type Test } from 'tap'
import { createRouter, PermanentError, RetryableError, AuthenticationError, type DeliveryError, type Logger, type SendResult } from '../src/index.js'
import { runDestinationConformance, startTestServer, type DestinationExample, type RecordedRequest, type ScriptedResponse, type TestServer } from '../src/testing.js'
import { classifyError } from '../src/deliver/retry.js'
import metaCapi, { mapping, MetaCapiSettings } from '../plugins/meta-capi/index.js'
import { hashUserData, normalizeField, sha256 } from '../plugins/meta-capi/user-data.js'
import { compileMapping } from '../dsl/index.js'

const examples = JSON.parse(readFileSync(new URL('../plugins/meta-capi/examples.json', import.meta.url), 'utf8')) as DestinationExample[]
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }
const TOKEN = 'test-token'

const graphError = (status: number, error: Record<string, unknown>, headers: Record<string, string> = {}): ScriptedResponse => ({
  status,
  headers,
  body: { error: { message: 'Message describing the error', fbtrace_id: 'AbCdEfG123', ...error } },
})
const metaSuccess = (req: RecordedRequest): ScriptedResponse => ({
  status: 200,
  body: { events_received: (req.json as { data?: unknown[] })?.data?.length ?? 0, messages: [], fbtrace_id: 'AbCdEfG123' },
})

await runDestinationConformance(t, {
  plugin: metaCapi,
  settings: { pixelId: '1234567890', accessToken: TOKEN },
  examples,
  vendor: {
    success: metaSuccess,
    maxEventsPerRequest: 1000,
    errors: {
      'server-error': graphError(500, { type: 'OAuthException', code: 2, message: 'Service temporarily unavailable', is_transient: true }),
      'rate-limited': graphError(429, { type: 'OAuthException', code: 17, message: 'User request limit reached' }, { 'retry-after': '7' }),
      invalid: graphError(400, { type: 'OAuthException', code: 100, error_subcode: 2804003, message: 'Invalid parameter', error_user_msg: 'The event time is too far in the past.' }),
      unauthorized: graphError(401, { type: 'OAuthException', code: 190, message: 'Error validating access token: Session has expired' }),
      forbidden: graphError(403, { type: 'OAuthException', code: 200, message: 'Permissions error' }),
    },
  },
  readme: new URL('../plugins/meta-capi/README.md', import.meta.url),
})

async function metaServer(t: Test): Promise<TestServer> {
  const server = await startTestServer()
  server.fallback = metaSuccess
  t.teardown(() => server.close())
  return server
}

function ctxFor(server: TestServer, settings: Record<string, unknown> = {}, logger: Logger = quiet) {
  return {
    settings: { pixelId: '1234567890', accessToken: TOKEN, apiVersion: 'v21.0', actionSource: 'website' as const, endpoint: server.url, ...settings },
    http: got.extend({ retry: { limit: 0 } }),
    logger,
    signal: new AbortController().signal,
    attempt: 1,
    destination: 'meta',
    state: {},
  }
}

const serverEvent = (over: Record<string, unknown> = {}) => ({
  event_name: 'Purchase',
  event_time: 1709294400,
  event_id: 'm-1',
  event_source_url: 'https://shop.example/thanks',
  user_data: { em: [sha256('jane@example.com')], client_user_agent: 'Mozilla/5.0', client_ip_address: '203.0.113.7' },
  custom_data: { value: 1, currency: 'USD' },
  ...over,
})

t.test("Meta's error codes decide the rule, whatever the HTTP status", async (t) => {
  const server = await metaServer(t)
  const cases: Array<[string, ScriptedResponse, new (...a: never[]) => DeliveryError, RegExp?]> = [
    ['190 OAuthException: token expired', graphError(400, { type: 'OAuthException', code: 190, error_subcode: 463 }), AuthenticationError, /code 190\/463/],
    ['102 session', graphError(400, { type: 'OAuthException', code: 102 }), AuthenticationError],
    ['10 permission denied', graphError(400, { type: 'OAuthException', code: 10 }), AuthenticationError],
    ['2xx-range permission code 294', graphError(403, { type: 'OAuthException', code: 294 }), AuthenticationError],
    ['OAuthException without a code', graphError(400, { type: 'OAuthException' }), AuthenticationError],
    ['4 app rate limit', graphError(400, { type: 'OAuthException', code: 4 }), RetryableError],
    ['17 user rate limit', graphError(400, { type: 'OAuthException', code: 17 }), RetryableError],
    ['32 page rate limit', graphError(400, { type: 'OAuthException', code: 32 }), RetryableError],
    ['613 calls per hour', graphError(400, { type: 'OAuthException', code: 613 }), RetryableError],
    ['80004 ads rate limit', graphError(400, { type: 'OAuthException', code: 80004 }), RetryableError],
    ['1 unknown (downtime)', graphError(500, { type: 'OAuthException', code: 1 }), RetryableError],
    ['is_transient with another code', graphError(400, { type: 'OAuthException', code: 9007, is_transient: true }), RetryableError],
    ['100 invalid parameter (type OAuthException)', graphError(400, { type: 'OAuthException', code: 100, error_subcode: 2804019, error_user_msg: 'Invalid user_data' }), PermanentError, /code 100\/2804019, OAuthException, Invalid user_data, fbtrace_id AbCdEfG123/],
    ['an unknown code', graphError(400, { type: 'GraphMethodException', code: 999 }), PermanentError],
    ['no Graph error body: 502', { status: 502, body: '<html>bad gateway</html>' }, RetryableError],
    ['no Graph error body: 404', { status: 404, body: '' }, PermanentError],
  ]
  for (const [what, answer, type, message] of cases) {
    server.script(answer)
    const err = await metaCapi.send([serverEvent()] as never, ctxFor(server)).catch((e: unknown) => e)
    t.type(err, type, `${what} → ${type.name}`)
    if (message) t.match((err as Error).message, message, `${what}: the message keeps Meta's details`)
    t.notMatch((err as Error).message, TOKEN, `${what}: no access token in the message`)
  }
})

t.test('rate limits: Retry-After, else the business use case header’s estimated_time_to_regain_access', async (t) => {
  const server = await metaServer(t)
  server.script(graphError(400, { code: 17 }, { 'retry-after': '12' }))
  t.equal(classifyError(await metaCapi.send([serverEvent()] as never, ctxFor(server)).catch((e: unknown) => e)).retryAfterMs, 12_000)
  const usage = JSON.stringify({ '1234567890': [{ type: 'ads_management', call_count: 100, total_cputime: 40, total_time: 30, estimated_time_to_regain_access: 3 }] })
  server.script(graphError(400, { code: 80004 }, { 'x-business-use-case-usage': usage }))
  t.equal(classifyError(await metaCapi.send([serverEvent()] as never, ctxFor(server)).catch((e: unknown) => e)).retryAfterMs, 180_000, '3 minutes')
  server.script(graphError(400, { code: 4 }))
  t.equal(classifyError(await metaCapi.send([serverEvent()] as never, ctxFor(server)).catch((e: unknown) => e)).retryAfterMs, undefined, 'no hint: the router backs off')
})

t.test('the request: URL with version, pixel and token; { data, test_event_code }', async (t) => {
  const server = await metaServer(t)
  await metaCapi.send([serverEvent(), serverEvent({ event_id: 'm-2' })] as never, ctxFor(server, { testEventCode: 'TEST123', apiVersion: 'v19.0' }))
  const [req] = server.requests
  t.equal(req!.method, 'POST')
  t.equal(req!.url, `/v19.0/1234567890/events?access_token=${TOKEN}`)
  t.match(req!.headers['content-type'], /application\/json/)
  const body = req!.json as { data: Array<Record<string, unknown>>; test_event_code: string }
  t.equal(body.test_event_code, 'TEST123')
  t.same(body.data.map((e) => e.event_id), ['m-1', 'm-2'])
  t.equal(body.data[0]!.action_source, 'website', 'action_source defaults to the setting')
})

t.test('a batch of 1,000 is one request; Meta’s events_received is checked', async (t) => {
  const server = await metaServer(t)
  const lines: string[] = []
  const logger = { ...quiet, warn: (o: object, m?: string) => void lines.push(`${m} ${JSON.stringify(o)}`) }
  await metaCapi.send(Array.from({ length: 1000 }, (_, i) => serverEvent({ event_id: `m-${i}` })) as never, ctxFor(server, {}, logger))
  t.equal(server.requests.length, 1)
  t.equal((server.requests[0]!.json as { data: unknown[] }).data.length, 1000)
  t.same(lines, [])
  server.script({ status: 200, body: { events_received: 1, messages: [] } })
  await metaCapi.send([serverEvent(), serverEvent({ event_id: 'm-2' })] as never, ctxFor(server, {}, logger))
  t.match(lines, [/Meta received fewer events than were sent {"sent":2,"received":1}/])
  t.equal(metaCapi.batch!.maxEvents, 1000)
})

t.test('events Meta would refuse for the whole request are refused alone, saying why', async (t) => {
  const server = await metaServer(t)
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['no event_name', serverEvent({ event_name: undefined }), /event_name is missing/],
    ['milliseconds', serverEvent({ event_time: 1709294400000 }), /looks like milliseconds; Meta wants seconds/],
    ['bad action_source', serverEvent({ action_source: 'web' }), /action_source "web" is not one of website, app/],
    ['website without user agent', serverEvent({ user_data: { em: [sha256('a@b.c')] } }), /website event needs user_data.client_user_agent/],
    ['website without URL', serverEvent({ event_source_url: undefined }), /website event needs event_source_url/],
    ['no customer information', serverEvent({ action_source: 'system_generated', user_data: { em: [], ph: [] } }), /user_data has no customer information parameter/],
  ]
  const result = (await metaCapi.send([serverEvent(), ...cases.map((c) => c[1])] as never, ctxFor(server))) as SendResult
  const byIndex = new Map(result.rejected!.map((r) => [r.index, r.error]))
  cases.forEach(([what, , message], i) => {
    t.type(byIndex.get(i + 1), PermanentError, `${what}: permanent`)
    t.match(byIndex.get(i + 1)?.message, message, `${what}: says why`)
  })
  t.equal(server.requests.length, 1)
  t.equal((server.requests[0]!.json as { data: unknown[] }).data.length, 1, 'the good event is sent')
  const app = await metaCapi.send([serverEvent({ action_source: 'app', event_source_url: undefined, user_data: { external_id: ['x'] } })] as never, ctxFor(server))
  t.equal(app, undefined, 'an app event needs neither user agent nor URL')
})

t.test("normalization per Meta's rules", async (t) => {
  const table: Array<[Parameters<typeof normalizeField>[0], string, string, { country?: string }?]> = [
    ['em', '  Jane.Doe@Example.COM ', 'jane.doe@example.com'],
    ['ph', '+44 844 412 4653', '448444124653'],
    ['ph', '0044 844 412 4653', '448444124653'],
    ['ph', '(415) 555-0123', '4155550123'],
    ['fn', ' Mary-Jane ', 'maryjane'],
    ['ln', "O'Brien", 'obrien'],
    ['ln', 'Müller', 'müller'],
    ['ct', 'San Francisco', 'sanfrancisco'],
    ['ct', 'Saint-Étienne', 'saintétienne'],
    ['st', 'CA', 'ca'],
    ['st', 'New York', 'newyork'],
    ['zp', '94107-1234', '94107', { country: 'us' }],
    ['zp', 'SW1A 1AA', 'sw1a1aa', { country: 'gb' }],
    ['country', 'US', 'us'],
    ['country', 'USA', ''],
    ['ge', 'Female', 'f'],
    ['ge', 'm', 'm'],
    ['ge', 'x', ''],
    ['db', '1990-04-12', '19900412'],
    ['db', '12/04', ''],
    ['external_id', ' User-42 ', 'User-42'],
  ]
  for (const [field, raw, want, ctx] of table) t.equal(normalizeField(field, raw, ctx), want, `${field}: ${JSON.stringify(raw)} → ${JSON.stringify(want)}`)
})

t.test('hashing: raw values are hashed, hashes are kept, plain fields are not hashed, empties dropped', async (t) => {
  const already = sha256('jane@example.com')
  const out = hashUserData({
    em: ['Jane@Example.com', already, ''],
    ph: '+1 (415) 555-0123',
    fn: 'Jane',
    zp: '94107-1234',
    country: 'US',
    external_id: 42,
    client_ip_address: '203.0.113.7',
    client_user_agent: 'Mozilla/5.0',
    fbp: 'fb.1.1709290000000.1',
    fbc: 'fb.1.1709290000000.IwAR',
    ct: null,
    st: '',
    ge: [],
  })
  t.same(out, {
    em: [already],
    ph: sha256('14155550123'),
    fn: sha256('jane'),
    zp: sha256('94107'),
    country: sha256('us'),
    external_id: sha256('42'),
    client_ip_address: '203.0.113.7',
    client_user_agent: 'Mozilla/5.0',
    fbp: 'fb.1.1709290000000.1',
    fbc: 'fb.1.1709290000000.IwAR',
  })
  const server = await metaServer(t)
  await metaCapi.send([serverEvent({ user_data: { em: 'RAW@Example.com', client_user_agent: 'UA' } })] as never, ctxFor(server))
  t.same((server.requests[0]!.json as { data: Array<{ user_data: unknown }> }).data[0]!.user_data, { em: sha256('raw@example.com'), client_user_agent: 'UA' }, 'a custom mapping that forgot to hash still sends no raw email')
  t.notMatch(server.requests[0]!.text, /RAW@Example/i)
})

t.test('the default mapping and the plugin normalize alike (the plugin would not re-hash what the mapping sends)', async (t) => {
  const toMeta = compileMapping(mapping)
  const traits = { email: ' Jane.Doe@Example.com ', phone: '+1 (415) 555-0123', firstName: 'Jane', lastName: "O'Brien", gender: 'Female', birthday: '1990-04-12', address: { city: 'San Francisco', state: 'CA', postalCode: '94107-1234', country: 'US' } }
  const mapped = toMeta({ type: 'track', event: 'Signed Up', userId: 'u-42', messageId: 'm', timestamp: '2024-03-01T12:00:00Z', context: { traits, userAgent: 'UA', page: { url: 'https://x/' } } })!
  const raw = { em: [traits.email], ph: [traits.phone], fn: traits.firstName, ln: traits.lastName, ge: traits.gender, db: traits.birthday, ct: traits.address.city, st: traits.address.state, zp: traits.address.postalCode, country: traits.address.country, external_id: ['u-42'], client_user_agent: 'UA' }
  t.same(mapped.user_data, hashUserData(raw))
  t.same(hashUserData(mapped.user_data as Record<string, unknown>), mapped.user_data, 'hashing the mapped user_data again changes nothing')
  t.equal(mapped.event_id, 'm', 'event_id is the messageId (dedup with the pixel)')
  t.equal(mapped.event_time, 1709294400, 'event_time in seconds')
})

t.test('fbp and fbc: from context, else from the _fbp/_fbc cookies; sent unhashed', async (t) => {
  const toMeta = compileMapping(mapping)
  const ev = { type: 'page', messageId: 'm', timestamp: '2024-03-01T12:00:00Z' }
  t.match(toMeta({ ...ev, context: { fbp: 'fb.1.1.ctx', cookies: { _fbp: 'fb.1.1.cookie', _fbc: 'fb.1.1.click' } } })!.user_data, { fbp: 'fb.1.1.ctx', fbc: 'fb.1.1.click' })
  t.match(toMeta({ ...ev, context: { cookies: { _fbp: 'fb.1.1.cookie' } } })!.user_data, { fbp: 'fb.1.1.cookie' })
})

t.test('deletion: not available', async (t) => {
  t.equal(metaCapi.deleteUser, undefined, 'the Conversions API has no deletion call')
  t.same(Object.keys(MetaCapiSettings.properties).sort(), ['accessToken', 'actionSource', 'apiVersion', 'endpoint', 'pixelId', 'testEventCode'])
})

t.test('through the router: registered as meta-capi, mapped by default, consent-gated on advertising', async (t) => {
  const server = await metaServer(t)
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'meta', type: 'meta-capi', settings: { pixelId: '42', accessToken: TOKEN, endpoint: server.url }, delivery: { batch: { maxWaitMs: 10 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 500 }))
  const context = { userAgent: 'Mozilla/5.0', ip: '203.0.113.7', page: { url: 'https://shop.example/thanks' }, traits: { email: 'Jane@Example.com' } }
  const granted = { categoryPreferences: { advertising: true } }
  const { messageId } = await router.track({ userId: 'u-1', event: 'Order Completed', context: { ...context, consent: granted }, properties: { order_id: 'o-1', revenue: 10 } })
  await router.track({ userId: 'u-1', event: 'Order Completed', context: { ...context, consent: { categoryPreferences: { advertising: false } } }, properties: { order_id: 'o-2' } })
  await router.track({ userId: 'u-1', event: 'Order Completed', context, properties: { order_id: 'o-3' } })
  const [req] = await server.waitFor(1)
  await new Promise((r) => setTimeout(r, 100))
  t.equal(server.requests.length, 1, 'advertising denied, or no consent at all: nothing sent')
  t.equal(req!.url, `/v21.0/42/events?access_token=${TOKEN}`)
  t.match(req!.json, { data: [{ event_name: 'Purchase', event_id: messageId, action_source: 'website', user_data: { em: [sha256('jane@example.com')], external_id: [sha256('u-1')] }, custom_data: { order_id: 'o-1', value: 10 } }] })
})
