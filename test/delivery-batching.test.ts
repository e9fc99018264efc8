import t from 'tap'
import { createRouter, type Logger } from '../src/index.js'
import { startTestServer } from '../src/testing.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

type Body = { batch: Array<{ event: string; properties: { i: number } }>; sentAt: string }

t.test('maxEvents: a full batch is sent at once, in order', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxEvents: 5, maxWaitMs: 60_000 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  for (let i = 0; i < 10; i++) await router.track({ userId: 'u', event: 'E', properties: { i } })
  const reqs = await server.waitFor(2)
  t.equal(reqs.length, 2)
  const sizes = reqs.map((r) => (r.json as Body).batch.length)
  t.same(sizes, [5, 5], 'two batches of five, without waiting for maxWaitMs')
  const order = reqs.flatMap((r) => (r.json as Body).batch.map((e) => e.properties.i))
  t.same([...order].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  t.same((reqs[0]!.json as Body).batch.map((e) => e.properties.i), [0, 1, 2, 3, 4], 'the first batch holds the first events')
  await until(() => router.stats().destinations.hook!.delivered === 10, '10 delivered')
  t.equal(router.stats().destinations.hook!.batches, 2)
  t.equal(router.stats().destinations.hook!.held, 0)
})

t.test('maxWaitMs: a partial batch is sent when the wait runs out', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxEvents: 100, maxWaitMs: 200 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  for (let i = 0; i < 3; i++) await router.track({ userId: 'u', event: 'E', properties: { i } })
  t.equal(server.requests.length, 0, 'nothing sent before the wait runs out')
  const reqs = await server.waitFor(1)
  t.same((reqs[0]!.json as Body).batch.map((e) => e.properties.i), [0, 1, 2])
  t.equal(typeof (reqs[0]!.json as Body).sentAt, 'string')
})

t.test('maxBytes: batches are cut so none exceeds the byte budget', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxEvents: 100, maxBytes: 2500, maxWaitMs: 60_000 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  // Each event is ~1 KB of JSON: two fit in 2.5 KB, three do not.
  const pad = 'x'.repeat(1000)
  for (let i = 0; i < 6; i++) await router.track({ userId: 'u', event: 'E', properties: { i, pad } })
  // A batch leaves once the next event would not fit; the last two wait for more.
  const reqs = await server.waitFor(2)
  await until(() => router.stats().destinations.hook!.delivered === 4, '4 delivered')
  t.same(reqs.map((r) => (r.json as Body).batch.length), [2, 2], 'cut by bytes, not by count')
  t.equal(router.stats().destinations.hook!.held, 2)
  router.flush()
  await server.waitFor(3)
  const all = server.requests.map((r) => (r.json as Body).batch)
  t.same(all.map((b) => b.length), [2, 2, 2])
  for (const b of all) t.ok(JSON.stringify(b).length < 2500 + 200, 'each body stays near the byte budget')
  t.same(all.flat().map((e) => e.properties.i), [0, 1, 2, 3, 4, 5])
})

t.test('router.flush() sends a partial batch now', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxEvents: 100, maxWaitMs: 60_000 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  for (let i = 0; i < 3; i++) await router.track({ userId: 'u', event: 'E', properties: { i } })
  await new Promise((r) => setTimeout(r, 50))
  t.equal(server.requests.length, 0, 'held while the batch is not full')
  t.equal(router.stats().destinations.hook!.held, 3)
  router.flush()
  const reqs = await server.waitFor(1)
  t.equal((reqs[0]!.json as Body).batch.length, 3)
})
