/**
 * The spool: where accepted events wait between intake and delivery. The memory
 * "spool" is no spool at all — events go straight into each DestinationQueue, as they
 * always did. A durable spool (SQLite, Redis Streams) stores one entry per (event,
 * destination) before the HTTP 200 goes out, and a consumer per destination feeds that
 * destination's DestinationQueue from it, acking an entry once it is delivered or
 * dead-lettered. Progress is per destination: a dead destination's backlog grows (up
 * to its retention) while every other destination's consumer carries on.
 */
import type { DeadLetter, DeadLetterFilter, DeadLetterStore } from '../deliver/dead-letters.js'
import type { FirstpartyEvent } from '../normalize/schema.js'
import type { LedgerDraft } from '../privacy/ledger.js'

/** One event for one destination, as routed at intake (after policies and consent). */
export interface SpoolEntry {
  destination: string
  event: FirstpartyEvent
  /** JSON size of the event (for batch maxBytes). */
  bytes: number
  acceptedAt: number
  /** userId, else anonymousId: the key of per-user ordering. */
  userKey: string
  /** The sharing ledger's draft, stored beside the event (when the ledger is on). */
  ledger?: LedgerDraft
}

/** An entry handed to a consumer; `ref` is what it acks. */
export interface SpooledEvent {
  ref: unknown
  event: FirstpartyEvent
  bytes: number
  acceptedAt: number
  attempts: number
  userKey: string
  ledger?: LedgerDraft
}

export interface SpoolReader {
  readonly destination: string
  /**
   * Up to `max` entries this reader has not handed out yet, oldest first (for Redis:
   * first its own pending entries after a restart, then entries claimed from crashed
   * consumers, then new ones).
   */
  read(max: number): Promise<SpooledEvent[]>
  /** The entries are settled (delivered or dead-lettered): remove them from the spool. */
  ack(refs: unknown[]): void
  /**
   * Entries handed out but still unsettled at close: a durable backend keeps them (the
   * next start, or another consumer, delivers them).
   */
  release(refs: unknown[]): void
  /**
   * Move what exceeds retention — unread entries beyond `maxEvents`, or older than
   * `maxAgeMs` — to dead letters (DELIVERY_RETENTION). Returns how many moved.
   */
  enforceRetention(retention: { maxEvents?: number; maxAgeMs?: number }, now: number): Promise<number>
  /** Keep the entries this reader holds from being claimed by another consumer (Redis). */
  heartbeat?(refs: unknown[]): Promise<void>
}

export interface SpoolStats {
  type: 'sqlite' | 'redis'
  /** Entries stored (one per event and destination) since start. */
  appended: number
  /** Entries removed after delivery or dead-lettering since start. */
  acked: number
  /** Entries moved to dead letters by retention since start. */
  retentionDeadLettered: number
  /** Requests refused with spool_full since start. */
  rejectedFull: number
  /** Entries waiting (unread or in flight), all destinations; for Redis as last measured. */
  pending: number
}

/** Dead letters whose methods may answer later (Redis); the SQLite store answers at once. */
export interface AsyncDeadLetterStore {
  add(entries: Array<Omit<DeadLetter, 'id'>>): Promise<void>
  list(filter?: DeadLetterFilter): Promise<DeadLetter[]>
  count(filter?: Omit<DeadLetterFilter, 'limit'>): Promise<number>
  /** Delete matching entries; returns how many this call deleted. */
  purge(filter?: DeadLetterFilter): Promise<number>
  /**
   * Move matching entries back into the spool of their destination, atomically per
   * entry: an entry is spooled by exactly one replay, however many run (idempotent).
   * Entries of destinations not in `known` (when given) stay.
   */
  replay(filter?: DeadLetterFilter, known?: ReadonlySet<string>): Promise<{ replayed: number; skipped: number }>
}

export interface Spool {
  readonly type: 'sqlite' | 'redis'
  /**
   * Dead letters in the same backend, for the delivery queues (which only `add`). The
   * SQLite store answers every method; the Redis store's reads throw — use
   * `deadLettersAsync` there.
   */
  readonly deadLetters: DeadLetterStore
  readonly deadLettersAsync: AsyncDeadLetterStore
  /** Replay answered at once (SQLite); undefined where only `deadLettersAsync.replay` works. */
  replaySync?(filter: DeadLetterFilter, known: ReadonlySet<string>): { replayed: number; skipped: number }
  /**
   * When storing `n` more entries would pass `maxEvents`: the seconds a client should
   * wait (for Retry-After); otherwise 0.
   */
  fullFor(n: number): number
  /** Store the entries durably. Resolves once they are stored; rejects when they are not. */
  append(entries: SpoolEntry[]): Promise<void>
  reader(destination: string): SpoolReader
  /** Called with a destination name whenever this process appended entries for it. */
  onAppend(fn: (destination: string) => void): void
  stats(): SpoolStats
  /**
   * Delete the waiting entries of these destinations that `match` picks (a deletion
   * request or a suppression). Entries already handed to a delivery queue are the
   * queue's to remove. Returns how many were deleted.
   */
  purge(destinations: readonly string[], match: (entry: { destination: string; ref: unknown; event: FirstpartyEvent; userKey: string; ledger?: LedgerDraft | undefined }) => boolean): Promise<number>
  close(): Promise<void>
}

/** The key of per-user ordering. */
export function userKeyOf(ev: { userId?: string | null; anonymousId?: string | null }): string {
  return ev.userId ?? ev.anonymousId ?? ''
}
