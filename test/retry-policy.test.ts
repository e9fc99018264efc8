import t from 'tap'
import { createRouter, classifyStatus, DEFAULT_RETRY, parseRetryAfter, type Logger, type RetryOptions } from '../src/index.js'
import { backoffDelay, classifyError } from '../src/deliver/retry.js'
import { AuthenticationError, PermanentError, RetryableError } from '../src/errors.js'
import { startTestServer } from '../src/testing.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

t.test('classifyStatus', async (t) => {
  for (const s of [200, 201, 204, 302]) t.equal(classifyStatus(s), 'ok', String(s))
  for (const s of [408, 429, 500, 502, 503, 504, 599]) t.equal(classifyStatus(s), 'retry', String(s))
  for (const s of [400, 404, 409, 410, 413, 422, 501, 505]) t.equal(classifyStatus(s), 'permanent', String(s))
  for (const s of [401, 403]) t.equal(classifyStatus(s), 'auth', String(s))
})

t.test('classifyError keeps the rule, status and Retry-After', async (t) => {
  t.match(classifyError(new RetryableError('x', { retryAfterMs: 1500, status: 429 })), { rule: 'retry', code: 'DELIVERY_RETRYABLE', status: 429, retryAfterMs: 1500 })
  t.match(classifyError(new PermanentError('bad', { status: 422 })), { rule: 'permanent', code: 'DELIVERY_PERMANENT', status: 422 })
  t.match(classifyError(new AuthenticationError('no', { status: 401 })), { rule: 'auth', code: 'DELIVERY_AUTH', status: 401 })
  const gotLike = { name: 'HTTPError', message: 'Response code 429', response: { statusCode: 429, headers: { 'retry-after': '7' } } }
  t.match(classifyError(gotLike), { rule: 'retry', status: 429, retryAfterMs: 7000 })
  t.match(classifyError(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })), { rule: 'retry', code: 'DELIVERY_RETRYABLE', message: /ECONNREFUSED/ })
  t.match(classifyError(Object.assign(new Error('slow'), { name: 'TimeoutError' })), { rule: 'retry', code: 'DELIVERY_TIMEOUT' })
  t.match(classifyError(new Error('who knows')), { rule: 'retry', code: 'DELIVERY_RETRYABLE' }, 'unknown errors are retried (bounded by maxAttempts)')
  t.match(classifyError('a string'), { rule: 'retry', message: 'a string' })
})

t.test('parseRetryAfter: delay-seconds and HTTP-date', async (t) => {
  const now = Date.parse('2024-05-01T12:00:00Z')
  t.equal(parseRetryAfter('1', now), 1000)
  t.equal(parseRetryAfter('120', now), 120_000)
  t.equal(parseRetryAfter(' 3 ', now), 3000)
  t.equal(parseRetryAfter('0', now), 0)
  t.equal(parseRetryAfter(['2', '9'], now), 2000, 'first of a repeated header')
  t.equal(parseRetryAfter('Wed, 01 May 2024 12:00:30 GMT', now), 30_000, 'IMF-fixdate')
  t.equal(parseRetryAfter('Wednesday, 01-May-24 12:01:00 GMT', now), 60_000, 'obsolete RFC 850 form')
  t.equal(parseRetryAfter('Wed, 01 May 2024 11:00:00 GMT', now), 0, 'a date in the past means now')
  for (const bad of [undefined, null, 12, '', 'soon', '1.5', '-1', '3 4']) {
    t.equal(parseRetryAfter(bad, now), undefined, `invalid: ${JSON.stringify(bad)}`)
  }
})

t.test('backoffDelay: exponential, capped, jitter within bounds', async (t) => {
  const o: RetryOptions = { ...DEFAULT_RETRY, minDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 }
  const lo = () => 0
  const hi = () => 1
  // Base: 100, 200, 400, 800, 1000 (cap), 1000.
  t.same([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, o, hi)), [100, 200, 400, 800, 1000, 1000], 'random 1 → the full base')
  t.same([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, o, lo)), [50, 100, 200, 400, 500, 500], 'random 0 → half the base with jitter 0.5')
  t.equal(backoffDelay(3, o, () => 0.5), 300)
  t.equal(backoffDelay(3, { ...o, jitter: 0 }, lo), 400, 'no jitter: exactly the base')
  t.equal(backoffDelay(3, { ...o, jitter: 1 }, lo), 0, 'full jitter may be zero')
  t.equal(backoffDelay(0, o, hi), 100, 'attempt 0 is treated as the first')
  t.equal(backoffDelay(200, o, hi), 1000, 'no overflow for huge attempts')
  for (let a = 1; a < 30; a++) {
    const d = backoffDelay(a, o)
    t.ok(d >= 0 && d <= 1000, `attempt ${a}: ${d} within [0, maxDelayMs]`)
  }
})

t.test('Retry-After from a 429 is honoured by the delivery engine', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  server.script({ status: 429, headers: { 'retry-after': '1' } })
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxWaitMs: 5 }, retry: { minDelayMs: 10, maxDelayMs: 20 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  const delays: number[] = []
  router.events.on('retry', (e: { delayMs: number }) => delays.push(e.delayMs))
  await router.track({ userId: 'u', event: 'E' })
  const reqs = await server.waitFor(2)
  t.same(delays, [1000], 'the retry is scheduled after Retry-After, not the 10 ms backoff')
  const gap = reqs[1]!.receivedAt - reqs[0]!.receivedAt
  t.ok(gap >= 900, `second attempt came ${gap} ms after the first (≥ ~1 s)`)
  await until(() => router.stats().destinations.hook!.delivered === 1, 'delivery')
})

t.test('Retry-After as an HTTP-date is honoured', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  // Whole seconds only: 2 s ahead is at least 1 s ahead.
  server.fallback = (req) =>
    server.requests.indexOf(req) === 0 ? { status: 503, headers: { 'retry-after': new Date(Date.now() + 2000).toUTCString() } } : { status: 200 }
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxWaitMs: 5 }, retry: { minDelayMs: 10, maxDelayMs: 20 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.track({ userId: 'u', event: 'E' })
  const reqs = await server.waitFor(2)
  const gap = reqs[1]!.receivedAt - reqs[0]!.receivedAt
  t.ok(gap >= 900, `second attempt came ${gap} ms after the first`)
})

t.test('maxRetryAfterMs caps a huge Retry-After', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  server.script({ status: 429, headers: { 'retry-after': '86400' } })
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxWaitMs: 5 }, retry: { minDelayMs: 10, maxRetryAfterMs: 20 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  const delays: number[] = []
  router.events.on('retry', (e: { delayMs: number }) => delays.push(e.delayMs))
  await router.track({ userId: 'u', event: 'E' })
  await server.waitFor(2)
  t.same(delays, [20])
})
