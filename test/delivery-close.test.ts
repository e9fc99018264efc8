import t from 'tap'
import Type from 'typebox'
import { createRouter, defineDestination, type DestinationStats, type Logger } from '../src/index.js'
import { captureDestination, startTestServer } from '../src/testing.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }
const deadTotal = (s: DestinationStats) => Object.values(s.deadLettered).reduce((a, b) => a + (b ?? 0), 0)

t.test('close() drains buffered and in-flight events within the deadline', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  server.fallback = { status: 200, delayMs: 30 }
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxEvents: 4, maxWaitMs: 60_000 }, concurrency: 1 } }],
  })
  for (let i = 0; i < 10; i++) await router.track({ userId: 'u', event: 'E', properties: { i } })
  t.equal(router.stats().destinations.hook!.held, 10)
  await router.close({ timeoutMs: 5000 })
  const s = router.stats().destinations.hook!
  t.equal(s.delivered, 10, 'every event delivered, the partial batch included')
  t.equal(s.held, 0)
  t.same(s.deadLettered, {})
  t.equal(router.deadLetters.count(), 0)
  const got = server.requests.flatMap((r) => (r.json as { batch: Array<{ properties: { i: number } }> }).batch.map((e) => e.properties.i))
  t.same(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  await t.rejects(router.track({ userId: 'u', event: 'late' }), { code: 'shutting_down' }, 'no new events after close')
})

t.test('close() with a hanging destination: resolves after the deadline, the rest is dead-lettered', async (t) => {
  const hang = await startTestServer()
  const failing = await startTestServer()
  t.teardown(() => hang.close())
  t.teardown(() => failing.close())
  hang.fallback = { hang: true }
  failing.fallback = { status: 503 }
  const closed: string[] = []
  const cap = captureDestination()
  const capWithClose = { ...cap.plugin, close: () => void closed.push('capture') }
  const router = createRouter({
    logger: quiet,
    plugins: [capWithClose],
    destinations: [
      // One batch hangs in flight, one waits in p-queue, two events sit in the buffer.
      { name: 'hang', type: 'webhook', settings: { url: hang.url }, delivery: { concurrency: 1, batch: { maxEvents: 4, maxWaitMs: 60_000 }, timeoutMs: 60_000 } },
      // Failed once, now waiting a long backoff.
      { name: 'failing', type: 'webhook', settings: { url: failing.url }, delivery: { batch: { maxEvents: 10, maxWaitMs: 5 }, retry: { minDelayMs: 60_000, maxDelayMs: 60_000 } } },
      { name: 'cap', type: 'capture' },
    ],
  })
  for (let i = 0; i < 10; i++) await router.track({ userId: 'u', event: 'E', properties: { i } })
  await hang.waitFor(1)
  await failing.waitFor(1)
  await new Promise((r) => setTimeout(r, 20))
  t.equal(router.stats().destinations.hang!.held, 10)
  t.equal(router.stats().destinations.failing!.held, 10)

  let resolved = false
  const closing = router.close({ timeoutMs: 300 })
  void closing.then(() => (resolved = true))
  await new Promise((r) => setTimeout(r, 30))
  t.notOk(resolved, 'close waits for the deadline while events are held')
  t.equal(router.close(), closing, 'close() is idempotent')
  await closing

  const stats = router.stats().destinations
  for (const name of ['hang', 'failing'] as const) {
    const s = stats[name]!
    t.equal(s.held, 0, `${name}: nothing held`)
    t.equal(s.delivered, 0)
    t.same(s.deadLettered, { DELIVERY_SHUTDOWN: 10 }, `${name}: every held event dead-lettered as DELIVERY_SHUTDOWN`)
    t.equal(s.delivered + deadTotal(s), s.enqueued, `${name}: nothing unaccounted`)
    t.equal(router.deadLetters.count({ destination: name, code: 'DELIVERY_SHUTDOWN' }), 10)
  }
  const ids = router.deadLetters.list({ destination: 'hang', limit: 100 }).map((d) => (d.event.properties as { i: number }).i)
  t.same(ids.sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'each event exactly once')
  t.equal(stats.cap!.delivered, 10, 'a healthy destination still drained')
  t.same(closed, ['capture'], 'plugin.close was called')
  t.equal(hang.requests.length, 1, 'the queued batch was not sent after the deadline')
})

t.test('plugin.close runs after the last send; a failing close is logged, not thrown', async (t) => {
  const order: string[] = []
  const errors: Array<{ obj: object; msg?: string }> = []
  const logger: Logger = { debug() {}, info() {}, warn() {}, error: (obj, msg) => void errors.push({ obj, msg }) }
  const p = defineDestination({
    name: 'ordered',
    version: '1.0.0',
    settings: Type.Object({}),
    async send(events) {
      await new Promise((r) => setTimeout(r, 20))
      order.push(`send ${events.length}`)
    },
    close() {
      order.push('close')
      throw new Error('close failed')
    },
  })
  const router = createRouter({ logger, plugins: [p], destinations: [{ name: 'o', type: 'ordered', delivery: { batch: { maxWaitMs: 60_000 } } }] })
  await router.track({ userId: 'u', event: 'E' })
  await router.track({ userId: 'u', event: 'E' })
  await router.close({ timeoutMs: 2000 })
  t.same(order, ['send 2', 'close'])
  t.ok(errors.some((e) => /close failed/.test(JSON.stringify(e.obj))), 'the close failure is logged')
})

t.test('close() of a router with nothing held resolves at once and calls close on every plugin', async (t) => {
  const closed: string[] = []
  const mk = (name: string) =>
    defineDestination({ name, version: '1.0.0', settings: Type.Object({}), async send() {}, close: () => void closed.push(name) })
  const router = createRouter({ logger: quiet, plugins: [mk('one'), mk('two')], destinations: [{ name: 'a', type: 'one' }, { name: 'b', type: 'two' }] })
  await router.close({ timeoutMs: 60_000 })
  t.same(closed.sort(), ['one', 'two'])
})
