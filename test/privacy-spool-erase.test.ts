/**
 * A suppression (or deletion) erases a subject's events that wait in a durable spool —
 * SQLite, and Redis Streams against the real Redis on 127.0.0.1:6379 (fails loudly
 * when it is down) — and in the delivery queue, while other subjects' events go on.
 */
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { createRouter, type Logger } from '../src/index.js'
import type { SpoolConfig } from '../src/config.js'
import { startTestServer } from '../src/testing.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }
const REDIS = 'redis://127.0.0.1:6379'
const admin = new Redis(REDIS, { maxRetriesPerRequest: 1, connectTimeout: 2000 })
t.teardown(() => admin.quit())
try {
  await admin.ping()
} catch (err) {
  throw new Error(`Redis is not answering on 127.0.0.1:6379 (${(err as Error).message}); .ci/run starts it — start it with redis-server`)
}

function spoolFor(t: Test, kind: 'sqlite' | 'redis'): SpoolConfig {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'fp-erase-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    return { type: 'sqlite', path: join(dir, 'spool.db'), pollMs: 5 }
  }
  const stream = `fp-erase-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`
  t.teardown(async () => {
    const keys = await admin.keys(`${stream}*`)
    if (keys.length) await admin.del(...keys)
  })
  return { type: 'redis', url: REDIS, stream, consumer: 'c1', pollMs: 5 }
}

for (const kind of ['sqlite', 'redis'] as const) {
  t.test(`${kind} spool: the subject's waiting events are erased; the others are delivered`, async (t) => {
    const server = await startTestServer()
    t.teardown(() => server.close())
    // Down at first: one event is held by the queue, the rest wait in the spool.
    server.fallback = { status: 503 }
    const router = createRouter({
      logger: quiet,
      spool: spoolFor(t, kind),
      destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url, mode: 'event' }, delivery: { maxBufferedEvents: 1, batch: { maxEvents: 1, maxWaitMs: 5 }, retry: { minDelayMs: 50, maxDelayMs: 50, jitter: 0 } } }],
    })
    t.teardown(() => router.close({ timeoutMs: 200 }))
    for (let i = 0; i < 4; i++) {
      await router.track({ userId: 'gone', event: `G${i}`, properties: { i } })
      await router.track({ userId: 'stays', event: `S${i}`, properties: { i } })
    }
    await server.waitFor(1)
    const res = await router.suppression.add({ userId: 'gone' })
    const erased = res.erased.queued + res.erased.spooled
    // The one event in flight at that moment cannot be called back; if its send fails it is erased instead of retried.
    t.ok(erased >= 3 && erased <= 4, `the subject's waiting events are erased (queued ${res.erased.queued}, spooled ${res.erased.spooled})`)
    t.ok(res.erased.spooled >= 2, 'from the spool itself')
    const flip = server.requests.length
    server.fallback = { status: 200 }
    for (let i = 0; i < 200 && router.stats().destinations.hook!.delivered < 4; i++) await new Promise((r) => setTimeout(r, 25))
    await router.close({ timeoutMs: 1000 })
    const after = server.requests.slice(flip).map((r) => (r.json as { userId: string; event: string }))
    t.same(after.map((e) => e.userId).filter((u) => u === 'gone'), [], 'nothing of the subject is sent once the destination is back')
    t.same(after.map((e) => e.event).sort(), ['S0', 'S1', 'S2', 'S3'], "the other subject's events, each once")
    t.equal(router.stats().destinations.hook!.delivered, 4)
    t.equal(router.stats().destinations.hook!.erased + res.erased.spooled, 4, 'all 4 of the subject\'s events are counted as erased (the queue\'s, the in-flight one included, and the spool\'s)')
  })
}
