// postgres: the conformance suite's checks that apply to a database destination, then
// its behaviours against the PostgreSQL server on this machine (127.0.0.1:5432, database
// `test`), in a schema unique to this run and dropped at the end. PostgreSQL being down
// fails this file: it does not skip.
import { readFileSync } from 'node:fs'
import got from 'got'
import pg from 'pg'
import t, { type Test } from 'tap'
import Value from 'typebox/value'
import { createRouter, AuthenticationError, PermanentError, RetryableError, type Logger, type SendResult } from '../src/index.js'
import { runDestinationConformance, type DestinationExample } from '../src/testing.js'
import { classifyError } from '../src/deliver/retry.js'
import postgres, { PostgresSettings, qualifiedName, type PostgresSettingsType } from '../plugins/postgres/index.js'

const examples = JSON.parse(readFileSync(new URL('../plugins/postgres/examples.json', import.meta.url), 'utf8')) as DestinationExample[]
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} }
const URL_ = process.env.FIRSTPARTY_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test'
const SCHEMA = `fp_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`

const admin = new pg.Pool({ connectionString: URL_, max: 3 })
try {
  await admin.query('SELECT 1')
} catch (err) {
  await admin.end().catch(() => {})
  throw new Error(`PostgreSQL is not reachable at ${URL_} (${(err as Error).message}): the postgres destination tests need it running`)
}
t.teardown(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`)
  await admin.query('DROP ROLE IF EXISTS fp_test_reader').catch(() => {}) // another run may still use it
  await admin.end()
})

await runDestinationConformance(t, {
  plugin: postgres,
  settings: { connectionString: URL_, schema: SCHEMA },
  examples,
  readme: new URL('../plugins/postgres/README.md', import.meta.url),
  skip: {
    examples: 'a database destination: no HTTP request to compare; the examples run against PostgreSQL below',
    errors: 'answers are SQLSTATEs, not HTTP statuses; classified against PostgreSQL below',
    'retry-after': 'PostgreSQL has no Retry-After',
    abort: 'the suite aborts a hanging HTTP request; abort of a blocked INSERT is tested below',
    batch: 'counts HTTP requests; batches of 1,200 rows are tested below',
    io: "the suite's guard refuses every TCP connection but its test server's, including PostgreSQL's",
  },
})

type Ctx = Parameters<typeof postgres.send>[1]
function ctxFor(t: Test, settings: Partial<PostgresSettingsType> = {}, signal = new AbortController().signal): Ctx {
  const s = Value.Default(PostgresSettings, { connectionString: URL_, schema: SCHEMA, ...settings }) as PostgresSettingsType
  const ctx = { settings: s, http: got.extend({ retry: { limit: 0 } }), logger: quiet, signal, attempt: 1, destination: 'pg', state: {} }
  t.teardown(() => postgres.close!(ctx))
  return ctx
}

const ev = (i: number | string, extra: Record<string, unknown> = {}) => ({
  type: 'track', event: 'E', messageId: `m-${i}`, userId: 'u-1', timestamp: '2024-03-01T12:00:00.000Z',
  originalTimestamp: '2024-03-01T12:00:00.000Z', receivedAt: '2024-03-01T12:00:00.000Z', context: {}, properties: { i }, ...extra,
})

async function rows(table: string, where = 'true', params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const r = await admin.query(`SELECT * FROM "${SCHEMA}"."${table}" WHERE ${where} ORDER BY message_id`, params)
  return r.rows
}
const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : v)

t.test('examples: each event becomes its row; raw is the whole event', async (t) => {
  for (const ex of examples) {
    const ctx = ctxFor(t, ex.settings as Partial<PostgresSettingsType>)
    const result = (await postgres.send([structuredClone(ex.in)] as never, ctx)) as SendResult
    t.same(result.rejected, [], `${ex.title}: accepted`)
    const [row] = await rows(ctx.settings.table, 'message_id = $1', [ex.in.messageId])
    t.ok(row, `${ex.title}: stored`)
    if (!row) continue
    const { raw, loaded_at, ...typed } = row
    t.same(Object.fromEntries(Object.entries(typed).map(([k, v]) => [k, iso(v)])), ex.out, `${ex.title}: the row is out`)
    t.same(raw, ex.in, `${ex.title}: raw`)
    t.ok(loaded_at instanceof Date, `${ex.title}: loaded_at`)
  }
})

t.test('the table is created if missing, with typed columns, a unique message_id and indexes', async (t) => {
  const ctx = ctxFor(t, { table: 'created' })
  await postgres.send([ev(1)] as never, ctx)
  const cols = await admin.query(
    `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'created' ORDER BY ordinal_position`,
    [SCHEMA],
  )
  t.same(cols.rows.map((c) => [c.column_name, c.data_type]), [
    ['message_id', 'text'], ['type', 'text'], ['event', 'text'], ['user_id', 'text'], ['anonymous_id', 'text'],
    ['timestamp', 'timestamp with time zone'], ['received_at', 'timestamp with time zone'], ['sent_at', 'timestamp with time zone'],
    ['context', 'jsonb'], ['properties', 'jsonb'], ['traits', 'jsonb'], ['raw', 'jsonb'], ['loaded_at', 'timestamp with time zone'],
  ])
  const idx = await admin.query(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'created' ORDER BY indexname`, [SCHEMA])
  t.ok(idx.rows.some((i) => /UNIQUE INDEX .* \(message_id\)/.test(i.indexdef)), 'message_id is unique')
  t.same(idx.rows.map((i) => i.indexname).filter((n) => !n.endsWith('_pkey')), ['created_anonymous_id_idx', 'created_timestamp_idx', 'created_user_id_idx'])
  // A second destination on the same table (another process, a restart) finds it there.
  await postgres.send([ev(2)] as never, ctxFor(t, { table: 'created' }))
  t.equal((await rows('created')).length, 2)
})

