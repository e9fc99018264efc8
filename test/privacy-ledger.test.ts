/**
 * The sharing ledger: for each delivered event, the destination, the subject's ids, the
 * event type and the field paths sent — never a value — with how each went (raw, hashed,
 * masked); queried per person; retention; through a durable spool; in SQLite.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { createRouter, type LedgerEntry, type Logger } from '../src/index.js'
import { createPrivacyStore } from '../src/privacy/store.js'
import { captureDestination, startTestServer } from '../src/testing.js'

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }
const sha = (s: string) => createHash('sha256').update(s).digest('hex')

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'fp-ledger-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const fieldsOf = (e: LedgerEntry | undefined) => Object.fromEntries((e?.fields ?? []).map((f) => [f.path, f.treatment]))

const EVENT = {
  userId: 'u-1',
  anonymousId: 'a-1',
  event: 'Order Completed',
  properties: { revenue: 42.5, products: [{ sku: 'A-1', name: 'Mug' }, { sku: 'B-2', name: 'Tea' }], coupon: 'SPRING' },
  context: { ip: '203.0.113.77', traits: { email: 'Buyer@Example.com', phone: '+33 6 12 34 56 78' } },
}

for (const spool of ['memory', 'sqlite'] as const) {
  t.test(`${spool} spool: what each destination got, per field, without values`, async (t) => {
    const dir = tmp(t)
    const raw = captureDestination('raw-sink')
    const careful = captureDestination('careful-sink')
    const mapped = captureDestination('mapped-sink')
    const router = createRouter({
      logger: quiet,
      plugins: [raw.plugin, careful.plugin, mapped.plugin],
      privacy: { store: { type: 'sqlite', path: join(dir, 'privacy.db') } },
      ...(spool === 'sqlite' ? { spool: { type: 'sqlite' as const, path: join(dir, 'spool.db'), pollMs: 5 } } : {}),
      destinations: [
        { name: 'raw', type: 'raw-sink', delivery: { batch: { maxWaitMs: 5 } } },
        {
          name: 'careful',
          type: 'careful-sink',
          delivery: { batch: { maxWaitMs: 5 } },
          policies: [
            { name: 'hash contact', then: { hash: ['context.traits.email', 'context.traits.phone'] } },
            { name: 'mask ip', then: { mask: ['context.ip'] } },
            { name: 'no coupon', then: { redact: ['properties.coupon'] } },
          ],
        },
        {
          name: 'mapped',
          type: 'mapped-sink',
          delivery: { batch: { maxWaitMs: 5 } },
          policies: [{ name: 'mask ip', then: { mask: ['context.ip'] } }],
          mapping: `on track {
  user_data = { em: sha256(event.context.traits.email), client_ip_address: event.context.ip }
  value = event.properties.revenue
  contents = map(event.properties.products, (p) => { id: p.sku })
}`,
        },
      ],
    })
    t.teardown(() => router.close({ timeoutMs: 200 }))
    const { messageId } = await router.track(EVENT)
    await router.track({ userId: 'u-2', event: 'Other' })
    router.flush()
    await Promise.all([raw.waitFor(2), careful.waitFor(2), mapped.waitFor(2)])
    // waitFor resolves inside send(); the queue counts the delivery (and records it) right after.
    for (let i = 0; i < 100 && Object.values(router.stats().destinations).some((d) => d.delivered < 2); i++) await new Promise((r) => setTimeout(r, 10))

    const mine = await router.ledger.forUser({ userId: 'u-1' })
    t.same(mine.map((e) => e.destination).sort(), ['careful', 'mapped', 'raw'])
    const by = Object.fromEntries(mine.map((e) => [e.destination, e]))
    for (const e of mine) {
      t.match(e, { messageId, eventType: 'track', event: 'Order Completed', userId: 'u-1', anonymousId: 'a-1', emailHash: sha('buyer@example.com') })
      t.ok(Date.parse(e.deliveredAt) > 0)
    }
    t.match(fieldsOf(by.raw), {
      'context.traits.email': 'raw',
      'context.traits.phone': 'raw',
      'context.ip': 'raw',
      'properties.products[].sku': 'raw',
      'properties.coupon': 'raw',
      userId: 'raw',
    })
    const careful_ = fieldsOf(by.careful)
    t.match(careful_, { 'context.traits.email': 'hashed', 'context.traits.phone': 'hashed', 'context.ip': 'masked' })
    t.notOk('properties.coupon' in careful_, 'a redacted field was not sent, so it is not in the ledger')
    t.same(fieldsOf(by.mapped), { 'user_data.em': 'hashed', 'user_data.client_ip_address': 'masked', value: 'raw', 'contents[].id': 'raw' }, 'the mapped payload, as the vendor got it')

    // Never a value: not the email, the phone, the ip, the sku.
    const text = JSON.stringify(mine)
    for (const v of ['Buyer@Example.com', 'buyer@example.com', '+33 6 12 34 56 78', '203.0.113.77', '203.0.113.0', 'A-1', 'SPRING', '42.5']) t.notOk(text.includes(v), `no value ${v}`)

    t.same((await router.ledger.forUser({ email: ' BUYER@example.com' })).length, 3, 'found by email (hashed for the lookup)')
    t.same((await router.ledger.forUser({ anonymousId: 'a-1' }, { destination: 'raw' })).map((e) => e.destination), ['raw'])
    t.same(await router.ledger.forUser({ userId: 'nobody' }), [])
  })
}

t.test('a dead letter replayed later is recorded when it is delivered', async (t) => {
  const server = await startTestServer()
  t.teardown(() => server.close())
  server.fallback = { status: 400, body: { error: 'bad' } }
  const router = createRouter({ logger: quiet, privacy: { store: { type: 'memory' } }, destinations: [{ name: 'hook', type: 'webhook', settings: { url: server.url }, delivery: { batch: { maxWaitMs: 5 } } }] })
  t.teardown(() => router.close({ timeoutMs: 200 }))
  await router.track({ userId: 'u-5', event: 'Refused first' })
  for (let i = 0; i < 100 && router.deadLetters.count() === 0; i++) await new Promise((r) => setTimeout(r, 10))
  t.same(await router.ledger.forUser({ userId: 'u-5' }), [], 'not delivered: not in the ledger')
  server.fallback = { status: 200 }
  router.deadLetters.replay()
  router.flush()
  await server.waitFor(2)
  for (let i = 0; i < 100 && router.stats().destinations.hook!.delivered === 0; i++) await new Promise((r) => setTimeout(r, 10))
  const entries = await router.ledger.forUser({ userId: 'u-5' })
  t.equal(entries.length, 1)
  t.match(entries[0], { destination: 'hook', eventType: 'track', event: 'Refused first', userId: 'u-5' })
})

t.test('retention: entries older than retentionDays are deleted at start', async (t) => {
  const dir = tmp(t)
  const path = join(dir, 'privacy.db')
  const store = createPrivacyStore({ type: 'sqlite', path })
  await store.open()
  const old = new Date(Date.now() - 40 * 86_400_000).toISOString()
  const recent = new Date(Date.now() - 5 * 86_400_000).toISOString()
  await store.ledgerAdd([
    { destination: 'hook', messageId: 'm-old', eventType: 'track', userId: 'u-r', fields: [{ path: 'event', treatment: 'raw' }], deliveredAt: old },
    { destination: 'hook', messageId: 'm-new', eventType: 'track', userId: 'u-r', fields: [{ path: 'event', treatment: 'raw' }], deliveredAt: recent },
  ])
  await store.close()
  const router = createRouter({ logger: quiet, privacy: { store: { type: 'sqlite', path }, ledger: { retentionDays: 30 } } })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.ready()
  let left: LedgerEntry[] = []
  for (let i = 0; i < 50; i++) {
    left = await router.ledger.forUser({ userId: 'u-r' })
    if (left.length === 1) break
    await new Promise((r) => setTimeout(r, 10))
  }
  t.same(left.map((e) => e.messageId), ['m-new'])
})

t.test('no privacy block: no ledger is kept', async (t) => {
  const cap = captureDestination('cap')
  const router = createRouter({ logger: quiet, plugins: [cap.plugin], destinations: [{ name: 'cap', type: 'cap', delivery: { batch: { maxWaitMs: 5 } } }] })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.track({ userId: 'u-x', event: 'E' })
  await cap.waitFor(1)
  t.same(await router.ledger.forUser({ userId: 'u-x' }), [])
})

t.test('PostgreSQL store: the ledger, suppressions and receipts through the router (fails loudly when PostgreSQL is down)', async (t) => {
  const PG = process.env.FIRSTPARTY_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test'
  const prefix = `fp_led_${process.pid}_${Math.random().toString(36).slice(2, 6)}_`
  const { default: pg } = await import('pg')
  const admin = new pg.Pool({ connectionString: PG, max: 1 })
  t.teardown(async () => {
    for (const table of ['ledger', 'suppressions', 'deletion_receipts', 'meta']) await admin.query(`DROP TABLE IF EXISTS "${prefix}${table}"`)
    await admin.end()
  })
  const cap = captureDestination('cap')
  const options = { logger: quiet, plugins: [cap.plugin], privacy: { store: { type: 'postgres' as const, connectionString: PG, tablePrefix: prefix } }, destinations: [{ name: 'cap', type: 'cap', delivery: { batch: { maxWaitMs: 5 } } }] }
  const router = createRouter(options)
  t.teardown(() => router.close({ timeoutMs: 200 }))
  await router.ready()
  await router.track({ userId: 'pg-1', event: 'Signed Up', context: { traits: { email: 'pg@example.com' } } })
  await cap.waitFor(1)
  for (let i = 0; i < 100 && router.stats().destinations.cap!.delivered === 0; i++) await new Promise((r) => setTimeout(r, 10))
  const entries = await router.ledger.forUser({ email: 'PG@example.com' })
  t.match(entries, [{ destination: 'cap', userId: 'pg-1', event: 'Signed Up' }])
  await router.suppression.add({ userId: 'pg-2' }, { reason: 'opt-out' })
  await router.close({ timeoutMs: 1000 })

  // A second router (another process, say) sees the same list and ledger.
  const again = createRouter(options)
  t.teardown(() => again.close({ timeoutMs: 200 }))
  await again.ready()
  t.ok(again.suppression.has({ userId: 'pg-2' }), 'the suppression list is shared')
  const { receipts } = await again.deleteUser({ userId: 'pg-1' })
  t.match(receipts.find((r) => r.target === 'firstparty'), { status: 'succeeded', removed: { ledger: 1 } })
  t.equal((await again.deletions.list({ userId: 'pg-1' })).length, 2, 'receipts stored: firstparty and cap')
  t.same(await again.ledger.forUser({ userId: 'pg-1' }), [])
})

t.test('a ledger write the store refuses is counted in stats().ledgerLost; the event itself is delivered', async (t) => {
  const dir = tmp(t)
  const path = join(dir, 'privacy.db')
  const cap = captureDestination('cap')
  const router = createRouter({ logger: quiet, plugins: [cap.plugin], privacy: { store: { type: 'sqlite', path } }, destinations: [{ name: 'cap', type: 'cap', delivery: { batch: { maxWaitMs: 5 } } }] })
  t.teardown(() => router.close({ timeoutMs: 100 }))
  await router.ready()
  // Break the store underneath the router: another connection drops the ledger table.
  const { default: Database } = await import('better-sqlite3')
  const other = new Database(path)
  other.exec('DROP TABLE ledger')
  other.close()
  await router.track({ userId: 'u-lost', event: 'E' })
  await cap.waitFor(1)
  for (let i = 0; i < 100 && router.stats().destinations.cap!.delivered === 0; i++) await new Promise((r) => setTimeout(r, 10))
  await router.ledger.flush()
  t.equal(router.stats().destinations.cap!.delivered, 1, 'delivered')
  t.equal(router.stats().ledgerLost, 1, 'and its missing record is counted')
})
