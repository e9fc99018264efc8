/**
 * The privacy store in a SQLite file (better-sqlite3@12): the default when a config has
 * a `privacy` block. One file, created with its folder; WAL with `synchronous = NORMAL`
 * (as the spool: a killed process loses nothing committed; a power loss may lose the
 * last commits, never consistency); a busy timeout so the CLI can open it beside the
 * router.
 *
 * The methods are async because the PostgreSQL store's are; the SQLite work inside is
 * synchronous (better-sqlite3), microseconds per call. `ledgerAdd` is on the delivery
 * path: one prepared INSERT run per entry inside one transaction per batch. `ledgerPrune`
 * can meet millions of rows the first time retention runs: it deletes in chunks and
 * yields to the event loop between them, so deliveries are not stalled for seconds.
 *
 * Times are INTEGER epoch ms (see store-common.ts); `fields` (one row per distinct list in
 * `ledger_shapes`) and `removed` are JSON text, rebuilt into fresh objects when read.
 */
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, resolve as resolvePath } from 'node:path'
import type BetterSqlite3 from 'better-sqlite3'
import { ConfigError } from '../errors.js'
import {
  deleteSubjectOf, instant, lastPerKey, ledgerFilterOf, ledgerRow, receiptFilterOf, receiptRow, suppressionKey, suppressionRow,
  toLedgerEntry, toReceipt, toSuppression, type LedgerRow, type SubjectFilter,
} from './store-common.js'
import type { DeletionReceipt, LedgerEntry, LedgerQuery, PrivacyStore, ReceiptQuery, Suppression } from './types.js'

type Database = BetterSqlite3.Database
type Statement = BetterSqlite3.Statement

const SCHEMA_VERSION = 1
/** Rows per DELETE while pruning: a few milliseconds of work between yields. */
const PRUNE_CHUNK = 5000

export interface SqlitePrivacyStoreOptions {
  /**
   * The database file; it and its folder are created when missing.
   * @example new SqlitePrivacyStore({ path: './data/firstparty-privacy.db' })
   */
  path: string
  /** `full` fsyncs every commit (survives power loss). @default 'normal' */
  synchronous?: 'normal' | 'full'
  /** JSON pointer of the store's config block, for error messages. @default '/privacy/store' */
  where?: string
}

const DDL = `
  CREATE TABLE IF NOT EXISTS privacy_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS suppressions (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('userId', 'anonymousId', 'emailHash')),
    value TEXT NOT NULL,
    reason TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (kind, value)
  );
  CREATE TABLE IF NOT EXISTS deletion_receipts (
    request_id TEXT NOT NULL,
    target TEXT NOT NULL,
    user_id TEXT,
    anonymous_id TEXT,
    email_hash TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error_code TEXT,
    error_message TEXT,
    removed TEXT,
    requested_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (request_id, target)
  );
  CREATE INDEX IF NOT EXISTS deletion_receipts_requested_at ON deletion_receipts (requested_at);
  -- A field list (paths and treatments, never values) is stored once per distinct list:
  -- every "Order Completed" to one destination shares one. Rows are a third the size.
  CREATE TABLE IF NOT EXISTS ledger_shapes (
    id INTEGER PRIMARY KEY,
    fields TEXT NOT NULL UNIQUE
  );
  CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    message_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event TEXT,
    user_id TEXT,
    anonymous_id TEXT,
    email_hash TEXT,
    shape INTEGER NOT NULL REFERENCES ledger_shapes (id),
    delivered_at INTEGER NOT NULL
  );
  -- Partial: anonymous traffic has no user_id and most events no email; a subject lookup
  -- (user_id = ?) implies IS NOT NULL, so SQLite uses these, and inserts skip them.
  CREATE INDEX IF NOT EXISTS ledger_user_id ON ledger (user_id) WHERE user_id IS NOT NULL;
  CREATE INDEX IF NOT EXISTS ledger_anonymous_id ON ledger (anonymous_id) WHERE anonymous_id IS NOT NULL;
  CREATE INDEX IF NOT EXISTS ledger_email_hash ON ledger (email_hash) WHERE email_hash IS NOT NULL;
  CREATE INDEX IF NOT EXISTS ledger_delivered_at ON ledger (delivered_at);
`

