/**
 * The privacy store in PostgreSQL (`pg`, an optional dependency loaded by `open()`), for
 * routers that run as several processes or already keep their data there.
 *
 * Four tables named `<tablePrefix>meta`, `…suppressions`, `…deletion_receipts` and
 * `…ledger` in the connection's default schema, created by `open()` if missing. The DDL
 * runs under a transaction-scoped advisory lock, so several routers starting at once do
 * not race on CREATE TABLE. The prefix is an identifier (it cannot be a bound parameter):
 * checked against a strict pattern and quoted. Every value is a bound parameter.
 *
 * Batches are one statement each: `INSERT … SELECT FROM unnest($1::text[], …) WITH
 * ORDINALITY`, one array parameter a column, so a batch of any size is one round trip,
 * atomic, and keeps its order in the row ids. Times are timestamptz, `fields` and
 * `removed` jsonb; both come back rebuilt into fresh objects (see store-common.ts).
 *
 * PostgreSQL text cannot hold U+0000: a value containing it makes the statement, and so
 * its whole batch, fail (SQLSTATE 22021/22P05).
 */
import type { Pool } from 'pg'
import { ConfigError } from '../errors.js'
import type { Logger } from '../logger.js'
import {
  deleteSubjectOf, instant, iso, lastPerKey, ledgerFilterOf, ledgerRow, receiptFilterOf, receiptRow, suppressionKey, suppressionRow,
  toLedgerEntry, toReceipt, toSuppression, type SubjectFilter,
} from './store-common.js'
import type { DeletionReceipt, LedgerEntry, LedgerQuery, PrivacyStore, ReceiptQuery, Suppression } from './types.js'

const SCHEMA_VERSION = 1

/** The config schema's pattern: lower-case, and short enough that every table and index name stays under 63 bytes. */
export const TABLE_PREFIX = /^[a-z_][a-z0-9_]{0,30}$/

export interface PostgresPrivacyStoreOptions {
  /**
   * libpq connection URI.
   * @example new PostgresPrivacyStore({ connectionString: 'postgres://firstparty@db.internal:5432/app' })
   */
  connectionString: string
  /** Prefix of the four table names (lower-case letters, digits, `_`; at most 31). @default 'firstparty_' */
  tablePrefix?: string
  /** Most connections the store opens. @default 4 */
  poolSize?: number
  /** Where a lost idle connection is reported. */
  logger?: Logger
  /** JSON pointer of the store's config block, for error messages. @default '/privacy/store' */
  where?: string
}

interface Names {
  meta: string
  suppressions: string
  receipts: string
  ledger: string
}

function ddl(prefix: string, t: Names): string[] {
  // Index names are short on purpose: PostgreSQL truncates names past 63 bytes, and two
  // names truncated alike would make the second CREATE INDEX IF NOT EXISTS a silent no-op.
  const idx = (name: string, table: string, expr: string) => `CREATE INDEX IF NOT EXISTS "${prefix}${name}" ON ${table} ${expr}`
  return [
    `CREATE TABLE IF NOT EXISTS ${t.meta} (key text PRIMARY KEY, value text NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${t.suppressions} (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      kind text NOT NULL CHECK (kind IN ('userId', 'anonymousId', 'emailHash')),
      value text NOT NULL,
      reason text,
      created_at timestamptz NOT NULL,
      UNIQUE (kind, value)
    )`,
    `CREATE TABLE IF NOT EXISTS ${t.receipts} (
      request_id text NOT NULL,
      target text NOT NULL,
      user_id text,
      anonymous_id text,
      email_hash text,
      status text NOT NULL,
      attempts integer NOT NULL,
      error_code text,
      error_message text,
      removed jsonb,
      requested_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      PRIMARY KEY (request_id, target)
    )`,
    idx('receipts_at', t.receipts, '(requested_at)'),
    `CREATE TABLE IF NOT EXISTS ${t.ledger} (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      destination text NOT NULL,
      message_id text NOT NULL,
      event_type text NOT NULL,
      event text,
      user_id text,
      anonymous_id text,
      email_hash text,
      fields jsonb NOT NULL,
      delivered_at timestamptz NOT NULL
    )`,
    // Partial: most events carry no email and anonymous ones no user id; `col = $1` implies NOT NULL.
    idx('ledger_uid', t.ledger, '(user_id) WHERE user_id IS NOT NULL'),
    idx('ledger_aid', t.ledger, '(anonymous_id) WHERE anonymous_id IS NOT NULL'),
    idx('ledger_eh', t.ledger, '(email_hash) WHERE email_hash IS NOT NULL'),
    idx('ledger_at', t.ledger, '(delivered_at)'),
  ]
}

