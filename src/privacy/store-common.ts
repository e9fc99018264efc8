/**
 * What the three privacy stores share: checking what comes in, rebuilding what comes
 * out, and the query semantics the memory store implements directly and the SQL stores
 * express as WHERE clauses.
 *
 * Times. Every timestamp is kept as an instant at millisecond precision (INTEGER ms in
 * SQLite, timestamptz in PostgreSQL) and comes back as `Date#toISOString()`: the router
 * writes that form, so it round-trips to the character, and `since`/`until`/ordering
 * compare instants rather than strings (`…12:00:00Z` and `…14:00:00+02:00` are equal).
 *
 * What comes out is rebuilt, never handed through: only the interface's keys, optional
 * ones absent rather than null, `fields` items as fresh `{ path, treatment }`, `removed`
 * through `Object.fromEntries` (an own `__proto__` key stays a key). A stored row that
 * cannot be rebuilt (hand-edited, corrupt) throws instead of being silently dropped: an
 * access request must not under-report.
 */
import type {
  DeletionReceipt, FieldTreatment, LedgerEntry, LedgerQuery, ReceiptQuery, ReceiptStatus, Suppression, SuppressionKind,
} from './types.js'

/** `limit` when a query gives none. */
export const DEFAULT_QUERY_LIMIT = 1000

const KINDS: ReadonlySet<string> = new Set<SuppressionKind>(['userId', 'anonymousId', 'emailHash'])
const STATUSES: ReadonlySet<string> = new Set<ReceiptStatus>(['requested', 'retrying', 'succeeded', 'failed', 'unsupported'])
const TREATMENTS: ReadonlySet<string> = new Set<FieldTreatment>(['raw', 'hashed', 'masked'])

/** A calendar date, or a date-time with seconds optional and a zone required (a zoneless time would be local time). */
const ISO = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/

/** An ISO 8601 string → epoch ms; anything else throws a TypeError naming `what`. */
export function instant(value: unknown, what: string): number {
  const ms = typeof value === 'string' && ISO.test(value) ? Date.parse(value) : NaN
  if (!Number.isFinite(ms)) throw new TypeError(`${what} must be an ISO 8601 date-time with a zone (e.g. 2024-03-01T12:00:00.000Z), got ${describe(value)}`)
  return ms
}

export const iso = (ms: number): string => new Date(ms).toISOString()

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)
  return v === null ? 'null' : typeof v
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new TypeError(`${what} must be a string, got ${describe(v)}`)
  return v
}

/** Optional ids and texts: undefined and null mean absent. */
function optStr(v: unknown, what: string): string | null {
  return v === undefined || v === null ? null : str(v, what)
}