t.test('at-least-once becomes exactly-once: a batch sent twice is stored once', async (t) => {
  const ctx = ctxFor(t, { table: 'dedup' })
  const batch = [ev(1), ev(2), ev(3)]
  await postgres.send(batch as never, ctx)
  await postgres.send([ev(2), ev(3), ev(4)] as never, ctx)
  t.same((await rows('dedup')).map((r) => r.message_id), ['m-1', 'm-2', 'm-3', 'm-4'])
})

t.test('batches: 1,201 events cut the way the router cuts them are all stored, one INSERT per send', async (t) => {
  const ctx = ctxFor(t, { table: 'bulk' })
  const events = Array.from({ length: 1201 }, (_, i) => ev(String(i).padStart(5, '0')))
  const max = postgres.batch!.maxEvents!
  let statements = 0
  const st = ctx.state as { pool?: pg.Pool }
  await postgres.setup!(ctx)
  const origConnect = st.pool!.connect.bind(st.pool!)
  const p = st.pool!
  p.connect = (async () => {
    const c = await origConnect()
    // The pool hands the same client out again: wrap it once.
    if ((c as { counted?: boolean }).counted) return c
    ;(c as { counted?: boolean }).counted = true
    const q = c.query.bind(c)
    c.query = ((...a: Parameters<typeof q>) => (String(a[0]).startsWith('INSERT') && statements++, q(...a))) as typeof c.query
    return c
  }) as typeof p.connect
  for (let i = 0; i < events.length; i += max) await postgres.send(events.slice(i, i + max) as never, ctx)
  t.equal(statements, Math.ceil(1201 / max), `${statements} INSERT statements`)
  const n = await admin.query(`SELECT count(*)::int AS n FROM "${SCHEMA}"."bulk"`)
  t.equal(n.rows[0].n, 1201)
})

