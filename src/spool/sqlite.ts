/**
 * The SQLite spool (better-sqlite3@12): embedded, durable, one delivering process per
 * file (the `dlq` CLI may open it beside that process).
 *
 * Durability. WAL journal with `synchronous = NORMAL` by default: a commit is in the
 * WAL file — in the OS page cache — before `append` resolves, so a killed process
 * (kill -9, OOM, crash) loses nothing it answered 200 for; only a power loss or kernel
 * crash can lose the last commits, and the database stays consistent even then.
 * `synchronous: 'full'` fsyncs the WAL on every commit and survives power loss too;
 * appends are group-committed (every append of one event-loop turn in one transaction),
 * so FULL costs one fsync per turn, not one per request.
 *
 * Layout. `spool` holds one row per (event, destination), deleted when acked;
 * `dead_letters` holds failed events in the same file, so a replay is one transaction
 * that moves rows from one table to the other — idempotent however often it runs.
 */
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, resolve as resolvePath } from 'node:path'
import { randomUUID } from 'node:crypto'
import type BetterSqlite3 from 'better-sqlite3'
import { ConfigError, type DeliveryErrorCode } from '../errors.js'
import type { DeadLetter, DeadLetterFilter, DeadLetterStore } from '../deliver/dead-letters.js'
import type { FirstpartyEvent } from '../normalize/schema.js'
import type { LedgerDraft } from '../privacy/ledger.js'
import type { AsyncDeadLetterStore, Spool, SpooledEvent, SpoolEntry, SpoolReader, SpoolStats } from './types.js'

type Database = BetterSqlite3.Database
type Statement = BetterSqlite3.Statement

const SCHEMA_VERSION = 1

export interface SqliteSpoolOptions {
  path: string
  /** @default 'normal' */
  synchronous?: 'normal' | 'full'
  /** @default 1_000_000 */
  maxEvents?: number
  /** Dead letters kept; the oldest are evicted, counted, past this. @default 1_000_000 */
  deadLetterMaxEntries?: number
  onEvict?: (n: number) => void
}

/** Open (creating when needed) a spool database: WAL, the tables, a busy timeout for the CLI beside the router. */
export function openSqliteDatabase(path: string, synchronous: 'normal' | 'full' = 'normal', where = '/spool/path'): Database {
  let Ctor: typeof BetterSqlite3
  try {
    Ctor = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3
  } catch (err) {
    throw new ConfigError('CONFIG_SPOOL', [{ path: '/spool/type', message: `the sqlite spool needs the package better-sqlite3@12 (npm i better-sqlite3@12): ${(err as Error).message}` }])
  }
  const file = resolvePath(path)
  let db: Database
  try {
    mkdirSync(dirname(file), { recursive: true })
    db = new Ctor(file)
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
    db.pragma('busy_timeout = 5000')
    const version = db.pragma('user_version', { simple: true }) as number
    if (version > SCHEMA_VERSION) throw new Error(`the file was written by a newer firstparty (schema ${version})`)
    db.exec(`
      CREATE TABLE IF NOT EXISTS spool (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dest TEXT NOT NULL,
        ukey TEXT NOT NULL,
        accepted_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS spool_dest ON spool (dest, id);
      CREATE TABLE IF NOT EXISTS dead_letters (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        dest TEXT NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        status INTEGER,
        attempts INTEGER NOT NULL,
        accepted_at INTEGER NOT NULL,
        dead_at INTEGER NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS dead_letters_dead_at ON dead_letters (dead_at);
      PRAGMA user_version = ${SCHEMA_VERSION};
    `)
    // Added after schema 1 was released: the sharing ledger's draft beside each entry.
    const columns = db.prepare('PRAGMA table_info(spool)').all() as Array<{ name: string }>
    if (!columns.some((c) => c.name === 'meta')) db.exec('ALTER TABLE spool ADD COLUMN meta TEXT')
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError('CONFIG_SPOOL', [{ path: where, message: `cannot open the SQLite spool ${file}: ${(err as Error).message}` }])
  }
  return db
}

