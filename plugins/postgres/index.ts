/**
 * postgres: a raw events table in PostgreSQL — typed columns for the fields every query
 * needs (message_id, type, event, user_id, anonymous_id, the timestamps) and jsonb for
 * the rest (context, properties, traits, and the whole event in `raw`).
 *
 * The table (and its schema) is created if missing. Each batch is one multi-row INSERT
 * with bound parameters and `ON CONFLICT (message_id) DO NOTHING`, so the router's
 * at-least-once delivery (a retry after a lost answer, a replayed dead letter) stores
 * each event once. Schema and table names are identifiers, which cannot be bound: they
 * are checked against a strict pattern (settings schema, and again here) and quoted.
 *
 * `pg` is an optional dependency, loaded the first time this destination is used, so
 * routers that never write to PostgreSQL do not need it.
 *
 * Errors: connection failures and transient server states (SQLSTATE classes 08, 53,
 * 57P0x, 40001, 40P01, 55P03, 57014) retry; 28xxx and 42501 are auth errors; data,
 * constraint and syntax errors (22, 23, 42) are permanent — a batch that fails with one
 * is inserted again row by row, so only the offending events are refused.
 */
import Type, { type Static } from 'typebox'
import type { Pool, PoolClient } from 'pg'
import { defineDestination, type DestinationContext, type SendResult } from '../../src/plugin.js'
import { AuthenticationError, DeliveryError, PermanentError, RetryableError } from '../../src/errors.js'

/** Lower-case SQL identifiers only: nothing that needs escaping, nothing that changes meaning when quoted. */
export const IDENTIFIER = '^[a-z_][a-z0-9_]{0,62}$'
const IDENTIFIER_RE = new RegExp(IDENTIFIER)

export const PostgresSettings = Type.Object(
  {
    connectionString: Type.String({
      minLength: 1,
      description: 'libpq connection URI, e.g. postgres://firstparty:${PGPASSWORD}@db.internal:5432/analytics?sslmode=require. Use ${ENV_VAR} in YAML for the password.',
    }),
    schema: Type.String({ pattern: IDENTIFIER, default: 'public', description: 'Schema of the events table (created if missing): lower-case letters, digits and _, at most 63.' }),
    table: Type.String({ pattern: IDENTIFIER, default: 'firstparty_events', description: 'Name of the events table (created if missing): lower-case letters, digits and _, at most 63.' }),
    createTable: Type.Boolean({ default: true, description: 'Create the schema, table and indexes if they do not exist. Turn off when the role may not run DDL and the table is created by a migration.' }),
    poolSize: Type.Integer({ minimum: 1, maximum: 100, default: 4, description: 'Most connections this destination opens.' }),
    statementTimeoutMs: Type.Integer({ minimum: 0, default: 30_000, description: "Server-side statement_timeout for this destination's connections (0: none). A timed-out INSERT is retried." }),
  },
  { additionalProperties: false },
)

export type PostgresSettingsType = Static<typeof PostgresSettings>

/** Rows per INSERT: 12 parameters a row stays far below PostgreSQL's 65,535 bind parameters. */
export const MAX_ROWS = 1000

const COLUMNS = [
  'message_id', 'type', 'event', 'user_id', 'anonymous_id', 'timestamp', 'received_at', 'sent_at', 'context', 'properties', 'traits', 'raw',
] as const
const CASTS = ['text', 'text', 'text', 'text', 'text', 'timestamptz', 'timestamptz', 'timestamptz', 'jsonb', 'jsonb', 'jsonb', 'jsonb']

/** `"schema"."table"`, after checking both names. Throws PermanentError for a name that is not a plain identifier. */
export function qualifiedName(s: Pick<PostgresSettingsType, 'schema' | 'table'>): string {
  for (const [key, value] of [['schema', s.schema], ['table', s.table]] as const) {
    if (typeof value !== 'string' || !IDENTIFIER_RE.test(value)) {
      throw new PermanentError(`postgres: settings.${key} ${JSON.stringify(value)} is not a plain identifier (${IDENTIFIER})`)
    }
  }
  return `"${s.schema}"."${s.table}"`
}

/** The DDL run when `createTable` is on (idempotent). */
export function createTableSql(s: Pick<PostgresSettingsType, 'schema' | 'table'>): string[] {
  const name = qualifiedName(s)
  const idx = (col: string) => `CREATE INDEX IF NOT EXISTS "${s.table}_${col}_idx" ON ${name} (${col})`
  return [
    `CREATE SCHEMA IF NOT EXISTS "${s.schema}"`,
    `CREATE TABLE IF NOT EXISTS ${name} (
      message_id text PRIMARY KEY,
      type text NOT NULL,
      event text,
      user_id text,
      anonymous_id text,
      "timestamp" timestamptz,
      received_at timestamptz,
      sent_at timestamptz,
      context jsonb,
      properties jsonb,
      traits jsonb,
      raw jsonb NOT NULL,
      loaded_at timestamptz NOT NULL DEFAULT now()
    )`,
    idx('user_id'),
    idx('anonymous_id'),
    idx('"timestamp"').replace('_"timestamp"_idx', '_timestamp_idx'),
  ]
}