t.test('a bad row is refused alone, permanently; the rest of its batch is stored', async (t) => {
  const ctx = ctxFor(t, { table: 'partial' })
  const events = [ev(1), ev(2, { properties: { note: 'nul \u0000 byte' } }), ev(3), { type: 'track', event: 'E', userId: 'u' }, ev(5)]
  const result = (await postgres.send(events as never, ctx)) as SendResult
  t.same(result.rejected?.map((r) => r.index), [1, 3])
  t.ok(result.rejected?.every((r) => r.error instanceof PermanentError))
  t.match(result.rejected?.[0]?.error.message, /event 1: .*\(22P05\)/, 'names the event and the SQLSTATE')
  t.notMatch(result.rejected?.[0]?.error.message, /nul/, "the row's values are not in the message")
  t.match(result.rejected?.[1]?.error.message, /event 3 has no messageId/)
  t.same((await rows('partial')).map((r) => r.message_id), ['m-1', 'm-3', 'm-5'])
  // The same bad event alone fails the send as one.
  const err = await postgres.send([events[1]] as never, ctx).catch((e: unknown) => e)
  t.type(err, PermanentError)
})

t.test('schema and table names: only plain identifiers, checked before any SQL is built', async (t) => {
  for (const bad of ['events; DROP TABLE x', 'Events', 'a"b', '1abc', 'x'.repeat(64), 'public.events', '']) {
    t.notOk(Value.Check(PostgresSettings, Value.Default(PostgresSettings, { connectionString: URL_, table: bad })), `settings refuse table ${JSON.stringify(bad)}`)
    t.notOk(Value.Check(PostgresSettings, Value.Default(PostgresSettings, { connectionString: URL_, schema: bad })), `settings refuse schema ${JSON.stringify(bad)}`)
    t.throws(() => qualifiedName({ schema: SCHEMA, table: bad }), PermanentError)
  }
  // Settings that bypassed validation still never reach the database.
  const ctx = ctxFor(t, { table: 'x; DROP SCHEMA public' })
  const err = await postgres.send([ev(1)] as never, ctx).catch((e: unknown) => e)
  t.type(err, PermanentError)
  t.match((err as Error).message, /settings\.table .* is not a plain identifier/)
  t.equal(qualifiedName({ schema: 'analytics', table: 'events_2024' }), '"analytics"."events_2024"')
})

t.test('errors: unreachable → retry, unknown role → auth, missing table without createTable → permanent', async (t) => {
  const down = await postgres.send([ev(1)] as never, ctxFor(t, { connectionString: 'postgres://postgres@127.0.0.1:1/test' })).catch((e: unknown) => e)
  t.type(down, RetryableError, 'connection refused')
  t.match((down as Error).message, /ECONNREFUSED/)
  const role = await postgres.send([ev(1)] as never, ctxFor(t, { connectionString: URL_.replace('//postgres@', '//no_such_role_fp@') })).catch((e: unknown) => e)
  t.type(role, AuthenticationError, 'unknown role')
  t.match((role as Error).message, /28000/)
  const missing = await postgres.send([ev(1)] as never, ctxFor(t, { table: 'never_created', createTable: false })).catch((e: unknown) => e)
  t.type(missing, PermanentError)
  t.match((missing as Error).message, /42P01/)
  await postgres.send([ev(0)] as never, ctxFor(t, { table: 'readonly_t' }))
  await admin.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fp_test_reader') THEN CREATE ROLE fp_test_reader LOGIN; END IF; END $$`)
  await admin.query(`GRANT USAGE ON SCHEMA "${SCHEMA}" TO fp_test_reader`)
  t.teardown(async () => {
    await admin.query(`DROP OWNED BY fp_test_reader`).catch(() => {})
  })
  const denied = await postgres.send([ev(1)] as never, ctxFor(t, { connectionString: URL_.replace('//postgres@', '//fp_test_reader@'), table: 'readonly_t', createTable: false })).catch((e: unknown) => e)
  t.type(denied, AuthenticationError, 'no INSERT privilege → auth')
  t.match((denied as Error).message, /42501/)
})