/** `(user_id = $n OR …)` for the ids given; '' when none. */
function subjectSql(s: SubjectFilter, params: unknown[]): string {
  const or: string[] = []
  if (s.userId !== null) params.push(s.userId), or.push(`user_id = $${params.length}`)
  if (s.anonymousId !== null) params.push(s.anonymousId), or.push(`anonymous_id = $${params.length}`)
  if (s.emailHash !== null) params.push(s.emailHash), or.push(`email_hash = $${params.length}`)
  return or.length ? `(${or.join(' OR ')})` : ''
}

const whereOf = (clauses: string[]) => (clauses.length ? ` WHERE ${clauses.join(' AND ')}` : '')
/** LIMIT NULL is no limit. */
const limitParam = (n: number) => (n < 0 ? null : n)
const ms = (v: unknown): number => (v instanceof Date ? v.getTime() : Date.parse(String(v)))

export class PostgresPrivacyStore implements PrivacyStore {
  readonly type = 'postgres' as const
  readonly tablePrefix: string
  readonly #options: PostgresPrivacyStoreOptions
  readonly #where: string
  readonly #t: Names
  #pool: Pool | undefined
  #opening: Promise<void> | undefined
  #closed = false

  constructor(options: PostgresPrivacyStoreOptions) {
    this.#where = options.where ?? '/privacy/store'
    if (typeof options.connectionString !== 'string' || options.connectionString === '') {
      throw new ConfigError('CONFIG_INVALID', [{ path: `${this.#where}/connectionString`, message: 'the postgres privacy store needs connectionString (postgres://user@host:port/db)' }])
    }
    const prefix = options.tablePrefix ?? 'firstparty_'
    if (typeof prefix !== 'string' || !TABLE_PREFIX.test(prefix)) {
      throw new ConfigError('CONFIG_INVALID', [{ path: `${this.#where}/tablePrefix`, message: `${JSON.stringify(prefix)} is not a table prefix: lower-case letters, digits and _, starting with a letter or _, at most 31` }])
    }
    if (options.poolSize !== undefined && (!Number.isInteger(options.poolSize) || options.poolSize < 1)) {
      throw new RangeError(`poolSize must be a positive integer, got ${String(options.poolSize)}`)
    }
    this.#options = options
    this.tablePrefix = prefix
    this.#t = {
      meta: `"${prefix}meta"`,
      suppressions: `"${prefix}suppressions"`,
      receipts: `"${prefix}deletion_receipts"`,
      ledger: `"${prefix}ledger"`,
    }
  }

  #live(): Pool {
    if (this.#pool && !this.#opening) return this.#pool
    throw new Error(this.#closed ? 'privacy store: closed' : 'privacy store: call open() first')
  }

  async open(): Promise<void> {
    if (this.#closed) throw new Error('privacy store: closed')
    if (this.#pool) return this.#opening
    this.#opening = this.#open().finally(() => (this.#opening = undefined))
    return this.#opening
  }

  async #open(): Promise<void> {
    let pg: typeof import('pg')
    try {
      // pg is CommonJS: its exports arrive as the module's default.
      const mod = (await import('pg')) as unknown as typeof import('pg') & { default?: typeof import('pg') }
      pg = mod.default ?? mod
    } catch (err) {
      throw new ConfigError('CONFIG_PRIVACY_STORE', [{ path: `${this.#where}/type`, message: `the postgres privacy store needs the package pg@8 (npm i pg@8): ${(err as Error).message}` }])
    }
    const pool = new pg.Pool({
      connectionString: this.#options.connectionString,
      max: this.#options.poolSize ?? 4,
      connectionTimeoutMillis: 10_000,
      application_name: 'firstparty:privacy',
    })
    // An idle connection dropped by the server must not crash the process; the next query reconnects.
    pool.on('error', (err) => this.#options.logger?.warn({ err: err.message }, 'privacy store: idle PostgreSQL connection lost'))
    this.#pool = pool
    try {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`firstparty:privacy:${this.tablePrefix}`])
        for (const sql of ddl(this.tablePrefix, this.#t)) await client.query(sql)
        const v = await client.query(`SELECT value FROM ${this.#t.meta} WHERE key = 'schema_version'`)
        const version = Number(v.rows[0]?.value ?? 0)
        if (version > SCHEMA_VERSION) throw new Error(`the tables were written by a newer firstparty (privacy schema ${version})`)
        await client.query(`INSERT INTO ${this.#t.meta} (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [String(SCHEMA_VERSION)])
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        client.release()
      }
    } catch (err) {
      this.#pool = undefined
      await pool.end().catch(() => {})
      const code = (err as { code?: unknown }).code
      throw Object.assign(
        new ConfigError('CONFIG_PRIVACY_STORE', [{ path: `${this.#where}/connectionString`, message: `cannot open the PostgreSQL privacy store (tables ${this.tablePrefix}*): ${(err as Error).message}${typeof code === 'string' ? ` (${code})` : ''}` }]),
        { cause: err },
      )
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    await this.#opening?.catch(() => {})
    const pool = this.#pool
    this.#pool = undefined
    await pool?.end()
  }

  async suppressionAdd(entries: Suppression[]): Promise<number> {
    const pool = this.#live()
    const rows = entries.map(suppressionRow)
    if (rows.length === 0) return 0
    const r = await pool.query(
      `INSERT INTO ${this.#t.suppressions} (kind, value, reason, created_at)
       SELECT kind, value, reason, created_at FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
         WITH ORDINALITY AS u(kind, value, reason, created_at, n) ORDER BY n
       ON CONFLICT (kind, value) DO NOTHING`,
      [rows.map((s) => s.kind), rows.map((s) => s.value), rows.map((s) => s.reason), rows.map((s) => iso(s.createdAt))],
    )
    return r.rowCount ?? 0
  }

  async suppressionRemove(entries: Array<Pick<Suppression, 'kind' | 'value'>>): Promise<number> {
    const pool = this.#live()
    const keys = entries.map(suppressionKey)
    if (keys.length === 0) return 0
    const r = await pool.query(
      `DELETE FROM ${this.#t.suppressions} s USING unnest($1::text[], $2::text[]) AS u(kind, value) WHERE s.kind = u.kind AND s.value = u.value`,
      [keys.map((k) => k.kind), keys.map((k) => k.value)],
    )
    return r.rowCount ?? 0
  }

  async suppressionList(): Promise<Suppression[]> {
    const r = await this.#live().query(`SELECT kind, value, reason, created_at FROM ${this.#t.suppressions} ORDER BY id`)
    return r.rows.map((s: { kind: string; value: string; reason: string | null; created_at: Date }) =>
      toSuppression({ kind: s.kind, value: s.value, reason: s.reason, createdAt: ms(s.created_at) }))
  }

  async receiptsPut(receipts: DeletionReceipt[]): Promise<void> {
    const pool = this.#live()
    // ON CONFLICT DO UPDATE refuses to touch one row twice in a statement: the last put of a key wins first.
    const rows = lastPerKey(receipts.map(receiptRow))
    if (rows.length === 0) return
    const col = <K extends keyof (typeof rows)[number]>(k: K) => rows.map((r) => r[k])
    await pool.query(
      `INSERT INTO ${this.#t.receipts} (request_id, target, user_id, anonymous_id, email_hash, status, attempts, error_code, error_message, removed, requested_at, updated_at)
       SELECT request_id, target, user_id, anonymous_id, email_hash, status, attempts, error_code, error_message, removed::jsonb, requested_at, updated_at
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[])
         WITH ORDINALITY AS u(request_id, target, user_id, anonymous_id, email_hash, status, attempts, error_code, error_message, removed, requested_at, updated_at, n)
       ORDER BY n
       ON CONFLICT (request_id, target) DO UPDATE SET
         user_id = excluded.user_id, anonymous_id = excluded.anonymous_id, email_hash = excluded.email_hash, status = excluded.status,
         attempts = excluded.attempts, error_code = excluded.error_code, error_message = excluded.error_message, removed = excluded.removed,
         requested_at = excluded.requested_at, updated_at = excluded.updated_at`,
      [
        col('requestId'), col('target'), col('userId'), col('anonymousId'), col('emailHash'), col('status'), col('attempts'),
        col('errorCode'), col('errorMessage'), col('removed'), rows.map((r) => iso(r.requestedAt)), rows.map((r) => iso(r.updatedAt)),
      ],
    )
  }

  async receiptsList(query?: ReceiptQuery): Promise<DeletionReceipt[]> {
    const pool = this.#live()
    const f = receiptFilterOf(query)
    const clauses: string[] = []
    const params: unknown[] = []
    if (f.requestId !== null) params.push(f.requestId), clauses.push(`request_id = $${params.length}`)
    if (f.target !== null) params.push(f.target), clauses.push(`target = $${params.length}`)
    if (f.status !== null) params.push(f.status), clauses.push(`status = $${params.length}`)
    const subject = subjectSql(f, params)
    if (subject) clauses.push(subject)
    params.push(limitParam(f.limit))
    const r = await pool.query(
      `SELECT * FROM ${this.#t.receipts}${whereOf(clauses)} ORDER BY requested_at DESC, request_id COLLATE "C", target COLLATE "C" LIMIT $${params.length}`,
      params,
    )
    return r.rows.map((x: Record<string, unknown>) => toReceipt({
      requestId: x.request_id as string, target: x.target as string, userId: x.user_id as string | null, anonymousId: x.anonymous_id as string | null,
      emailHash: x.email_hash as string | null, status: x.status as string, attempts: x.attempts as number, errorCode: x.error_code as string | null,
      errorMessage: x.error_message as string | null, removed: x.removed, requestedAt: ms(x.requested_at), updatedAt: ms(x.updated_at),
    }))
  }

  async ledgerAdd(entries: LedgerEntry[]): Promise<void> {
    const pool = this.#live()
    // Every entry is checked before the statement: a batch goes in whole or not at all.
    const rows = entries.map(ledgerRow)
    if (rows.length === 0) return
    const n = rows.length
    const cols: unknown[][] = Array.from({ length: 9 }, () => new Array(n))
    for (let i = 0; i < n; i++) {
      const r = rows[i]!
      cols[0]![i] = r.destination
      cols[1]![i] = r.messageId
      cols[2]![i] = r.eventType
      cols[3]![i] = r.event
      cols[4]![i] = r.userId
      cols[5]![i] = r.anonymousId
      cols[6]![i] = r.emailHash
      cols[7]![i] = r.fields
      cols[8]![i] = iso(r.deliveredAt)
    }
    await pool.query(
      `INSERT INTO ${this.#t.ledger} (destination, message_id, event_type, event, user_id, anonymous_id, email_hash, fields, delivered_at)
       SELECT d, m, t, e, u, a, h, f::jsonb, at
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
         WITH ORDINALITY AS x(d, m, t, e, u, a, h, f, at, n)
       ORDER BY n`,
      cols,
    )
  }

  async ledgerQuery(query: LedgerQuery): Promise<LedgerEntry[]> {
    const pool = this.#live()
    const f = ledgerFilterOf(query)
    const clauses: string[] = []
    const params: unknown[] = []
    const subject = subjectSql(f, params)
    if (subject) clauses.push(subject)
    if (f.destination !== null) params.push(f.destination), clauses.push(`destination = $${params.length}`)
    if (f.since !== null) params.push(iso(f.since)), clauses.push(`delivered_at >= $${params.length}::timestamptz`)
    if (f.until !== null) params.push(iso(f.until)), clauses.push(`delivered_at <= $${params.length}::timestamptz`)
    params.push(limitParam(f.limit))
    const r = await pool.query(
      `SELECT destination, message_id, event_type, event, user_id, anonymous_id, email_hash, fields, delivered_at
       FROM ${this.#t.ledger}${whereOf(clauses)} ORDER BY delivered_at DESC, id DESC LIMIT $${params.length}`,
      params,
    )
    return r.rows.map((x: Record<string, unknown>) => toLedgerEntry({
      destination: x.destination as string, messageId: x.message_id as string, eventType: x.event_type as string, event: x.event as string | null,
      userId: x.user_id as string | null, anonymousId: x.anonymous_id as string | null, emailHash: x.email_hash as string | null,
      fields: x.fields, deliveredAt: ms(x.delivered_at),
    }))
  }

  async ledgerDelete(subject: { userId?: string; anonymousId?: string; emailHash?: string }): Promise<number> {
    const pool = this.#live()
    const params: unknown[] = []
    const where = subjectSql(deleteSubjectOf(subject), params)
    return (await pool.query(`DELETE FROM ${this.#t.ledger} WHERE ${where}`, params)).rowCount ?? 0
  }

  async ledgerPrune(before: string): Promise<number> {
    const pool = this.#live()
    const cutoff = instant(before, 'ledgerPrune before')
    return (await pool.query(`DELETE FROM ${this.#t.ledger} WHERE delivered_at < $1::timestamptz`, [iso(cutoff)])).rowCount ?? 0
  }
}