function where(f: Omit<DeadLetterFilter, 'limit'>, known?: ReadonlySet<string>): { sql: string; params: unknown[] } {
  const clauses: string[] = []
  const params: unknown[] = []
  if (f.destination !== undefined) clauses.push('dest = ?'), params.push(f.destination)
  if (f.code !== undefined) clauses.push('code = ?'), params.push(f.code)
  if (f.since !== undefined) clauses.push('dead_at >= ?'), params.push(f.since)
  if (f.until !== undefined) clauses.push('dead_at < ?'), params.push(f.until)
  if (f.ids !== undefined) {
    if (f.ids.length === 0) clauses.push('0')
    else clauses.push(`id IN (${f.ids.map(() => '?').join(',')})`), params.push(...f.ids)
  }
  if (known !== undefined) {
    if (known.size === 0) clauses.push('0')
    else clauses.push(`dest IN (${[...known].map(() => '?').join(',')})`), params.push(...known)
  }
  return { sql: clauses.length ? ` WHERE ${clauses.join(' AND ')}` : '', params }
}

interface DeadRow {
  seq: number
  id: string
  dest: string
  code: string
  message: string
  status: number | null
  attempts: number
  accepted_at: number
  dead_at: number
  body: string
}

function toDeadLetter(r: DeadRow): DeadLetter {
  const error: DeadLetter['error'] = { code: r.code as DeliveryErrorCode, message: r.message }
  if (r.status !== null) error.status = r.status
  return { id: r.id, destination: r.dest, event: JSON.parse(r.body) as FirstpartyEvent, error, attempts: r.attempts, acceptedAt: r.accepted_at, deadAt: r.dead_at }
}

/**
 * Dead letters in the spool's database. Synchronous like the memory store (SQLite
 * answers in microseconds), so the router's `deadLetters` API is the same for both.
 */
export class SqliteDeadLetterStore implements DeadLetterStore {
  readonly #db: Database
  readonly #insert: Statement
  readonly maxEntries: number
  readonly #onEvict: ((n: number) => void) | undefined
  #evicted = 0
  #count: number
  /** Called after a replay moved rows into the spool (the spool's counters follow). */
  onReplay: ((byDestination: Map<string, number>) => void) | undefined

  constructor(db: Database, options: { maxEntries?: number; onEvict?: (n: number) => void } = {}) {
    this.#db = db
    this.maxEntries = options.maxEntries ?? 1_000_000
    this.#onEvict = options.onEvict
    this.#insert = db.prepare('INSERT INTO dead_letters (id, dest, code, message, status, attempts, accepted_at, dead_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
    this.#count = (db.prepare('SELECT COUNT(*) AS n FROM dead_letters').get() as { n: number }).n
  }

  get evicted(): number {
    return this.#evicted
  }

