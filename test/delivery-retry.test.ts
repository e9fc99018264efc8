import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { createRouter, RetryableError, defineDestination, type DeadLetter, type Logger } from '../src/index.js'
import { startTestServer } from '../src/testing.js'
import Type from 'typebox'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const fast = { batch: { maxEvents: 10, maxWaitMs: 5 }, retry: { minDelayMs: 10, maxDelayMs: 20, maxAttempts: 5 } }

function hookRouter(url: string, delivery: object = fast) {
  return createRouter({ logger: quiet, dedup: false, destinations: [{ name: 'hook', type: 'webhook', settings: { url }, delivery }] })
}

for (const status of [500, 502, 503, 504, 408, 429]) {
  t.test(`${status} is retried, then delivered`, async (t) => {
    const server = await startTestServer()
    t.teardown(() => server.close())
    server.script({ status }, { status })
    const router = hookRouter(server.url)
    t.teardown(() => router.close({ timeoutMs: 100 }))
    const retries: unknown[] = []
    router.events.on('retry', (e) => retries.push(e))
    await router.track({ userId: 'u', event: 'Order', properties: { n: 1 } })
    await until(() => router.stats().destinations.hook!.delivered === 1, 'delivery')
    t.equal(server.requests.length, 3, 'two failures, then the success')
    const bodies = server.requests.map((r) => JSON.stringify((r.json as { batch: unknown[] }).batch))
    t.equal(new Set(bodies).size, 1, 'the same event each time')
    const s = router.stats().destinations.hook!
    t.equal(s.retried, 2)
    t.equal(s.failedSends, 2)
    t.equal(s.held, 0)
    t.same(s.deadLettered, {})
    t.equal(retries.length, 2, 'a retry event per failure')
    t.equal(router.deadLetters.count(), 0)
  })
}

for (const status of [501, 505, 400, 404, 422]) {
  t.test(`${status} is permanent: dead-lettered after one try`, async (t) => {
    const server = await startTestServer()
    t.teardown(() => server.close())
    server.fallback = { status, body: { error: 'secret-body-text' } }
    const router = hookRouter(server.url)
    t.teardown(() => router.close({ timeoutMs: 100 }))
    await router.track({ userId: 'u', event: 'Order' })
    await until(() => router.deadLetters.count() === 1, 'dead letter')
    t.equal(server.requests.length, 1, 'not retried')
    const [d] = router.deadLetters.list() as [DeadLetter]
    t.equal(d.error.code, 'DELIVERY_PERMANENT')
    t.equal(d.error.status, status)
    t.equal(d.destination, 'hook')
    t.equal(d.attempts, 1)
    t.notMatch(d.error.message, /secret-body-text/, 'the response body is not kept')
    const s = router.stats().destinations.hook!
    t.same(s.deadLettered, { DELIVERY_PERMANENT: 1 })
    t.equal(s.held, 0)
    t.equal(s.retried, 0)
  })
}

for (const status of [401, 403]) {
  t.test(`${status} is an auth failure: dead-lettered with DELIVERY_AUTH`, async (t) => {
    const server = await startTestServer()
    t.teardown(() => server.close())
    server.fallback = { status }
    const router = hookRouter(server.url)
    t.teardown(() => router.close({ timeoutMs: 100 }))
    await router.track({ userId: 'u', event: 'Order' })
    await until(() => router.deadLetters.count() === 1, 'dead letter')
    t.equal(server.requests.length, 1, 'not retried')
    const [d] = router.deadLetters.list() as [DeadLetter]
    t.equal(d.error.code, 'DELIVERY_AUTH')
    t.equal(d.error.status, status)
  })
}

t.test('connection refused is retried until maxAttempts, with the last error kept', async (t) => {
  // A port nobody listens on: bind, note the port, close.
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  const router = hookRouter(`http://127.0.0.1:${port}`, { ...fast, retry: { ...fast.retry, maxAttempts: 3 } })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  let retries = 0
  router.events.on('retry', () => retries++)
  await router.track({ userId: 'u', event: 'Order' })
  await until(() => router.deadLetters.count() === 1, 'dead letter')
  const [d] = router.deadLetters.list() as [DeadLetter]
  t.equal(d.error.code, 'DELIVERY_MAX_ATTEMPTS')
  t.match(d.error.message, /3 attempts/)
  t.match(d.error.message, /ECONNREFUSED/, 'the last error is in the message')
  t.equal(d.attempts, 3)
  t.equal(retries, 2)
  t.equal(router.stats().destinations.hook!.held, 0)
})

t.test('a connection closed without an answer is retried, then delivered', async (t) => {
  let n = 0
  const bodies: string[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString())
      if (n++ === 0) return req.socket.destroy()
      res.writeHead(200).end('{}')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))))
  const router = hookRouter(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.track({ userId: 'u', event: 'Order' })
  await until(() => router.stats().destinations.hook!.delivered === 1, 'delivery')
  t.equal(bodies.length, 2)
  const batch = (b: string) => JSON.stringify((JSON.parse(b) as { batch: unknown }).batch)
  t.equal(batch(bodies[0]!), batch(bodies[1]!), 'the same events again')
  t.equal(router.stats().destinations.hook!.retried, 1)
  t.equal(router.deadLetters.count(), 0)
})

t.test('maxAttempts: a 503 forever ends in DELIVERY_MAX_ATTEMPTS naming the last status', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  server.fallback = { status: 503 }
  const router = hookRouter(server.url, { ...fast, retry: { ...fast.retry, maxAttempts: 4 } })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.track({ userId: 'u', event: 'A' })
  await router.track({ userId: 'u', event: 'B' })
  await until(() => router.deadLetters.count() === 2, 'dead letters')
  t.equal(server.requests.length, 4, 'exactly maxAttempts sends of the one batch')
  for (const d of router.deadLetters.list()) {
    t.equal(d.error.code, 'DELIVERY_MAX_ATTEMPTS')
    t.match(d.error.message, /4 attempts failed/)
    t.match(d.error.message, /503/)
    t.equal(d.error.status, 503)
    t.equal(d.attempts, 4)
  }
  t.same(router.stats().destinations.hook!.deadLettered, { DELIVERY_MAX_ATTEMPTS: 2 })
  t.equal(router.stats().destinations.hook!.held, 0)
})

t.test('maxAgeMs: an event too old for another try ends in DELIVERY_MAX_AGE', async (t) => {
  let sends = 0
  const flaky = defineDestination({
    name: 'flaky',
    version: '1.0.0',
    settings: Type.Object({}),
    async send() {
      sends++
      await new Promise((r) => setTimeout(r, 30))
      throw new RetryableError('try later')
    },
  })
  const router = createRouter({
    logger: quiet,
    plugins: [flaky],
    destinations: [{ name: 'f', type: 'flaky', delivery: { batch: { maxEvents: 1, maxWaitMs: 5 }, retry: { minDelayMs: 10, maxDelayMs: 10, maxAttempts: 100, maxAgeMs: 50 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.track({ userId: 'u', event: 'Old' })
  await until(() => router.deadLetters.count() === 1, 'dead letter')
  const [d] = router.deadLetters.list() as [DeadLetter]
  t.equal(d.error.code, 'DELIVERY_MAX_AGE')
  t.match(d.error.message, /maxAgeMs \(50 ms\)/)
  t.match(d.error.message, /try later/, 'the last error is in the message')
  t.ok(sends >= 1 && sends < 100, 'gave up long before maxAttempts')
  t.equal(router.stats().destinations.f!.held, 0)
})
