/**
 * The SQLite spool in one process: the 200 waits for the store, delivery survives a
 * restart, backpressure, a destination's outage with flat memory and bounded storage,
 * per-user ordering, durable dead letters and idempotent replay. Real files in a temp
 * folder; real HTTP servers as destinations.
 */
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import Type from 'typebox'
import { createRouter, defineDestination, RetryableError, type DestinationStats, type Logger, type Router } from '../src/index.js'
import type { RouterOptions } from '../src/config.js'
import { startTestServer } from '../src/testing.js'
import { basic, listen, send } from './helpers/http.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }
const WK = 'wk_spool'

function tempDb(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'fp-spool-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'spool.db')
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const deadTotal = (s: DestinationStats) => Object.values(s.deadLettered).reduce((a, b) => a + (b ?? 0), 0)

function rowsIn(path: string, table = 'spool'): number {
  const db = new Database(path, { readonly: true })
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n
  } finally {
    db.close()
  }
}

function router(t: Test, opts: RouterOptions): Router {
  const r = createRouter({ logger: quiet, sources: [{ name: 'web', writeKey: WK }], ...opts })
  t.teardown(() => r.close({ timeoutMs: 200 }))
  return r
}

function batchOf(n: number, from = 0, extra: Record<string, unknown> = {}): { batch: Array<Record<string, unknown>> } {
  return { batch: Array.from({ length: n }, (_, i) => ({ type: 'track', event: 'E', userId: `u${(from + i) % 7}`, messageId: `m-${from + i}`, properties: { i: from + i }, ...extra })) }
}

t.test('the 200 goes out after the events are in the file; delivery then acks them', async (t) => {
  const path = tempDb(t)
  const dest = await startTestServer()
  t.teardown(() => dest.close())
  // Hold delivery until the rows are checked.
  dest.fallback = { status: 503 }
  const r = router(t, {
    spool: { type: 'sqlite', path },
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: dest.url }, delivery: { batch: { maxWaitMs: 5 }, retry: { minDelayMs: 20, maxDelayMs: 40 } } }],
  })
  const { base } = await listen(t, r.handler())
  const reply = await send(`${base}/v1/batch`, { headers: { Authorization: basic(WK) }, body: batchOf(20) })
  t.equal(reply.status, 200)
  t.equal(rowsIn(path), 20, 'every event of the answered request is a row in the spool')
  dest.fallback = { status: 200 }
  await until(() => r.stats().destinations.hook!.delivered === 20, 'delivery')
  await until(() => rowsIn(path) === 0, 'acks')
  const s = r.stats()
  t.equal(s.spool!.appended, 20)
  t.equal(s.spool!.acked, 20)
  t.equal(s.spool!.pending, 0)
  const ids = dest.requests.filter((q) => q.json && (q.json as { batch?: unknown[] }).batch).flatMap((q) => (q.json as { batch: Array<{ messageId: string }> }).batch.map((e) => e.messageId))
  t.ok(new Set(ids).size === 20 && ids.includes('m-0') && ids.includes('m-19'), 'the destination got every messageId (its dedup key)')
})

t.test('events left at close are delivered by the next router on the same file', async (t) => {
  const path = tempDb(t)
  const dest = await startTestServer()
  t.teardown(() => dest.close())
  dest.fallback = { status: 503 }
  const opts: RouterOptions = {
    spool: { type: 'sqlite', path },
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: dest.url }, delivery: { batch: { maxWaitMs: 5 }, retry: { minDelayMs: 20, maxDelayMs: 40 } } }],
  }
  const first = createRouter({ logger: quiet, ...opts })
  for (let i = 0; i < 30; i++) await first.track({ userId: 'u', event: 'E', messageId: `k-${i}` })
  await first.close({ timeoutMs: 100 })
  t.equal(first.stats().destinations.hook!.delivered, 0)
  t.same(first.stats().destinations.hook!.deadLettered, {}, 'nothing is dead-lettered at close: the spool keeps it')
  t.equal(rowsIn(path), 30)

  dest.fallback = { status: 200 }
  const second = router(t, opts)
  await until(() => second.stats().destinations.hook!.delivered === 30, 'delivery after restart')
  await until(() => rowsIn(path) === 0, 'acks')
})