  add(entries: Array<Omit<DeadLetter, 'id'>>): void {
    if (entries.length === 0) return
    this.#db.transaction(() => {
      for (const e of entries) {
        this.#insert.run(randomUUID(), e.destination, e.error.code, e.error.message, e.error.status ?? null, e.attempts, e.acceptedAt, e.deadAt, JSON.stringify(e.event))
      }
    })()
    this.#count += entries.length
    this.#evictOverflow()
  }

  /** Rows moved here by retention, with the event's JSON as stored (not parsed and serialized again). */
  addRaw(rows: Array<{ dest: string; body: string; attempts: number; acceptedAt: number }>, code: DeliveryErrorCode, message: string, now: number): void {
    for (const r of rows) this.#insert.run(randomUUID(), r.dest, code, message, null, r.attempts, r.acceptedAt, now, r.body)
    this.#count += rows.length
  }

  #evictOverflow(): void {
    const over = this.#count - this.maxEntries
    if (over <= 0) return
    const n = this.#db.prepare('DELETE FROM dead_letters WHERE seq IN (SELECT seq FROM dead_letters ORDER BY seq LIMIT ?)').run(over).changes
    this.#count -= n
    this.#evicted += n
    this.#onEvict?.(n)
  }

  list(filter: DeadLetterFilter = {}): DeadLetter[] {
    const w = where(filter)
    const limit = filter.limit ?? 100
    const rows = this.#db.prepare(`SELECT * FROM dead_letters${w.sql} ORDER BY seq LIMIT ?`).all(...w.params, Number.isFinite(limit) ? limit : -1) as DeadRow[]
    return rows.map(toDeadLetter)
  }

  take(filter: DeadLetterFilter = {}): DeadLetter[] {
    return this.#db.transaction(() => {
      const out = this.list(filter)
      const del = this.#db.prepare('DELETE FROM dead_letters WHERE id = ?')
      for (const d of out) del.run(d.id)
      this.#count -= out.length
      return out
    }).immediate()
  }

  count(filter: Omit<DeadLetterFilter, 'limit'> = {}): number {
    const w = where(filter)
    return (this.#db.prepare(`SELECT COUNT(*) AS n FROM dead_letters${w.sql}`).get(...w.params) as { n: number }).n
  }

  /** Delete matching entries; returns how many. */
  purge(filter: DeadLetterFilter = {}): number {
    const w = where(filter)
    const limit = filter.limit ?? Infinity
    const n = this.#db
      .prepare(`DELETE FROM dead_letters WHERE seq IN (SELECT seq FROM dead_letters${w.sql} ORDER BY seq LIMIT ?)`)
      .run(...w.params, Number.isFinite(limit) ? limit : -1).changes
    this.#count -= n
    return n
  }

  /**
   * Move matching dead letters back into the spool, in one IMMEDIATE transaction: rows
   * leave `dead_letters` as they enter `spool`, so a second replay (from the CLI, say)
   * finds nothing to move. Entries of destinations not in `known` stay.
   */
  replay(filter: DeadLetterFilter = {}, known?: ReadonlySet<string>): { replayed: number; skipped: number } {
    const now = Date.now()
    const result = this.#db.transaction(() => {
      // Entries of destinations this config does not have stay where they are.
      const all = where(filter)
      const skipped = known ? (this.#db.prepare(`SELECT COUNT(*) AS n FROM dead_letters${all.sql}${all.sql ? ' AND' : ' WHERE'} dest NOT IN (${[...known].map(() => '?').join(',') || "''"})`).get(...all.params, ...known) as { n: number }).n : 0
      const w = where(filter, known)
      const limit = filter.limit ?? Infinity
      const rows = this.#db
        .prepare(`SELECT seq, dest, body FROM dead_letters${w.sql} ORDER BY seq LIMIT ?`)
        .all(...w.params, Number.isFinite(limit) ? limit : -1) as Array<{ seq: number; dest: string; body: string }>
      const ins = this.#db.prepare('INSERT INTO spool (dest, ukey, accepted_at, attempts, bytes, body) VALUES (?, ?, ?, 0, ?, ?)')
      const del = this.#db.prepare('DELETE FROM dead_letters WHERE seq = ?')
      const byDest = new Map<string, number>()
      for (const r of rows) {
        const ev = JSON.parse(r.body) as FirstpartyEvent
        // A replay is a fresh start: attempts and age count from now, as in the memory router.
        ins.run(r.dest, ev.userId ?? ev.anonymousId ?? '', now, Buffer.byteLength(r.body), r.body)
        del.run(r.seq)
        byDest.set(r.dest, (byDest.get(r.dest) ?? 0) + 1)
      }
      this.#count -= rows.length
      return { replayed: rows.length, skipped, byDest }
    }).immediate()
    if (result.replayed) this.onReplay?.(result.byDest)
    return { replayed: result.replayed, skipped: result.skipped }
  }

  /** The same store behind the async interface (for the CLI and code written for any backend). */
  asAsync(): AsyncDeadLetterStore {
    return {
      add: async (e) => this.add(e),
      list: async (f) => this.list(f),
      count: async (f) => this.count(f),
      purge: async (f) => this.purge(f),
      replay: async (f, known) => this.replay(f, known),
    }
  }
}

