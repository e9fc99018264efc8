/**
 * What the router keeps about privacy operations: the suppression list, deletion
 * receipts and the sharing ledger. One store holds all three (memory, SQLite or
 * PostgreSQL); the router reads the suppression list into memory so intake checks stay
 * synchronous.
 */

/** Who a privacy operation is about. `email` is kept only as its SHA-256 (normalized: trimmed, lower-cased). */
export interface SubjectIds {
  userId?: string
  anonymousId?: string
  email?: string
}

export type SuppressionKind = 'userId' | 'anonymousId' | 'emailHash'

export interface Suppression {
  kind: SuppressionKind
  /** The id, or for `emailHash` the hex SHA-256 of the normalized email. */
  value: string
  /** Why (free text, e.g. "GDPR art. 21 objection, ticket 4411"). */
  reason?: string
  /** ISO 8601. */
  createdAt: string
}

export type ReceiptStatus = 'requested' | 'retrying' | 'succeeded' | 'failed' | 'unsupported'

/** One destination's (or the router's own store's) part of a deletion request. */
export interface DeletionReceipt {
  /** The deletion request this belongs to (one request, one receipt per target). */
  requestId: string
  /** A destination name, or `firstparty:<store>` for what the router keeps (spool, dead letters, ledger). */
  target: string
  /** The subject as given; email as its hash only. */
  subject: { userId?: string; anonymousId?: string; emailHash?: string }
  status: ReceiptStatus
  attempts: number
  /** The last error, when status is retrying or failed. */
  error?: { code: string; message: string }
  /** Counts of what was removed, where the target can tell (e.g. `{ deadLetters: 3 }`). */
  removed?: Record<string, number>
  requestedAt: string
  updatedAt: string
}

export type FieldTreatment = 'raw' | 'hashed' | 'masked'

/** One delivered event, as the ledger records it: never a value, only where it went and what shape. */
export interface LedgerEntry {
  destination: string
  messageId: string
  eventType: string
  /** The event name for track, the page/screen name otherwise, when there is one. */
  event?: string
  userId?: string
  anonymousId?: string
  /** Hex SHA-256 of the normalized email the event carried, when it carried one. */
  emailHash?: string
  /** Every leaf path sent (arrays as `[]`), with how the value went. */
  fields: Array<{ path: string; treatment: FieldTreatment }>
  /** ISO 8601 delivery time. */
  deliveredAt: string
}

/** Store queries name the email by its hash; the router's API takes the plain email and hashes it. */
export interface LedgerQuery {
  userId?: string
  anonymousId?: string
  emailHash?: string
  destination?: string
  /** ISO 8601 bounds on deliveredAt. */
  since?: string
  until?: string
  limit?: number
}

export interface ReceiptQuery {
  requestId?: string
  userId?: string
  anonymousId?: string
  emailHash?: string
  target?: string
  status?: ReceiptStatus
  limit?: number
}

/** The persistence behind privacy operations. Call `open()` once before anything else. */
export interface PrivacyStore {
  readonly type: 'memory' | 'sqlite' | 'postgres'
  /** Create tables if needed. */
  open(): Promise<void>
  close(): Promise<void>

  suppressionAdd(entries: Suppression[]): Promise<number>
  /** Returns how many were removed. */
  suppressionRemove(entries: Array<Pick<Suppression, 'kind' | 'value'>>): Promise<number>
  suppressionList(): Promise<Suppression[]>

  receiptsPut(receipts: DeletionReceipt[]): Promise<void>
  receiptsList(query?: ReceiptQuery): Promise<DeletionReceipt[]>

  ledgerAdd(entries: LedgerEntry[]): Promise<void>
  ledgerQuery(query: LedgerQuery): Promise<LedgerEntry[]>
  /** Delete a subject's entries (an entry matching any given id). Returns how many. */
  ledgerDelete(subject: { userId?: string; anonymousId?: string; emailHash?: string }): Promise<number>
  /** Delete entries delivered before `before` (ISO 8601). Returns how many. */
  ledgerPrune(before: string): Promise<number>
}
