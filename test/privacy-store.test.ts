// The privacy stores: one behavioural suite run against memory, SQLite (a file in a temp
// folder) and PostgreSQL (the server on 127.0.0.1:5432, database `test`, tables under a
// prefix unique to this run, dropped at the end), then what is particular to each, then
// the factory's config errors. PostgreSQL being down fails this file: it does not skip.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import t, { type Test } from 'tap'
import { ConfigError } from '../src/errors.js'
import { MemoryPrivacyStore } from '../src/privacy/store-memory.js'
import { PostgresPrivacyStore } from '../src/privacy/store-postgres.js'
import { SqlitePrivacyStore } from '../src/privacy/store-sqlite.js'
import { createPrivacyStore, DEFAULT_PRIVACY_DB } from '../src/privacy/store.js'
import type { DeletionReceipt, LedgerEntry, PrivacyStore, Suppression } from '../src/privacy/types.js'

const URL_ = process.env.FIRSTPARTY_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test'
const RUN = `fpt_${process.pid}_${Math.random().toString(36).slice(2, 6)}_`

const admin = new pg.Pool({ connectionString: URL_, max: 2 })
try {
  await admin.query('SELECT 1')
} catch (err) {
  await admin.end().catch(() => {})
  throw new Error(`PostgreSQL is not reachable at ${URL_} (${(err as Error).message}): the postgres privacy store tests need it running`)
}
t.teardown(async () => {
  const r = await admin.query('SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND starts_with(tablename, $1)', [RUN])
  for (const row of r.rows as Array<{ tablename: string }>) await admin.query(`DROP TABLE IF EXISTS "${row.tablename}"`)
  await admin.end()
})

let prefixes = 0
const nextPrefix = () => `${RUN}${++prefixes}_`

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'fp-privacy-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function opened<S extends PrivacyStore>(t: Test, store: S): Promise<S> {
  await store.open()
  t.teardown(() => store.close())
  return store
}

const KINDS: Array<[string, (t: Test) => Promise<PrivacyStore>]> = [
  ['memory', (t) => opened(t, new MemoryPrivacyStore())],
  ['sqlite', (t) => opened(t, new SqlitePrivacyStore({ path: join(tempDir(t), 'privacy.db') }))],
  ['postgres', (t) => opened(t, new PostgresPrivacyStore({ connectionString: URL_, tablePrefix: nextPrefix() }))],
]

const T0 = Date.parse('2024-03-01T12:00:00.000Z')
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString()

const FIELDS: LedgerEntry['fields'] = [
  { path: 'properties.total', treatment: 'raw' },
  { path: 'context.traits.email', treatment: 'hashed' },
  { path: 'properties.products[].sku', treatment: 'raw' },
  { path: 'context.ip', treatment: 'masked' },
]

/** A ledger entry; `undefined` in `over` removes the key (absent, not undefined). */
function entry(over: Partial<Record<keyof LedgerEntry, unknown>> = {}): LedgerEntry {
  const e: Record<string, unknown> = { destination: 'ga4', messageId: 'm-1', eventType: 'track', event: 'Order Completed', userId: 'u1', fields: FIELDS, deliveredAt: at(0), ...over }
  for (const k of Object.keys(e)) if (e[k] === undefined) delete e[k]
  return e as unknown as LedgerEntry
}

function receipt(over: Partial<DeletionReceipt> = {}): DeletionReceipt {
  return { requestId: 'req-1', target: 'ga4', subject: { userId: 'u1' }, status: 'requested', attempts: 0, requestedAt: at(0), updatedAt: at(0), ...over }
}

const sup = (kind: Suppression['kind'], value: string, reason?: string, minutes = 0): Suppression => ({ kind, value, ...(reason !== undefined ? { reason } : {}), createdAt: at(minutes) })
const ids = (entries: LedgerEntry[]) => entries.map((e) => e.messageId)

