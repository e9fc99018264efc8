import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { createRouter, type Logger } from '../src/index.js'
import { Dedup } from '../src/deliver/dedup.js'
import { captureDestination } from '../src/testing.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

t.test('Dedup: within the window, after it, and the size cap', async (t) => {
  const d = new Dedup(1000, 100)
  t.equal(d.seen('a', 0), false, 'first sight')
  t.equal(d.seen('a', 999), true, 'inside the window')
  t.equal(d.seen('b', 10), false, 'another id')
  t.equal(d.seen('a', 1000), false, 'the window has passed')
  t.equal(d.seen('a', 1500), true, 'remembered again from its new sighting')
  t.equal(d.seen('a', 2000), false)

  const capped = new Dedup(60_000, 2)
  capped.seen('x', 0)
  capped.seen('y', 1)
  capped.seen('z', 2)
  t.equal(capped.size, 2, 'never more than maxEntries')
  t.equal(capped.seen('y', 3), true)
  t.equal(capped.seen('z', 3), true)
  t.equal(capped.seen('x', 3), false, 'the oldest was dropped')

  const expiring = new Dedup(10, 1000)
  for (let i = 0; i < 50; i++) expiring.seen(`id${i}`, i)
  expiring.seen('late', 100)
  t.equal(expiring.size, 1, 'expired entries are dropped as new ones arrive')
})

t.test('the same messageId twice within the window is delivered once', async (t) => {
  const cap = captureDestination()
  const router = createRouter({ logger: quiet, plugins: [cap.plugin], destinations: [{ name: 'c', type: 'capture', delivery: { batch: { maxWaitMs: 5 } } }] })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.track({ userId: 'u', event: 'Order', messageId: 'm-1' })
  await router.track({ userId: 'u', event: 'Order', messageId: 'm-1' })
  await router.track({ userId: 'u', event: 'Order', messageId: 'm-2' })
  await router.close({ timeoutMs: 1000 })
  t.same(cap.events.map((e) => e.messageId), ['m-1', 'm-2'])
  t.equal(router.stats().deduplicated, 1)
  t.equal(router.stats().accepted, 3)
  t.equal(router.stats().destinations.c!.enqueued, 2)
})

t.test('a client retry over HTTP (same batch twice) is delivered once', async (t) => {
  const cap = captureDestination()
  const router = createRouter({
    logger: quiet,
    sources: [{ name: 'web', writeKey: 'wk' }],
    plugins: [cap.plugin],
    destinations: [{ name: 'c', type: 'capture', delivery: { batch: { maxWaitMs: 5 } } }],
  })
  const http = createServer(router.handler())
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => (http.closeAllConnections(), http.close(() => r()))))
  t.teardown(() => router.close({ timeoutMs: 100 }))
  const body = JSON.stringify({
    writeKey: 'wk',
    batch: [
      { type: 'track', event: 'A', userId: 'u', messageId: 'h-1' },
      { type: 'track', event: 'B', userId: 'u', messageId: 'h-2' },
      { type: 'track', event: 'B', userId: 'u', messageId: 'h-2' },
    ],
  })
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`http://127.0.0.1:${(http.address() as AddressInfo).port}/v1/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    t.equal(res.status, 200, 'a duplicate is still answered 200 (the client must stop retrying)')
  }
  await cap.waitFor(2)
  await new Promise((r) => setTimeout(r, 30))
  t.same(cap.events.map((e) => e.messageId), ['h-1', 'h-2'])
  t.equal(router.stats().deduplicated, 4)
})

t.test('dedup: false delivers both', async (t) => {
  const cap = captureDestination()
  const router = createRouter({ logger: quiet, dedup: false, plugins: [cap.plugin], destinations: [{ name: 'c', type: 'capture', delivery: { batch: { maxWaitMs: 5 } } }] })
  await router.track({ userId: 'u', event: 'Order', messageId: 'm-1' })
  await router.track({ userId: 'u', event: 'Order', messageId: 'm-1' })
  await router.close({ timeoutMs: 1000 })
  t.same(cap.events.map((e) => e.messageId), ['m-1', 'm-1'])
  t.equal(router.stats().deduplicated, 0)
})

t.test('after the window, the same messageId is delivered again', async (t) => {
  const cap = captureDestination()
  const router = createRouter({ logger: quiet, dedup: { windowMs: 300 }, plugins: [cap.plugin], destinations: [{ name: 'c', type: 'capture', delivery: { batch: { maxWaitMs: 5 } } }] })
  await router.track({ userId: 'u', event: 'Order', messageId: 'm-1' })
  await router.track({ userId: 'u', event: 'Order', messageId: 'm-1' })
  await new Promise((r) => setTimeout(r, 400))
  await router.track({ userId: 'u', event: 'Order', messageId: 'm-1' })
  await router.close({ timeoutMs: 1000 })
  t.same(cap.events.map((e) => e.messageId), ['m-1', 'm-1'])
  t.equal(router.stats().deduplicated, 1)
})