type Row = unknown[]

const id = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : null)
const time = (v: unknown): string | null => {
  if (typeof v !== 'string' && typeof v !== 'number') return null
  const ms = typeof v === 'number' ? v : Date.parse(v)
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : null
}
const json = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v))

/** One event → the row's parameters, or the reason it cannot be a row. */
export function toRow(e: Readonly<Record<string, unknown>>): Row | string {
  const messageId = id(e.messageId)
  if (!messageId) return 'has no messageId (the table deduplicates on message_id)'
  if (typeof e.type !== 'string' || e.type === '') return 'has no type'
  // Identify and group carry traits; track, page and screen properties.
  return [
    messageId, e.type, typeof e.event === 'string' ? e.event : null, id(e.userId), id(e.anonymousId),
    time(e.timestamp), time(e.receivedAt), time(e.sentAt),
    json(e.context), json(e.properties), json(e.traits), JSON.stringify(e),
  ]
}

export function insertSql(name: string, rows: number): string {
  const values: string[] = []
  for (let r = 0; r < rows; r++) {
    values.push(`(${CASTS.map((c, i) => `$${r * CASTS.length + i + 1}::${c}`).join(', ')})`)
  }
  return `INSERT INTO ${name} (${COLUMNS.map((c) => (c === 'timestamp' ? '"timestamp"' : c)).join(', ')}) VALUES ${values.join(', ')} ON CONFLICT (message_id) DO NOTHING`
}

const RETRY_CODES = new Set(['40001', '40P01', '55P03', '57014', '57P01', '57P02', '57P03', '58000', '58030', 'XX000'])
const NETWORK = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNABORTED)$/

/** A pg or network error → the router's retry rule. SQLSTATE decides; the message (never the parameters) is kept. */
export function classifyPgError(err: unknown): DeliveryError {
  if (err instanceof DeliveryError) return err
  const e = err as { code?: unknown; message?: unknown }
  const code = typeof e?.code === 'string' ? e.code : ''
  const message = `postgres: ${typeof e?.message === 'string' ? e.message : String(err)}${code ? ` (${code})` : ''}`
  if (NETWORK.test(code) || code.startsWith('08') || code.startsWith('53') || RETRY_CODES.has(code)) return new RetryableError(message)
  if (code.startsWith('28') || code === '42501') return new AuthenticationError(`${message}; check connectionString and the role's grants`)
  if (/^(22|23|42|2B|3D|3F)/.test(code)) return new PermanentError(message)
  // No SQLSTATE: "Connection terminated unexpectedly", a client-side timeout… transient.
  return new RetryableError(message)
}

/** Data and constraint errors are about a row: worth isolating by inserting row by row. */
const isRowError = (err: DeliveryError, cause: unknown): boolean => err.rule === 'permanent' && /^(22|23)/.test(String((cause as { code?: unknown })?.code ?? ''))

interface PgState {
  pool?: Pool
  ready?: Promise<void>
}

type Ctx = Omit<DestinationContext<PostgresSettingsType>, 'signal' | 'attempt'> & { signal?: AbortSignal }

async function pool(ctx: Ctx): Promise<Pool> {
  const st = ctx.state as PgState
  if (st.pool) return st.pool
  qualifiedName(ctx.settings)
  let pg: typeof import('pg')
  try {
    // pg is CommonJS: its exports arrive as the module's default.
    const mod = (await import('pg')) as unknown as typeof import('pg') & { default?: typeof import('pg') }
    pg = mod.default ?? mod
  } catch (err) {
    throw new PermanentError(`postgres: the destination needs the pg package (npm i pg@8): ${(err as Error).message}`)
  }
  const s = ctx.settings
  st.pool ??= new pg.Pool({
    connectionString: s.connectionString,
    max: s.poolSize,
    connectionTimeoutMillis: 10_000,
    ...(s.statementTimeoutMs > 0 ? { statement_timeout: s.statementTimeoutMs } : {}),
    application_name: `firstparty:${ctx.destination}`.slice(0, 63),
  })
  // An idle connection dropped by the server must not crash the process; the next query reconnects.
  st.pool.on('error', (err) => ctx.logger.warn({ destination: ctx.destination, err: err.message }, 'postgres: idle connection lost'))
  return st.pool
}

/** Create the table once per pool (when `createTable`); a failure is retried on the next call. */
async function ready(ctx: Ctx, client: PoolClient): Promise<void> {
  const st = ctx.state as PgState
  if (!ctx.settings.createTable) return
  st.ready ??= (async () => {
    for (const sql of createTableSql(ctx.settings)) await client.query(sql)
  })().catch((err: unknown) => {
    st.ready = undefined
    throw err
  })
  await st.ready
}