for (const [kind, make] of KINDS) {
  t.test(`${kind}: the behaviours every store shares`, async (t) => {
    t.test('suppressionAdd counts only new entries and keeps the first; remove counts what it removed', async (t) => {
      const s = await make(t)
      t.equal(await s.suppressionAdd([sup('userId', 'u1', 'GDPR art. 21 objection, ticket 4411'), sup('anonymousId', 'a1'), sup('emailHash', 'h'.repeat(64), undefined, 1)]), 3)
      t.equal(await s.suppressionAdd([sup('userId', 'u1', 'again', 5), sup('userId', 'u1'), sup('anonymousId', 'u1', undefined, 2), sup('anonymousId', 'u1')]), 1, 'duplicates, in the store or in the batch, count once; the same value of another kind is new')
      t.equal(await s.suppressionAdd([]), 0)
      const list = await s.suppressionList()
      t.strictSame(list, [
        { kind: 'userId', value: 'u1', reason: 'GDPR art. 21 objection, ticket 4411', createdAt: at(0) },
        { kind: 'anonymousId', value: 'a1', createdAt: at(0) },
        { kind: 'emailHash', value: 'h'.repeat(64), createdAt: at(1) },
        { kind: 'anonymousId', value: 'u1', createdAt: at(2) },
      ], 'in the order added; the first add of a key wins; no reason is no key')
      t.notOk('reason' in list[1]!, 'absent, not null')
      t.equal(await s.suppressionRemove([{ kind: 'userId', value: 'u1' }, { kind: 'userId', value: 'u1' }, { kind: 'userId', value: 'nobody' }, { kind: 'emailHash', value: 'h'.repeat(64) }]), 2)
      t.equal(await s.suppressionRemove([]), 0)
      t.strictSame((await s.suppressionList()).map((x) => `${x.kind}:${x.value}`), ['anonymousId:a1', 'anonymousId:u1'])
      await t.rejects(s.suppressionAdd([sup('userId', 'ok'), { kind: 'phone', value: 'x', createdAt: at(0) } as never]), TypeError, 'an unknown kind is refused')
      await t.rejects(s.suppressionAdd([sup('userId', 'ok2'), { kind: 'userId', value: 'x', createdAt: 'yesterday' }]), TypeError, 'a createdAt that is not ISO 8601 is refused')
      t.equal((await s.suppressionList()).length, 2, 'a refused batch adds nothing')
    })

    t.test('receiptsPut upserts by requestId + target and every value round-trips exactly', async (t) => {
      const s = await make(t)
      const full = receipt({
        target: 'mixpanel', subject: { userId: 'u1', anonymousId: 'a1', emailHash: 'e'.repeat(64) }, status: 'failed', attempts: 5,
        error: { code: 'DELIVERY_AUTH', message: "401 from api.mixpanel.com: 'bad secret' \"quoted\"" }, removed: { deadLetters: 3, spool: 0 }, updatedAt: at(3),
      })
      const bare = receipt({ target: 'firstparty:spool', subject: { anonymousId: 'a1' } })
      await s.receiptsPut([full, bare])
      const got = await s.receiptsList({ requestId: 'req-1' })
      t.strictSame(got, [bare, full], 'one request: by target (code-point order)')
      t.strictSame(Object.keys(got[0]!).sort(), ['attempts', 'requestId', 'requestedAt', 'status', 'subject', 'target', 'updatedAt'], 'no error, no removed: no keys')
      t.strictSame(Object.keys(got[0]!.subject), ['anonymousId'])

      const done = receipt({ target: 'mixpanel', subject: { userId: 'u1' }, status: 'succeeded', attempts: 6, removed: {}, updatedAt: at(9) })
      await s.receiptsPut([done])
      const after = await s.receiptsList()
      t.equal(after.length, 2, 'an update, not a second receipt')
      t.strictSame(after.find((r) => r.target === 'mixpanel'), done, 'the whole receipt is replaced: error gone, removed {} kept as {}')
      await s.receiptsPut([receipt({ target: 'x', attempts: 1 }), receipt({ target: 'x', attempts: 2 })])
      t.equal((await s.receiptsList({ target: 'x' }))[0]!.attempts, 2, 'two puts of one key in a batch: the last wins')
      await t.rejects(s.receiptsPut([receipt({ target: 'y' }), receipt({ target: 'z', status: 'done' as never })]), TypeError)
      t.equal((await s.receiptsList({ target: 'y' })).length, 0, 'a refused batch puts nothing')
    })

    t.test('receiptsList: filters AND, subject ids ANY, newest request first, limit', async (t) => {
      const s = await make(t)
      await s.receiptsPut([
        receipt({ requestId: 'r1', target: 'ga4', subject: { userId: 'u1' }, status: 'succeeded', requestedAt: at(1) }),
        receipt({ requestId: 'r1', target: 'amplitude', subject: { userId: 'u1' }, status: 'failed', requestedAt: at(1) }),
        receipt({ requestId: 'r2', target: 'ga4', subject: { anonymousId: 'a1' }, status: 'requested', requestedAt: at(2) }),
        receipt({ requestId: 'r3', target: 'ga4', subject: { emailHash: 'h1' }, status: 'succeeded', requestedAt: at(3) }),
        receipt({ requestId: 'r4', target: 'ga4', subject: { userId: 'u2' }, status: 'succeeded', requestedAt: at(4) }),
      ])
      const keys = (rs: DeletionReceipt[]) => rs.map((r) => `${r.requestId}/${r.target}`)
      t.strictSame(keys(await s.receiptsList()), ['r4/ga4', 'r3/ga4', 'r2/ga4', 'r1/amplitude', 'r1/ga4'])
      t.strictSame(keys(await s.receiptsList({ userId: 'u1', anonymousId: 'a1', emailHash: 'h1' })), ['r3/ga4', 'r2/ga4', 'r1/amplitude', 'r1/ga4'], 'a receipt carrying any of the ids')
      t.strictSame(keys(await s.receiptsList({ userId: 'u1', anonymousId: 'a1', status: 'succeeded' })), ['r1/ga4'], 'status AND (any id)')
      t.strictSame(keys(await s.receiptsList({ target: 'ga4', status: 'succeeded' })), ['r4/ga4', 'r3/ga4', 'r1/ga4'])
      t.strictSame(keys(await s.receiptsList({ requestId: 'r1', target: 'ga4' })), ['r1/ga4'])
      t.strictSame(keys(await s.receiptsList({ limit: 2 })), ['r4/ga4', 'r3/ga4'])
      t.strictSame(await s.receiptsList({ userId: 'nobody' }), [])
      t.strictSame(await s.receiptsList({ userId: '%' }), [], 'no pattern matching')
    })

    t.test('ledger entries round-trip exactly: fields in order, optional keys absent', async (t) => {
      const s = await make(t)
      const all = entry({ messageId: 'm-all', anonymousId: 'a1', emailHash: 'e'.repeat(64) })
      const bare = entry({ messageId: 'm-bare', eventType: 'identify', event: undefined, userId: undefined, anonymousId: 'a1', fields: [], deliveredAt: at(1) })
      await s.ledgerAdd([all, bare])
      await s.ledgerAdd([])
      const got = await s.ledgerQuery({})
      t.strictSame(got, [bare, all])
      t.strictSame(Object.keys(got[0]!).sort(), ['anonymousId', 'deliveredAt', 'destination', 'eventType', 'fields', 'messageId'])
      got[1]!.fields[0]!.path = 'changed'
      got[1]!.fields.push({ path: 'x', treatment: 'raw' })
      t.strictSame((await s.ledgerQuery({}))[1], all, 'what a query returns is a copy')
    })

    t.test('ledgerQuery: subject ids match ANY, other filters AND, newest first', async (t) => {
      const s = await make(t)
      await s.ledgerAdd([
        entry({ messageId: 'e1', userId: 'u1', anonymousId: 'a1', deliveredAt: at(1) }),
        entry({ messageId: 'e2', userId: undefined, anonymousId: 'a1', deliveredAt: at(2) }),
        entry({ messageId: 'e3', userId: undefined, emailHash: 'h1', deliveredAt: at(3) }),
        entry({ messageId: 'e4', userId: 'u2', deliveredAt: at(4) }),
        entry({ messageId: 'e5', userId: 'u1', destination: 'mixpanel', deliveredAt: at(5) }),
      ])
      t.strictSame(ids(await s.ledgerQuery({ userId: 'u1', anonymousId: 'a1', emailHash: 'h1' })), ['e5', 'e3', 'e2', 'e1'], 'one person, three ids')
      t.strictSame(ids(await s.ledgerQuery({ userId: 'u1' })), ['e5', 'e1'])
      t.strictSame(ids(await s.ledgerQuery({ anonymousId: 'a1' })), ['e2', 'e1'])
      t.strictSame(ids(await s.ledgerQuery({ userId: 'u1', destination: 'ga4' })), ['e1'], 'destination AND the ids')
      t.strictSame(ids(await s.ledgerQuery({ userId: 'u1', emailHash: 'h1', destination: 'ga4', since: at(2) })), ['e3'], 'since AND destination AND (any id)')
      t.strictSame(ids(await s.ledgerQuery({ destination: 'mixpanel' })), ['e5'])
      t.strictSame(ids(await s.ledgerQuery({})), ['e5', 'e4', 'e3', 'e2', 'e1'], 'no filter: everything')
      t.strictSame(await s.ledgerQuery({ userId: 'u3' }), [])
    })

    t.test('since and until are inclusive instants; ties go newest recorded first', async (t) => {
      const s = await make(t)
      await s.ledgerAdd([0, 1, 2, 3, 4].map((m) => entry({ messageId: `t${m}`, deliveredAt: at(m) })))
      await s.ledgerAdd([entry({ messageId: 't2-later', deliveredAt: at(2) })])
      t.strictSame(ids(await s.ledgerQuery({ since: at(1), until: at(3) })), ['t3', 't2-later', 't2', 't1'])
      t.strictSame(ids(await s.ledgerQuery({ since: '2024-03-01T14:01:00+02:00', until: '2024-03-01T12:03:00Z' })), ['t3', 't2-later', 't2', 't1'], 'other spellings of the same instants')
      t.strictSame(ids(await s.ledgerQuery({ since: at(4) })), ['t4'])
      t.strictSame(ids(await s.ledgerQuery({ until: at(0) })), ['t0'])
      t.strictSame(ids(await s.ledgerQuery({ since: at(3), until: at(1) })), [])
      await t.rejects(s.ledgerQuery({ since: 'last week' }), TypeError)
      await t.rejects(s.ledgerQuery({ until: '2024-03-01T12:00:00' }), TypeError, 'a time without a zone is ambiguous')
    })

    t.test('times are kept as instants and come back as toISOString()', async (t) => {
      const s = await make(t)
      await s.ledgerAdd([entry({ messageId: 'z', deliveredAt: '2024-03-01T14:00:00+02:00' }), entry({ messageId: 'y', deliveredAt: '2024-03-01T12:00:01.5Z' })])
      t.strictSame((await s.ledgerQuery({})).map((e) => e.deliveredAt), ['2024-03-01T12:00:01.500Z', '2024-03-01T12:00:00.000Z'])
      await t.rejects(s.ledgerAdd([entry({ messageId: 'ok' }), entry({ messageId: 'bad', deliveredAt: 'now' })]), TypeError)
      await t.rejects(s.ledgerAdd([entry({ messageId: 'ok' }), entry({ messageId: 'bad', fields: [{ path: 'a', treatment: 'encrypted' }] })]), TypeError)
      t.equal((await s.ledgerQuery({})).length, 2, 'a refused batch records nothing')
    })

    t.test('limit: 1000 by default, any non-negative integer, Infinity for all', async (t) => {
      const s = await make(t)
      await s.ledgerAdd(Array.from({ length: 1005 }, (_, i) => entry({ messageId: `l${i}`, deliveredAt: new Date(T0 + i).toISOString() })))
      const page = await s.ledgerQuery({ userId: 'u1' })
      t.equal(page.length, 1000)
      t.equal(page[0]!.messageId, 'l1004', 'the newest thousand')
      t.equal((await s.ledgerQuery({ limit: Infinity })).length, 1005)
      t.strictSame(ids(await s.ledgerQuery({ limit: 2 })), ['l1004', 'l1003'])
      t.strictSame(await s.ledgerQuery({ limit: 0 }), [])
      await t.rejects(s.ledgerQuery({ limit: -1 }), RangeError)
      await t.rejects(s.ledgerQuery({ limit: 1.5 }), RangeError)
      await s.receiptsPut(Array.from({ length: 1001 }, (_, i) => receipt({ requestId: `q${String(i).padStart(4, '0')}` })))
      t.equal((await s.receiptsList()).length, 1000)
    })

    t.test('values are values: quotes, %, _, backslashes and unicode match only themselves', async (t) => {
      const s = await make(t)
      const odd = ['%', '_', "o'brien", 'x"; DROP TABLE ledger; --', 'a\\b', 'ünïcødé 🙂', 'u_', 'u%', '{"a":1}', 'NULL', '']
      await s.ledgerAdd(odd.map((v, i) => entry({ messageId: `o${i}`, userId: v, anonymousId: v, emailHash: v, destination: v, event: v, deliveredAt: at(i) })))
      await s.ledgerAdd([entry({ messageId: 'plain', userId: 'u1', destination: 'ga4' })])
      for (const [i, v] of odd.entries()) {
        t.strictSame(ids(await s.ledgerQuery({ userId: v })), [`o${i}`], `userId ${JSON.stringify(v)}`)
        t.strictSame(ids(await s.ledgerQuery({ destination: v })), [`o${i}`], `destination ${JSON.stringify(v)}`)
        const [e] = await s.ledgerQuery({ emailHash: v })
        t.equal(e?.event, v, 'stored as given')
      }
      t.equal(await s.suppressionAdd(odd.map((v) => sup('userId', v))), odd.length)
      t.strictSame((await s.suppressionList()).map((x) => x.value), odd)
      t.equal(await s.suppressionRemove([{ kind: 'userId', value: '%' }]), 1)
      t.equal(await s.ledgerDelete({ userId: '%' }), 1, 'deletes the entry whose id is %, not every entry')
      t.equal(await s.ledgerDelete({ userId: '_' }), 1)
      t.equal((await s.ledgerQuery({ limit: Infinity })).length, odd.length + 1 - 2)
    })

    t.test('ledgerDelete removes entries carrying any given id and says how many', async (t) => {
      const s = await make(t)
      await s.ledgerAdd([
        entry({ messageId: 'd1', userId: 'u1', anonymousId: 'a1' }),
        entry({ messageId: 'd2', userId: undefined, anonymousId: 'a1' }),
        entry({ messageId: 'd3', userId: undefined, emailHash: 'h1' }),
        entry({ messageId: 'd4', userId: 'u2', anonymousId: 'a2' }),
        entry({ messageId: 'd5', userId: undefined, anonymousId: undefined }),
      ])
      t.equal(await s.ledgerDelete({ userId: 'u1', emailHash: 'h1' }), 2)
      t.strictSame(ids(await s.ledgerQuery({})).sort(), ['d2', 'd4', 'd5'])
      t.equal(await s.ledgerDelete({ anonymousId: 'a1' }), 1)
      t.equal(await s.ledgerDelete({ anonymousId: 'a1' }), 0)
      await t.rejects(s.ledgerDelete({}), TypeError, 'no id would mean everyone: refused')
      t.strictSame(ids(await s.ledgerQuery({})).sort(), ['d4', 'd5'])
    })

    t.test('ledgerPrune deletes entries delivered strictly before the cutoff and says how many', async (t) => {
      const s = await make(t)
      await s.ledgerAdd([0, 1, 2, 3].map((m) => entry({ messageId: `p${m}`, deliveredAt: at(m) })))
      t.equal(await s.ledgerPrune(at(2)), 2)
      t.strictSame(ids(await s.ledgerQuery({})), ['p3', 'p2'])
      t.equal(await s.ledgerPrune(at(2)), 0)
      await t.rejects(s.ledgerPrune('soon'), TypeError)
    })

    t.test('only what the interface names is stored; stored JSON cannot pollute prototypes', async (t) => {
      const s = await make(t)
      const leaky = { ...entry({ messageId: 'leak' }), email: 'jane@example.com', properties: { email: 'jane@example.com' } }
      leaky.fields = [{ path: 'traits.email', treatment: 'raw', value: 'jane@example.com' } as never]
      await s.ledgerAdd([leaky])
      const [got] = await s.ledgerQuery({ userId: 'u1' })
      t.strictSame(got, entry({ messageId: 'leak', fields: [{ path: 'traits.email', treatment: 'raw' }] }))
      await s.receiptsPut([{ ...receipt(), subject: { userId: 'u1', email: 'jane@example.com' } as never, extra: 'x' } as never])
      t.strictSame((await s.receiptsList())[0], receipt())

      const removed = JSON.parse('{"__proto__": 7, "constructor": 2, "deadLetters": 1}') as Record<string, number>
      await s.receiptsPut([receipt({ target: 'proto', removed })])
      const [r] = await s.receiptsList({ target: 'proto' })
      t.equal(Object.getPrototypeOf(r!.removed), Object.prototype, 'a plain object')
      t.strictSame(Object.keys(r!.removed!).sort(), ['__proto__', 'constructor', 'deadLetters'], '__proto__ is an own key, not the prototype')
      t.equal(Object.getOwnPropertyDescriptor(r!.removed, '__proto__')?.value, 7)
      await s.ledgerAdd([entry({ messageId: 'proto', fields: [{ path: '__proto__.polluted', treatment: 'raw' }, { path: 'constructor.prototype.x', treatment: 'hashed' }] })])
      t.strictSame((await s.ledgerQuery({ limit: 1 }))[0]!.fields, [{ path: '__proto__.polluted', treatment: 'raw' }, { path: 'constructor.prototype.x', treatment: 'hashed' }])
      t.equal(({} as Record<string, unknown>).polluted, undefined)
    })

    t.test('before open() and after close() every call rejects', async (t) => {
      const s = await make(t)
      await s.close()
      await t.rejects(s.ledgerAdd([entry()]), /closed/)
      await t.rejects(s.suppressionList(), /closed/)
      await t.rejects(s.open(), /closed/)
    })
  })
}

