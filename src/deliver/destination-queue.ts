/**
 * One destination's delivery: buffer → batches → p-queue (concurrency, rate limit) →
 * send with a timeout → retry with backoff, or dead letters.
 *
 * Every event the queue owns is counted in `held` from enqueue until it is delivered
 * or dead-lettered; that one number bounds memory (maxBufferedEvents) and tells
 * close() when the destination is drained. A batch lives in `#live` while it is
 * queued, in flight or waiting for a retry, so shutdown can account for each event
 * exactly once even when a send that was given up on resolves later.
 */
import PQueue from 'p-queue'
import type { Got } from 'got'
import type { DeliveryErrorCode } from '../errors.js'
import type { Logger } from '../logger.js'
import type { FirstpartyEvent } from '../normalize/schema.js'
import type { DestinationContext, DestinationDefinition, SendResult } from '../plugin.js'
import type { DeadLetterStore } from './dead-letters.js'
import type { LedgerDraft } from '../privacy/ledger.js'
import { backoffDelay, classifyError, type Classified, type RetryOptions } from './retry.js'

export interface DeliveryOptions {
  /** Batches in flight at once. @default 4 */
  concurrency: number
  /** At most `count` sends per `intervalMs`. @default unlimited */
  rateLimit?: { count: number; intervalMs: number } | undefined
  batch: { maxEvents: number; maxBytes: number; maxWaitMs: number }
  retry: RetryOptions
  /** Events held (buffered, in flight, waiting to retry) before new ones overflow to dead letters. @default 10_000 */
  maxBufferedEvents: number
  /** A send that takes longer is aborted and retried. @default 10_000 */
  timeoutMs: number
}

export interface QueueItem {
  event: FirstpartyEvent
  /** JSON size of the event, for maxBytes. */
  bytes: number
  /** When the router accepted the event (ms). */
  acceptedAt: number
  attempts: number
  /** The spool's handle for this event (acked once it is settled); absent on the memory path. */
  ref?: unknown
  /** What the sharing ledger records once the event is delivered (when the ledger is on). */
  ledger?: LedgerDraft
}

interface Batch {
  items: QueueItem[]
  done: boolean
  abort?: AbortController
  retryTimer?: NodeJS.Timeout
}

export interface DestinationStats {
  /** Events handed to this destination. */
  enqueued: number
  delivered: number
  /** Events sent again after a failure (one per event per retry). */
  retried: number
  /** Events dead-lettered, by reason. */
  deadLettered: Partial<Record<DeliveryErrorCode, number>>
  /** Events not sent to this destination on purpose (the sum of `filteredBy`). */
  filtered: number
  /** Why: `integrations` (the event switched it off), `disabled` (a source policy did), `consent`, `policy` (a destination policy dropped it). */
  filteredBy: Partial<Record<'integrations' | 'disabled' | 'consent' | 'policy' | 'mapping', number>>
  batches: number
  failedSends: number
  /** Events removed before delivery by a deletion request or a suppression. */
  erased: number
  /** Events owned right now (buffered + in flight + waiting to retry). */
  held: number
}

export type QueueEvent =
  | { type: 'delivered'; destination: string; count: number }
  | { type: 'dead_letter'; destination: string; count: number; code: DeliveryErrorCode; message: string }
  | { type: 'retry'; destination: string; count: number; delayMs: number; code: DeliveryErrorCode; status?: number; message: string }

export interface DestinationQueueInit {
  name: string
  plugin: DestinationDefinition
  settings: unknown
  options: DeliveryOptions
  deadLetters: DeadLetterStore
  http: Got
  logger: Logger
  emit: (e: QueueEvent) => void
  /**
   * A durable spool's consumer: told when events leave the queue — delivered,
   * dead-lettered, or (`released`) still unsent at close, which a durable spool keeps
   * for the next start instead of dead-lettering them.
   */
  settled?: (items: QueueItem[], outcome: 'delivered' | 'dead' | 'released') => void
  /** Told of every delivered event (the sharing ledger). */
  delivered?: (items: QueueItem[]) => void
}

class SendTimeout extends Error {
  override name = 'TimeoutError'
}

