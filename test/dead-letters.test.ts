import t from 'tap'
import { createRouter, MemoryDeadLetterStore, type DeadLetter, type FirstpartyEvent, type Logger } from '../src/index.js'
import { startTestServer } from '../src/testing.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const ev = (id: string) => ({ type: 'track', event: 'E', userId: 'u', messageId: id }) as unknown as FirstpartyEvent
const entry = (id: string, destination: string, code: DeadLetter['error']['code'], deadAt: number): Omit<DeadLetter, 'id'> => ({
  destination, event: ev(id), error: { code, message: code }, attempts: 1, acceptedAt: deadAt - 10, deadAt,
})

t.test('MemoryDeadLetterStore: filters, limit, take, count', async (t) => {
  const store = new MemoryDeadLetterStore()
  store.add([
    entry('m1', 'a', 'DELIVERY_PERMANENT', 1000),
    entry('m2', 'b', 'DELIVERY_AUTH', 2000),
    entry('m3', 'a', 'DELIVERY_MAX_ATTEMPTS', 3000),
    entry('m4', 'a', 'DELIVERY_PERMANENT', 4000),
  ])
  const ids = (l: DeadLetter[]) => l.map((d) => d.event.messageId)
  t.same(ids(store.list()), ['m1', 'm2', 'm3', 'm4'], 'oldest first')
  t.same(ids(store.list({ destination: 'a' })), ['m1', 'm3', 'm4'])
  t.same(ids(store.list({ code: 'DELIVERY_PERMANENT' })), ['m1', 'm4'])
  t.same(ids(store.list({ destination: 'a', code: 'DELIVERY_PERMANENT' })), ['m1', 'm4'])
  t.same(ids(store.list({ since: 2000 })), ['m2', 'm3', 'm4'], 'since is inclusive')
  t.same(ids(store.list({ until: 3000 })), ['m1', 'm2'], 'until is exclusive')
  t.same(ids(store.list({ since: 2000, until: 4000 })), ['m2', 'm3'])
  t.same(ids(store.list({ limit: 2 })), ['m1', 'm2'])
  t.same(ids(store.list({ destination: 'a', limit: 2 })), ['m1', 'm3'], 'limit applies after the filter')
  t.same(store.list({ destination: 'nope' }), [])
  const m3 = store.list({ code: 'DELIVERY_MAX_ATTEMPTS' })[0]!
  t.same(ids(store.list({ ids: [m3.id] })), ['m3'])
  t.equal(store.count(), 4)
  t.equal(store.count({ destination: 'a' }), 3)
  t.same(ids(store.take({ code: 'DELIVERY_PERMANENT' })), ['m1', 'm4'], 'take returns the matches')
  t.same(ids(store.list()), ['m2', 'm3'], 'and removes them')
  t.same(store.take({ code: 'DELIVERY_PERMANENT' }), [], 'taking again finds nothing')
  t.equal(new Set(store.list().map((d) => d.id)).size, 2, 'ids are unique')

  const many = new MemoryDeadLetterStore()
  many.add(Array.from({ length: 150 }, (_, i) => entry(`n${i}`, 'a', 'DELIVERY_PERMANENT', i)))
  t.equal(many.list().length, 100, 'list defaults to 100')
  t.equal(many.count(), 150, 'count has no limit')
  t.equal(many.take().length, 150, 'take has no default limit')
})

t.test('MemoryDeadLetterStore: eviction is counted and reported', async (t) => {
  const evicted: string[] = []
  const store = new MemoryDeadLetterStore({ maxEntries: 3, onEvict: (d) => evicted.push(d.event.messageId) })
  store.add([1, 2, 3, 4, 5].map((i) => entry(`m${i}`, 'a', 'DELIVERY_PERMANENT', i)))
  t.equal(store.evicted, 2)
  t.same(evicted, ['m1', 'm2'], 'the oldest go first')
  t.same(store.list().map((d) => d.event.messageId), ['m3', 'm4', 'm5'])
})

