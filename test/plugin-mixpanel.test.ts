// mixpanel: the conformance suite, then Mixpanel's own behaviours against a local server
// answering the way its docs say: /import 200 { code, num_records_imported, status },
// 400 with failed_records under strict=1 (the others imported), 401/403, 413, 429;
// /engage 200 { status: 1 | 0, error } with verbose=1; the GDPR deletion API.
import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { AuthenticationError, PermanentError, RetryableError, type Logger, type SendResult } from '../src/index.js'
import { httpTo } from './helpers/redirect.js'
import { runDestinationConformance, startTestServer, type DestinationExample, type RecordedRequest, type ScriptedResponse, type TestServer } from '../src/testing.js'
import { classifyError } from '../src/deliver/retry.js'
import { compileMapping } from '../dsl/index.js'
import mixpanel, { mapping, MixpanelSettings, MAX_EVENTS } from '../plugins/mixpanel/index.js'

const examples = JSON.parse(readFileSync(new URL('../plugins/mixpanel/examples.json', import.meta.url), 'utf8')) as DestinationExample[]
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }
const TOKEN = 'test-token'

/** Mixpanel's success answers: /import counts the records, /engage (verbose) says status 1. */
function mixpanelAnswers(req: RecordedRequest): ScriptedResponse {
  if (req.url.startsWith('/engage')) return { status: 200, body: { status: 1, error: null } }
  if (req.url.startsWith('/api/app/data-deletions')) return { status: 200, body: { status: 'ok', results: { task_id: 'task-1' } } }
  return { status: 200, body: { code: 200, num_records_imported: Array.isArray(req.json) ? req.json.length : 0, status: 'OK' } }
}

await runDestinationConformance(t, {
  plugin: mixpanel,
  settings: { projectToken: TOKEN },
  examples,
  vendor: {
    success: mixpanelAnswers,
    maxEventsPerRequest: 2000,
    errors: {
      invalid: { status: 400, body: { code: 400, error: 'some data points in the request failed validation', status: 'Bad Request', num_records_imported: 0, failed_records: [{ index: 0, insert_id: 'm-1', field: 'properties.time', message: "'properties.time' is invalid: must be specified as seconds since epoch" }] } },
      unauthorized: { status: 401, body: { code: 401, error: 'Invalid credentials', status: 'Unauthorized' } },
      'rate-limited': { status: 429, headers: { 'retry-after': '7' }, body: { code: 429, error: 'Project exceeded rate limits. Please retry the request with exponential backoff.', status: 'Too Many Requests' } },
    },
  },
  readme: new URL('../plugins/mixpanel/README.md', import.meta.url),
})

async function mixpanelServer(t: Test): Promise<TestServer> {
  const server = await startTestServer()
  server.fallback = mixpanelAnswers
  t.teardown(() => server.close())
  return server
}

function ctxFor(server: TestServer, settings: Record<string, unknown> = {}, asked: string[] = []) {
  return {
    settings: { projectToken: TOKEN, region: 'us' as const, ...settings },
    http: httpTo(server, asked),
    logger: quiet,
    signal: new AbortController().signal,
    attempt: 1,
    destination: 'mixpanel',
    state: {},
  }
}

const toMixpanel = compileMapping(mapping)
const track = (i: number, extra: Record<string, unknown> = {}) =>
  toMixpanel({ type: 'track', event: 'E', messageId: `m-${i}`, userId: 'u-1', timestamp: '2024-03-01T12:00:00.000Z', context: {}, properties: { i, ...extra } })!
const identify = (i: number) => toMixpanel({ type: 'identify', messageId: `m-${i}`, userId: `u-${i}`, timestamp: '2024-03-01T12:00:00.000Z', context: {}, traits: { plan: 'pro' } })!

t.test('authentication: service account (with project_id), else API secret, else project token', async (t) => {
  const server = await mixpanelServer(t)
  const b64 = (s: string) => 'Basic ' + Buffer.from(s).toString('base64')
  const asked: string[] = []
  await mixpanel.send([track(1)] as never, ctxFor(server, { serviceAccountUsername: 'sa', serviceAccountSecret: 'pw', projectId: '42', apiSecret: 'sec' }, asked))
  t.equal(server.requests[0]!.headers.authorization, b64('sa:pw'))
  t.equal(asked[0], 'https://api.mixpanel.com/import?strict=1&project_id=42')
  await mixpanel.send([track(2)] as never, ctxFor(server, { apiSecret: 'sec' }))
  t.equal(server.requests[1]!.headers.authorization, b64('sec:'))
  await mixpanel.send([track(3)] as never, ctxFor(server))
  t.equal(server.requests[2]!.headers.authorization, b64(`${TOKEN}:`))
  const err = await mixpanel.send([track(4)] as never, ctxFor(server, { serviceAccountUsername: 'sa', serviceAccountSecret: 'pw' })).catch((e: unknown) => e)
  t.type(err, AuthenticationError, 'a service account without projectId')
  t.match((err as Error).message, /projectId/)
})

