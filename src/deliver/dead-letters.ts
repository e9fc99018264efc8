/**
 * Dead letters: events a destination could not take, kept with the reason so they can
 * be listed and replayed. The in-memory store is bounded; a durable store (SQLite,
 * Redis) plugs in through the same interface.
 */
import { randomUUID } from 'node:crypto'
import type { DeliveryErrorCode } from '../errors.js'
import type { FirstpartyEvent } from '../normalize/schema.js'

export interface DeadLetter {
  id: string
  destination: string
  event: FirstpartyEvent
  /** Why the event is here. */
  error: { code: DeliveryErrorCode; message: string; status?: number }
  attempts: number
  /** When the router accepted the event (ms since epoch). */
  acceptedAt: number
  /** When it was dead-lettered (ms since epoch). */
  deadAt: number
}

export interface DeadLetterFilter {
  destination?: string
  code?: DeliveryErrorCode
  /** deadAt ≥ since (ms since epoch) */
  since?: number
  /** deadAt < until (ms since epoch) */
  until?: number
  ids?: string[]
  /** @default 100 */
  limit?: number
}

export interface DeadLetterStore {
  add(entries: Array<Omit<DeadLetter, 'id'>>): void
  list(filter?: DeadLetterFilter): DeadLetter[]
  /** Remove and return the matching entries (used by replay and purge). */
  take(filter?: DeadLetterFilter): DeadLetter[]
  count(filter?: Omit<DeadLetterFilter, 'limit'>): number
  /** Entries that fell out because the store was full, since start. */
  readonly evicted: number
}

function matches(d: DeadLetter, f: DeadLetterFilter, ids: Set<string> | undefined): boolean {
  return (
    (f.destination === undefined || d.destination === f.destination) &&
    (f.code === undefined || d.error.code === f.code) &&
    (f.since === undefined || d.deadAt >= f.since) &&
    (f.until === undefined || d.deadAt < f.until) &&
    (ids === undefined || ids.has(d.id))
  )
}

/**
 * Memory-bounded store. When full, the oldest entry is evicted, counted in `evicted`
 * and reported through `onEvict` (the router logs it and emits `dead_letter_evicted`),
 * so a loss is never silent.
 */
export class MemoryDeadLetterStore implements DeadLetterStore {
  #entries = new Map<string, DeadLetter>()
  #evicted = 0
  readonly maxEntries: number
  readonly onEvict: ((d: DeadLetter) => void) | undefined

  constructor(options: { maxEntries?: number; onEvict?: (d: DeadLetter) => void } = {}) {
    this.maxEntries = options.maxEntries ?? 10_000
    this.onEvict = options.onEvict
  }

  get evicted(): number {
    return this.#evicted
  }

  add(entries: Array<Omit<DeadLetter, 'id'>>): void {
    for (const e of entries) {
      const d = { id: randomUUID(), ...e }
      this.#entries.set(d.id, d)
      if (this.#entries.size > this.maxEntries) {
        const oldest = this.#entries.values().next().value as DeadLetter
        this.#entries.delete(oldest.id)
        this.#evicted++
        this.onEvict?.(oldest)
      }
    }
  }

  list(filter: DeadLetterFilter = {}): DeadLetter[] {
    const out: DeadLetter[] = []
    const limit = filter.limit ?? 100
    const ids = filter.ids ? new Set(filter.ids) : undefined
    for (const d of this.#entries.values()) {
      if (out.length >= limit) break
      if (matches(d, filter, ids)) out.push(d)
    }
    return out
  }

  take(filter: DeadLetterFilter = {}): DeadLetter[] {
    const out = this.list({ ...filter, limit: filter.limit ?? Infinity })
    for (const d of out) this.#entries.delete(d.id)
    return out
  }

  count(filter: Omit<DeadLetterFilter, 'limit'> = {}): number {
    return this.list({ ...filter, limit: Infinity }).length
  }
}
