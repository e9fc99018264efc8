import t from 'tap'
import { createRouter, type DestinationStats, type Logger } from '../src/index.js'
import { startTestServer } from '../src/testing.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const deadTotal = (s: DestinationStats) => Object.values(s.deadLettered).reduce((a, b) => a + (b ?? 0), 0)

t.test('a destination that always fails holds at most maxBufferedEvents; overflow is dead-lettered and counted', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  server.fallback = { status: 503 }
  const router = createRouter({
    logger: quiet,
    destinations: [{
      name: 'x', type: 'webhook', settings: { url: server.url },
      delivery: { maxBufferedEvents: 50, batch: { maxEvents: 10, maxWaitMs: 5 }, retry: { maxAttempts: 1_000_000, minDelayMs: 10, maxDelayMs: 30 } },
    }],
  })
  t.teardown(() => router.close({ timeoutMs: 50 }))
  let maxHeld = 0
  const ids: string[] = []
  for (let i = 0; i < 500; i++) {
    // Every 10th event switches this destination off: filtered, not held.
    const integrations = i % 10 === 9 ? { x: false } : undefined
    ids.push((await router.track({ userId: 'u', event: 'E', properties: { i }, ...(integrations ? { integrations } : {}) })).messageId)
    maxHeld = Math.max(maxHeld, router.stats().destinations.x!.held)
    // Let sends and retries run between events, as under real load.
    if (i % 50 === 0) await new Promise((r) => setTimeout(r, 15))
  }
  const s = router.stats().destinations.x!
  t.ok(maxHeld <= 50, `held never exceeded the cap (max ${maxHeld})`)
  t.equal(s.held, 50, 'the cap is full')
  t.equal(s.filtered, 50)
  t.equal(s.enqueued, 450, 'filtered events are not enqueued')
  t.equal(s.delivered, 0)
  t.same(s.deadLettered, { DELIVERY_QUEUE_FULL: 400 })
  t.equal(router.deadLetters.count({ destination: 'x', code: 'DELIVERY_QUEUE_FULL' }), 400, 'every overflow event is in the store')
  t.equal(s.delivered + deadTotal(s) + s.held, s.enqueued, 'delivered + dead-lettered + held == enqueued')
  t.equal(s.enqueued + s.filtered, router.stats().accepted, 'every accepted event is either enqueued or filtered')
  t.ok(server.requests.length > 1, 'the destination was tried')
  t.ok(s.retried > 0, 'and retried')

  const dead = new Set(router.deadLetters.list({ limit: 1000 }).map((d) => d.event.messageId))
  const filtered = new Set(ids.filter((_, i) => i % 10 === 9))
  const heldIds = ids.filter((id) => !dead.has(id) && !filtered.has(id))
  t.same(heldIds, ids.filter((id) => !filtered.has(id)).slice(0, 50), 'the held ones are the first 50 routed events')

  // The destination recovers: the held events drain, nothing else changes.
  server.fallback = { status: 200 }
  await until(() => router.stats().destinations.x!.held === 0, 'drain')
  const after = router.stats().destinations.x!
  t.equal(after.delivered, 50)
  t.same(after.deadLettered, { DELIVERY_QUEUE_FULL: 400 })
  t.equal(after.delivered + deadTotal(after) + after.held, after.enqueued)
  const delivered = new Set<string>()
  for (const r of server.requests) {
    if (r.json && Array.isArray((r.json as { batch?: unknown }).batch)) {
      for (const e of (r.json as { batch: Array<{ messageId: string }> }).batch) delivered.add(e.messageId)
    }
  }
  t.same([...heldIds].filter((id) => !delivered.has(id)), [], 'every held event reached the destination')
})

t.test('a full memory store evicts the oldest dead letter, counted, never silently', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  server.fallback = { status: 400 }
  const router = createRouter({
    logger: quiet,
    deadLetters: { maxEntries: 5 },
    destinations: [{ name: 'x', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxEvents: 1, maxWaitMs: 5 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 50 }))
  const evicted: Array<{ destination: string; messageId: string }> = []
  router.events.on('dead_letter_evicted', (e: { destination: string; messageId: string }) => evicted.push(e))
  const ids: string[] = []
  for (let i = 0; i < 8; i++) ids.push((await router.track({ userId: 'u', event: 'E', properties: { i } })).messageId)
  await until(() => router.stats().destinations.x!.held === 0, 'settled')
  t.equal(router.deadLetters.count(), 5)
  t.equal(router.stats().deadLettersEvicted, 3)
  t.equal(evicted.length, 3)
  t.same(evicted.map((e) => e.destination), ['x', 'x', 'x'])
  const kept = new Set(router.deadLetters.list().map((d) => d.event.messageId))
  for (const e of evicted) t.notOk(kept.has(e.messageId), 'an evicted entry is gone from the store')
  t.equal(new Set([...kept, ...evicted.map((e) => e.messageId)]).size, 8, 'kept + evicted account for every event')
})
