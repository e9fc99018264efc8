/**
 * The delivery loop of a durable spool: one consumer per destination reads that
 * destination's entries and feeds its DestinationQueue — which keeps doing the
 * batching, concurrency, timeouts, retries and dead letters — and acks each entry once
 * the queue settles it (delivered or dead-lettered). The consumer reads only while the
 * queue has room (`maxBufferedEvents − held`), so memory stays flat however long a
 * destination is down: the backlog waits in the spool, bounded by retention.
 *
 * Per-user ordering: a user's next event is handed to the queue only when the previous
 * one is settled, so a user's events reach the destination in spool order, one in
 * flight at a time (a retry of one holds back that user's later events, and no other
 * user's). With Redis, entries of one user read by different processes are not
 * ordered against each other: the guarantee is per process.
 */
import type { DestinationQueue, QueueItem } from '../deliver/destination-queue.js'
import type { Logger } from '../logger.js'
import type { SpooledEvent, SpoolReader } from './types.js'

export interface ConsumerOptions {
  reader: SpoolReader
  queue: DestinationQueue
  /** The queue's maxBufferedEvents: how many entries may be read and not settled. */
  capacity: number
  orderPerUser: boolean
  retention: { maxEvents?: number; maxAgeMs?: number } | undefined
  pollMs: number
  /** How often retention is enforced and (Redis) held entries are kept claimed. @default 1000 */
  maintenanceMs?: number
  logger: Logger
  onRetention: (n: number) => void
}

const READ_CHUNK = 2000

export class SpoolConsumer {
  readonly #o: ConsumerOptions
  #running = false
  #stopped = false
  #loop: Promise<void> | undefined
  #wake: (() => void) | undefined
  /** A poke arrived while the loop was busy: look again before sleeping. */
  #dirty = false
  #wakeTimer: NodeJS.Timeout | undefined
  #maintenance: NodeJS.Timeout | undefined
  /** Read and not yet settled (in the queue, or waiting for their user's turn). */
  #outstanding = 0
  /** Per-user ordering: a user with an event in the queue, and the events waiting behind it. */
  readonly #busy = new Map<string, SpooledEvent[]>()
  /** Refs of entries in the queue, for the Redis heartbeat. */
  readonly #held = new Set<unknown>()

  constructor(options: ConsumerOptions) {
    this.#o = options
  }

  get outstanding(): number {
    return this.#outstanding
  }

