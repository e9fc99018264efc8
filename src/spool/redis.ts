/**
 * The Redis Streams spool (ioredis): several processes, on several machines, share
 * intake and delivery.
 *
 * One stream per destination, `<stream>:<destination>`, read by one consumer group
 * (`group`) in which every process is a consumer (`consumer`, unique per process). An
 * entry is XADDed (in one MULTI per request) before the HTTP 200, handed to exactly one
 * consumer by XREADGROUP, and XACKed + XDELed once delivered or dead-lettered — so the
 * stream's length is the destination's backlog.
 *
 * A crashed consumer's entries stay in the group's pending list; every live consumer
 * runs XAUTOCLAIM for entries idle longer than `claimIdleMs` and delivers them. A live
 * consumer whose destination is slow keeps its entries from being claimed by touching
 * them (XCLAIM … JUSTID, which resets their idle time) every second. A consumer that
 * restarts under the same name first re-reads its own pending entries.
 *
 * Dead letters: a hash `<stream>:dlq` (id → JSON) and a sorted set `<stream>:dlq:t`
 * (by deadAt). Replay moves one entry with a Lua script — HDEL, and XADD only when the
 * HDEL removed it — so an entry is replayed once however many replays run.
 */
import { createRequire } from 'node:module'
import { randomUUID } from 'node:crypto'
import type { Redis as RedisClient } from 'ioredis'
import { ConfigError, type DeliveryErrorCode } from '../errors.js'
import type { DeadLetter, DeadLetterFilter, DeadLetterStore } from '../deliver/dead-letters.js'
import type { Logger } from '../logger.js'
import type { FirstpartyEvent } from '../normalize/schema.js'
import type { LedgerDraft } from '../privacy/ledger.js'
import type { AsyncDeadLetterStore, Spool, SpooledEvent, SpoolEntry, SpoolReader, SpoolStats } from './types.js'

export interface RedisSpoolOptions {
  url: string
  stream: string
  group: string
  consumer: string
  claimIdleMs: number
  maxEvents: number
  deadLetterMaxEntries: number
  onEvict?: (n: number) => void
  logger: Logger
}

type StreamEntry = [id: string, fields: string[] | null]

/** Connect to Redis with ioredis; errors become log lines, commands fail fast while it is down. */
export function connectRedis(url: string, logger: Logger): RedisClient {
  let Ctor: new (url: string, options: object) => RedisClient
  try {
    const mod = createRequire(import.meta.url)('ioredis') as { default?: unknown; Redis?: unknown }
    Ctor = (mod.Redis ?? mod.default ?? mod) as typeof Ctor
  } catch (err) {
    throw new ConfigError('CONFIG_SPOOL', [{ path: '/spool/type', message: `the redis spool needs the package ioredis (npm i ioredis): ${(err as Error).message}` }])
  }
  const client = new Ctor(url, { maxRetriesPerRequest: 2, enableAutoPipelining: false })
  let lastLog = 0
  client.on('error', (err: Error) => {
    const now = Date.now()
    if (now - lastLog < 5000) return
    lastLog = now
    logger.error({ err: err.message }, 'redis connection error')
  })
  return client
}

const REPLAY_ONE = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[2], 'a', ARGV[3], 'b', ARGV[4], 'u', ARGV[5])
  return 1