t.test('a statement blocked past statementTimeoutMs is cancelled and retried; ctx.signal aborts promptly', async (t) => {
  const ctxWarm = ctxFor(t, { table: 'locked' })
  await postgres.send([ev(0)] as never, ctxWarm)
  const locker = await admin.connect()
  await locker.query('BEGIN')
  await locker.query(`LOCK TABLE "${SCHEMA}"."locked" IN ACCESS EXCLUSIVE MODE`)
  try {
    const timedOut = await postgres.send([ev(1)] as never, ctxFor(t, { table: 'locked', statementTimeoutMs: 200 })).catch((e: unknown) => e)
    t.type(timedOut, RetryableError, 'statement timeout → retry')
    t.match((timedOut as Error).message, /57014/)

    const ac = new AbortController()
    const ctx = ctxFor(t, { table: 'locked', statementTimeoutMs: 0 }, ac.signal)
    const sending = postgres.send([ev(2)] as never, ctx).then(() => 'resolved', (e: unknown) => e)
    await new Promise((r) => setTimeout(r, 300))
    const at = Date.now()
    ac.abort(new Error('send timed out'))
    const outcome = await Promise.race([sending, new Promise((r) => setTimeout(() => r('hung'), 2000))])
    t.type(outcome, RetryableError, 'send rejects once aborted')
    t.ok(Date.now() - at < 500, 'promptly')
    t.equal(classifyError(outcome).rule, 'retry')
    // The destroyed connection's statement is gone from the server once the lock is released.
    const pool = (ctx.state as { pool: pg.Pool }).pool
    t.equal(pool.totalCount, 0, 'the aborted connection was destroyed, not returned to the pool')
  } finally {
    await locker.query('ROLLBACK')
    locker.release()
  }
  await new Promise((r) => setTimeout(r, 100))
  t.same((await rows('locked')).map((r) => r.message_id), ['m-0'], 'neither blocked INSERT went through')
})

t.test('deleteUser deletes the subject’s rows by userId, anonymousId or email, and no one else’s', async (t) => {
  const ctx = ctxFor(t, { table: 'deletion' })
  await postgres.send([
    ev('a1', { userId: 'jane' }),
    ev('a2', { userId: null, anonymousId: 'anon-jane' }),
    ev('a3', { type: 'identify', userId: 'jane-old', traits: { email: 'Jane@Example.com' } }),
    ev('a4', { userId: 'x', context: { traits: { email: 'jane@example.com' } } }),
    ev('b1', { userId: 'bob', anonymousId: 'anon-bob', traits: { email: 'bob@example.com' } }),
  ] as never, ctx)
  await postgres.deleteUser!({ userId: 'jane' }, ctx)
  t.same((await rows('deletion')).map((r) => r.message_id), ['m-a2', 'm-a3', 'm-a4', 'm-b1'])
  await postgres.deleteUser!({ anonymousId: 'anon-jane', email: ' JANE@example.com ' }, ctx)
  t.same((await rows('deletion')).map((r) => r.message_id), ['m-b1'])
  t.type(await postgres.deleteUser!({}, ctx).catch((e: unknown) => e), PermanentError, 'no identifier: permanent')
})

t.test('through the router: events land in the table; close ends the pool', async (t) => {
  const router = createRouter({
    logger: quiet,
    destinations: [{ name: 'warehouse', type: postgres as never, settings: { connectionString: URL_, schema: SCHEMA, table: 'routed' }, delivery: { batch: { maxWaitMs: 20 } } }],
  })
  await router.track({ userId: 'u-1', event: 'Signed Up', messageId: 'r-1', properties: { plan: 'pro' } })
  await router.identify({ userId: 'u-1', messageId: 'r-2', traits: { email: 'u@example.com' } })
  await router.page({ anonymousId: 'a-1', name: 'Home', messageId: 'r-3' })
  const end = Date.now() + 5000
  while ((router.stats().destinations.warehouse?.delivered ?? 0) < 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
  await router.close({ timeoutMs: 2000 })
  const got = await rows('routed')
  t.same(got.map((r) => [r.message_id, r.type, r.event]), [['r-1', 'track', 'Signed Up'], ['r-2', 'identify', null], ['r-3', 'page', null]])
  t.same(got[0]?.properties, { plan: 'pro' })
  t.ok(got.every((r) => r.timestamp instanceof Date && r.received_at instanceof Date))
  const open = await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'firstparty:warehouse'`)
  t.equal(open.rows[0].n, 0, 'no connection left open after close')
})