  start(): void {
    if (this.#running) return
    this.#running = true
    this.#loop = this.#run()
    const every = this.#o.maintenanceMs ?? 1000
    this.#maintenance = setInterval(() => void this.#maintain(), every)
    this.#maintenance.unref()
  }

  /** New entries may be there (an append of this process, a replay, a settled event). */
  poke(): void {
    this.#dirty = true
    const w = this.#wake
    if (w) {
      this.#wake = undefined
      w()
    }
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const room = this.#o.capacity - this.#outstanding
      let got = 0
      if (room > 0) {
        try {
          const entries = await this.#o.reader.read(Math.min(room, READ_CHUNK))
          got = entries.length
          if (got && !this.#stopped) this.#take(entries)
          else if (got) this.#o.reader.release(entries.map((e) => e.ref))
        } catch (err) {
          this.#o.logger.error({ destination: this.#o.queue.name, err: (err as Error).message }, 'spool read failed; retrying')
        }
      }
      if (got > 0 && this.#o.capacity - this.#outstanding > 0) continue
      if (this.#dirty && this.#o.capacity - this.#outstanding > 0) {
        this.#dirty = false
        continue
      }
      // Nothing new, or the queue is full: sleep until poked or the poll interval passes.
      await new Promise<void>((resolve) => {
        this.#wake = resolve
        this.#wakeTimer = setTimeout(() => this.poke(), this.#o.pollMs)
      })
      clearTimeout(this.#wakeTimer)
      this.#dirty = false
    }
  }

  #take(entries: SpooledEvent[]): void {
    this.#outstanding += entries.length
    if (!this.#o.orderPerUser) {
      for (const e of entries) this.#enqueue(e)
      return
    }
    for (const e of entries) {
      const waiting = this.#busy.get(e.userKey)
      if (waiting) waiting.push(e)
      else {
        this.#busy.set(e.userKey, [])
        this.#enqueue(e)
      }
    }
  }

  #enqueue(e: SpooledEvent): void {
    this.#held.add(e.ref)
    const item: QueueItem = { event: e.event, bytes: e.bytes, acceptedAt: e.acceptedAt, attempts: e.attempts, ref: e }
    if (e.ledger) item.ledger = e.ledger
    this.#o.queue.enqueue(item)
  }

  /** Whether this entry is in the delivery queue now (it is the queue's to erase). */
  holds(ref: unknown): boolean {
    return this.#held.has(ref)
  }

  /**
   * Entries waiting for their user's turn (per-user ordering) that `match` picks:
   * acked (they are being erased) and never handed to the queue. Returns how many.
   */
  remove(match: (e: SpooledEvent) => boolean): number {
    const refs: unknown[] = []
    for (const [key, list] of this.#busy) {
      const keep = list.filter((e) => !match(e))
      if (keep.length === list.length) continue
      for (const e of list) if (!keep.includes(e)) refs.push(e.ref)
      this.#busy.set(key, keep)
    }
    if (refs.length === 0) return 0
    this.#outstanding -= refs.length
    this.#o.reader.ack(refs)
    return refs.length
  }

  /** The queue's `settled` hook. */
  settled(all: QueueItem[], outcome: 'delivered' | 'dead' | 'released'): void {
    // Events enqueued around the spool (a custom dead-letter store's replay) are not ours.
    const items = all.every((it) => it.ref !== undefined) ? all : all.filter((it) => it.ref !== undefined)
    if (items.length === 0) return
    const refs: unknown[] = new Array(items.length)
    for (let i = 0; i < items.length; i++) {
      const e = items[i]!.ref as SpooledEvent
      refs[i] = e.ref
      this.#held.delete(e.ref)
    }
    this.#outstanding -= items.length
    if (outcome === 'released') this.#o.reader.release(refs)
    else this.#o.reader.ack(refs)
    if (this.#o.orderPerUser && outcome !== 'released') {
      for (const it of items) {
        const key = (it.ref as SpooledEvent).userKey
        const waiting = this.#busy.get(key)
        if (!waiting) continue
        const next = waiting.shift()
        if (next) this.#enqueue(next)
        else this.#busy.delete(key)
      }
    }
    this.poke()
  }

  async #maintain(): Promise<void> {
    if (this.#stopped) return
    try {
      if (this.#o.reader.heartbeat && this.#held.size) await this.#o.reader.heartbeat([...this.#held])
      if (this.#o.retention && (this.#o.retention.maxEvents !== undefined || this.#o.retention.maxAgeMs !== undefined)) {
        const n = await this.#o.reader.enforceRetention(this.#o.retention, Date.now())
        if (n > 0) this.#o.onRetention(n)
      }
    } catch (err) {
      this.#o.logger.error({ destination: this.#o.queue.name, err: (err as Error).message }, 'spool maintenance failed')
    }
  }

  /** Run retention now (tests, and `router.flush()`). */
  maintain(): Promise<void> {
    return this.#maintain()
  }

  /**
   * Stop reading. Entries still waiting for their user's turn never reached the queue:
   * release them now; the queue releases the rest when it closes.
   */
  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#maintenance)
    this.poke()
    await this.#loop
    const waiting: unknown[] = []
    for (const list of this.#busy.values()) for (const e of list) waiting.push(e.ref)
    this.#busy.clear()
    if (waiting.length) {
      this.#outstanding -= waiting.length
      this.#o.reader.release(waiting)
    }
  }
}