t.test('memory: the ledger keeps the newest maxLedgerEntries and counts what it evicted', async (t) => {
  const s = await opened(t, new MemoryPrivacyStore({ maxLedgerEntries: 3 }))
  await t.rejects(new MemoryPrivacyStore().suppressionList(), /open\(\) first/)
  await s.ledgerAdd([entry({ messageId: 'a', deliveredAt: at(9) }), entry({ messageId: 'b' })])
  await s.ledgerAdd([entry({ messageId: 'c' }), entry({ messageId: 'd' })])
  t.strictSame(ids(await s.ledgerQuery({})), ['d', 'c', 'b'], 'the first recorded goes first, whatever its time')
  t.equal(s.evicted, 1)
  await s.ledgerAdd(['e', 'f', 'g', 'h', 'i'].map((m) => entry({ messageId: m })))
  t.strictSame(ids(await s.ledgerQuery({})), ['i', 'h', 'g'], 'a batch larger than the cap keeps its newest')
  t.equal(s.evicted, 6)
  t.equal(await s.ledgerDelete({ userId: 'u1' }), 3)
  await s.ledgerAdd(Array.from({ length: 50 }, (_, i) => entry({ messageId: `n${i}` })))
  t.strictSame(ids(await s.ledgerQuery({})), ['n49', 'n48', 'n47'])
  t.equal(new MemoryPrivacyStore().maxLedgerEntries, 100_000)
  t.throws(() => new MemoryPrivacyStore({ maxLedgerEntries: 0 }), RangeError)
})