/**
 * Run `fn` with a pooled connection, honouring `signal`: on abort the promise rejects at
 * once and the connection is destroyed (not returned to the pool), which makes the
 * server cancel the statement. A retry is safe: the INSERT is idempotent.
 */
async function withClient<T>(ctx: Ctx, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  const p = await pool(ctx)
  const signal = ctx.signal
  signal?.throwIfAborted()
  let client: PoolClient
  try {
    client = await p.connect()
  } catch (err) {
    throw classifyPgError(err)
  }
  let destroyed = false
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      destroyed = true
      client.release(new Error('aborted'))
      reject(new RetryableError(`postgres: aborted: ${(signal?.reason as Error)?.message ?? 'signal aborted'}`))
    }
    if (signal?.aborted) return onAbort()
    signal?.addEventListener('abort', onAbort, { once: true })
    fn(client).then(
      (v) => {
        signal?.removeEventListener('abort', onAbort)
        if (!destroyed) client.release()
        resolve(v)
      },
      (err: unknown) => {
        signal?.removeEventListener('abort', onAbort)
        // A connection-level failure leaves the client unusable: drop it.
        const dc = classifyPgError(err)
        if (!destroyed) client.release(dc.rule === 'retry' ? (err as Error) : undefined)
        reject(Object.assign(dc, { cause: err }))
      },
    )
  })
}

export default defineDestination({
  name: 'postgres',
  version: '0.1.0',
  description: 'A raw events table in PostgreSQL: typed columns for the common fields, jsonb for the rest.',
  settings: PostgresSettings,
  // Your own database: no consent category by default (set `consent:` in the config to gate it).
  batch: { maxEvents: 500, maxBytes: 4_000_000, maxWaitMs: 1000 },
  async setup(ctx) {
    await pool(ctx)
  },
  async send(events, ctx) {
    const name = qualifiedName(ctx.settings)
    const rejected: NonNullable<SendResult['rejected']> = []
    const rows: Array<{ index: number; row: Row }> = []
    events.forEach((e, index) => {
      const row = toRow(e as Record<string, unknown>)
      if (typeof row === 'string') rejected.push({ index, error: new PermanentError(`postgres: event ${index} ${row}`) })
      else rows.push({ index, row })
    })
    if (rows.length > 0) await withClient(ctx, async (client) => {
      await ready(ctx, client)
      for (let i = 0; i < rows.length; i += MAX_ROWS) {
        const chunk = rows.slice(i, i + MAX_ROWS)
        try {
          await client.query(insertSql(name, chunk.length), chunk.flatMap((r) => r.row))
        } catch (err) {
          if (!isRowError(classifyPgError(err), err)) throw err
          // One bad row fails the whole statement: insert row by row, refuse only the bad ones.
          for (const r of chunk) {
            try {
              if (chunk.length > 1) await client.query(insertSql(name, 1), r.row)
              else throw err
            } catch (rowErr) {
              const rc = classifyPgError(rowErr)
              if (!isRowError(rc, rowErr)) throw rowErr
              rejected.push({ index: r.index, error: new PermanentError(`postgres: event ${r.index}: ${rc.message.replace(/^postgres: /, '')}`) })
            }
          }
        }
      }
    })
    rejected.sort((a, b) => a.index - b.index)
    if (rejected.length === events.length && events.length > 0 && rejected.every((r) => r.error.message === rejected[0]!.error.message)) throw rejected[0]!.error
    return { rejected }
  },
  async deleteUser(ids, ctx) {
    const name = qualifiedName(ctx.settings)
    const where: string[] = []
    const params: string[] = []
    if (ids.userId) params.push(ids.userId), where.push(`user_id = $${params.length}`)
    if (ids.anonymousId) params.push(ids.anonymousId), where.push(`anonymous_id = $${params.length}`)
    if (ids.email) {
      params.push(ids.email.trim().toLowerCase())
      const p = `$${params.length}`
      where.push(`lower(traits->>'email') = ${p}`, `lower(context->'traits'->>'email') = ${p}`, `lower(properties->>'email') = ${p}`)
    }
    if (where.length === 0) throw new PermanentError('postgres: deleteUser needs a userId, anonymousId or email')
    const count = await withClient(ctx, async (client) => {
      await ready(ctx, client)
      return (await client.query(`DELETE FROM ${name} WHERE ${where.join(' OR ')}`, params)).rowCount ?? 0
    })
    ctx.logger.info({ destination: ctx.destination, rows: count }, 'postgres: deleted the subject\'s rows')
  },
  async close(ctx) {
    const st = ctx.state as PgState
    const p = st.pool
    st.pool = undefined
    st.ready = undefined
    await p?.end()
  },
})
