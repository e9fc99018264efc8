import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import Type from 'typebox'
import { createRouter, defineDestination, type Logger } from '../src/index.js'
import { startTestServer } from '../src/testing.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

t.test('a hanging destination delays neither intake nor another destination', async (t) => {
  const stuck = await startTestServer()
  const healthy = await startTestServer()
  t.teardown(() => stuck.close())
  t.teardown(() => healthy.close())
  stuck.fallback = { hang: true }
  const router = createRouter({
    logger: quiet,
    sources: [{ name: 'web', writeKey: 'wk' }],
    destinations: [
      // The hanging one's timeout is long enough that it is still stuck when we look.
      { name: 'stuck', type: 'webhook', settings: { url: stuck.url }, delivery: { batch: { maxEvents: 5, maxWaitMs: 5 }, timeoutMs: 5000, retry: { minDelayMs: 10, maxDelayMs: 20 }, concurrency: 1 } },
      { name: 'healthy', type: 'webhook', settings: { url: healthy.url }, delivery: { batch: { maxEvents: 5, maxWaitMs: 5 } } },
    ],
  })
  const http = createServer(router.handler())
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => (http.closeAllConnections(), http.close(() => r()))))
  t.teardown(() => router.close({ timeoutMs: 50 }))
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  const auth = 'Basic ' + Buffer.from('wk:').toString('base64')

  for (let r = 0; r < 5; r++) {
    const batch = Array.from({ length: 4 }, (_, i) => ({ type: 'track', event: 'E', userId: 'u', properties: { i: r * 4 + i } }))
    const res = await fetch(`${base}/v1/batch`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ batch }) })
    t.equal(res.status, 200, `intake answers 200 (request ${r})`)
    t.same(await res.json(), { success: true })
  }
  await until(() => router.stats().destinations.healthy!.delivered === 20, 'healthy delivery')
  const got = healthy.requests.flatMap((q) => (q.json as { batch: Array<{ properties: { i: number } }> }).batch.map((e) => e.properties.i))
  t.same(got.sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i), 'the healthy destination received every event')

  const s = router.stats().destinations.stuck!
  t.ok(stuck.requests.length >= 1, 'the hanging destination was tried')
  t.equal(s.delivered, 0, 'and is still stuck')
  t.equal(s.held, 20, 'holding every event')
  t.equal(s.failedSends, 0, 'its timeout has not fired yet')
})

t.test('a hanging send is aborted after timeoutMs and retried', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  server.script({ hang: true })
  const logged: Array<Record<string, unknown>> = []
  const router = createRouter({
    logger: { ...quiet, debug: (o, msg) => void logged.push({ ...o, msg }) },
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxWaitMs: 5 }, timeoutMs: 300, retry: { minDelayMs: 10, maxDelayMs: 20 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 50 }))
  const retries: Array<{ message: string }> = []
  router.events.on('retry', (e: { message: string }) => retries.push(e))
  await router.track({ userId: 'u', event: 'E' })
  await until(() => router.stats().destinations.hook!.delivered === 1, 'delivery after the retry')
  // On a loaded machine an attempt may also time out before it reaches the server;
  // what matters is that every failure was the timeout and the event got through.
  t.ok(server.requests.length >= 2, 'the hung request, then the retry')
  t.ok(retries.length >= 1)
  for (const r of retries) t.match(r.message, /no answer within timeoutMs \(300 ms\)/, 'the retry was caused by the timeout')
  t.equal(router.stats().destinations.hook!.failedSends, retries.length)
  const retrying = logged.filter((l) => l.msg === 'retrying')
  t.ok(retrying.length >= 1 && retrying.every((l) => l.code === 'DELIVERY_TIMEOUT'), 'classified as DELIVERY_TIMEOUT')
  t.equal(router.deadLetters.count(), 0)
})

t.test('a timeout ends in DELIVERY_MAX_ATTEMPTS naming the timeout; the signal is aborted', async (t) => {
  const reasons: unknown[] = []
  let sends = 0
  const hang = defineDestination({
    name: 'hang',
    version: '1.0.0',
    settings: Type.Object({}),
    send(_events, ctx) {
      sends++
      return new Promise((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => {
          reasons.push(ctx.signal.reason)
          reject(ctx.signal.reason)
        })
      })
    },
  })
  const router = createRouter({
    logger: quiet,
    plugins: [hang],
    destinations: [{ name: 'h', type: 'hang', delivery: { batch: { maxWaitMs: 5 }, timeoutMs: 50, retry: { maxAttempts: 2, minDelayMs: 10, maxDelayMs: 10 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 50 }))
  await router.track({ userId: 'u', event: 'E' })
  await until(() => router.deadLetters.count() === 1, 'dead letter')
  t.equal(sends, 2)
  t.equal(reasons.length, 2, 'each send saw its signal abort')
  t.equal((reasons[0] as Error).name, 'TimeoutError')
  const [d] = router.deadLetters.list()
  t.equal(d!.error.code, 'DELIVERY_MAX_ATTEMPTS')
  t.match(d!.error.message, /no answer within timeoutMs \(50 ms\)/)
})

t.test('a plugin that ignores its signal does not keep the slot past timeoutMs', async (t) => {
  let sends = 0
  const deaf = defineDestination({
    name: 'deaf',
    version: '1.0.0',
    settings: Type.Object({}),
    send() {
      sends++
      return new Promise(() => {})
    },
  })
  const router = createRouter({
    logger: quiet,
    plugins: [deaf],
    destinations: [{ name: 'd', type: 'deaf', delivery: { concurrency: 1, batch: { maxEvents: 1, maxWaitMs: 5 }, timeoutMs: 30, retry: { maxAttempts: 2, minDelayMs: 5, maxDelayMs: 5 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 50 }))
  await router.track({ userId: 'u', event: 'A' })
  await router.track({ userId: 'u', event: 'B' })
  await until(() => router.deadLetters.count() === 2, 'both dead-lettered')
  t.equal(sends, 4, 'with concurrency 1, every attempt of both events still ran')
  t.equal(router.stats().destinations.d!.held, 0)
})