t.test('sqlite: everything survives close and reopen', async (t) => {
  const path = join(tempDir(t), 'nested', 'deeper', 'privacy.db')
  const first = new SqlitePrivacyStore({ path })
  await first.open()
  await first.suppressionAdd([sup('emailHash', 'h1', 'ticket 1')])
  await first.receiptsPut([receipt({ error: { code: 'E', message: 'm' }, removed: { ledger: 2 } })])
  await first.ledgerAdd([entry({ anonymousId: 'a1' })])
  await first.close()
  t.ok(existsSync(path), 'the folder and file were created')

  const again = await opened(t, new SqlitePrivacyStore({ path }))
  t.strictSame(await again.suppressionList(), [sup('emailHash', 'h1', 'ticket 1')])
  t.strictSame(await again.receiptsList(), [receipt({ error: { code: 'E', message: 'm' }, removed: { ledger: 2 } })])
  t.strictSame(await again.ledgerQuery({ anonymousId: 'a1' }), [entry({ anonymousId: 'a1' })])
  t.equal(await again.suppressionAdd([sup('emailHash', 'h1')]), 0, 'the unique key holds across opens')

  const db = new Database(path, { readonly: true })
  t.teardown(() => db.close())
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal')
  const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger' AND sql IS NOT NULL ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name)
  t.strictSame(indexes, ['ledger_anonymous_id', 'ledger_delivered_at', 'ledger_email_hash', 'ledger_user_id'])
  const plan = (db.prepare('EXPLAIN QUERY PLAN SELECT * FROM ledger WHERE user_id = ? OR anonymous_id = ? OR email_hash = ?').all('u', 'a', 'e') as Array<{ detail: string }>).map((r) => r.detail).join('\n')
  t.match(plan, /ledger_user_id/, 'the partial indexes serve subject lookups')
  t.match(plan, /ledger_email_hash/)
})