t.test('regions: EU and India residency hosts for ingestion and deletion', async (t) => {
  const server = await mixpanelServer(t)
  for (const [region, ingest, gdpr] of [['eu', 'api-eu.mixpanel.com', 'eu.mixpanel.com'], ['in', 'api-in.mixpanel.com', 'in.mixpanel.com']] as const) {
    const asked: string[] = []
    const ctx = ctxFor(server, { region, gdprToken: 'g' }, asked)
    await mixpanel.send([track(1), identify(2)] as never, ctx)
    await mixpanel.deleteUser!({ userId: 'u-1' }, ctx)
    t.same(asked.map((u) => new URL(u).host), [ingest, ingest, gdpr], region)
  }
})

t.test('400 with failed_records: only the listed events are refused; the rest count as imported', async (t) => {
  const server = await mixpanelServer(t)
  server.script({
    status: 400,
    body: {
      code: 400, error: 'some data points in the request failed validation', status: 'Bad Request', num_records_imported: 3,
      failed_records: [{ index: 1, insert_id: 'm-1', field: 'properties.time', message: "'properties.time' is invalid: must be specified as seconds since epoch" },
        { index: 3, insert_id: 'm-3', field: 'properties.distinct_id', message: "'properties.distinct_id' is invalid: must not be 'undefined'" }],
    },
  })
  const result = (await mixpanel.send([track(0), track(1), track(2), track(3), track(4)] as never, ctxFor(server))) as SendResult
  t.same(result.rejected?.map((r) => r.index), [1, 3])
  t.ok(result.rejected?.every((r) => r.error instanceof PermanentError && r.error.status === 400))
  t.match(result.rejected?.[0]?.error.message, /Mixpanel refused event 1: properties\.time: 'properties\.time' is invalid/)
  t.equal(server.requests.length, 1, 'not resent')
})

t.test('failed_records are mapped back to the batch when events and profiles are mixed', async (t) => {
  const server = await mixpanelServer(t)
  server.script({ status: 400, body: { code: 400, error: 'x', num_records_imported: 1, failed_records: [{ index: 1, insert_id: 'm-2', field: 'event', message: 'bad' }] } })
  const result = (await mixpanel.send([identify(0), track(1), identify(2), track(2)] as never, ctxFor(server))) as SendResult
  t.same(result.rejected?.map((r) => r.index), [3], 'the second event of /import is batch index 3')
  t.equal(server.requests[1]!.url, '/engage?verbose=1')
  t.same((server.requests[1]!.json as Array<{ $distinct_id: string; $token: string }>).map((p) => [p.$distinct_id, p.$token]), [['u-0', TOKEN], ['u-2', TOKEN]])
})

t.test('answers: 401/403 auth, 429 with and without Retry-After, 5xx retry, 400 without records permanent', async (t) => {
  const server = await mixpanelServer(t)
  const cases: Array<[ScriptedResponse, string, number | undefined]> = [
    [{ status: 401, body: { error: 'Invalid credentials' } }, 'auth', undefined],
    [{ status: 403, body: { error: 'service account lacks access to project' } }, 'auth', undefined],
    [{ status: 429, headers: { 'retry-after': '30' }, body: { error: 'Project exceeded rate limits' } }, 'retry', 30_000],
    [{ status: 429, body: { error: 'Project exceeded rate limits' } }, 'retry', undefined],
    [{ status: 500 }, 'retry', undefined],
    [{ status: 503 }, 'retry', undefined],
    [{ status: 400, body: { error: 'invalid JSON' } }, 'permanent', undefined],
  ]
  for (const [answer, rule, retryAfterMs] of cases) {
    server.script(answer)
    const c = classifyError(await mixpanel.send([track(1)] as never, ctxFor(server)).catch((e: unknown) => e))
    t.equal(c.rule, rule, `${answer.status} → ${rule}`)
    t.equal(c.retryAfterMs, retryAfterMs, `${answer.status}: retryAfterMs ${retryAfterMs}`)
  }
  server.script({ status: 401, body: { code: 401, error: 'Invalid credentials', status: 'Unauthorized' } })
  t.match((await mixpanel.send([track(1)] as never, ctxFor(server)).catch((e: unknown) => e) as Error).message, /401: Invalid credentials/)
})