export class SqliteSpool implements Spool {
  readonly type = 'sqlite' as const
  readonly db: Database
  readonly deadLetters: SqliteDeadLetterStore
  readonly deadLettersAsync: AsyncDeadLetterStore
  readonly maxEvents: number
  readonly #insert: Statement
  readonly #delete: Statement
  readonly #deleteRange: Statement
  readonly #count: Statement
  /** Rows per destination (unread + in flight), kept in step with every write of this process. */
  readonly counts = new Map<string, number>()
  #pending = 0
  #appendQueue: SpoolEntry[] = []
  #appendWaiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = []
  #appendScheduled = false
  #ackQueue = new Map<string, number[]>()
  #ackScheduled = false
  #listeners: Array<(destination: string) => void> = []
  #dataVersion: number
  #lastVersionCheck = 0
  #closed = false
  /**
   * Events this process just stored, by row id: the consumer usually reads a row
   * milliseconds after it was written, and takes the object from here instead of
   * parsing the JSON again. FIFO-bounded, so a destination that reads nothing (down)
   * cannot grow it; a miss just parses the row.
   */
  readonly fresh = new Map<number, FirstpartyEvent>()
  static readonly FRESH_MAX = 20_000
  readonly #stats = { appended: 0, acked: 0, retentionDeadLettered: 0, rejectedFull: 0 }

  constructor(options: SqliteSpoolOptions) {
    this.db = openSqliteDatabase(options.path, options.synchronous)
    this.maxEvents = options.maxEvents ?? 1_000_000
    this.deadLetters = new SqliteDeadLetterStore(this.db, {
      maxEntries: options.deadLetterMaxEntries ?? 1_000_000,
      ...(options.onEvict ? { onEvict: options.onEvict } : {}),
    })
    this.deadLetters.onReplay = (byDest) => this.#added(byDest)
    this.deadLettersAsync = this.deadLetters.asAsync()
    this.#insert = this.db.prepare('INSERT INTO spool (dest, ukey, accepted_at, attempts, bytes, body, meta) VALUES (?, ?, ?, 0, ?, ?, ?)')
    this.#delete = this.db.prepare('DELETE FROM spool WHERE id = ?')
    this.#deleteRange = this.db.prepare('DELETE FROM spool WHERE dest = ? AND id >= ? AND id <= ?')
    this.#count = this.db.prepare('SELECT dest, COUNT(*) AS n FROM spool GROUP BY dest')
    this.#recount()
    this.#dataVersion = this.db.pragma('data_version', { simple: true }) as number
  }