t.test('sqlite: the file holds no value the interface does not carry; a tampered row cannot pollute', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'privacy.db')
  const s = await opened(t, new SqlitePrivacyStore({ path }))
  await s.ledgerAdd([{ ...entry(), email: 'jane@example.com', fields: [{ path: 'traits.email', treatment: 'hashed', value: 'jane@example.com' }] } as never])
  await s.close()
  const bytes = readdirSync(dir).map((f) => readFileSync(join(dir, f)).toString('latin1')).join('')
  t.notMatch(bytes, 'jane@example.com')

  const db = new Database(path)
  db.prepare('UPDATE ledger_shapes SET fields = ?').run('[{"path":"a","treatment":"raw","__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}]')
  db.prepare("INSERT INTO deletion_receipts (request_id, target, status, attempts, removed, requested_at, updated_at) VALUES ('r', 't', 'failed', 1, ?, 0, 0)").run('{"__proto__":{"polluted":"yes"},"n":1}')
  db.close()
  const again = await opened(t, new SqlitePrivacyStore({ path }))
  const [e] = await again.ledgerQuery({})
  t.strictSame(e!.fields, [{ path: 'a', treatment: 'raw' }])
  t.strictSame(Object.keys(e!.fields[0]!), ['path', 'treatment'])
  await t.rejects(again.receiptsList(), /corrupt receipt row/, 'a removed that is not counts is refused, not passed on')
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  new Database(path).prepare('UPDATE ledger_shapes SET fields = ?').run('[{"path":"a","treatment":"plaintext"}]')
  await t.rejects(again.ledgerQuery({}), /corrupt ledger row/)
})