t.test('a full spool answers 503 spool_full with Retry-After and stores nothing of the request', async (t) => {
  const path = tempDb(t)
  const dest = await startTestServer()
  t.teardown(() => dest.close())
  dest.fallback = { status: 503 }
  const r = router(t, {
    spool: { type: 'sqlite', path, maxEvents: 50 },
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: dest.url }, delivery: { maxBufferedEvents: 10, batch: { maxWaitMs: 5 }, retry: { minDelayMs: 50, maxDelayMs: 100 } } }],
  })
  const { base } = await listen(t, r.handler())
  const ok = await send(`${base}/v1/batch`, { headers: { Authorization: basic(WK) }, body: batchOf(40) })
  t.equal(ok.status, 200)
  const full = await send(`${base}/v1/batch`, { headers: { Authorization: basic(WK), Origin: 'http://x' }, body: batchOf(20, 40) })
  t.equal(full.status, 503)
  t.equal(full.json.code, 'spool_full')
  t.match(full.headers['retry-after'], /^\d+$/)
  t.equal(rowsIn(path), 40, 'nothing of the refused request was stored')
  t.equal(r.stats().rejected.spool_full, 1)
  t.equal(r.stats().spool!.rejectedFull, 1)
  // The client retries the same messageIds once there is room: not taken for duplicates.
  dest.fallback = { status: 200 }
  await until(() => r.stats().destinations.hook!.delivered === 40, 'drain')
  await until(() => r.stats().spool!.pending === 0, 'acks')
  const again = await send(`${base}/v1/batch`, { headers: { Authorization: basic(WK) }, body: batchOf(20, 40) })
  t.equal(again.status, 200)
  await until(() => r.stats().destinations.hook!.delivered === 60, 'the retried request is delivered')
  t.equal(r.stats().deduplicated, 0)
  t.rejects(r.track({ userId: 'u', event: 'E' }).then(async () => {
    // Backend calls see the same error.
    dest.fallback = { status: 503 }
    for (let i = 0; i < 60; i++) await r.track({ userId: 'u', event: 'E' })
  }), { code: 'spool_full' })
})

t.test('a destination down for a while: memory flat, another destination unaffected, storage bounded by retention, all else delivered', async (t) => {
  const path = tempDb(t)
  const down = await startTestServer()
  const up = await startTestServer()
  t.teardown(() => down.close())
  t.teardown(() => up.close())
  down.fallback = { status: 503 }
  const cap = 25
  const r = router(t, {
    spool: { type: 'sqlite', path, retention: { maxEvents: 300 } },
    destinations: [
      { name: 'down', type: 'webhook', settings: { url: down.url }, delivery: { maxBufferedEvents: cap, batch: { maxEvents: 10, maxWaitMs: 5 }, retry: { maxAttempts: 1_000_000, minDelayMs: 10, maxDelayMs: 30 } } },
      { name: 'up', type: 'webhook', settings: { url: up.url }, delivery: { batch: { maxEvents: 50, maxWaitMs: 5 } } },
    ],
  })
  let maxHeld = 0
  const watch = setInterval(() => (maxHeld = Math.max(maxHeld, r.stats().destinations.down!.held)), 1)
  t.teardown(() => clearInterval(watch))
  for (let i = 0; i < 600; i++) {
    await r.track({ userId: `u${i % 5}`, event: 'E', messageId: `o-${i}` })
    if (i % 100 === 0) await new Promise((res) => setTimeout(res, 20))
  }
  await until(() => r.stats().destinations.up!.delivered === 600, 'the healthy destination gets everything while the other is down')
  // Retention runs every second: the down destination's backlog is cut to 300 unread.
  await until(() => (r.stats().destinations.down!.deadLettered.DELIVERY_RETENTION ?? 0) >= 600 - 300 - cap, 'retention', 5000)
  const s = r.stats().destinations.down!
  t.ok(maxHeld <= cap, `held never exceeded maxBufferedEvents (max ${maxHeld})`)
  t.equal(s.deadLettered.DELIVERY_QUEUE_FULL, undefined, 'nothing overflowed the queue: the backlog waits in the spool')
  const retired = s.deadLettered.DELIVERY_RETENTION!
  t.equal(r.deadLetters.count({ destination: 'down', code: 'DELIVERY_RETENTION' }), retired, 'every retired event is a durable dead letter')
  t.ok(rowsIn(path) <= 300 + cap, `the file holds at most retention + in flight (${rowsIn(path)})`)

  down.fallback = { status: 200 }
  await until(() => r.stats().destinations.down!.delivered === 600 - retired, 'recovery')
  const after = r.stats().destinations.down!
  t.equal(after.delivered + deadTotal(after), 600, 'delivered + dead-lettered == accepted, nothing lost')
  // Replay the retired ones: delivered too, and a second replay finds nothing.
  t.same(r.deadLetters.replay({ destination: 'down' }), { replayed: retired, skipped: 0 })
  t.same(r.deadLetters.replay({ destination: 'down' }), { replayed: 0, skipped: 0 }, 'replay is idempotent')
  await until(() => r.stats().destinations.down!.delivered === 600, 'replayed events delivered')
  const got = new Set(down.requests.flatMap((q) => ((q.json as { batch?: Array<{ messageId: string }> })?.batch ?? []).map((e) => e.messageId)))
  t.equal(got.size, 600, 'the destination has every event')
})

