// amplitude: the conformance suite, then Amplitude's own behaviours against a local
// server answering the way its HTTP V2 docs say: 200 { code, events_ingested }, 400 with
// events_with_invalid_fields (nothing ingested: drop those, resend the rest), 413, 429
// with throttled_events and no Retry-After, 5xx; and the User Privacy API.
import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { AuthenticationError, PermanentError, RetryableError, type Logger, type SendResult } from '../src/index.js'
import { httpTo } from './helpers/redirect.js'
import { runDestinationConformance, startTestServer, type DestinationExample, type RecordedRequest, type ScriptedResponse, type TestServer } from '../src/testing.js'
import { classifyError } from '../src/deliver/retry.js'
import { compileMapping } from '../dsl/index.js'
import amplitude, { AmplitudeSettings, mapping, MAX_EVENTS, MAX_REQUEST_BYTES } from '../plugins/amplitude/index.js'

const examples = JSON.parse(readFileSync(new URL('../plugins/amplitude/examples.json', import.meta.url), 'utf8')) as DestinationExample[]
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }
const KEY = 'test-key'

function amplitudeAnswers(req: RecordedRequest): ScriptedResponse {
  if (req.url.startsWith('/api/2/deletions')) return { status: 200, body: [{ day: '2024-03-15', status: 'staging', amplitude_ids: [] }] }
  const n = ((req.json as { events?: unknown[] })?.events ?? []).length
  return { status: 200, body: { code: 200, events_ingested: n, payload_size_bytes: req.text.length, server_upload_time: 1709294400000 } }
}

await runDestinationConformance(t, {
  plugin: amplitude,
  settings: { apiKey: KEY },
  examples,
  vendor: {
    success: amplitudeAnswers,
    maxEventsPerRequest: 2000,
    errors: {
      invalid: { status: 400, body: { code: 400, error: 'Request missing required field', missing_field: 'api_key' } },
      unauthorized: { status: 401, body: { code: 401, error: 'Invalid API key' } },
    },
  },
  readme: new URL('../plugins/amplitude/README.md', import.meta.url),
})

async function amplitudeServer(t: Test): Promise<TestServer> {
  const server = await startTestServer()
  server.fallback = amplitudeAnswers
  t.teardown(() => server.close())
  return server
}

function ctxFor(server: TestServer, settings: Record<string, unknown> = {}, asked: string[] = []) {
  return {
    settings: { apiKey: KEY, region: 'us' as const, requester: 'firstparty', ...settings },
    http: httpTo(server, asked),
    logger: quiet,
    signal: new AbortController().signal,
    attempt: 1,
    destination: 'amplitude',
    state: {},
  }
}

const toAmplitude = compileMapping(mapping)
const track = (i: number, extra: Record<string, unknown> = {}) =>
  toAmplitude({ type: 'track', event: 'E', messageId: `m-${i}`, userId: 'user-1', timestamp: '2024-03-01T12:00:00.000Z', context: {}, properties: { i, ...extra } })!
const ids = (r: RecordedRequest) => ((r.json as { events: Array<{ insert_id: string }> }).events.map((e) => e.insert_id))

t.test('400 listing invalid events: those are refused, the rest sent again at once', async (t) => {
  const server = await amplitudeServer(t)
  server.script({
    status: 400,
    body: {
      code: 400, error: 'Request missing required field', events_with_invalid_fields: { time: [1] }, events_with_missing_fields: { event_type: [3] },
      events_with_invalid_id_lengths: { user_id: [3] }, silenced_events: [4],
    },
  })
  const result = (await amplitude.send([track(0), track(1), track(2), track(3), track(4)] as never, ctxFor(server))) as SendResult
  t.same(result.rejected?.map((r) => r.index), [1, 3, 4])
  t.ok(result.rejected?.every((r) => r.error instanceof PermanentError && r.error.status === 400))
  t.match(result.rejected?.[0]?.error.message, /Amplitude refused event 1: time invalid/)
  t.match(result.rejected?.[1]?.error.message, /event_type missing, user_id too short/)
  t.match(result.rejected?.[2]?.error.message, /silenced/)
  t.equal(server.requests.length, 2)
  t.same(ids(server.requests[1]!), ['m-0', 'm-2'], 'the others, resent')
})

t.test('400 twice: the second answer is not chased further', async (t) => {
  const server = await amplitudeServer(t)
  const bad = { status: 400, body: { code: 400, error: 'Invalid field', events_with_invalid_fields: { time: [0] } } }
  server.script(bad, bad)
  const result = (await amplitude.send([track(0), track(1)] as never, ctxFor(server)).catch((e: unknown) => e)) as SendResult
  t.equal(server.requests.length, 2)
  t.same(result.rejected?.map((r) => [r.index, r.error.rule]), [[0, 'permanent'], [1, 'permanent']])
})