t.test('sqlite: prune works through many rows in chunks', async (t) => {
  const s = await opened(t, new SqlitePrivacyStore({ path: join(tempDir(t), 'p.db') }))
  await s.ledgerAdd(Array.from({ length: 12_345 }, (_, i) => entry({ messageId: `p${i}`, deliveredAt: new Date(T0 + i).toISOString() })))
  t.equal(await s.ledgerPrune(new Date(T0 + 12_000).toISOString()), 12_000)
  t.equal((await s.ledgerQuery({ limit: Infinity })).length, 345)
})

t.test('sqlite: an unusable path is a ConfigError naming it', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'a-file'), '')
  const s = new SqlitePrivacyStore({ path: join(dir, 'a-file', 'privacy.db') })
  const err = await s.open().catch((e: unknown) => e)
  t.type(err, ConfigError)
  t.equal((err as ConfigError).code, 'CONFIG_PRIVACY_STORE')
  t.equal((err as ConfigError).path, '/privacy/store/path')
  t.match((err as Error).message, 'a-file')
})

t.test('postgres: tables under the prefix, fields as jsonb, data survives reopen', async (t) => {
  const prefix = nextPrefix()
  const first = new PostgresPrivacyStore({ connectionString: URL_, tablePrefix: prefix })
  await first.open()
  await first.suppressionAdd([sup('userId', 'u1', 'r')])
  await first.receiptsPut([receipt({ removed: { ledger: 1 } })])
  await first.ledgerAdd([entry()])
  await first.close()
  await t.rejects(first.ledgerQuery({}), /closed/)

  const tables = await admin.query('SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND starts_with(tablename, $1) ORDER BY 1', [prefix])
  t.strictSame(tables.rows.map((r: { tablename: string }) => r.tablename), ['deletion_receipts', 'ledger', 'meta', 'suppressions'].map((n) => prefix + n))
  const types = await admin.query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 AND column_name IN ('fields', 'delivered_at') ORDER BY 1", [`${prefix}ledger`])
  t.strictSame(types.rows, [{ column_name: 'delivered_at', data_type: 'timestamp with time zone' }, { column_name: 'fields', data_type: 'jsonb' }])
  const idx = await admin.query('SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY 1', [`${prefix}ledger`])
  t.strictSame(idx.rows.map((r: { indexname: string }) => r.indexname.slice(prefix.length)), ['ledger_aid', 'ledger_at', 'ledger_eh', 'ledger_pkey', 'ledger_uid'])

  // Two routers starting at once on fresh tables: the advisory lock serializes the DDL.
  const fresh = nextPrefix()
  const both = [new PostgresPrivacyStore({ connectionString: URL_, tablePrefix: fresh }), new PostgresPrivacyStore({ connectionString: URL_, tablePrefix: fresh })]
  for (const s of both) t.teardown(() => s.close())
  await Promise.all(both.map((s) => s.open()))

  const again = await opened(t, new PostgresPrivacyStore({ connectionString: URL_, tablePrefix: prefix }))
  t.strictSame(await again.suppressionList(), [sup('userId', 'u1', 'r')])
  t.strictSame(await again.receiptsList(), [receipt({ removed: { ledger: 1 } })])
  t.strictSame(await again.ledgerQuery({ userId: 'u1' }), [entry()])
})