  #recount(): void {
    this.counts.clear()
    this.#pending = 0
    for (const r of this.#count.all() as Array<{ dest: string; n: number }>) {
      this.counts.set(r.dest, r.n)
      this.#pending += r.n
    }
  }

  /**
   * Another connection (the dlq CLI) wrote to the file: recount. `data_version` changes
   * only for commits by other connections, so this costs nothing in the common case.
   */
  refreshIfChangedElsewhere(now = Date.now()): void {
    if (this.#closed || now - this.#lastVersionCheck < 100) return
    this.#lastVersionCheck = now
    const v = this.db.pragma('data_version', { simple: true }) as number
    if (v === this.#dataVersion) return
    this.#dataVersion = v
    this.#recount()
    for (const d of this.counts.keys()) this.#notify(d)
  }

  #added(byDest: Map<string, number>): void {
    for (const [d, n] of byDest) {
      this.counts.set(d, (this.counts.get(d) ?? 0) + n)
      this.#pending += n
      this.#notify(d)
    }
  }

  #notify(destination: string): void {
    for (const l of this.#listeners) l(destination)
  }

  onAppend(fn: (destination: string) => void): void {
    this.#listeners.push(fn)
  }

  fullFor(n: number): number {
    if (this.#pending + this.#appendQueue.length + n <= this.maxEvents) return 0
    this.#stats.rejectedFull++
    return 2
  }

  append(entries: SpoolEntry[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve()
    if (this.#closed) return Promise.reject(new Error('the spool is closed'))
    for (const e of entries) this.#appendQueue.push(e)
    const p = new Promise<void>((resolve, reject) => this.#appendWaiters.push({ resolve, reject }))
    if (!this.#appendScheduled) {
      this.#appendScheduled = true
      setImmediate(() => this.#commitAppends())
    }
    return p
  }

  /** Group commit: every append of this event-loop turn in one transaction. */
  #commitAppends(): void {
    this.#appendScheduled = false
    const entries = this.#appendQueue
    const waiters = this.#appendWaiters
    this.#appendQueue = []
    this.#appendWaiters = []
    const byDest = new Map<string, number>()
    try {
      this.db.transaction(() => {
        let lastEvent: unknown
        let lastBody = ''
        for (const e of entries) {
          // Consecutive entries of one event to several destinations share its JSON.
          if (e.event !== lastEvent) {
            lastEvent = e.event
            lastBody = JSON.stringify(e.event)
          }
          const id = Number(this.#insert.run(e.destination, e.userKey, e.acceptedAt, e.bytes, lastBody, e.ledger ? JSON.stringify(e.ledger) : null).lastInsertRowid)
          this.fresh.set(id, e.event)
          if (this.fresh.size > SqliteSpool.FRESH_MAX) this.fresh.delete(this.fresh.keys().next().value!)
          byDest.set(e.destination, (byDest.get(e.destination) ?? 0) + 1)
        }
      })()
    } catch (err) {
      for (const w of waiters) w.reject(err)
      return
    }
    this.#stats.appended += entries.length
    for (const w of waiters) w.resolve()
    this.#added(byDest)
  }

  /** @internal by the reader */
  ackIds(destination: string, ids: number[]): void {
    const q = this.#ackQueue.get(destination)
    if (q) for (const id of ids) q.push(id)
    else this.#ackQueue.set(destination, ids.slice())
    if (!this.#ackScheduled) {
      this.#ackScheduled = true
      setImmediate(() => this.#commitAcks())
    }
  }

  #commitAcks(): void {
    this.#ackScheduled = false
    if (this.#closed || this.#ackQueue.size === 0) return
    const all = this.#ackQueue
    this.#ackQueue = new Map()
    let n = 0
    this.db.transaction(() => {
      for (const [dest, ids] of all) {
        // With one destination, acked ids come in long consecutive runs: one range
        // delete each instead of a statement per row.
        ids.sort((a, b) => a - b)
        let start = 0
        for (let i = 1; i <= ids.length; i++) {
          if (i < ids.length && ids[i] === ids[i - 1]! + 1) continue
          if (i - start === 1) this.#delete.run(ids[start])
          else this.#deleteRange.run(dest, ids[start], ids[i - 1])
          start = i
        }
        this.counts.set(dest, (this.counts.get(dest) ?? 0) - ids.length)
        n += ids.length
      }
    })()
    this.#pending -= n
    this.#stats.acked += n
  }

  /** @internal by the reader: rows moved to dead letters by retention. */
  retired(destination: string, n: number): void {
    this.counts.set(destination, (this.counts.get(destination) ?? 0) - n)
    this.#pending -= n
    this.#stats.retentionDeadLettered += n
  }

  reader(destination: string): SpoolReader {
    return new SqliteReader(this, destination)
  }

  replaySync(filter: DeadLetterFilter, known: ReadonlySet<string>): { replayed: number; skipped: number } {
    return this.deadLetters.replay(filter, known)
  }

  stats(): SpoolStats {
    return { type: 'sqlite', ...this.#stats, pending: this.#pending }
  }

  async purge(destinations: readonly string[], match: (entry: { destination: string; ref: unknown; event: FirstpartyEvent; userKey: string; ledger?: LedgerDraft | undefined }) => boolean): Promise<number> {
    if (this.#closed || destinations.length === 0) return 0
    // Pending appends and acks first: an acked row is gone, not "erased" a second time.
    this.#commitAppends()
    this.#commitAcks()
    const select = this.db.prepare(`SELECT id, ukey, body, dest, meta FROM spool WHERE id > ? AND dest IN (${destinations.map(() => '?').join(',')}) ORDER BY id LIMIT 1000`).raw(true)
    const del = this.db.prepare('DELETE FROM spool WHERE id = ?')
    let after = 0
    let n = 0
    for (;;) {
      const rows = select.all(after, ...destinations) as Array<[number, string, string, string, string | null]>
      if (rows.length === 0) break
      after = rows[rows.length - 1]![0]
      const doomed = rows.filter((r) => match({ destination: r[3], ref: r[0], event: JSON.parse(r[2]) as FirstpartyEvent, userKey: r[1], ledger: r[4] ? (JSON.parse(r[4]) as LedgerDraft) : undefined }))
      if (doomed.length) {
        this.db.transaction(() => {
          for (const r of doomed) {
            del.run(r[0])
            this.fresh.delete(r[0])
          }
        })()
        n += doomed.length
      }
    }
    if (n) this.#recount()
    return n
  }

  async close(): Promise<void> {
    if (this.#closed) return
    if (this.#appendQueue.length) this.#commitAppends()
    this.#commitAcks()
    this.#closed = true
    this.db.close()
  }
}

class SqliteReader implements SpoolReader {
  readonly destination: string
  readonly #spool: SqliteSpool
  readonly #select: Statement
  /** Highest id handed out: the next read starts after it. Rows up to it are in flight or acked. */
  #cursor = 0
  /** Handed out and neither acked nor released. */
  #outstanding = 0

  constructor(spool: SqliteSpool, destination: string) {
    this.#spool = spool
    this.destination = destination
    this.#select = spool.db.prepare('SELECT id, ukey, accepted_at, attempts, bytes, body, meta FROM spool WHERE dest = ? AND id > ? ORDER BY id LIMIT ?').raw(true)
  }

  async read(max: number): Promise<SpooledEvent[]> {
    this.#spool.refreshIfChangedElsewhere()
    if (max <= 0 || (this.#spool.counts.get(this.destination) ?? 0) <= this.#outstanding) return []
    const rows = this.#select.all(this.destination, this.#cursor, max) as Array<[number, string, number, number, number, string, string | null]>
    if (rows.length === 0) return []
    this.#cursor = rows[rows.length - 1]![0]
    this.#outstanding += rows.length
    const out: SpooledEvent[] = new Array(rows.length)
    const fresh = this.#spool.fresh
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!
      let event = fresh.get(r[0])
      if (event) fresh.delete(r[0])
      else event = JSON.parse(r[5]) as FirstpartyEvent
      out[i] = { ref: r[0], userKey: r[1], acceptedAt: r[2], attempts: r[3], bytes: r[4], event }
      if (r[6]) out[i]!.ledger = JSON.parse(r[6]) as LedgerDraft
    }
    return out
  }

  ack(refs: unknown[]): void {
    this.#outstanding -= refs.length
    this.#spool.ackIds(this.destination, refs as number[])
  }

  release(refs: unknown[]): void {
    // The rows stay in the file: the next start reads them again (at-least-once).
    this.#outstanding -= refs.length
  }

  async enforceRetention(retention: { maxEvents?: number; maxAgeMs?: number }, now: number): Promise<number> {
    const db = this.#spool.db
    const dl = this.#spool.deadLetters
    let moved = 0
    const retire = (rows: Array<[number, string, number, number, number, string]>, message: string) => {
      if (rows.length === 0) return
      db.transaction(() => {
        dl.addRaw(rows.map((r) => ({ dest: this.destination, body: r[5], attempts: r[3], acceptedAt: r[2] })), 'DELIVERY_RETENTION', message, now)
        const del = db.prepare('DELETE FROM spool WHERE id = ?')
        for (const r of rows) del.run(r[0])
      })()
      this.#spool.retired(this.destination, rows.length)
      moved += rows.length
    }
    if (retention.maxAgeMs !== undefined) {
      const cutoff = now - retention.maxAgeMs
      for (;;) {
        const rows = this.#select.all(this.destination, this.#cursor, 500) as Array<[number, string, number, number, number, string]>
        const old = rows.filter((r) => r[2] < cutoff)
        retire(old, `waited longer than spool.retention.maxAgeMs (${retention.maxAgeMs} ms) for this destination`)
        if (old.length < 500) break
      }
    }
    if (retention.maxEvents !== undefined) {
      const unread = (this.#spool.counts.get(this.destination) ?? 0) - this.#outstanding
      const excess = unread - retention.maxEvents
      if (excess > 0) {
        const rows = this.#select.all(this.destination, this.#cursor, excess) as Array<[number, string, number, number, number, string]>
        retire(rows, `more than spool.retention.maxEvents (${retention.maxEvents}) events waited for this destination`)
      }
    }
    return moved
  }
}
