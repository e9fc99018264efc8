import t from 'tap'
import Type from 'typebox'
import { createRouter, defineDestination, PermanentError, RetryableError, type Logger } from '../src/index.js'
import { startTestServer, type RecordedRequest } from '../src/testing.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const nameOf = (r: RecordedRequest) => (r.json as { event: string }).event

async function eventModeRouter(t: { teardown(fn: () => unknown): void }, answer: (req: RecordedRequest, nth: number) => number) {
  const server = await startTestServer()
  t.teardown(() => server.close())
  const seen = new Map<string, number>()
  server.fallback = (req) => {
    const n = (seen.get(nameOf(req)) ?? 0) + 1
    seen.set(nameOf(req), n)
    return { status: answer(req, n) }
  }
  const router = createRouter({
    logger: quiet,
    destinations: [{
      name: 'hook', type: 'webhook', settings: { url: server.url, mode: 'event' },
      delivery: { batch: { maxEvents: 3, maxWaitMs: 60_000 }, retry: { minDelayMs: 10, maxDelayMs: 20, maxAttempts: 3 } },
    }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  for (const name of ['one', 'two', 'three']) await router.track({ userId: 'u', event: name })
  return { server, router }
}

t.test('event mode: one of three fails with 503 → two delivered at once, one retried then delivered', async (t) => {
  const { server, router } = await eventModeRouter(t, (req, n) => (nameOf(req) === 'two' && n === 1 ? 503 : 200))
  await until(() => router.stats().destinations.hook!.delivered === 3, 'all delivered')
  // The three first requests run in parallel: their order is not fixed.
  t.same(server.requests.slice(0, 3).map(nameOf).sort(), ['one', 'three', 'two'])
  t.same(server.requests.slice(3).map(nameOf), ['two'], 'only the failed event is sent again')
  const s = router.stats().destinations.hook!
  t.equal(s.retried, 1, 'one event retried')
  t.equal(s.held, 0)
  t.same(s.deadLettered, {})
})

t.test('event mode: one of three fails with 400 → two delivered, one dead-lettered', async (t) => {
  const { server, router } = await eventModeRouter(t, (req) => (nameOf(req) === 'three' ? 400 : 200))
  await until(() => router.stats().destinations.hook!.held === 0, 'settled')
  t.equal(server.requests.length, 3, 'nothing retried')
  const s = router.stats().destinations.hook!
  t.equal(s.delivered, 2)
  t.same(s.deadLettered, { DELIVERY_PERMANENT: 1 })
  const [d] = router.deadLetters.list()
  t.equal(d!.event.event, 'three')
  t.equal(d!.error.status, 400)
})

t.test('event mode: one event keeps failing → max attempts for that event only', async (t) => {
  const { server, router } = await eventModeRouter(t, (req) => (nameOf(req) === 'one' ? 500 : 200))
  await until(() => router.stats().destinations.hook!.held === 0, 'settled')
  t.same(server.requests.slice(0, 3).map(nameOf).sort(), ['one', 'three', 'two'])
  t.same(server.requests.slice(3).map(nameOf), ['one', 'one'], 'maxAttempts 3 for that event alone')
  const s = router.stats().destinations.hook!
  t.equal(s.delivered, 2)
  t.same(s.deadLettered, { DELIVERY_MAX_ATTEMPTS: 1 })
})

t.test('event mode: all three fail the same way → the batch is retried as one', async (t) => {
  const { server, router } = await eventModeRouter(t, (_req, n) => (n === 1 ? 503 : 200))
  await until(() => router.stats().destinations.hook!.delivered === 3, 'all delivered')
  t.equal(server.requests.length, 6)
  const s = router.stats().destinations.hook!
  t.equal(s.batches, 2, 'one retried send, not three')
  t.equal(s.retried, 3)
  t.equal(s.failedSends, 1)
})

t.test('SendResult.rejected from a custom plugin: mixed rules, bad indexes ignored', async (t) => {
  const calls: string[][] = []
  const p = defineDestination({
    name: 'vendor',
    version: '1.0.0',
    settings: Type.Object({}),
    async send(events) {
      calls.push(events.map((e) => e.event as string))
      if (calls.length > 1) return
      return {
        rejected: [
          { index: 0, error: new RetryableError('slow down') },
          { index: 2, error: new PermanentError('bad field', { status: 422 }) },
          { index: 7, error: new PermanentError('no such event') },
        ],
      }
    },
  })
  const router = createRouter({
    logger: quiet,
    plugins: [p],
    destinations: [{ name: 'v', type: 'vendor', delivery: { batch: { maxEvents: 4, maxWaitMs: 60_000 }, retry: { minDelayMs: 10, maxDelayMs: 10 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  for (const name of ['a', 'b', 'c', 'd']) await router.track({ userId: 'u', event: name })
  await until(() => router.stats().destinations.v!.held === 0, 'settled')
  t.same(calls, [['a', 'b', 'c', 'd'], ['a']])
  const s = router.stats().destinations.v!
  t.equal(s.delivered, 3, 'b and d at once, a on retry')
  t.same(s.deadLettered, { DELIVERY_PERMANENT: 1 })
  t.equal(router.deadLetters.list()[0]!.event.event, 'c')
  t.equal(s.delivered + 1, s.enqueued, 'nothing counted twice')
})