t.test("per-user ordering: a user's events arrive in order, one in flight, even across retries", async (t) => {
  const path = tempDb(t)
  const seen: Array<{ user: string; i: number }> = []
  const inFlight = new Map<string, number>()
  let maxPerUser = 0
  let fail = 3
  const flaky = defineDestination({
    name: 'ordered',
    version: '1.0.0',
    settings: Type.Object({}),
    async send(events) {
      for (const e of events) {
        const u = e.userId!
        inFlight.set(u, (inFlight.get(u) ?? 0) + 1)
        maxPerUser = Math.max(maxPerUser, inFlight.get(u)!)
      }
      await new Promise((r) => setTimeout(r, 2))
      for (const e of events) inFlight.set(e.userId!, inFlight.get(e.userId!)! - 1)
      if (fail-- > 0) throw new RetryableError('flaky')
      for (const e of events) seen.push({ user: e.userId!, i: (e as unknown as { properties: { i: number } }).properties.i })
    },
  })
  const r = router(t, {
    spool: { type: 'sqlite', path },
    plugins: [flaky],
    destinations: [{ name: 'o', type: 'ordered', ordering: 'per-user', delivery: { concurrency: 8, batch: { maxEvents: 5, maxWaitMs: 1 }, retry: { minDelayMs: 5, maxDelayMs: 10 } } }],
  })
  for (let i = 0; i < 200; i++) await r.track({ userId: `u${i % 4}`, event: 'E', properties: { i } })
  await until(() => seen.length === 200, 'all delivered')
  for (const u of ['u0', 'u1', 'u2', 'u3']) {
    const is = seen.filter((s) => s.user === u).map((s) => s.i)
    t.same(is, [...is].sort((a, b) => a - b), `${u}'s events arrived in order`)
  }
  t.equal(maxPerUser, 1, 'never two events of one user in flight')
})

t.test('per-user ordering without a durable spool is a config error naming the path', async (t) => {
  t.throws(() => createRouter({ logger: quiet, destinations: [{ name: 'c', type: 'console', ordering: 'per-user' }] }), { code: 'CONFIG_INVALID', path: '/destinations/0/ordering' })
  t.throws(() => createRouter({ logger: quiet, spool: { type: 'sqlite' } }), { code: 'CONFIG_INVALID', path: '/spool/path' })
  t.throws(() => createRouter({ logger: quiet, spool: { type: 'sqlite', path: '/etc/hostname/x.db' } }), { code: 'CONFIG_SPOOL', path: '/spool/path' })
  t.throws(() => createRouter({ logger: quiet, spool: { type: 'disk' } as never }), { code: 'CONFIG_INVALID', path: '/spool/type' })
})

t.test('dead letters persist in the file across restarts; purge and replay through the router', async (t) => {
  const path = tempDb(t)
  const dest = await startTestServer()
  t.teardown(() => dest.close())
  dest.fallback = { status: 400 }
  const opts: RouterOptions = {
    spool: { type: 'sqlite', path },
    destinations: [{ name: 'hook', type: 'webhook', settings: { url: dest.url }, delivery: { batch: { maxEvents: 1, maxWaitMs: 1 } } }],
  }
  const first = createRouter({ logger: quiet, ...opts })
  for (let i = 0; i < 10; i++) await first.track({ userId: 'u', event: 'E', messageId: `d-${i}` })
  await until(() => first.deadLetters.count() === 10, 'dead letters')
  await first.close({ timeoutMs: 100 })
  t.equal(rowsIn(path), 0, 'dead-lettered events are acked')
  t.equal(rowsIn(path, 'dead_letters'), 10)

  dest.fallback = { status: 200 }
  const second = router(t, opts)
  const listed = second.deadLetters.list({ limit: 3 })
  t.equal(listed.length, 3)
  t.equal(listed[0]!.error.code, 'DELIVERY_PERMANENT')
  t.equal(listed[0]!.error.status, 400)
  t.equal(listed[0]!.event.messageId, 'd-0')
  t.equal(await second.deadLettersAsync.count({ code: 'DELIVERY_PERMANENT' }), 10)
  t.equal(second.deadLetters.purge({ ids: [listed[0]!.id] }), 1)
  const [a, b] = await Promise.all([second.deadLettersAsync.replay({}), second.deadLettersAsync.replay({})])
  t.equal(a!.replayed + b!.replayed, 9, 'two concurrent replays move each entry once')
  await until(() => second.stats().destinations.hook!.delivered === 9, 'replayed delivered')
  await new Promise((r) => setTimeout(r, 100))
  t.equal(second.stats().destinations.hook!.delivered, 9, 'and only once')
})
