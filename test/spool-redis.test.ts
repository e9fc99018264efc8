/**
 * The Redis Streams spool against the real Redis on 127.0.0.1:6379 (fails loudly when
 * it is down). Each test uses its own stream prefix and deletes its keys afterwards.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { createRouter, type Logger, type Router } from '../src/index.js'
import type { RouterOptions } from '../src/config.js'
import { startTestServer } from '../src/testing.js'
import { startChild, startLoad, startSink, until } from './fixtures/spool/harness.js'

const URL = 'redis://127.0.0.1:6379'
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }

const admin = new Redis(URL, { maxRetriesPerRequest: 1, connectTimeout: 2000 })
t.teardown(() => admin.quit())
t.before(async () => {
  try {
    await admin.ping()
  } catch (err) {
    throw new Error(`Redis is not answering on 127.0.0.1:6379 (${(err as Error).message}); .ci/run starts it — start it with redis-server`)
  }
})

function prefix(t: Test): string {
  const p = `fp-test-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`
  t.teardown(async () => {
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, found] = await admin.scan(cursor, 'MATCH', `${p}*`, 'COUNT', 1000)
      cursor = next
      keys.push(...found)
    } while (cursor !== '0')
    if (keys.length) await admin.del(...keys)
  })
  return p
}

function router(t: Test, opts: RouterOptions): Router {
  const r = createRouter({ logger: quiet, ...opts })
  t.teardown(() => r.close({ timeoutMs: 200 }))
  return r
}

t.test('events go through the stream to the destination, are acked and deleted; the 200 waits for XADD', async (t) => {
  const stream = prefix(t)
  const dest = await startTestServer()
  t.teardown(() => dest.close())
  dest.fallback = { status: 503 }
  const r = router(t, {
    spool: { type: 'redis', url: URL, stream, consumer: 'c1' },
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: dest.url }, delivery: { batch: { maxWaitMs: 5 }, retry: { minDelayMs: 20, maxDelayMs: 40 } } }],
  })
  for (let i = 0; i < 25; i++) await r.track({ userId: 'u', event: 'E', messageId: `r-${i}` })
  t.equal(await admin.xlen(`${stream}:hook`), 25, 'stored before the calls returned')
  dest.fallback = { status: 200 }
  await until(() => r.stats().destinations.hook!.delivered === 25, 'delivery')
  await until(() => r.stats().spool!.acked === 25, 'acks')
  t.equal(await admin.xlen(`${stream}:hook`), 0, 'acked entries are deleted')
})

t.test('dead letters live in Redis; replay is idempotent even when two run at once', async (t) => {
  const stream = prefix(t)
  const dest = await startTestServer()
  t.teardown(() => dest.close())
  dest.fallback = { status: 400 }
  const opts: RouterOptions = {
    spool: { type: 'redis', url: URL, stream, consumer: 'c1' },
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: dest.url }, delivery: { batch: { maxEvents: 1, maxWaitMs: 1 } } }],
  }
  const r = router(t, opts)
  for (let i = 0; i < 12; i++) await r.track({ userId: 'u', event: 'E', messageId: `d-${i}` })
  await until(() => r.stats().destinations.hook!.deadLettered.DELIVERY_PERMANENT === 12, 'dead letters')
  await until(() => r.stats().spool!.acked === 12, 'acks')
  const dl = r.deadLettersAsync
  t.equal(await dl.count(), 12)
  t.equal(await dl.count({ destination: 'hook', code: 'DELIVERY_PERMANENT' }), 12)
  const listed = await dl.list({ limit: 2 })
  t.equal(listed[0]!.event.messageId, 'd-0')
  t.equal(listed[0]!.error.status, 400)
  t.throws(() => r.deadLetters.list(), /deadLettersAsync/, 'the sync API says where to look')
  t.equal(await dl.purge({ ids: [listed[0]!.id] }), 1)
  dest.fallback = { status: 200 }
  const [a, b] = await Promise.all([dl.replay({}), dl.replay({})])
  t.equal(a!.replayed + b!.replayed, 11, 'each entry replayed once')
  await until(() => r.stats().destinations.hook!.delivered === 11, 'replayed delivered')
  await new Promise((res) => setTimeout(res, 100))
  t.equal(r.stats().destinations.hook!.delivered, 11)
  t.equal(await dl.count(), 0)
})

t.test('entries a crashed consumer held are claimed by another (XAUTOCLAIM)', async (t) => {
  const stream = prefix(t)
  const sink = await startSink()
  t.teardown(() => sink.close())
  // A consumer reads 30 entries and dies without acking: they stay pending on "dead".
  const key = `${stream}:sink`
  await admin.xgroup('CREATE', key, 'firstparty', '0', 'MKSTREAM')
  for (let i = 0; i < 30; i++) {
    await admin.xadd(key, '*', 'e', JSON.stringify({ type: 'track', event: 'E', userId: 'u', messageId: `p-${i}` }), 'a', String(Date.now()), 'b', '80', 'u', 'u')
  }
  await admin.xreadgroup('GROUP', 'firstparty', 'dead', 'COUNT', 30, 'STREAMS', key, '>')
  const r = router(t, {
    spool: { type: 'redis', url: URL, stream, consumer: 'alive', claimIdleMs: 300 },
    destinations: [{ name: 'sink', type: 'webhook', settings: { url: sink.url }, delivery: { batch: { maxWaitMs: 5 } } }],
  })
  await until(() => sink.seen.size === 30, 'claimed and delivered', 10_000)
  await until(() => r.stats().spool!.acked === 30, 'acked')
  const pending = (await admin.xpending(key, 'firstparty')) as [number, ...unknown[]]
  t.equal(pending[0], 0, 'nothing pending')
})

t.test('three processes on one Redis stream, one killed mid-run: 0 lost', async (t) => {
  const stream = prefix(t)
  const sink = await startSink(2)
  t.teardown(() => sink.close())
  const make = (name: string): RouterOptions => ({
    spool: { type: 'redis', url: URL, stream, consumer: name, claimIdleMs: 2000 },
    destinations: [{ name: 'sink', type: 'webhook', settings: { url: sink.url }, delivery: { maxBufferedEvents: 300, batch: { maxEvents: 50, maxWaitMs: 5 } } }],
  })
  const children = await Promise.all(['p1', 'p2', 'p3'].map((n) => startChild(make(n))))
  t.teardown(() => Promise.all(children.map((c) => c.kill())))
  const live = new Set(children.map((c) => c.port))
  const load = startLoad({ ports: () => [...live], concurrency: 12, batchSize: 10, maxRequests: 900, prefix: 'fail' })
  await until(() => load.acked.size >= 3000 && sink.seen.size >= 1500, 'load under way')
  live.delete(children[1]!.port)
  await children[1]!.kill()
  const ackedAtKill = load.acked.size
  await load.stop()
  t.ok(load.acked.size > ackedAtKill, 'the two survivors took the rest of the load')
  await until(() => [...load.acked].every((id) => sink.seen.has(id)), 'every acked event delivered', 60_000)
  const lost = [...load.acked].filter((id) => !sink.seen.has(id))
  t.equal(lost.length, 0, '0 lost')
  t.comment(`acked ${load.acked.size} events in ${load.sent} requests (${load.failed} failed at the kill); delivered ${sink.seen.size} distinct; duplicates ${sink.duplicates()}`)
  t.ok(sink.duplicates() <= 300, `duplicates (${sink.duplicates()}) within the dead process's in-flight window`)
  await Promise.all([children[0]!.stop(), children[2]!.stop()])
})