t.test('router dead letters: list, replay after recovery, replay twice, purge', async (t) => {
  const a = await startTestServer()
  const b = await startTestServer()
  t.teardown(() => a.close())
  t.teardown(() => b.close())
  a.fallback = { status: 422 }
  b.fallback = { status: 401 }
  const router = createRouter({
    logger: quiet,
    destinations: [
      { name: 'a', type: 'webhook', settings: { url: a.url }, delivery: { batch: { maxEvents: 2, maxWaitMs: 5 } } },
      { name: 'b', type: 'webhook', settings: { url: b.url }, delivery: { batch: { maxEvents: 2, maxWaitMs: 5 } } },
    ],
  })
  t.teardown(() => router.close({ timeoutMs: 50 }))
  const before = Date.now()
  const ids: string[] = []
  for (let i = 0; i < 4; i++) ids.push((await router.track({ userId: 'u', event: 'E', properties: { i } })).messageId)
  await until(() => router.deadLetters.count() === 8, '8 dead letters')
  const after = Date.now() + 1

  t.equal(router.deadLetters.count({ destination: 'a' }), 4)
  t.equal(router.deadLetters.count({ code: 'DELIVERY_AUTH' }), 4)
  t.same(router.deadLetters.list({ code: 'DELIVERY_AUTH' }).map((d) => d.destination), ['b', 'b', 'b', 'b'])
  t.equal(router.deadLetters.list({ destination: 'a', code: 'DELIVERY_AUTH' }).length, 0)
  t.equal(router.deadLetters.list({ limit: 3 }).length, 3)
  t.equal(router.deadLetters.count({ since: before, until: after }), 8)
  t.equal(router.deadLetters.count({ since: after }), 0)
  t.equal(router.deadLetters.count({ until: before }), 0)
  const one = router.deadLetters.list({ destination: 'a' })[0]!
  t.match(one, { destination: 'a', attempts: 1, error: { code: 'DELIVERY_PERMANENT', status: 422 } })
  t.ok(one.acceptedAt <= one.deadAt)
  t.same(router.deadLetters.list({ destination: 'a' }).map((d) => d.event.messageId).sort(), [...ids].sort())

  // a recovers: replay only a's dead letters.
  a.fallback = { status: 200 }
  const sentBefore = a.requests.length
  const delivered: unknown[] = []
  router.events.on('delivered', (e) => delivered.push(e))
  t.same(router.deadLetters.replay({ destination: 'a' }), { replayed: 4, skipped: 0 })
  t.equal(router.deadLetters.count({ destination: 'a' }), 0, 'replayed entries leave the store')
  t.same(router.deadLetters.replay({ destination: 'a' }), { replayed: 0, skipped: 0 }, 'a second replay replays nothing')
  await until(() => router.stats().destinations.a!.delivered === 4, 'replayed delivery')
  const resent = a.requests.slice(sentBefore).flatMap((r) => (r.json as { batch: Array<{ messageId: string }> }).batch.map((e) => e.messageId))
  t.same(resent.sort(), [...ids].sort(), 'each replayed event reached the destination once')
  t.equal(router.deadLetters.count({ destination: 'a' }), 0)
  t.equal(router.stats().destinations.a!.held, 0)
  t.equal(router.stats().deduplicated, 0, 'replay is not mistaken for a client retry')

  // b is still broken: a replay dead-letters again, with fresh attempts.
  t.same(router.deadLetters.replay({ destination: 'b', limit: 1 }), { replayed: 1, skipped: 0 })
  t.equal(router.deadLetters.count({ destination: 'b' }), 3)
  await until(() => router.deadLetters.count({ destination: 'b' }) === 4, 'b dead again')
  t.equal(router.deadLetters.list({ destination: 'b' }).at(-1)!.attempts, 1)

  t.equal(router.deadLetters.purge({ destination: 'b' }), 4)
  t.equal(router.deadLetters.count(), 0)
  t.equal(router.deadLetters.purge(), 0)
})

t.test('replay leaves entries of unknown destinations in the store', async (t) => {
  const store = new MemoryDeadLetterStore()
  store.add([entry('g1', 'gone', 'DELIVERY_PERMANENT', Date.now()), entry('k1', 'kept', 'DELIVERY_PERMANENT', Date.now())])
  const server = await startTestServer()
  t.teardown(() => server.close())
  const router = createRouter({
    logger: quiet,
    deadLetters: store,
    destinations: [{ name: 'kept', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxWaitMs: 5 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 50 }))
  t.same(router.deadLetters.replay(), { replayed: 1, skipped: 1 })
  t.same(router.deadLetters.list().map((d) => d.destination), ['gone'])
  const reqs = await server.waitFor(1)
  t.equal((reqs[0]!.json as { batch: Array<{ messageId: string }> }).batch[0]!.messageId, 'k1')
})