/** `(user_id = ? OR …)` for the ids given; '' when none. */
function subjectSql(s: SubjectFilter, params: unknown[]): string {
  const or: string[] = []
  if (s.userId !== null) or.push('user_id = ?'), params.push(s.userId)
  if (s.anonymousId !== null) or.push('anonymous_id = ?'), params.push(s.anonymousId)
  if (s.emailHash !== null) or.push('email_hash = ?'), params.push(s.emailHash)
  return or.length ? `(${or.join(' OR ')})` : ''
}

const whereOf = (clauses: string[]) => (clauses.length ? ` WHERE ${clauses.join(' AND ')}` : '')

interface RawLedgerRow {
  destination: string
  message_id: string
  event_type: string
  event: string | null
  user_id: string | null
  anonymous_id: string | null
  email_hash: string | null
  fields: string
  delivered_at: number
}

interface RawReceiptRow {
  request_id: string
  target: string
  user_id: string | null
  anonymous_id: string | null
  email_hash: string | null
  status: string
  attempts: number
  error_code: string | null
  error_message: string | null
  removed: string | null
  requested_at: number
  updated_at: number
}

export class SqlitePrivacyStore implements PrivacyStore {
  readonly type = 'sqlite' as const
  /** The absolute path of the database file. */
  readonly path: string
  readonly #synchronous: 'normal' | 'full'
  readonly #where: string
  #db: Database | undefined
  #closed = false
  #s!: {
    suppressionAdd: Statement
    suppressionRemove: Statement
    suppressionList: Statement
    receiptPut: Statement
    ledgerInsert: Statement
    shapeInsert: Statement
    shapeId: Statement
    prune: Statement
  }
  #ledgerAddTx!: (rows: LedgerRow[]) => void
  /** Field-list text → its ledger_shapes id, for the shapes this process has seen. */
  readonly #shapes = new Map<string, number>()
  #suppressionAddTx!: (rows: ReturnType<typeof suppressionRow>[]) => number
  /** Query statements by their SQL: a handful of filter combinations, each prepared once. */
  readonly #queries = new Map<string, Statement>()

  constructor(options: SqlitePrivacyStoreOptions) {
    this.#where = options.where ?? '/privacy/store'
    if (typeof options.path !== 'string' || options.path === '') {
      throw new ConfigError('CONFIG_INVALID', [{ path: `${this.#where}/path`, message: 'the sqlite privacy store needs path (the database file)' }])
    }
    this.path = resolvePath(options.path)
    this.#synchronous = options.synchronous ?? 'normal'
  }

  #live(): Database {
    if (this.#db) return this.#db
    throw new Error(this.#closed ? 'privacy store: closed' : 'privacy store: call open() first')
  }

  async open(): Promise<void> {
    if (this.#db) return
    if (this.#closed) throw new Error('privacy store: closed')
    let Ctor: typeof BetterSqlite3
    try {
      Ctor = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3
    } catch (err) {
      throw new ConfigError('CONFIG_PRIVACY_STORE', [{ path: `${this.#where}/type`, message: `the sqlite privacy store needs the package better-sqlite3@12 (npm i better-sqlite3@12), or use type: memory or postgres: ${(err as Error).message}` }])
    }
    let db: Database | undefined
    try {
      mkdirSync(dirname(this.path), { recursive: true })
      db = new Ctor(this.path)
      db.pragma('journal_mode = WAL')
      db.pragma(`synchronous = ${this.#synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
      db.pragma('busy_timeout = 5000')
      db.exec(DDL)
      const version = Number((db.prepare("SELECT value FROM privacy_meta WHERE key = 'schema_version'").get() as { value: string } | undefined)?.value ?? 0)
      if (version > SCHEMA_VERSION) throw new Error(`the file was written by a newer firstparty (privacy schema ${version})`)
      if (version < SCHEMA_VERSION) db.prepare("INSERT OR REPLACE INTO privacy_meta (key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION))
      this.#prepare(db)
    } catch (err) {
      db?.close()
      throw new ConfigError('CONFIG_PRIVACY_STORE', [{ path: `${this.#where}/path`, message: `cannot open the SQLite privacy store ${this.path}: ${(err as Error).message}` }])
    }
    this.#db = db
  }

  #prepare(db: Database): void {
    this.#s = {
      suppressionAdd: db.prepare('INSERT INTO suppressions (kind, value, reason, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (kind, value) DO NOTHING'),
      suppressionRemove: db.prepare('DELETE FROM suppressions WHERE kind = ? AND value = ?'),
      suppressionList: db.prepare('SELECT kind, value, reason, created_at FROM suppressions ORDER BY id'),
      receiptPut: db.prepare(`
        INSERT INTO deletion_receipts (request_id, target, user_id, anonymous_id, email_hash, status, attempts, error_code, error_message, removed, requested_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (request_id, target) DO UPDATE SET
          user_id = excluded.user_id, anonymous_id = excluded.anonymous_id, email_hash = excluded.email_hash, status = excluded.status,
          attempts = excluded.attempts, error_code = excluded.error_code, error_message = excluded.error_message, removed = excluded.removed,
          requested_at = excluded.requested_at, updated_at = excluded.updated_at`),
      ledgerInsert: db.prepare('INSERT INTO ledger (destination, message_id, event_type, event, user_id, anonymous_id, email_hash, shape, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      shapeInsert: db.prepare('INSERT INTO ledger_shapes (fields) VALUES (?) ON CONFLICT (fields) DO NOTHING'),
      shapeId: db.prepare('SELECT id FROM ledger_shapes WHERE fields = ?').pluck(),
      prune: db.prepare(`DELETE FROM ledger WHERE id IN (SELECT id FROM ledger WHERE delivered_at < ? LIMIT ${PRUNE_CHUNK})`),
    }
    const ins = this.#s.ledgerInsert
    const shapeInsert = this.#s.shapeInsert
    const shapeId = this.#s.shapeId
    const shapes = this.#shapes
    const tx = db.transaction((rows: LedgerRow[], added: string[]) => {
      for (const r of rows) {
        let id = shapes.get(r.fields)
        if (id === undefined) {
          shapeInsert.run(r.fields)
          id = shapeId.get(r.fields) as number
          if (shapes.size >= 10_000) shapes.delete(shapes.keys().next().value!)
          shapes.set(r.fields, id)
          added.push(r.fields)
        }
        ins.run(r.destination, r.messageId, r.eventType, r.event, r.userId, r.anonymousId, r.emailHash, id, r.deliveredAt)
      }
    })
    this.#ledgerAddTx = (rows) => {
      const added: string[] = []
      try {
        tx(rows, added)
      } catch (err) {
        // Rolled back: shapes first stored by this batch are gone again.
        for (const f of added) shapes.delete(f)
        throw err
      }
    }
    const add = this.#s.suppressionAdd
    this.#suppressionAddTx = db.transaction((rows: ReturnType<typeof suppressionRow>[]) => {
      let n = 0
      for (const r of rows) n += add.run(r.kind, r.value, r.reason, r.createdAt).changes
      return n
    })
  }

  #query(sql: string): Statement {
    let st = this.#queries.get(sql)
    if (!st) this.#queries.set(sql, (st = this.#live().prepare(sql)))
    return st
  }

  async close(): Promise<void> {
    this.#closed = true
    const db = this.#db
    this.#db = undefined
    this.#queries.clear()
    db?.close()
  }

  async suppressionAdd(entries: Suppression[]): Promise<number> {
    this.#live()
    const rows = entries.map(suppressionRow)
    return rows.length ? this.#suppressionAddTx(rows) : 0
  }

  async suppressionRemove(entries: Array<Pick<Suppression, 'kind' | 'value'>>): Promise<number> {
    const db = this.#live()
    const keys = entries.map(suppressionKey)
    const del = this.#s.suppressionRemove
    return db.transaction(() => keys.reduce((n, k) => n + del.run(k.kind, k.value).changes, 0))()
  }

  async suppressionList(): Promise<Suppression[]> {
    this.#live()
    const rows = this.#s.suppressionList.all() as Array<{ kind: string; value: string; reason: string | null; created_at: number }>
    return rows.map((r) => toSuppression({ kind: r.kind, value: r.value, reason: r.reason, createdAt: r.created_at }))
  }

  async receiptsPut(receipts: DeletionReceipt[]): Promise<void> {
    const db = this.#live()
    const rows = lastPerKey(receipts.map(receiptRow))
    const put = this.#s.receiptPut
    db.transaction(() => {
      for (const r of rows) {
        put.run(r.requestId, r.target, r.userId, r.anonymousId, r.emailHash, r.status, r.attempts, r.errorCode, r.errorMessage, r.removed, r.requestedAt, r.updatedAt)
      }
    })()
  }

  async receiptsList(query?: ReceiptQuery): Promise<DeletionReceipt[]> {
    this.#live()
    const f = receiptFilterOf(query)
    const clauses: string[] = []
    const params: unknown[] = []
    if (f.requestId !== null) clauses.push('request_id = ?'), params.push(f.requestId)
    if (f.target !== null) clauses.push('target = ?'), params.push(f.target)
    if (f.status !== null) clauses.push('status = ?'), params.push(f.status)
    const subject = subjectSql(f, params)
    if (subject) clauses.push(subject)
    const sql = `SELECT * FROM deletion_receipts${whereOf(clauses)} ORDER BY requested_at DESC, request_id, target LIMIT ?`
    const rows = this.#query(sql).all(...params, f.limit) as RawReceiptRow[]
    return rows.map((r) => toReceipt({
      requestId: r.request_id, target: r.target, userId: r.user_id, anonymousId: r.anonymous_id, emailHash: r.email_hash, status: r.status,
      attempts: r.attempts, errorCode: r.error_code, errorMessage: r.error_message, removed: r.removed, requestedAt: r.requested_at, updatedAt: r.updated_at,
    }))
  }

  async ledgerAdd(entries: LedgerEntry[]): Promise<void> {
    this.#live()
    // Every entry is checked before the transaction: a batch goes in whole or not at all.
    const rows = entries.map(ledgerRow)
    if (rows.length) this.#ledgerAddTx(rows)
  }

  async ledgerQuery(query: LedgerQuery): Promise<LedgerEntry[]> {
    this.#live()
    const f = ledgerFilterOf(query)
    const clauses: string[] = []
    const params: unknown[] = []
    const subject = subjectSql(f, params)
    if (subject) clauses.push(subject)
    if (f.destination !== null) clauses.push('destination = ?'), params.push(f.destination)
    if (f.since !== null) clauses.push('delivered_at >= ?'), params.push(f.since)
    if (f.until !== null) clauses.push('delivered_at <= ?'), params.push(f.until)
    const sql = `SELECT destination, message_id, event_type, event, user_id, anonymous_id, email_hash, (SELECT fields FROM ledger_shapes WHERE ledger_shapes.id = ledger.shape) AS fields, delivered_at FROM ledger${whereOf(clauses)} ORDER BY delivered_at DESC, id DESC LIMIT ?`
    const rows = this.#query(sql).all(...params, f.limit) as RawLedgerRow[]
    return rows.map((r) => toLedgerEntry({
      destination: r.destination, messageId: r.message_id, eventType: r.event_type, event: r.event, userId: r.user_id, anonymousId: r.anonymous_id,
      emailHash: r.email_hash, fields: r.fields, deliveredAt: r.delivered_at,
    }))
  }

  async ledgerDelete(subject: { userId?: string; anonymousId?: string; emailHash?: string }): Promise<number> {
    this.#live()
    const params: unknown[] = []
    const sql = `DELETE FROM ledger WHERE ${subjectSql(deleteSubjectOf(subject), params)}`
    return this.#query(sql).run(...params).changes
  }

  async ledgerPrune(before: string): Promise<number> {
    this.#live()
    const cutoff = instant(before, 'ledgerPrune before')
    let total = 0
    for (;;) {
      const n = this.#s.prune.run(cutoff).changes
      total += n
      if (n < PRUNE_CHUNK) return total
      await new Promise((resolve) => setImmediate(resolve))
      // Closed while yielding: what was deleted is deleted; the next prune finishes the job.
      if (!this.#db) return total
    }
  }
}