t.test('postgres: stored jsonb is rebuilt, never passed through', async (t) => {
  const prefix = nextPrefix()
  const s = await opened(t, new PostgresPrivacyStore({ connectionString: URL_, tablePrefix: prefix }))
  await s.ledgerAdd([{ ...entry(), email: 'jane@example.com', fields: [{ path: 'traits.email', treatment: 'hashed', value: 'jane@example.com' }] } as never])
  const raw = await admin.query(`SELECT t::text AS row FROM "${prefix}ledger" t`)
  t.notMatch(raw.rows[0].row, 'jane@example.com', 'no value the interface does not carry')
  await admin.query(`UPDATE "${prefix}ledger" SET fields = $1::jsonb`, ['[{"path":"a","treatment":"raw","__proto__":{"polluted":"yes"}}]'])
  const [e] = await s.ledgerQuery({})
  t.strictSame(e!.fields, [{ path: 'a', treatment: 'raw' }])
  t.strictSame(Object.keys(e!.fields[0]!), ['path', 'treatment'])
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('postgres: an unreachable server is a ConfigError at open(); a bad prefix at construction', async (t) => {
  const s = new PostgresPrivacyStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test' })
  const err = await s.open().catch((e: unknown) => e)
  t.type(err, ConfigError)
  t.equal((err as ConfigError).code, 'CONFIG_PRIVACY_STORE')
  t.equal((err as ConfigError).path, '/privacy/store/connectionString')
  t.match((err as Error).message, /ECONNREFUSED|connect/)
  await t.rejects(s.ledgerAdd([entry()]), /open\(\) first/, 'nothing half-open')
  await s.close()
  for (const bad of ['Firstparty_', 'x'.repeat(32), 'a"; DROP TABLE x; --', '1abc', '']) {
    t.throws(() => new PostgresPrivacyStore({ connectionString: URL_, tablePrefix: bad }), { code: 'CONFIG_INVALID', path: '/privacy/store/tablePrefix' }, JSON.stringify(bad))
  }
  t.equal(new PostgresPrivacyStore({ connectionString: URL_ }).tablePrefix, 'firstparty_')
})

t.test('createPrivacyStore: the store a config names, config mistakes with their exact path', async (t) => {
  const fromUndefined = createPrivacyStore(undefined)
  t.type(fromUndefined, SqlitePrivacyStore)
  t.equal((fromUndefined as SqlitePrivacyStore).path, resolve(DEFAULT_PRIVACY_DB), 'a privacy block without store: ./firstparty-privacy.db')
  t.equal((createPrivacyStore({ type: 'sqlite' }) as SqlitePrivacyStore).path, resolve('./firstparty-privacy.db'))
  t.equal((createPrivacyStore({ type: 'sqlite', path: '/var/lib/fp/p.db' }) as SqlitePrivacyStore).path, '/var/lib/fp/p.db')
  const mem = createPrivacyStore({ type: 'memory' }, { maxLedgerEntries: 7 })
  t.type(mem, MemoryPrivacyStore)
  t.equal((mem as MemoryPrivacyStore).maxLedgerEntries, 7)
  const pgStore = createPrivacyStore({ type: 'postgres', connectionString: URL_, tablePrefix: 'fp_' })
  t.type(pgStore, PostgresPrivacyStore)
  t.equal((pgStore as PostgresPrivacyStore).tablePrefix, 'fp_')

  const cases: Array<[unknown, string[]]> = [
    [{ type: 'postgres' }, ['/privacy/store/connectionString']],
    [{ type: 'postgres', connectionString: '' }, ['/privacy/store/connectionString']],
    [{ type: 'postgres', connectionString: URL_, path: './p.db' }, ['/privacy/store/path']],
    [{ type: 'postgres', connectionString: URL_, tablePrefix: 'Bad-Prefix' }, ['/privacy/store/tablePrefix']],
    [{ type: 'postgres', path: './p.db' }, ['/privacy/store/connectionString', '/privacy/store/path']],
    [{ type: 'sqlite', connectionString: URL_ }, ['/privacy/store/connectionString']],
    [{ type: 'sqlite', tablePrefix: 'fp_' }, ['/privacy/store/tablePrefix']],
    [{ type: 'sqlite', path: '' }, ['/privacy/store/path']],
    [{ type: 'memory', path: './p.db', connectionString: URL_ }, ['/privacy/store/path', '/privacy/store/connectionString']],
    [{ type: 'redis' }, ['/privacy/store/type']],
    [{ type: '__proto__' }, ['/privacy/store/type']],
  ]
  for (const [config, paths] of cases) {
    const err = (() => {
      try {
        createPrivacyStore(config as never)
      } catch (e) {
        return e
      }
    })()
    t.type(err, ConfigError, JSON.stringify(config))
    t.equal((err as ConfigError).code, 'CONFIG_INVALID')
    t.strictSame((err as ConfigError).issues.map((i) => i.path), paths, JSON.stringify(config))
  }
  t.throws(() => createPrivacyStore({ type: 'postgres' }, { where: '/tenants/0/privacy/store' }), { code: 'CONFIG_INVALID', path: '/tenants/0/privacy/store/connectionString' })
  t.match((() => { try { createPrivacyStore({ type: 'sqlite', connectionString: URL_ }) } catch (e) { return (e as Error).message } })(), /connectionString is for type postgres/)
})