export class DestinationQueue {
  readonly name: string
  readonly plugin: DestinationDefinition
  readonly settings: unknown
  /** Lives from setup to close; passed to every call as `ctx.state`. */
  readonly state: Record<string, unknown> = {}
  readonly stats: DestinationStats = {
    enqueued: 0, delivered: 0, retried: 0, deadLettered: {}, filtered: 0, filteredBy: {}, batches: 0, failedSends: 0, erased: 0, held: 0,
  }
  readonly #init: DestinationQueueInit
  readonly #o: DeliveryOptions
  readonly #pq: PQueue
  #buffer: QueueItem[] = []
  #bufferBytes = 0
  #timer: NodeJS.Timeout | undefined
  #live = new Set<Batch>()
  #idle: Array<() => void> = []
  #closed = false
  #ready: Promise<void> | undefined
  /** In-flight items erased by `remove()`: dropped if their send fails. */
  #doomed = new Set<QueueItem>()

  constructor(init: DestinationQueueInit) {
    this.#init = init
    this.name = init.name
    this.plugin = init.plugin
    this.settings = init.settings
    this.#o = init.options
    const rl = init.options.rateLimit
    this.#pq = new PQueue({
      concurrency: init.options.concurrency,
      ...(rl ? { intervalCap: rl.count, interval: rl.intervalMs } : {}),
    })
  }

  /** Take an event. Never blocks, never throws: overflow goes to dead letters. */
  enqueue(item: QueueItem): void {
    this.stats.enqueued++
    if (this.#closed) return this.#dead([item], { code: 'DELIVERY_SHUTDOWN', message: 'router is closed' }, false)
    if (this.stats.held >= this.#o.maxBufferedEvents) {
      return this.#dead([item], {
        code: 'DELIVERY_QUEUE_FULL',
        message: `more than maxBufferedEvents (${this.#o.maxBufferedEvents}) events held for this destination`,
      }, false)
    }
    this.stats.held++
    this.#buffer.push(item)
    this.#bufferBytes += item.bytes
    const b = this.#o.batch
    if (this.#buffer.length >= b.maxEvents || this.#bufferBytes >= b.maxBytes) this.#flush(false)
    else this.#timer ??= setTimeout(() => this.#flush(true), b.maxWaitMs)
  }

  /** Cut the buffer into batches and queue them; with `all` false, only full batches. */
  #flush(all: boolean): void {
    // A size-triggered flush keeps the running timer: the events left over are newer
    // than the ones it was armed for, so they still go out within maxWaitMs.
    if (all && this.#timer) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    const { maxEvents, maxBytes, maxWaitMs } = this.#o.batch
    while (this.#buffer.length > 0) {
      let n = 0
      let bytes = 0
      while (n < this.#buffer.length && n < maxEvents && (n === 0 || bytes + this.#buffer[n]!.bytes <= maxBytes)) {
        bytes += this.#buffer[n]!.bytes
        n++
      }
      const full = n === maxEvents || n < this.#buffer.length
      if (!all && !full) break
      const items = this.#buffer.splice(0, n)
      this.#bufferBytes -= bytes
      this.#dispatch({ items, done: false })
    }
    if (this.#buffer.length > 0) this.#timer ??= setTimeout(() => this.#flush(true), maxWaitMs)
    else if (this.#timer) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
  }

  /**
   * Run the plugin's setup once before the first send. A failed setup fails that send
   * (retried like any error) and is tried again on the next one.
   */
  ready(): Promise<void> {
    this.#ready ??= Promise.resolve()
      .then(() => this.plugin.setup?.(this.baseContext()))
      .catch((err: unknown) => {
        this.#ready = undefined
        this.#init.logger.error({ err: (err as Error)?.message ?? String(err) }, 'destination setup failed')
        throw err
      })
    return this.#ready
  }

  /** The context for calls outside a send (setup, close, deleteUser). */
  baseContext(): Omit<DestinationContext, 'signal' | 'attempt'> {
    return { settings: this.settings, http: this.#init.http, logger: this.#init.logger, destination: this.name, state: this.state }
  }

  #dispatch(batch: Batch): void {
    this.#live.add(batch)
    void this.#pq.add(() => this.#send(batch))
  }

  async #send(batch: Batch): Promise<void> {
    if (batch.done) return
    const ac = new AbortController()
    batch.abort = ac
    for (const it of batch.items) it.attempts++
    const attempt = batch.items.reduce((m, it) => Math.max(m, it.attempts), 0)
    if (attempt > 1) this.stats.retried += batch.items.length
    this.stats.batches++
    const timeout = setTimeout(() => ac.abort(new SendTimeout(`no answer within timeoutMs (${this.#o.timeoutMs} ms)`)), this.#o.timeoutMs)
    const ctx: DestinationContext = {
      settings: this.#init.settings,
      http: this.#init.http,
      logger: this.#init.logger,
      signal: ac.signal,
      attempt,
      destination: this.name,
      state: this.state,
    }
    let result: void | SendResult
    try {
      // A plugin that ignores its signal must not hold the slot past the timeout.
      result = await new Promise<void | SendResult>((resolve, reject) => {
        ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true })
        this.ready()
          .then(() => this.plugin.send(batch.items.map((it) => it.event), ctx))
          .then(resolve, reject)
      })
    } catch (err) {
      clearTimeout(timeout)
      if (batch.done) return
      this.stats.failedSends++
      const c = classifyError(err)
      if (err instanceof SendTimeout) c.code = 'DELIVERY_TIMEOUT'
      this.#live.delete(batch)
      batch.done = true
      this.#retryOrDead(batch.items, c)
      return
    }
    clearTimeout(timeout)
    if (batch.done) return
    this.#live.delete(batch)
    batch.done = true
    const rejected = result?.rejected ?? []
    if (rejected.length === 0) return this.#delivered(batch.items)
    const byIndex = new Map(rejected.map((r) => [r.index, r.error]))
    const failed: Array<[QueueItem, Classified]> = []
    batch.items.forEach((it, i) => {
      const e = byIndex.get(i)
      if (e) failed.push([it, classifyError(e)])
    })
    const failedSet = new Set(failed.map(([it]) => it))
    this.#delivered(batch.items.filter((it) => !failedSet.has(it)))
    for (const [it, c] of failed) this.#retryOrDead([it], c)
  }

  #delivered(items: QueueItem[]): void {
    const n = items.length
    if (n === 0) return
    if (this.#doomed.size) for (const it of items) this.#doomed.delete(it)
    this.stats.delivered += n
    this.stats.held -= n
    this.#init.settled?.(items, 'delivered')
    this.#init.delivered?.(items)
    this.#init.emit({ type: 'delivered', destination: this.name, count: n })
    this.#checkIdle()
  }

  #retryOrDead(all: QueueItem[], c: Classified): void {
    const items = this.#withoutDoomed(all)
    if (items.length === 0) return
    if (c.rule !== 'retry') return this.#dead(items, c)
    const now = Date.now()
    const r = this.#o.retry
    const again: QueueItem[] = []
    const exhausted: QueueItem[] = []
    const expired: QueueItem[] = []
    for (const it of items) {
      if (it.attempts >= r.maxAttempts) exhausted.push(it)
      else if (now - it.acceptedAt >= r.maxAgeMs) expired.push(it)
      else again.push(it)
    }
    if (exhausted.length) this.#dead(exhausted, { ...c, code: 'DELIVERY_MAX_ATTEMPTS', message: `${r.maxAttempts} attempts failed; last: ${c.message}` })
    if (expired.length) this.#dead(expired, { ...c, code: 'DELIVERY_MAX_AGE', message: `older than maxAgeMs (${r.maxAgeMs} ms); last: ${c.message}` })
    if (again.length === 0) return
    const attempt = again.reduce((m, it) => Math.max(m, it.attempts), 0)
    const delay = c.retryAfterMs !== undefined ? Math.min(c.retryAfterMs, r.maxRetryAfterMs) : backoffDelay(attempt, r)
    const batch: Batch = { items: again, done: false }
    this.#live.add(batch)
    batch.retryTimer = setTimeout(() => {
      batch.retryTimer = undefined
      this.#live.delete(batch)
      this.#dispatch(batch)
    }, delay)
    this.#init.emit({ type: 'retry', destination: this.name, count: again.length, delayMs: delay, code: c.code, ...(c.status !== undefined ? { status: c.status } : {}), message: c.message })
    this.#init.logger.debug({ destination: this.name, count: again.length, delayMs: delay, code: c.code, status: c.status }, 'retrying')
  }

  /** `owned`: the items are counted in `held` (false for events refused at enqueue). */
  #dead(items: QueueItem[], c: { code: DeliveryErrorCode; message: string; status?: number }, owned = true): void {
    if (items.length === 0) return
    const now = Date.now()
    const error: { code: DeliveryErrorCode; message: string; status?: number } = { code: c.code, message: c.message }
    if (c.status !== undefined) error.status = c.status
    this.#init.deadLetters.add(
      items.map((it) => ({ destination: this.name, event: it.event, error, attempts: it.attempts, acceptedAt: it.acceptedAt, deadAt: now })),
    )
    this.stats.deadLettered[c.code] = (this.stats.deadLettered[c.code] ?? 0) + items.length
    if (owned) this.stats.held -= items.length
    this.#init.settled?.(items, 'dead')
    this.#init.logger.warn({ destination: this.name, count: items.length, code: c.code, status: c.status, reason: c.message }, 'events dead-lettered')
    this.#init.emit({ type: 'dead_letter', destination: this.name, count: items.length, code: c.code, message: c.message })
    this.#checkIdle()
  }

  /** Events erased by a deletion or suppression: counted, released by a durable spool (acked), never sent. */
  #erase(items: QueueItem[]): void {
    if (items.length === 0) return
    this.stats.erased += items.length
    this.stats.held -= items.length
    this.#init.settled?.(items, 'dead')
    this.#checkIdle()
  }

  /** Erase the items `remove()` marked while they were in flight; returns the others. */
  #withoutDoomed(items: QueueItem[]): QueueItem[] {
    if (this.#doomed.size === 0) return items
    const kept: QueueItem[] = []
    const erased: QueueItem[] = []
    for (const it of items) (this.#doomed.delete(it) ? erased : kept).push(it)
    this.#erase(erased)
    return kept
  }

  #checkIdle(): void {
    if (this.stats.held !== 0) return
    const waiters = this.#idle
    this.#idle = []
    for (const w of waiters) w()
  }

  /** Resolves when every held event is delivered or dead-lettered. */
  whenIdle(): Promise<void> {
    if (this.stats.held === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  /**
   * Take out the events `match` picks among those buffered or waiting for a retry, and
   * return how many. Those in flight cannot be called back: they are erased instead of
   * retried if their send fails. Counted in `erased`; a durable spool acks them.
   */
  remove(match: (item: QueueItem) => boolean): number {
    const out: QueueItem[] = []
    const keep: QueueItem[] = []
    for (const it of this.#buffer) (match(it) ? out : keep).push(it)
    if (out.length) {
      this.#buffer = keep
      this.#bufferBytes = keep.reduce((n, it) => n + it.bytes, 0)
    }
    for (const b of this.#live) {
      if (b.done) continue
      if (!b.retryTimer) {
        // In flight: it cannot be called back, but if this send fails it is not retried.
        for (const it of b.items) if (match(it)) this.#doomed.add(it)
        continue
      }
      const left: QueueItem[] = []
      for (const it of b.items) (match(it) ? out : left).push(it)
      if (left.length === b.items.length) continue
      b.items = left
      if (left.length === 0) {
        clearTimeout(b.retryTimer)
        b.done = true
        this.#live.delete(b)
      }
    }
    this.#erase(out)
    return out.length
  }

  /** Send what is buffered now, without waiting for maxWaitMs. */
  flush(): void {
    this.#flush(true)
  }

  /**
   * Drain: flush the buffer and wait until every held event is settled or the deadline
   * passes; then abort what is in flight and dead-letter everything still held
   * (DELIVERY_SHUTDOWN), so nothing disappears unaccounted.
   */
  async close(deadlineMs: number): Promise<void> {
    this.#flush(true)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.whenIdle(), new Promise<void>((r) => (timer = setTimeout(r, deadlineMs)))])
    clearTimeout(timer)
    this.#closed = true
    this.#pq.clear()
    let leftovers: QueueItem[] = []
    for (const b of this.#live) {
      if (b.done) continue
      b.done = true
      if (b.retryTimer) clearTimeout(b.retryTimer)
      b.abort?.abort(new Error('router closed'))
      leftovers.push(...b.items)
    }
    this.#live.clear()
    if (this.#buffer.length) leftovers.push(...this.#buffer.splice(0))
    this.#bufferBytes = 0
    leftovers = this.#withoutDoomed(leftovers)
    if (this.#init.settled && leftovers.length) {
      // A durable spool still has these events: the next start delivers them.
      this.stats.held -= leftovers.length
      this.#init.settled(leftovers, 'released')
      this.#checkIdle()
      return
    }
    this.#dead(leftovers, { code: 'DELIVERY_SHUTDOWN', message: 'router closed before delivery; replay from dead letters' })
  }
}