end
return 0`

interface StoredDeadLetter extends Omit<DeadLetter, 'event'> {
  /** The event's JSON as it was spooled. */
  e: string
}

function matches(d: StoredDeadLetter, f: Omit<DeadLetterFilter, 'limit' | 'since' | 'until'>): boolean {
  return (f.destination === undefined || d.destination === f.destination) && (f.code === undefined || d.error.code === f.code)
}

/**
 * Dead letters in Redis. `add` (all the delivery queues call) is fire-and-forget on the
 * spool's connection: Redis runs commands of one connection in order, so the dead
 * letter is stored before the XACK that follows it. Reads are async only.
 */
export class RedisDeadLetterStore implements DeadLetterStore {
  readonly #r: RedisClient
  readonly #hash: string
  readonly #index: string
  readonly #streamOf: (destination: string) => string
  readonly #logger: Logger
  readonly maxEntries: number
  readonly #onEvict: ((n: number) => void) | undefined
  #evicted = 0
  #adds = 0

  constructor(r: RedisClient, prefix: string, streamOf: (d: string) => string, logger: Logger, maxEntries: number, onEvict?: (n: number) => void) {
    this.#r = r
    this.#hash = `${prefix}:dlq`
    this.#index = `${prefix}:dlq:t`
    this.#streamOf = streamOf
    this.#logger = logger
    this.maxEntries = maxEntries
    this.#onEvict = onEvict
  }

  get evicted(): number {
    return this.#evicted
  }

  add(entries: Array<Omit<DeadLetter, 'id'>>): void {
    void this.addAsync(entries).catch((err: unknown) => this.#logger.error({ err: (err as Error).message, count: entries.length }, 'dead letters could not be stored in redis'))
  }

  async addAsync(entries: Array<Omit<DeadLetter, 'id'>>, raw?: string[]): Promise<void> {
    if (entries.length === 0) return
    const p = this.#r.pipeline()
    entries.forEach((e, i) => {
      const id = randomUUID()
      const stored: StoredDeadLetter = { id, destination: e.destination, error: e.error, attempts: e.attempts, acceptedAt: e.acceptedAt, deadAt: e.deadAt, e: raw?.[i] ?? JSON.stringify(e.event) }
      p.hset(this.#hash, id, JSON.stringify(stored))
      p.zadd(this.#index, e.deadAt, id)
    })
    await p.exec()
    this.#adds += entries.length
    if (this.#adds >= 1000) {
      this.#adds = 0
      await this.#trim()
    }
  }

  async #trim(): Promise<void> {
    const n = await this.#r.zcard(this.#index)
    const over = n - this.maxEntries
    if (over <= 0) return
    const popped = await this.#r.zpopmin(this.#index, over)
    const ids = popped.filter((_, i) => i % 2 === 0)
    if (ids.length) await this.#r.hdel(this.#hash, ...ids)
    this.#evicted += ids.length
    this.#onEvict?.(ids.length)
  }

  #syncRead(): never {
    throw new Error('the redis spool keeps dead letters in Redis: read them with router.deadLettersAsync (or `npx firstparty dlq`)')
  }
  list(): DeadLetter[] {
    return this.#syncRead()
  }
  take(): DeadLetter[] {
    return this.#syncRead()
  }
  count(): number {
    return this.#syncRead()
  }

  /** Matching stored entries in deadAt order, up to `limit`. */
  async #find(f: DeadLetterFilter, limit: number, known?: ReadonlySet<string>): Promise<StoredDeadLetter[]> {
    const min = f.since ?? '-inf'
    const max = f.until !== undefined ? `(${f.until}` : '+inf'
    const out: StoredDeadLetter[] = []
    const wanted = f.ids ? new Set(f.ids) : undefined
    const page = 1000
    for (let offset = 0; out.length < limit; offset += page) {
      const ids = await this.#r.zrangebyscore(this.#index, min, max, 'LIMIT', offset, page)
      if (ids.length === 0) break
      const pick = wanted ? ids.filter((id) => wanted.has(id)) : ids
      const values = pick.length ? await this.#r.hmget(this.#hash, ...pick) : []
      for (const v of values) {
        if (v === null) continue
        const d = JSON.parse(v) as StoredDeadLetter
        if (matches(d, f) && (!known || known.has(d.destination))) out.push(d)
        if (out.length >= limit) break
      }
      if (ids.length < page) break
    }
    return out
  }

  async listAsync(filter: DeadLetterFilter = {}): Promise<DeadLetter[]> {
    const found = await this.#find(filter, filter.limit ?? 100)
    return found.map(({ e, ...rest }) => ({ ...rest, event: JSON.parse(e) as FirstpartyEvent }))
  }

  async countAsync(filter: Omit<DeadLetterFilter, 'limit'> = {}): Promise<number> {
    if (filter.destination === undefined && filter.code === undefined && filter.ids === undefined) {
      return this.#r.zcount(this.#index, filter.since ?? '-inf', filter.until !== undefined ? `(${filter.until}` : '+inf')
    }
    return (await this.#find(filter, Infinity)).length
  }

  async purge(filter: DeadLetterFilter = {}): Promise<number> {
    const found = await this.#find(filter, filter.limit ?? Infinity)
    let n = 0
    for (let i = 0; i < found.length; i += 500) {
      const ids = found.slice(i, i + 500).map((d) => d.id)
      n += await this.#r.hdel(this.#hash, ...ids)
      await this.#r.zrem(this.#index, ...ids)
    }
    return n
  }

  async replay(filter: DeadLetterFilter = {}, known?: ReadonlySet<string>): Promise<{ replayed: number; skipped: number }> {
    const found = await this.#find(filter, filter.limit ?? Infinity, known)
    let replayed = 0
    // Entries of destinations this config does not have stay where they are.
    const skipped = known ? (await this.#find({ ...filter, limit: Infinity }, Infinity)).filter((d) => !known.has(d.destination)).length : 0
    const now = String(Date.now())
    for (let i = 0; i < found.length; i += 200) {
      const p = this.#r.pipeline()
      let queued = 0
      for (const d of found.slice(i, i + 200)) {
        const ev = JSON.parse(d.e) as FirstpartyEvent
        p.eval(REPLAY_ONE, 3, this.#hash, this.#index, this.#streamOf(d.destination), d.id, d.e, now, String(Buffer.byteLength(d.e)), ev.userId ?? ev.anonymousId ?? '')
        queued++
      }
      if (queued === 0) continue
      const results = (await p.exec()) ?? []
      for (const [err, res] of results) {
        if (err) throw err
        if (res === 1) replayed++
      }
    }
    return { replayed, skipped }
  }

  asAsync(): AsyncDeadLetterStore {
    return {
      add: (e) => this.addAsync(e),
      list: (f) => this.listAsync(f),
      count: (f) => this.countAsync(f),
      purge: (f) => this.purge(f),
      replay: (f, known) => this.replay(f, known),
    }
  }
}

export class RedisSpool implements Spool {
  readonly type = 'redis' as const
  readonly redis: RedisClient
  readonly deadLetters: RedisDeadLetterStore
  readonly deadLettersAsync: AsyncDeadLetterStore
  readonly o: RedisSpoolOptions
  #listeners: Array<(destination: string) => void> = []
  /** Known destinations' stream lengths, measured every second, plus this process's appends since. */
  #pending = 0
  #measure: NodeJS.Timeout
  readonly #streams = new Set<string>()
  #ackQueue = new Map<string, string[]>()
  #ackScheduled = false
  #closed = false
  readonly #stats = { appended: 0, acked: 0, retentionDeadLettered: 0, rejectedFull: 0 }

  constructor(options: RedisSpoolOptions) {
    this.o = options
    this.redis = connectRedis(options.url, options.logger)
    this.deadLetters = new RedisDeadLetterStore(this.redis, options.stream, (d) => this.streamOf(d), options.logger, options.deadLetterMaxEntries, options.onEvict)
    this.deadLettersAsync = this.deadLetters.asAsync()
    this.#measure = setInterval(() => void this.#measurePending(), 1000)
    this.#measure.unref()
  }

  streamOf(destination: string): string {
    return `${this.o.stream}:${destination}`
  }

  async #measurePending(): Promise<void> {
    if (this.#closed || this.#streams.size === 0) return
    try {
      const p = this.redis.pipeline()
      for (const s of this.#streams) p.xlen(s)
      const res = (await p.exec()) ?? []
      this.#pending = res.reduce((n, [err, v]) => n + (err ? 0 : Number(v)), 0)
    } catch {
      // Redis is down: appends fail on their own and answer spool_unavailable.
    }
  }

  onAppend(fn: (destination: string) => void): void {
    this.#listeners.push(fn)
  }

  fullFor(n: number): number {
    if (this.#pending + n <= this.o.maxEvents) return 0
    this.#stats.rejectedFull++
    return 2
  }

  async append(entries: SpoolEntry[]): Promise<void> {
    if (entries.length === 0) return
    if (this.#closed) throw new Error('the spool is closed')
    const m = this.redis.multi()
    let lastEvent: unknown
    let lastBody = ''
    const dests = new Set<string>()
    for (const e of entries) {
      if (e.event !== lastEvent) {
        lastEvent = e.event
        lastBody = JSON.stringify(e.event)
      }
      const key = this.streamOf(e.destination)
      this.#streams.add(key)
      dests.add(e.destination)
      if (e.ledger) m.xadd(key, '*', 'e', lastBody, 'a', String(e.acceptedAt), 'b', String(e.bytes), 'u', e.userKey, 'm', JSON.stringify(e.ledger))
      else m.xadd(key, '*', 'e', lastBody, 'a', String(e.acceptedAt), 'b', String(e.bytes), 'u', e.userKey)
    }
    const res = await m.exec()
    if (!res) throw new Error('redis MULTI was aborted')
    for (const [err] of res) if (err) throw err
    this.#pending += entries.length
    this.#stats.appended += entries.length
    for (const d of dests) for (const l of this.#listeners) l(d)
  }

  /** @internal by the reader: XACK + XDEL, batched per event-loop turn. */
  ack(key: string, ids: string[]): void {
    const q = this.#ackQueue.get(key)
    if (q) for (const id of ids) q.push(id)
    else this.#ackQueue.set(key, ids.slice())
    if (!this.#ackScheduled) {
      this.#ackScheduled = true
      setImmediate(() => void this.#commitAcks())
    }
  }

  async #commitAcks(): Promise<void> {
    this.#ackScheduled = false
    const all = this.#ackQueue
    this.#ackQueue = new Map()
    if (all.size === 0) return
    const p = this.redis.pipeline()
    let n = 0
    for (const [key, ids] of all) {
      for (let i = 0; i < ids.length; i += 1000) {
        const chunk = ids.slice(i, i + 1000)
        p.xack(key, this.o.group, ...chunk)
        p.xdel(key, ...chunk)
      }
      n += ids.length
    }
    try {
      await p.exec()
      this.#pending -= n
      this.#stats.acked += n
    } catch (err) {
      // Unacked entries are delivered again after claimIdleMs: at-least-once holds.
      this.o.logger.error({ err: (err as Error).message, count: n }, 'redis XACK failed; the entries may be delivered again')
    }
  }

  /** @internal */
  retired(n: number): void {
    this.#stats.retentionDeadLettered += n
  }

  reader(destination: string): SpoolReader {
    this.#streams.add(this.streamOf(destination))
    return new RedisReader(this, destination)
  }

  stats(): SpoolStats {
    return { type: 'redis', ...this.#stats, pending: this.#pending }
  }

  async purge(destinations: readonly string[], match: (entry: { destination: string; ref: unknown; event: FirstpartyEvent; userKey: string; ledger?: LedgerDraft | undefined }) => boolean): Promise<number> {
    // Pending acks first: an acked entry is gone, not "erased" a second time.
    await this.#commitAcks()
    let n = 0
    for (const d of destinations) {
      const key = this.streamOf(d)
      let start = '-'
      for (;;) {
        const entries = (await this.redis.xrange(key, start, '+', 'COUNT', 1000)) as StreamEntry[]
        if (entries.length === 0) break
        const doomed: string[] = []
        for (const e of entries) {
          const parsed = parseEntry(e)
          if (parsed && match({ destination: d, ref: e[0], event: parsed.event, userKey: parsed.userKey, ledger: parsed.ledger })) doomed.push(e[0])
        }
        if (doomed.length) {
          // XACK first, so no consumer keeps a pending record of a deleted entry.
          await this.redis.xack(key, this.o.group, ...doomed).catch(() => 0)
          n += Number(await this.redis.xdel(key, ...doomed))
        }
        if (entries.length < 1000) break
        start = `(${entries[entries.length - 1]![0]}`
      }
    }
    if (n) this.#pending = Math.max(0, this.#pending - n)
    return n
  }

  async close(): Promise<void> {
    if (this.#closed) return
    await this.#commitAcks()
    this.#closed = true
    clearInterval(this.#measure)
    await this.redis.quit().catch(() => this.redis.disconnect())
  }
}

function parseEntry(e: StreamEntry): SpooledEvent | undefined {
  const f = e[1]
  if (!f) return undefined
  const o: Record<string, string> = {}
  for (let i = 0; i + 1 < f.length; i += 2) o[f[i]!] = f[i + 1]!
  if (o.e === undefined) return undefined
  const out: SpooledEvent = { ref: e[0], event: JSON.parse(o.e) as FirstpartyEvent, acceptedAt: Number(o.a), bytes: Number(o.b), attempts: 0, userKey: o.u ?? '' }
  if (o.m) out.ledger = JSON.parse(o.m) as LedgerDraft
  return out
}

class RedisReader implements SpoolReader {
  readonly destination: string
  readonly #s: RedisSpool
  readonly #key: string
  #group: Promise<void> | undefined
  /** After a restart under the same name: re-read our own pending entries first. */
  #ownCursor: string | undefined = '0'
  #claimCursor = '0-0'
  #lastClaim = 0
  /** Entries read by retention that were not old enough to retire: handed out next. */
  #stash: SpooledEvent[] = []

  constructor(spool: RedisSpool, destination: string) {
    this.#s = spool
    this.destination = destination
    this.#key = spool.streamOf(destination)
  }

  #ensureGroup(): Promise<void> {
    this.#group ??= this.#s.redis.xgroup('CREATE', this.#key, this.#s.o.group, '0', 'MKSTREAM').then(
      () => undefined,
      (err: Error) => {
        if (/BUSYGROUP/.test(err.message)) return
        this.#group = undefined
        throw err
      },
    )
    return this.#group
  }

  #parse(entries: StreamEntry[], gone: string[]): SpooledEvent[] {
    const out: SpooledEvent[] = []
    for (const e of entries) {
      const p = parseEntry(e)
      if (p) out.push(p)
      else gone.push(e[0])
    }
    return out
  }

  async #readGroup(max: number, from: string): Promise<StreamEntry[]> {
    const o = this.#s.o
    const res = (await this.#s.redis.xreadgroup('GROUP', o.group, o.consumer, 'COUNT', max, 'STREAMS', this.#key, from)) as Array<[string, StreamEntry[]]> | null
    return res?.[0]?.[1] ?? []
  }

  async read(max: number): Promise<SpooledEvent[]> {
    if (max <= 0) return []
    await this.#ensureGroup()
    const out: SpooledEvent[] = this.#stash.splice(0, max)
    const gone: string[] = []
    const o = this.#s.o
    if (out.length < max && this.#ownCursor !== undefined) {
      const entries = await this.#readGroup(max - out.length, this.#ownCursor)
      if (entries.length === 0) this.#ownCursor = undefined
      else {
        this.#ownCursor = entries[entries.length - 1]![0]
        out.push(...this.#parse(entries, gone))
      }
    }
    const now = Date.now()
    if (out.length < max && now - this.#lastClaim >= Math.min(1000, o.claimIdleMs / 4)) {
      this.#lastClaim = now
      const res = (await this.#s.redis.xautoclaim(this.#key, o.group, o.consumer, o.claimIdleMs, this.#claimCursor, 'COUNT', max - out.length)) as [string, StreamEntry[], string[]?]
      this.#claimCursor = res[0]
      out.push(...this.#parse(res[1], gone))
      if (res[2]?.length) gone.push(...res[2])
    }
    if (out.length < max) out.push(...this.#parse(await this.#readGroup(max - out.length, '>'), gone))
    // Entries deleted while pending (acked and XDELed elsewhere): only the pending record is left.
    if (gone.length) await this.#s.redis.xack(this.#key, o.group, ...gone)
    return out
  }

  ack(refs: unknown[]): void {
    this.#s.ack(this.#key, refs as string[])
  }

  release(): void {
    // The entries stay pending on this consumer: claimed by another after claimIdleMs,
    // or re-read by this consumer name when it starts again.
  }

  async heartbeat(refs: unknown[]): Promise<void> {
    const o = this.#s.o
    const ids = refs as string[]
    for (let i = 0; i < ids.length; i += 1000) {
      await this.#s.redis.xclaim(this.#key, o.group, o.consumer, 0, ...ids.slice(i, i + 1000), 'JUSTID')
    }
  }

  async enforceRetention(retention: { maxEvents?: number; maxAgeMs?: number }, now: number): Promise<number> {
    await this.#ensureGroup()
    const r = this.#s.redis
    let moved = 0
    const retire = async (entries: SpooledEvent[], message: string) => {
      if (entries.length === 0) return
      await this.#s.deadLetters.addAsync(
        entries.map((e) => ({ destination: this.destination, event: e.event, error: { code: 'DELIVERY_RETENTION' as DeliveryErrorCode, message }, attempts: e.attempts, acceptedAt: e.acceptedAt, deadAt: now })),
      )
      this.#s.ack(this.#key, entries.map((e) => e.ref as string))
      this.#s.retired(entries.length)
      moved += entries.length
    }
    if (retention.maxEvents !== undefined) {
      // `lag`: entries the group has not handed to any consumer yet (Redis ≥ 7).
      const groups = (await r.xinfo('GROUPS', this.#key)) as unknown[][]
      const g = groups.map((row) => {
        const o: Record<string, unknown> = {}
        for (let i = 0; i + 1 < row.length; i += 2) o[String(row[i])] = row[i + 1]
        return o
      }).find((o) => o.name === this.#s.o.group)
      const lag = Number(g?.lag ?? 0) + this.#stash.length
      const excess = lag - retention.maxEvents
      if (excess > 0) {
        const oldest = this.#stash.splice(0, excess)
        if (oldest.length < excess) oldest.push(...this.#parse(await this.#readGroup(excess - oldest.length, '>'), []))
        await retire(oldest, `more than spool.retention.maxEvents (${retention.maxEvents}) events waited for this destination`)
      }
    }
    if (retention.maxAgeMs !== undefined) {
      const cutoff = now - retention.maxAgeMs
      for (let round = 0; round < 100; round++) {
        const batch = this.#stash.length ? this.#stash.splice(0) : this.#parse(await this.#readGroup(500, '>'), [])
        if (batch.length === 0) break
        const old = batch.filter((e) => e.acceptedAt < cutoff)
        const fresh = batch.filter((e) => e.acceptedAt >= cutoff)
        await retire(old, `waited longer than spool.retention.maxAgeMs (${retention.maxAgeMs} ms) for this destination`)
        if (fresh.length) {
          this.#stash.push(...fresh)
          break
        }
      }
    }
    return moved
  }
}
