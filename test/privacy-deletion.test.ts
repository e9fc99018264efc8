/**
 * router.deleteUser(): the fan-out to every destination that can delete (against local
 * servers answering as Amplitude's User Privacy API and Mixpanel's GDPR API do, and the
 * real PostgreSQL), the purge of what the router keeps itself (queues, dead letters, the
 * file sink, the ledger), and a receipt per destination that can be queried later.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import pg from 'pg'
import { createRouter, type DeletionReceipt, type Logger } from '../src/index.js'
import { main } from '../src/cli.js'
import { startTestServer } from '../src/testing.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }
const PG = process.env.FIRSTPARTY_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test'
const SCHEMA = `fp_del_${process.pid}_${Math.random().toString(36).slice(2, 8)}`

const admin = new pg.Pool({ connectionString: PG, max: 2 })
try {
  await admin.query('SELECT 1')
} catch (err) {
  await admin.end().catch(() => {})
  throw new Error(`PostgreSQL is not reachable at ${PG} (${(err as Error).message}): the deletion tests need it running`)
}
t.teardown(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`)
  await admin.end()
})

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'fp-delete-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const byTarget = (rs: DeletionReceipt[]) => Object.fromEntries(rs.map((r) => [r.target, r]))

t.test('deleteUser fans out, retries, records receipts and erases local copies', async (t) => {
  const dir = tmp(t)
  // Amplitude: the first try meets a 503, the retry succeeds with the API's answer.
  const amplitude = await startTestServer()
  t.teardown(() => amplitude.close())
  amplitude.fallback = (req) =>
    req.url.startsWith('/api/2/deletions/users')
      ? { status: 200, body: [{ amplitude_ids: [{ amplitude_id: 123, requested_on_day: '2026-11-29', requester: 'privacy@shop.example' }], app: 1, day: '2026-12-29', status: 'staging' }] }
      : { status: 200, body: { code: 200, events_ingested: 1 } }
  // Mixpanel: the GDPR token has expired.
  const mixpanel = await startTestServer()
  t.teardown(() => mixpanel.close())
  mixpanel.fallback = (req) =>
    req.url.startsWith('/api/app/data-deletions') ? { status: 401, body: { error: 'Invalid token', status: 'error' } }
      : req.url.startsWith('/engage') ? { status: 200, body: { status: 1, error: null } }
        : { status: 200, body: { code: 200, num_records_imported: 1, status: 'OK' } }
  const hook = await startTestServer()
  t.teardown(() => hook.close())

  const router = createRouter({
    logger: quiet,
    privacy: { store: { type: 'memory' }, deletion: { minDelayMs: 10, maxAttempts: 3 } },
    // The vendor plugins ask for analytics consent; these test events carry none.
    consent: { missing: 'allow' },
    destinations: [
      { name: 'amplitude', type: 'amplitude', settings: { apiKey: 'k'.repeat(32), secretKey: 'sk', requester: 'privacy@shop.example', endpoint: amplitude.url, deletionEndpoint: amplitude.url }, delivery: { batch: { maxWaitMs: 5 } } },
      { name: 'mixpanel', type: 'mixpanel', settings: { projectToken: 'tok', apiSecret: 'sec', gdprToken: 'expired', endpoint: mixpanel.url, deletionEndpoint: mixpanel.url }, delivery: { batch: { maxWaitMs: 5 } } },
      { name: 'warehouse', type: 'postgres', settings: { connectionString: PG, schema: SCHEMA }, delivery: { batch: { maxWaitMs: 5 } } },
      { name: 'archive', type: 'file', settings: { path: join(dir, 'events.ndjson') }, delivery: { batch: { maxWaitMs: 5 } } },
      { name: 'hook', type: 'webhook', settings: { url: hook.url }, delivery: { batch: { maxWaitMs: 5 } } },
    ],
  })
  t.teardown(() => router.close({ timeoutMs: 200 }))

  await router.identify({ userId: 'u-42', anonymousId: 'a-42', traits: { email: 'Gone@Example.com', plan: 'pro' } })
  await router.track({ userId: 'u-42', event: 'Order Completed', properties: { revenue: 10 } })
  await router.track({ userId: 'u-7', event: 'Order Completed', properties: { revenue: 20 } })
  router.flush()
  await hook.waitFor(1)
  for (let i = 0; i < 200 && Object.values(router.stats().destinations).some((d) => d.delivered < 3); i++) await new Promise((r) => setTimeout(r, 25))
  t.same(Object.values(router.stats().destinations).map((d) => d.delivered), [3, 3, 3, 3, 3], 'all delivered before the request')
  t.equal((await router.ledger.forUser({ userId: 'u-42' })).length, 10, 'the ledger knows where u-42 went: 2 events × 5 destinations')

  amplitude.script({ status: 503, body: { error: 'Service Unavailable' } })
  const result = await router.deleteUser({ userId: 'u-42', anonymousId: 'a-42', email: 'gone@example.com' }, { reason: 'GDPR art. 17, ticket 9' })
  const r = byTarget(result.receipts)
  t.same(Object.keys(r).sort(), ['amplitude', 'archive', 'firstparty', 'hook', 'mixpanel', 'warehouse'])
  t.match(r.amplitude, { status: 'succeeded', attempts: 2 }, 'amplitude: retried after the 503, then succeeded')
  t.notOk(r.amplitude!.error, 'a succeeded receipt keeps no error')
  t.match(r.mixpanel, { status: 'failed', attempts: 1, error: { code: 'DELIVERY_AUTH' } }, 'mixpanel: refused for good (401), not retried')
  t.match(r.warehouse, { status: 'succeeded', attempts: 1 })
  t.match(r.archive, { status: 'succeeded' })
  t.match(r.hook, { status: 'unsupported', error: { code: 'DELETION_UNSUPPORTED' } })
  t.match(r.firstparty, { status: 'succeeded', removed: { ledger: 10 } })
  for (const x of result.receipts) {
    t.same(x.subject, { userId: 'u-42', anonymousId: 'a-42', emailHash: createHash('sha256').update('gone@example.com').digest('hex') }, 'subject recorded')
    t.notMatch(JSON.stringify(x), /gone@example\.com/i, 'the email is kept only as its hash')
  }

  // What the vendors were asked, as their APIs define it.
  const del = amplitude.requests.filter((q) => q.url === '/api/2/deletions/users')
  t.equal(del.length, 2)
  t.same(del[1]!.json, { user_ids: ['u-42'], requester: 'privacy@shop.example', ignore_invalid_id: 'true' })
  t.equal(del[1]!.headers.authorization, 'Basic ' + Buffer.from(`${'k'.repeat(32)}:sk`).toString('base64'))
  const gdpr = mixpanel.requests.find((q) => q.url.startsWith('/api/app/data-deletions/v3.0/'))
  t.same(gdpr?.json, { distinct_ids: ['u-42', 'a-42'], compliance_type: 'GDPR' })
  t.equal(gdpr?.headers.authorization, 'Bearer expired')

  // The sinks the router writes itself.
  const rows = await admin.query(`SELECT user_id FROM "${SCHEMA}".firstparty_events ORDER BY user_id`)
  t.same(rows.rows.map((x: { user_id: string }) => x.user_id), ['u-7'], 'postgres rows of u-42 deleted')
  const lines = readFileSync(join(dir, 'events.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { userId: string })
  t.same(lines.map((l) => l.userId), ['u-7'], 'file lines of u-42 deleted')
  t.same(await router.ledger.forUser({ userId: 'u-42' }), [], 'ledger entries deleted')
  t.equal((await router.ledger.forUser({ userId: 'u-7' })).length, 5, "another person's ledger stays")

  // Suppressed from now on (the default), and the receipts can be queried later.
  t.ok(router.suppression.has({ email: 'GONE@example.com' }))
  await router.track({ userId: 'u-42', event: 'Came back' })
  t.equal(router.stats().suppressed, 1)
  const listed = await router.deletions.list({ email: 'gone@example.com' })
  t.equal(listed.length, 6)
  t.same((await router.deletions.list({ requestId: result.requestId, status: 'failed' })).map((x) => x.target), ['mixpanel'])
})

t.test('a destination that keeps failing: DELETION_MAX_ATTEMPTS after maxAttempts, Retry-After honoured', async (t) => {
  const amplitude = await startTestServer()
  t.teardown(() => amplitude.close())
  amplitude.script({ status: 429, headers: { 'Retry-After': '0' } })
  amplitude.fallback = { status: 500, body: { error: 'Internal' } }
  const router = createRouter({
    logger: quiet,
    privacy: { store: { type: 'memory' }, ledger: false, deletion: { minDelayMs: 5, maxAttempts: 3, suppress: false } },
    destinations: [{ name: 'amp', type: 'amplitude', settings: { apiKey: 'k'.repeat(32), secretKey: 'sk', deletionEndpoint: amplitude.url } }],
  })
  t.teardown(() => router.close({ timeoutMs: 200 }))
  const { receipts } = await router.deleteUser({ userId: 'u-1' })
  const amp = byTarget(receipts).amp!
  t.match(amp, { status: 'failed', attempts: 3, error: { code: 'DELETION_MAX_ATTEMPTS' } })
  t.match(amp.error!.message, /3 attempts failed; last: .*500/)
  t.equal(amplitude.requests.length, 3)
  t.notOk(router.suppression.has({ userId: 'u-1' }), 'suppress: false leaves the list alone')
})

t.test('close() while a deletion waits to retry: the receipt says DELETION_INTERRUPTED', async (t) => {
  const amplitude = await startTestServer()
  t.teardown(() => amplitude.close())
  amplitude.fallback = { status: 503, headers: { 'Retry-After': '60' } }
  const router = createRouter({
    logger: quiet,
    privacy: { store: { type: 'memory' } },
    destinations: [{ name: 'amp', type: 'amplitude', settings: { apiKey: 'k'.repeat(32), secretKey: 'sk', deletionEndpoint: amplitude.url } }],
  })
  const pending = router.deleteUser({ userId: 'u-2' })
  await amplitude.waitFor(1)
  for (let i = 0; i < 100; i++) {
    const rs = await router.deletions.list({ userId: 'u-2', target: 'amp' })
    if (rs[0]?.status === 'retrying') break
    await new Promise((r) => setTimeout(r, 10))
  }
  t.match((await router.deletions.list({ userId: 'u-2', target: 'amp' }))[0], { status: 'retrying', attempts: 1, error: { code: 'DELIVERY_RETRYABLE' } }, 'visible while it waits')
  await router.close({ timeoutMs: 500 })
  const { receipts } = await pending
  t.match(byTarget(receipts).amp, { status: 'failed', error: { code: 'DELETION_INTERRUPTED' } })
  await t.rejects(router.deleteUser({ userId: 'u-3' }), /closed/)
})

t.test('receipts persist in SQLite and the CLI lists them and exports the ledger', async (t) => {
  const dir = tmp(t)
  const db = join(dir, 'privacy.db')
  const config = join(dir, 'firstparty.config.json')
  writeFileSync(config, JSON.stringify({ privacy: { store: { type: 'sqlite', path: db } } }))
  const hook = await startTestServer()
  t.teardown(() => hook.close())
  const router = createRouter({ logger: quiet, privacy: { store: { type: 'sqlite', path: db } }, destinations: [{ name: 'hook', type: 'webhook', settings: { url: hook.url }, delivery: { batch: { maxWaitMs: 5 } } }] })
  await router.track({ userId: 'u-9', event: 'Signed Up', properties: { email: 'nine@example.com', plan: 'pro' } })
  await router.track({ userId: 'u-10', event: 'Signed Up' })
  router.flush()
  await hook.waitFor(1)
  await router.close({ timeoutMs: 2000 })

  const out: string[] = []
  const err: string[] = []
  const io = { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) }
  t.equal(await main(['ledger', '--email', 'NINE@example.com', '--config', config], io), 0, err.join('\n'))
  const exported = JSON.parse(out.join('\n')) as { destinations: string[]; entries: Array<{ userId: string; fields: Array<{ path: string; treatment: string }> }> }
  t.same(exported.destinations, ['hook'])
  t.equal(exported.entries.length, 1)
  t.equal(exported.entries[0]!.userId, 'u-9')
  t.ok(exported.entries[0]!.fields.some((f) => f.path === 'properties.email' && f.treatment === 'raw'), 'the export says the email went raw')
  t.notMatch(out.join('\n'), /nine@example\.com/i, 'no values in the export')

  // A deletion through a second router on the same file; the CLI reads its receipts.
  const again = createRouter({ logger: quiet, privacy: { store: { type: 'sqlite', path: db } }, destinations: [{ name: 'hook', type: 'webhook', settings: { url: hook.url } }] })
  const { requestId } = await again.deleteUser({ userId: 'u-9' })
  await again.close({ timeoutMs: 500 })
  out.length = 0
  t.equal(await main(['deletions', '--user-id', 'u-9', '--json', '--config', config], io), 0)
  const rs = out.map((l) => JSON.parse(l) as DeletionReceipt)
  t.same(rs.map((x) => [x.requestId, x.target, x.status]).sort(), [[requestId, 'firstparty', 'succeeded'], [requestId, 'hook', 'unsupported']])
  out.length = 0
  t.equal(await main(['ledger', '--user-id', 'u-9', '--config', config], io), 0)
  t.same((JSON.parse(out.join('\n')) as { entries: unknown[] }).entries, [], 'the ledger of a deleted subject is empty')
  t.equal(await main(['deletions', '--status', 'nope', '--config', config], io), 2)
  t.equal(await main(['ledger', '--config', config], io), 2, 'ledger needs a subject')
})
