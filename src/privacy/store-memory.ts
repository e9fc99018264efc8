/**
 * The privacy store in process memory: for tests, and for routers without a `privacy`
 * block (the suppression list and deletion receipts then last as long as the process).
 * Same semantics as the SQLite and PostgreSQL stores, same checks on what comes in,
 * same rebuilt objects coming out, so code tested against it behaves the same on them.
 *
 * The ledger is bounded: past `maxLedgerEntries` the entries recorded first are evicted
 * (counted in `evicted`). Entries are kept as the compact rows the SQL stores write (the
 * fields as one JSON string), not as object graphs: 100 000 entries stay a few tens of MB.
 */
import {
  deleteSubjectOf, instant, lastPerKey, ledgerFilterOf, ledgerRow, matchesSubject, receiptFilterOf, receiptOrder, receiptRow, suppressionKey,
  suppressionRow, toLedgerEntry, toReceipt, toSuppression, type LedgerRow, type ReceiptRow, type SuppressionRow,
} from './store-common.js'
import type { DeletionReceipt, LedgerEntry, LedgerQuery, PrivacyStore, ReceiptQuery, Suppression } from './types.js'

export interface MemoryPrivacyStoreOptions {
  /**
   * Ledger entries kept; past this the oldest recorded are evicted first.
   * @default 100_000
   * @example new MemoryPrivacyStore({ maxLedgerEntries: 1000 })
   */
  maxLedgerEntries?: number
}

interface Seq<T> {
  seq: number
  row: T
}

const keyOf = (kind: string, value: string) => `${kind}\u0000${value}`

export class MemoryPrivacyStore implements PrivacyStore {
  readonly type = 'memory' as const
  readonly maxLedgerEntries: number
  #state: 'new' | 'open' | 'closed' = 'new'
  #seq = 0
  readonly #suppressions = new Map<string, SuppressionRow>()
  readonly #receipts = new Map<string, ReceiptRow>()
  /** Recorded order; entries before `#head` are evicted and wait for the next compaction. */
  #ledger: Array<Seq<LedgerRow>> = []
  #head = 0
  #evicted = 0

  constructor(options: MemoryPrivacyStoreOptions = {}) {
    const max = options.maxLedgerEntries ?? 100_000
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`maxLedgerEntries must be a positive integer, got ${String(max)}`)
    this.maxLedgerEntries = max
  }

  /** Ledger entries evicted because the ledger held `maxLedgerEntries`. */
  get evicted(): number {
    return this.#evicted
  }

  #check(): void {
    if (this.#state !== 'open') throw new Error(this.#state === 'new' ? 'privacy store: call open() first' : 'privacy store: closed')
  }

  async open(): Promise<void> {
    if (this.#state === 'closed') throw new Error('privacy store: closed')
    this.#state = 'open'
  }

  async close(): Promise<void> {
    this.#state = 'closed'
  }

  async suppressionAdd(entries: Suppression[]): Promise<number> {
    this.#check()
    const rows = entries.map(suppressionRow)
    let added = 0
    for (const r of rows) {
      const key = keyOf(r.kind, r.value)
      if (this.#suppressions.has(key)) continue
      this.#suppressions.set(key, r)
      added++
    }
    return added
  }

  async suppressionRemove(entries: Array<Pick<Suppression, 'kind' | 'value'>>): Promise<number> {
    this.#check()
    let removed = 0
    for (const k of entries.map(suppressionKey)) if (this.#suppressions.delete(keyOf(k.kind, k.value))) removed++
    return removed
  }

  async suppressionList(): Promise<Suppression[]> {
    this.#check()
    return [...this.#suppressions.values()].map(toSuppression)
  }

  async receiptsPut(receipts: DeletionReceipt[]): Promise<void> {
    this.#check()
    for (const row of lastPerKey(receipts.map(receiptRow))) this.#receipts.set(keyOf(row.requestId, row.target), row)
  }

  async receiptsList(query?: ReceiptQuery): Promise<DeletionReceipt[]> {
    this.#check()
    const f = receiptFilterOf(query)
    const out: ReceiptRow[] = []
    for (const r of this.#receipts.values()) {
      if (f.requestId !== null && r.requestId !== f.requestId) continue
      if (f.target !== null && r.target !== f.target) continue
      if (f.status !== null && r.status !== f.status) continue
      if (!matchesSubject(f, r)) continue
      out.push(r)
    }
    out.sort(receiptOrder)
    return (f.limit < 0 ? out : out.slice(0, f.limit)).map(toReceipt)
  }

  async ledgerAdd(entries: LedgerEntry[]): Promise<void> {
    this.#check()
    // Every entry is checked before any is recorded: a batch goes in whole or not at all.
    const rows = entries.map(ledgerRow)
    for (const row of rows) this.#ledger.push({ seq: ++this.#seq, row })
    const over = this.#ledger.length - this.#head - this.maxLedgerEntries
    if (over > 0) {
      this.#head += over
      this.#evicted += over
      // Compact once the dead prefix outweighs the live part: amortized O(1) per entry.
      if (this.#head >= this.#ledger.length - this.#head) {
        this.#ledger = this.#ledger.slice(this.#head)
        this.#head = 0
      }
    }
  }

  async ledgerQuery(query: LedgerQuery): Promise<LedgerEntry[]> {
    this.#check()
    const f = ledgerFilterOf(query)
    const out: Array<Seq<LedgerRow>> = []
    for (let i = this.#head; i < this.#ledger.length; i++) {
      const s = this.#ledger[i]!
      const r = s.row
      if (f.destination !== null && r.destination !== f.destination) continue
      if (f.since !== null && r.deliveredAt < f.since) continue
      if (f.until !== null && r.deliveredAt > f.until) continue
      if (!matchesSubject(f, r)) continue
      out.push(s)
    }
    out.sort((a, b) => b.row.deliveredAt - a.row.deliveredAt || b.seq - a.seq)
    return (f.limit < 0 ? out : out.slice(0, f.limit)).map((s) => toLedgerEntry(s.row))
  }

  async ledgerDelete(subject: { userId?: string; anonymousId?: string; emailHash?: string }): Promise<number> {
    this.#check()
    const f = deleteSubjectOf(subject)
    return this.#removeWhere((r) => matchesSubject(f, r))
  }

  async ledgerPrune(before: string): Promise<number> {
    this.#check()
    const cutoff = instant(before, 'ledgerPrune before')
    return this.#removeWhere((r) => r.deliveredAt < cutoff)
  }

  #removeWhere(drop: (r: LedgerRow) => boolean): number {
    const kept: Array<Seq<LedgerRow>> = []
    for (let i = this.#head; i < this.#ledger.length; i++) {
      const s = this.#ledger[i]!
      if (!drop(s.row)) kept.push(s)
    }
    const removed = this.#ledger.length - this.#head - kept.length
    this.#ledger = kept
    this.#head = 0
    return removed
  }
}