t.test('413: the request is split in two and sent again; a single event too large is refused alone', async (t) => {
  const server = await mixpanelServer(t)
  server.script({ status: 413, body: { error: 'request body too large' } }, {}, { status: 413, body: { error: 'too large' } }, {})
  const events = [track(0), track(1), track(2), track(3)]
  const result = (await mixpanel.send(events as never, ctxFor(server))) as SendResult
  t.same(server.requests.map((r) => (r.json as unknown[]).length), [4, 2, 2, 1, 1])
  t.same(result.rejected, [])
  server.script({ status: 413 })
  const one = (await mixpanel.send([track(9)] as never, ctxFor(server)).catch((e: unknown) => e)) as Error
  t.type(one, PermanentError)
  t.match(one.message, /413/)
})

t.test('size limits: ≤ 2,000 events and ≤ 2 MB per request; an event over 1 MB is refused alone', async (t) => {
  const server = await mixpanelServer(t)
  // The mapping caps its output at 256 KB; a custom mapping or a raised cap could still make one this big.
  const small = track(1)
  const big = { ...small, properties: { ...(small.properties as object), blob: 'x'.repeat(1024 * 1024) } }
  const many = Array.from({ length: 300 }, (_, i) => track(i + 10, { blob: 'y'.repeat(10_000) }))
  const result = (await mixpanel.send([track(0), big, ...many] as never, ctxFor(server))) as SendResult
  t.same(result.rejected?.map((r) => r.index), [1])
  t.match(result.rejected?.[0]?.error.message, /at most 1 MB per event/)
  t.ok(server.requests.length >= 2)
  for (const r of server.requests) t.ok(Buffer.byteLength(r.text) <= 2 * 1024 * 1024 && (r.json as unknown[]).length <= MAX_EVENTS, `${(r.json as unknown[]).length} events, ${Buffer.byteLength(r.text)} bytes`)
  t.equal(server.requests.reduce((n, r) => n + (r.json as unknown[]).length, 0), 301)
})

t.test('/engage: 200 with status 0 is a refusal; profile updates carry $token', async (t) => {
  const server = await mixpanelServer(t)
  server.script({ status: 200, body: { status: 0, error: "'$distinct_id' is invalid" } })
  const err = await mixpanel.send([identify(1)] as never, ctxFor(server)).catch((e: unknown) => e)
  t.type(err, PermanentError)
  t.match((err as Error).message, /\/engage refused the profile updates: '\$distinct_id' is invalid/)
  t.equal((server.requests[0]!.json as Array<{ $token: string }>)[0]!.$token, TOKEN)
})

t.test('deleteUser: the GDPR API with the OAuth token, distinct ids, compliance type', async (t) => {
  const server = await mixpanelServer(t)
  const asked: string[] = []
  const ctx = ctxFor(server, { gdprToken: 'gdpr-oauth' }, asked)
  await mixpanel.deleteUser!({ userId: 'u-1', anonymousId: 'a-1' }, ctx)
  t.equal(asked[0], `https://mixpanel.com/api/app/data-deletions/v3.0/?token=${TOKEN}`)
  t.equal(server.requests[0]!.headers.authorization, 'Bearer gdpr-oauth')
  t.same(server.requests[0]!.json, { distinct_ids: ['u-1', 'a-1'], compliance_type: 'GDPR' })
  server.script({ status: 429, headers: { 'retry-after': '60' }, body: { error: 'rate limited' } }, { status: 401, body: { error: 'invalid token' } })
  const limited = await mixpanel.deleteUser!({ userId: 'u-2' }, ctx).catch((e: unknown) => e)
  t.type(limited, RetryableError)
  t.equal((limited as RetryableError).retryAfterMs, 60_000)
  t.type(await mixpanel.deleteUser!({ userId: 'u-3' }, ctx).catch((e: unknown) => e), AuthenticationError)
  t.type(await mixpanel.deleteUser!({ email: 'a@b.c' }, ctx).catch((e: unknown) => e), PermanentError, 'email only: permanent')
  const noToken = await mixpanel.deleteUser!({ userId: 'u-1' }, ctxFor(server)).catch((e: unknown) => e)
  t.type(noToken, PermanentError)
  t.match((noToken as Error).message, /gdprToken/)
})

t.test('the schema names its settings', async (t) => {
  t.same(Object.keys(MixpanelSettings.properties).sort(), ['apiSecret', 'deletionEndpoint', 'endpoint', 'gdprToken', 'projectId', 'projectToken', 'region', 'serviceAccountSecret', 'serviceAccountUsername'])
})