/** `limit` → a row count, or -1 for none (Infinity). */
export function limitOf(limit: unknown): number {
  if (limit === undefined) return DEFAULT_QUERY_LIMIT
  if (limit === Infinity) return -1
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer or Infinity, got ${String(limit)}`)
  return limit
}

/** The subject ids a query or delete names (undefined and null mean not given). */
export interface SubjectFilter {
  userId: string | null
  anonymousId: string | null
  emailHash: string | null
}

export function subjectOf(q: { userId?: unknown; anonymousId?: unknown; emailHash?: unknown }, what: string): SubjectFilter {
  return {
    userId: optStr(q.userId, `${what}.userId`),
    anonymousId: optStr(q.anonymousId, `${what}.anonymousId`),
    emailHash: optStr(q.emailHash, `${what}.emailHash`),
  }
}

export const hasSubject = (s: SubjectFilter): boolean => s.userId !== null || s.anonymousId !== null || s.emailHash !== null

/** A person is known by several ids: a record matches when it carries any of the ids given. */
export function matchesSubject(s: SubjectFilter, r: { userId: string | null; anonymousId: string | null; emailHash: string | null }): boolean {
  if (!hasSubject(s)) return true
  return (s.userId !== null && r.userId === s.userId) || (s.anonymousId !== null && r.anonymousId === s.anonymousId) || (s.emailHash !== null && r.emailHash === s.emailHash)
}

/** `ledgerDelete` without an id would delete everyone's entries: refused. */
export function deleteSubjectOf(subject: { userId?: unknown; anonymousId?: unknown; emailHash?: unknown } | undefined): SubjectFilter {
  const s = subjectOf(subject ?? {}, 'ledgerDelete subject')
  if (!hasSubject(s)) throw new TypeError('ledgerDelete needs a userId, anonymousId or emailHash')
  return s
}

// ---- suppressions ------------------------------------------------------------------

export interface SuppressionRow {
  kind: SuppressionKind
  value: string
  reason: string | null
  createdAt: number
}

export function suppressionRow(s: Suppression, i: number): SuppressionRow {
  const what = `suppression ${i}`
  if (typeof s !== 'object' || s === null) throw new TypeError(`${what} must be an object`)
  if (!KINDS.has(s.kind)) throw new TypeError(`${what}.kind must be userId, anonymousId or emailHash, got ${describe(s.kind)}`)
  return { kind: s.kind, value: str(s.value, `${what}.value`), reason: optStr(s.reason, `${what}.reason`), createdAt: instant(s.createdAt, `${what}.createdAt`) }
}

export function suppressionKey(entry: Pick<Suppression, 'kind' | 'value'>, i: number): { kind: SuppressionKind; value: string } {
  const what = `suppression ${i}`
  if (typeof entry !== 'object' || entry === null) throw new TypeError(`${what} must be an object`)
  if (!KINDS.has(entry.kind)) throw new TypeError(`${what}.kind must be userId, anonymousId or emailHash, got ${describe(entry.kind)}`)
  return { kind: entry.kind, value: str(entry.value, `${what}.value`) }
}

export function toSuppression(r: { kind: string; value: string; reason: string | null; createdAt: number }): Suppression {
  if (!KINDS.has(r.kind)) throw new Error(`corrupt suppression row: kind ${describe(r.kind)}`)
  const out: Suppression = { kind: r.kind as SuppressionKind, value: r.value, createdAt: iso(r.createdAt) }
  if (r.reason !== null) out.reason = r.reason
  return out
}

// ---- receipts ----------------------------------------------------------------------

export interface ReceiptRow {
  requestId: string
  target: string
  userId: string | null
  anonymousId: string | null
  emailHash: string | null
  status: ReceiptStatus
  attempts: number
  errorCode: string | null
  errorMessage: string | null
  /** JSON of `removed`, or null when absent. */
  removed: string | null
  requestedAt: number
  updatedAt: number
}

export function receiptRow(r: DeletionReceipt, i: number): ReceiptRow {
  const what = `receipt ${i}`
  if (typeof r !== 'object' || r === null) throw new TypeError(`${what} must be an object`)
  if (!STATUSES.has(r.status)) throw new TypeError(`${what}.status must be one of ${[...STATUSES].join(', ')}, got ${describe(r.status)}`)
  if (!Number.isInteger(r.attempts) || r.attempts < 0 || r.attempts > 2_147_483_647) throw new TypeError(`${what}.attempts must be a non-negative 32-bit integer`)
  if (typeof r.subject !== 'object' || r.subject === null) throw new TypeError(`${what}.subject must be an object`)
  const s = subjectOf(r.subject, `${what}.subject`)
  let errorCode: string | null = null
  let errorMessage: string | null = null
  if (r.error !== undefined && r.error !== null) {
    if (typeof r.error !== 'object') throw new TypeError(`${what}.error must be { code, message }`)
    errorCode = str(r.error.code, `${what}.error.code`)
    errorMessage = str(r.error.message, `${what}.error.message`)
  }
  let removed: string | null = null
  if (r.removed !== undefined && r.removed !== null) {
    if (typeof r.removed !== 'object' || Array.isArray(r.removed)) throw new TypeError(`${what}.removed must be an object of counts`)
    for (const [k, v] of Object.entries(r.removed)) {
      if (!Number.isFinite(v)) throw new TypeError(`${what}.removed.${k} must be a number`)
    }
    removed = JSON.stringify(Object.fromEntries(Object.entries(r.removed)))
  }
  return {
    requestId: str(r.requestId, `${what}.requestId`),
    target: str(r.target, `${what}.target`),
    userId: s.userId,
    anonymousId: s.anonymousId,
    emailHash: s.emailHash,
    status: r.status,
    attempts: r.attempts,
    errorCode,
    errorMessage,
    removed,
    requestedAt: instant(r.requestedAt, `${what}.requestedAt`),
    updatedAt: instant(r.updatedAt, `${what}.updatedAt`),
  }
}

/** `removed` as stored (JSON text, or already parsed by pg) → a fresh plain object of numbers. */
function removedOf(v: unknown): Record<string, number> {
  const parsed: unknown = typeof v === 'string' ? JSON.parse(v) : v
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('corrupt receipt row: removed is not an object')
  const entries = Object.entries(parsed)
  for (const [, n] of entries) if (typeof n !== 'number') throw new Error('corrupt receipt row: a removed count is not a number')
  return Object.fromEntries(entries) as Record<string, number>
}

export function toReceipt(r: Omit<ReceiptRow, 'removed' | 'status'> & { status: string; removed: unknown }): DeletionReceipt {
  if (!STATUSES.has(r.status)) throw new Error(`corrupt receipt row: status ${describe(r.status)}`)
  const subject: DeletionReceipt['subject'] = {}
  if (r.userId !== null) subject.userId = r.userId
  if (r.anonymousId !== null) subject.anonymousId = r.anonymousId
  if (r.emailHash !== null) subject.emailHash = r.emailHash
  const out: DeletionReceipt = {
    requestId: r.requestId, target: r.target, subject, status: r.status as ReceiptStatus, attempts: Number(r.attempts),
    requestedAt: iso(r.requestedAt), updatedAt: iso(r.updatedAt),
  }
  if (r.errorCode !== null) out.error = { code: r.errorCode, message: r.errorMessage ?? '' }
  if (r.removed !== null && r.removed !== undefined) out.removed = removedOf(r.removed)
  return out
}

/**
 * Code-point order: what SQLite's BINARY collation and PostgreSQL's `COLLATE "C"` give on
 * UTF-8 text, so every store breaks ties the same way (`<` on JS strings compares UTF-16
 * code units, which differs above U+FFFF).
 */
export function byCodePoint(a: string, b: string): number {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!
    const y = b.codePointAt(i)!
    if (x !== y) return x - y
    if (x > 0xffff) i++
  }
  return a.length - b.length
}

/** Newest request first; one request's receipts by target. */
export const receiptOrder = (a: ReceiptRow, b: ReceiptRow): number => b.requestedAt - a.requestedAt || byCodePoint(a.requestId, b.requestId) || byCodePoint(a.target, b.target)

/** Several puts of one (requestId, target) in a batch: the last wins, as if put one by one. */
export function lastPerKey(rows: ReceiptRow[]): ReceiptRow[] {
  const byKey = new Map<string, ReceiptRow>()
  for (const r of rows) {
    const key = `${r.requestId}\u0000${r.target}`
    byKey.delete(key)
    byKey.set(key, r)
  }
  return byKey.size === rows.length ? rows : [...byKey.values()]
}

export interface ReceiptFilter extends SubjectFilter {
  requestId: string | null
  target: string | null
  status: string | null
  limit: number
}

export function receiptFilterOf(q: ReceiptQuery | undefined): ReceiptFilter {
  const query = q ?? {}
  return {
    ...subjectOf(query, 'receipt query'),
    requestId: optStr(query.requestId, 'receipt query.requestId'),
    target: optStr(query.target, 'receipt query.target'),
    status: optStr(query.status, 'receipt query.status'),
    limit: limitOf(query.limit),
  }
}

// ---- ledger ------------------------------------------------------------------------

export interface LedgerRow {
  destination: string
  messageId: string
  eventType: string
  event: string | null
  userId: string | null
  anonymousId: string | null
  emailHash: string | null
  /** JSON of `[{ path, treatment }]`: only those two keys, whatever the caller's objects held. */
  fields: string
  deliveredAt: number
}

export function ledgerRow(e: LedgerEntry, i: number): LedgerRow {
  const what = `ledger entry ${i}`
  if (typeof e !== 'object' || e === null) throw new TypeError(`${what} must be an object`)
  if (!Array.isArray(e.fields)) throw new TypeError(`${what}.fields must be an array`)
  // The router shares one frozen list per shape of event: its text is built once.
  const known = FIELDS_TEXT.get(e.fields)
  if (known !== undefined) return rowOf(e, what, known)
  // Written by hand: this is the delivery path, and building it directly is several
  // times faster than mapping to fresh objects and JSON.stringify-ing those.
  let fields = '['
  for (let j = 0; j < e.fields.length; j++) {
    const f = e.fields[j]
    if (typeof f !== 'object' || f === null || typeof f.path !== 'string' || !TREATMENTS.has(f.treatment)) {
      throw new TypeError(`${what}.fields[${j}] must be { path: string, treatment: 'raw' | 'hashed' | 'masked' }`)
    }
    fields += `${j ? ',' : ''}{"path":${JSON.stringify(f.path)},"treatment":"${f.treatment}"}`
  }
  fields += ']'
  if (Object.isFrozen(e.fields) && e.fields.every((f) => Object.isFrozen(f))) FIELDS_TEXT.set(e.fields, fields)
  return rowOf(e, what, fields)
}

const FIELDS_TEXT = new WeakMap<object, string>()

function rowOf(e: LedgerEntry, what: string, fields: string): LedgerRow {
  return {
    destination: str(e.destination, `${what}.destination`),
    messageId: str(e.messageId, `${what}.messageId`),
    eventType: str(e.eventType, `${what}.eventType`),
    event: optStr(e.event, `${what}.event`),
    userId: optStr(e.userId, `${what}.userId`),
    anonymousId: optStr(e.anonymousId, `${what}.anonymousId`),
    emailHash: optStr(e.emailHash, `${what}.emailHash`),
    fields,
    deliveredAt: instant(e.deliveredAt, `${what}.deliveredAt`),
  }
}

/** `fields` as stored (JSON text, or already parsed by pg) → fresh `{ path, treatment }` objects. */
export function fieldsOf(v: unknown): LedgerEntry['fields'] {
  const parsed: unknown = typeof v === 'string' ? JSON.parse(v) : v
  if (!Array.isArray(parsed)) throw new Error('corrupt ledger row: fields is not an array')
  const out: LedgerEntry['fields'] = new Array(parsed.length)
  for (let i = 0; i < parsed.length; i++) {
    const f = parsed[i] as { path?: unknown; treatment?: unknown } | null
    if (typeof f !== 'object' || f === null || typeof f.path !== 'string' || typeof f.treatment !== 'string' || !TREATMENTS.has(f.treatment)) {
      throw new Error(`corrupt ledger row: fields[${i}] is not { path, treatment }`)
    }
    out[i] = { path: f.path, treatment: f.treatment as FieldTreatment }
  }
  return out
}

export function toLedgerEntry(r: Omit<LedgerRow, 'fields'> & { fields: unknown }): LedgerEntry {
  const out: LedgerEntry = { destination: r.destination, messageId: r.messageId, eventType: r.eventType, fields: fieldsOf(r.fields), deliveredAt: iso(r.deliveredAt) }
  if (r.event !== null) out.event = r.event
  if (r.userId !== null) out.userId = r.userId
  if (r.anonymousId !== null) out.anonymousId = r.anonymousId
  if (r.emailHash !== null) out.emailHash = r.emailHash
  return out
}

export interface LedgerFilter extends SubjectFilter {
  destination: string | null
  since: number | null
  until: number | null
  limit: number
}

export function ledgerFilterOf(q: LedgerQuery | undefined): LedgerFilter {
  const query = q ?? {}
  return {
    ...subjectOf(query, 'ledger query'),
    destination: optStr(query.destination, 'ledger query.destination'),
    since: query.since === undefined || query.since === null ? null : instant(query.since, 'ledger query.since'),
    until: query.until === undefined || query.until === null ? null : instant(query.until, 'ledger query.until'),
    limit: limitOf(query.limit),
  }
}