t.test('429 throttled (no Retry-After) → retried with backoff; with Retry-After honoured; 5xx retried; 401/403 auth', async (t) => {
  const server = await amplitudeServer(t)
  server.script({
    status: 429,
    body: { code: 429, error: 'Too many requests for some devices and users', eps_threshold: 30, throttled_devices: {}, throttled_users: { 'user-1': 31 }, throttled_events: [0, 1], exceeded_daily_quota_users: {}, exceeded_daily_quota_devices: {} },
  })
  const throttled = await amplitude.send([track(0), track(1)] as never, ctxFor(server)).catch((e: unknown) => e)
  t.type(throttled, RetryableError)
  t.equal((throttled as RetryableError).retryAfterMs, undefined, 'no Retry-After: the router backs off')
  t.match((throttled as Error).message, /429: Too many requests/)
  for (const [answer, rule] of [[{ status: 500 }, 'retry'], [{ status: 502 }, 'retry'], [{ status: 503 }, 'retry'], [{ status: 401, body: { error: 'Invalid API key' } }, 'auth'], [{ status: 403 }, 'auth']] as const) {
    server.script(answer)
    t.equal(classifyError(await amplitude.send([track(0)] as never, ctxFor(server)).catch((e: unknown) => e)).rule, rule, `${answer.status} → ${rule}`)
  }
})

t.test('413: split in two and sent again; one event alone is refused', async (t) => {
  const server = await amplitudeServer(t)
  server.script({ status: 413, body: { code: 413, error: 'Payload too large' } })
  const result = (await amplitude.send([track(0), track(1), track(2)] as never, ctxFor(server))) as SendResult
  t.same(server.requests.map(ids), [['m-0', 'm-1', 'm-2'], ['m-0', 'm-1'], ['m-2']])
  t.same(result.rejected, [])
  server.script({ status: 413, body: { code: 413, error: 'Payload too large' } })
  const one = await amplitude.send([track(9)] as never, ctxFor(server)).catch((e: unknown) => e)
  t.type(one, PermanentError)
})

t.test('limits: requests under 1 MB and ≤ 2,000 events; api_key in every body', async (t) => {
  const server = await amplitudeServer(t)
  const events = Array.from({ length: 400 }, (_, i) => track(i, { blob: 'z'.repeat(5000) }))
  const result = (await amplitude.send(events as never, ctxFor(server))) as SendResult
  t.same(result.rejected, [])
  t.ok(server.requests.length >= 2)
  for (const r of server.requests) {
    t.ok(Buffer.byteLength(r.text) <= MAX_REQUEST_BYTES && ids(r).length <= MAX_EVENTS, `${ids(r).length} events, ${Buffer.byteLength(r.text)} bytes`)
    t.equal((r.json as { api_key: string }).api_key, KEY)
  }
  t.same(server.requests.flatMap(ids), events.map((e) => e.insert_id))
})

t.test('a later request failing: earlier ones count as delivered, the rest carry the error', async (t) => {
  const server = await amplitudeServer(t)
  server.script({}, { status: 503 })
  const events = Array.from({ length: 400 }, (_, i) => track(i, { blob: 'z'.repeat(5000) }))
  const result = (await amplitude.send(events as never, ctxFor(server))) as SendResult
  const first = ids(server.requests[0]!).length
  t.equal(result.rejected?.length, 400 - first)
  t.ok(result.rejected?.every((r) => r.error instanceof RetryableError))
})

t.test('mapped events without an id or event_type are refused alone', async (t) => {
  const server = await amplitudeServer(t)
  const result = (await amplitude.send([track(0), { event_type: 'x' }, { user_id: 'user-1' }] as never, ctxFor(server))) as SendResult
  t.same(result.rejected?.map((r) => r.index), [1, 2])
  t.same(ids(server.requests[0]!), ['m-0'])
})

t.test('deleteUser: the User Privacy API with Basic apiKey:secretKey', async (t) => {
  const server = await amplitudeServer(t)
  for (const [region, host] of [['us', 'amplitude.com'], ['eu', 'analytics.eu.amplitude.com']] as const) {
    const asked: string[] = []
    await amplitude.deleteUser!({ userId: 'user-1' }, ctxFor(server, { region, secretKey: 'sk', requester: 'privacy@shop.example' }, asked))
    t.equal(asked[0], `https://${host}/api/2/deletions/users`)
  }
  t.equal(server.requests[0]!.headers.authorization, 'Basic ' + Buffer.from(`${KEY}:sk`).toString('base64'))
  t.same(server.requests[0]!.json, { user_ids: ['user-1'], requester: 'privacy@shop.example', ignore_invalid_id: 'true' })
  const ctx = ctxFor(server, { secretKey: 'sk' })
  server.script({ status: 401, body: { error: 'Invalid secret key' } }, { status: 429, headers: { 'retry-after': '5' } })
  t.type(await amplitude.deleteUser!({ userId: 'u' }, ctx).catch((e: unknown) => e), AuthenticationError)
  const limited = await amplitude.deleteUser!({ userId: 'u' }, ctx).catch((e: unknown) => e)
  t.type(limited, RetryableError)
  t.equal((limited as RetryableError).retryAfterMs, 5000)
  t.type(await amplitude.deleteUser!({ anonymousId: 'a' }, ctx).catch((e: unknown) => e), PermanentError, 'anonymousId only')
  t.match((await amplitude.deleteUser!({ userId: 'u' }, ctxFor(server)).catch((e: unknown) => e) as Error).message, /secretKey/)
})

t.test('the schema names its settings', async (t) => {
  t.same(Object.keys(AmplitudeSettings.properties).sort(), ['apiKey', 'deletionEndpoint', 'endpoint', 'minIdLength', 'region', 'requester', 'secretKey'])
})
