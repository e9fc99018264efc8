/**
 * The router: intake (HTTP and backend calls) → normalize → dedup → fan-out to each
 * destination's delivery queue. No globals: every router owns its sources, queues,
 * dead letters and counters, so several can live in one process.
 */
import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import got from 'got'
import Value from 'typebox/value'
import { schemaIssues, validateConfig, type DestinationConfig, type RouterOptions } from './config.js'
import { MemoryDeadLetterStore, type DeadLetter, type DeadLetterFilter, type DeadLetterStore } from './deliver/dead-letters.js'
import { Dedup } from './deliver/dedup.js'
import { DestinationQueue, type DeliveryOptions, type DestinationStats, type QueueEvent, type QueueItem } from './deliver/destination-queue.js'
import { DEFAULT_RETRY } from './deliver/retry.js'
import { createSpool, SpoolConsumer, userKeyOf, type AsyncDeadLetterStore, type SpoolEntry, type SpoolStats } from './spool/index.js'
import { ConfigError, HttpError } from './errors.js'
import type { BodyLimits } from './intake/body.js'
import { scanJson } from './intake/body.js'
import { createIpResolver } from './intake/client-ip.js'
import { originMatcher } from './intake/cors.js'
import { createHttpHandler, sendError, type IntakeMeta, type SourceRuntime } from './intake/http.js'
import { TokenBucket } from './intake/rate-limit.js'
import { childLogger, createLogger, type Logger } from './logger.js'
import { normalizeEvent, toJsonData } from './normalize/normalize.js'
import type { EventType, FirstpartyEvent } from './normalize/schema.js'
import type { ConsentRequirement, DestinationDefinition, SourceDefinition } from './plugin.js'
import { applyMapping, compileDestinationMapping, type DestinationMapping } from './transform/mapping.js'
import { createPolicyRuntime, type DestinationPolicy, type PolicyTrace } from './policy/runtime.js'
import { createEnricher } from './enrich/index.js'
import type { RuleStats } from './policy/engine.js'
import type { EventConsent } from './policy/consent.js'
import { builtinDestinations } from '../plugins/builtin.js'
import { createPrivacy, type DeleteUserOptions, type DeletionResult, type LedgerApi, type SuppressionApi } from './privacy/index.js'
import { draftLedgerEntry, maskedValues, type LedgerDraft } from './privacy/ledger.js'
import { mentionsSubject, subjectOf, type StoredSubject } from './privacy/subject.js'
import type { DeletionReceipt, ReceiptQuery, SubjectIds } from './privacy/types.js'

export const VERSION = '0.1.0'

export const DEFAULT_LIMITS: BodyLimits = { maxRequestBytes: 512_000, maxEventBytes: 32_768, maxBatchEvents: 2500, maxDepth: 64 }

export const DEFAULT_DELIVERY: DeliveryOptions = {
  concurrency: 4,
  batch: { maxEvents: 100, maxBytes: 512_000, maxWaitMs: 1000 },
  retry: DEFAULT_RETRY,
  maxBufferedEvents: 10_000,
  timeoutMs: 10_000,
}

/** An event as backend code passes it: the type comes from the method called. */
export type ServerEvent = Record<string, unknown> & { userId?: string | number | null; anonymousId?: string | number | null }

export interface RouterStats {
  /** HTTP requests that reached a collector path. */
  requests: number
  /** Events accepted (answered 200, or returned from a backend call). */
  accepted: number
  /** Accepted events with a messageId seen within the dedup window: not sent again. */
  deduplicated: number
  /** Requests refused, by error code. */
  rejected: Record<string, number>
  /** Posts to /v1/m (analytics.js metrics), accepted and discarded. */
  metrics: number
  /** Accepted events a source policy dropped (counted per rule in `policies`). */
  dropped: number
  /** Dead letters evicted from a full memory store. */
  deadLettersEvicted: number
  /** Accepted events of suppressed subjects: sent nowhere. */
  suppressed: number
  /** Deliveries the sharing ledger failed to record (its store refused the write; the log says why). */
  ledgerLost: number
  /** Accepted events dropped as bots' (`enrich.bots: 'drop'`), before any policy. */
  bots: number
  destinations: Record<string, DestinationStats>
  /** The durable spool's counters (absent with the memory spool). */
  spool?: SpoolStats
  /** Per rule: evaluated, fired, dropped, errors. Source rules under `source`, the others under their destination. */
  policies: { source: Record<string, RuleStats>; destinations: Record<string, Record<string, RuleStats>> }
}

/** What the router would do with an event: for tests, debugging and a debugger page. */
export interface Evaluation {
  /** The event after normalization and source policies (or as far as it got). */
  event: FirstpartyEvent
  source: PolicyTrace
  /** A source policy dropped it; no destination gets it. */
  dropped: boolean
  /** The subject is on the suppression list; no destination gets it. */
  suppressed: boolean
  /** Dropped as a bot's (`enrich.bots: 'drop'`) before any policy; no destination gets it. */
  bot: boolean
  destinations: Record<
    string,
    | { delivered: true; event: FirstpartyEvent; trace: PolicyTrace }
    | { delivered: false; reason: 'integrations' | 'disabled' | 'consent' | 'policy' | 'mapping'; trace: PolicyTrace }
  >
}

export interface ReplayResult {
  replayed: number
  /** Entries whose destination no longer exists; left in the store. */
  skipped: number
}

export interface Router {
  track(event: ServerEvent): Promise<{ messageId: string }>
  identify(event: ServerEvent): Promise<{ messageId: string }>
  page(event: ServerEvent): Promise<{ messageId: string }>
  screen(event: ServerEvent): Promise<{ messageId: string }>
  group(event: ServerEvent): Promise<{ messageId: string }>
  alias(event: ServerEvent): Promise<{ messageId: string }>
  /** A node:http request listener. Unknown paths get a JSON 404. */
  handler(): (req: IncomingMessage, res: ServerResponse) => void
  /** Express (or Connect) middleware; unknown paths go to `next()`. Mount it at any path. */
  express(): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void
  /** Send every buffered batch now instead of waiting for maxWaitMs. */
  flush(): void
  /** Stop intake (503), drain every destination within the deadline, dead-letter the rest. */
  close(options?: { timeoutMs?: number }): Promise<void>
  stats(): RouterStats
  readonly deadLetters: {
    list(filter?: DeadLetterFilter): DeadLetter[]
    count(filter?: Omit<DeadLetterFilter, 'limit'>): number
    /** Send matching dead letters again (fresh attempts); they leave the store. */
    replay(filter?: DeadLetterFilter): ReplayResult
    /** Delete matching dead letters; returns how many. */
    purge(filter?: DeadLetterFilter): number
  }
  /**
   * The same dead letters behind promises: works with every spool, and is the only way
   * to reach the Redis spool's dead letters (which live in Redis). Replay moves each
   * entry back to the spool exactly once, however many replays run.
   */
  readonly deadLettersAsync: AsyncDeadLetterStore
  /**
   * Run an event through normalization, policies and consent without delivering it,
   * and tell what each destination would receive and why (a trace of every rule).
   */
  evaluate(event: Record<string, unknown>, options?: { type?: EventType; gpc?: boolean }): Evaluation
  /**
   * 'delivered', 'dead_letter', 'retry' ({ destination, count, ... }); 'accepted' ({ count, source });
   * 'policy' (a PolicyTrace per event and scope — emitted only while someone listens).
   */
  readonly events: EventEmitter
  /**
   * Resolves once the privacy store is open and the suppression list loaded (intake waits for it on its own),
   * and the geo database is open (`enrich.geo`; until then events get no location). Rejects with their ConfigError.
   */
  ready(): Promise<void>
  /**
   * A deletion request: suppress the subject (unless `suppress: false`), erase what the
   * router holds (queues, spool, dead letters, ledger), and ask every destination whose
   * plugin can delete. Resolves when every receipt is final (retries included).
   */
  deleteUser(ids: SubjectIds, options?: DeleteUserOptions): Promise<DeletionResult>
  /** Deletion receipts, newest first. */
  readonly deletions: { list(query?: Omit<ReceiptQuery, 'emailHash'> & { email?: string }): Promise<DeletionReceipt[]> }
  /** The suppression list: suppressed subjects' events are dropped at intake (counted in `stats().suppressed`). */
  readonly suppression: SuppressionApi
  /** The sharing ledger (with a `privacy` config block): what was sent where about whom. */
  readonly ledger: LedgerApi
}

// Passed when no destination asks about consent: the event's consent is never read.
const NO_CONSENT: EventConsent = Object.freeze({ known: false, granted: new Set<string>(), denied: new Set<string>(), strategy: undefined, gpc: false })

function isDestination(p: DestinationDefinition | SourceDefinition): p is DestinationDefinition {
  return typeof (p as DestinationDefinition).send === 'function'
}

function mergeDelivery(base: DeliveryOptions, ...layers: Array<DestinationConfig['delivery'] | DestinationDefinition['batch'] | undefined>): DeliveryOptions {
  const out: DeliveryOptions = { ...base, batch: { ...base.batch }, retry: { ...base.retry } }
  for (const l of layers) {
    if (!l) continue
    if ('maxEvents' in l || 'maxBytes' in l || 'maxWaitMs' in l) {
      Object.assign(out.batch, l)
      continue
    }
    const d = l as NonNullable<DestinationConfig['delivery']>
    if (d.concurrency !== undefined) out.concurrency = d.concurrency
    if (d.rateLimit !== undefined) out.rateLimit = d.rateLimit
    if (d.batch) Object.assign(out.batch, d.batch)
    if (d.retry) Object.assign(out.retry, d.retry)
    if (d.maxBufferedEvents !== undefined) out.maxBufferedEvents = d.maxBufferedEvents
    if (d.timeoutMs !== undefined) out.timeoutMs = d.timeoutMs
  }
  return out
}

/** `integrations: { All: false, Name: true }`: a destination is matched by its name or its plugin's. */
function integrationAllows(integrations: unknown, names: string[]): boolean {
  if (!integrations || typeof integrations !== 'object') return true
  const map = integrations as Record<string, unknown>
  for (const n of names) {
    if (Object.hasOwn(map, n)) return map[n] !== false
  }
  const lower = names.map((n) => n.toLowerCase())
  for (const k of Object.keys(map)) {
    if (lower.includes(k.toLowerCase())) return map[k] !== false
  }
  return map.All !== false && map.all !== false
}

/** Create a router. Throws a ConfigError naming the config path when options are wrong. */
export function createRouter(options: RouterOptions = {}): Router {
  validateConfig(options as unknown)
  const logger = options.logger ?? createLogger(options.logLevel ?? 'warn', { name: 'firstparty' })
  const limits: BodyLimits = { ...DEFAULT_LIMITS, ...options.limits }
  const defaults = mergeDelivery(DEFAULT_DELIVERY, options.delivery)
  const events = new EventEmitter()
  // 'error' has no special meaning here; never let a missing listener throw.
  events.on('error', () => {})

  const stats = { requests: 0, accepted: 0, deduplicated: 0, dropped: 0, suppressed: 0, bots: 0, rejected: {} as Record<string, number>, metrics: 0 }
  const policy = createPolicyRuntime(options)
  // Before anything that holds resources: a missing geo database throws here.
  const enricher = options.enrich ? createEnricher(options.enrich) : undefined
  enricher?.ready.catch((err: unknown) => logger.error({ err: (err as Error).message }, 'geo database could not be opened; events get no location'))
  // Durable spool: events wait in SQLite or Redis, and so do the dead letters.
  const spool = createSpool(options.spool, logger)
  const deadLetters: DeadLetterStore =
    options.deadLetters && typeof (options.deadLetters as DeadLetterStore).add === 'function'
      ? (options.deadLetters as DeadLetterStore)
      : spool?.deadLetters ?? new MemoryDeadLetterStore({
          maxEntries: (options.deadLetters as { maxEntries?: number } | undefined)?.maxEntries ?? 10_000,
          onEvict: (d) => {
            logger.error({ destination: d.destination, messageId: d.event.messageId, code: d.error.code }, 'dead-letter store full: oldest entry evicted')
            events.emit('dead_letter_evicted', { destination: d.destination, messageId: d.event.messageId })
          },
        })

  // Plugins by type name: built-ins, then the user's (which may replace a built-in).
  const destinationPlugins = new Map<string, DestinationDefinition>(builtinDestinations.map((p) => [p.name, p]))
  const sourcePlugins = new Map<string, SourceDefinition>()
  for (const p of options.plugins ?? []) {
    if (isDestination(p)) destinationPlugins.set(p.name, p)
    else sourcePlugins.set(p.name, p)
  }

  // Sources.
  const byKey = new Map<string, SourceRuntime>()
  const byName = new Map<string, SourceRuntime>()
  const allOrigins: Array<(o: string) => boolean> = []
  ;(options.sources ?? []).forEach((s, i) => {
    const where = `/sources/${i}`
    if (byName.has(s.name)) throw new ConfigError('CONFIG_DUPLICATE_NAME', [{ path: `${where}/name`, message: `another source is already named "${s.name}"` }])
    let plugin: SourceDefinition | undefined
    let settings: unknown = s.settings
    if (s.type) {
      plugin = sourcePlugins.get(s.type)
      if (!plugin) throw new ConfigError('CONFIG_UNKNOWN_PLUGIN', [{ path: `${where}/type`, message: `no source plugin "${s.type}" is registered (pass it in options.plugins)` }])
      settings = Value.Default(plugin.settings, structuredClone(s.settings ?? {}))
      const issues = schemaIssues(plugin.settings, settings, `${where}/settings`)
      if (issues.length) throw new ConfigError('CONFIG_INVALID', issues, `Invalid settings for source "${s.name}":`)
    }
    const keys = [...(s.writeKey ? [s.writeKey] : []), ...(s.writeKeys ?? [])]
    if (!plugin && keys.length === 0) throw new ConfigError('CONFIG_INVALID', [{ path: `${where}/writeKey`, message: 'a collector source needs writeKey or writeKeys' }])
    const origin = originMatcher(s.allowedOrigins)
    const rt: SourceRuntime = {
      name: s.name,
      origin,
      bucket: s.rateLimit ? new TokenBucket(s.rateLimit.eventsPerSecond, s.rateLimit.burst ?? Math.max(1, Math.ceil(s.rateLimit.eventsPerSecond))) : undefined,
      apiHost: s.apiHost,
      plugin,
      settings,
      writeKeys: keys,
    }
    keys.forEach((k, j) => {
      if (byKey.has(k)) throw new ConfigError('CONFIG_DUPLICATE_WRITE_KEY', [{ path: s.writeKey === k ? `${where}/writeKey` : `${where}/writeKeys/${j}`, message: `source "${byKey.get(k)!.name}" already uses this write key` }])
      byKey.set(k, rt)
    })
    byName.set(s.name, rt)
    allOrigins.push(origin)
  })

  // Destinations.
  const http = got.extend({
    retry: { limit: 0 },
    headers: { 'user-agent': `firstparty/${VERSION}` },
  })
  const onQueueEvent = (e: QueueEvent) => events.emit(e.type, e)
  const queues: DestinationQueue[] = []
  const queueNames = new Map<DestinationQueue, string[]>()
  const queuePolicy = new Map<DestinationQueue, DestinationPolicy>()
  const queueMapping = new Map<DestinationQueue, DestinationMapping>()
  const consumers = new Map<string, SpoolConsumer>()
  const queueTimeout = new Map<DestinationQueue, number>()
  // Privacy operations. The queues are created below; the deps read them lazily.
  const privacy = createPrivacy(options.privacy, {
    logger,
    destinations: () => queues.map((q) => ({ name: q.name, plugin: q.plugin, context: () => q.baseContext(), timeoutMs: queueTimeout.get(q)! })),
    purgeLocal: (subject) => purgeSubject(subject),
  })
  const ledgerOn = privacy.ledgerEnabled
  // The ledger reads policy traces only to tell masked values; without a `mask` action
  // anywhere (a conservative text check) it needs none, and routing stays trace-free.
  const ledgerTraces = ledgerOn && /"mask"/.test(JSON.stringify([options.policies ?? [], (options.destinations ?? []).map((d) => d.policies ?? [])]))
  const recordDelivered = (name: string) => (items: QueueItem[]) =>
    privacy.record(name, items.map((it) => it.ledger ?? fallbackDraft(it.event)))
  ;(options.destinations ?? []).forEach((d, i) => {
    const where = `/destinations/${i}`
    if (queues.some((q) => q.name === d.name)) throw new ConfigError('CONFIG_DUPLICATE_NAME', [{ path: `${where}/name`, message: `another destination is already named "${d.name}"` }])
    const plugin = typeof d.type === 'object' ? d.type : destinationPlugins.get(d.type)
    if (!plugin) {
      throw new ConfigError('CONFIG_UNKNOWN_PLUGIN', [{ path: `${where}/type`, message: `no destination plugin "${String(d.type)}" (built-in: ${builtinDestinations.map((p) => p.name).join(', ')}; pass others in options.plugins)` }])
    }
    if (d.enabled === false) return
    const settings = Value.Default(plugin.settings, structuredClone(d.settings ?? {}))
    const issues = schemaIssues(plugin.settings, settings, `${where}/settings`)
    if (issues.length) throw new ConfigError('CONFIG_INVALID', issues, `Invalid settings for destination "${d.name}" (${plugin.name}):`)
    const delivery = mergeDelivery(defaults, plugin.batch, d.delivery)
    const log = childLogger(logger, { destination: d.name })
    if (d.ordering === 'per-user' && !spool) {
      throw new ConfigError('CONFIG_INVALID', [{ path: `${where}/ordering`, message: "per-user ordering needs a durable spool (spool.type 'sqlite' or 'redis')" }])
    }
    const mapping = compileDestinationMapping(d, plugin, where)
    let consumer: SpoolConsumer | undefined
    const q = new DestinationQueue({
      name: d.name,
      plugin,
      settings,
      options: delivery,
      deadLetters,
      http: http.extend({ timeout: { request: delivery.timeoutMs } }),
      logger: log,
      emit: onQueueEvent,
      settled: spool ? (items, outcome) => consumer!.settled(items, outcome) : undefined,
      delivered: ledgerOn ? recordDelivered(d.name) : undefined,
    })
    queueTimeout.set(q, delivery.timeoutMs)
    if (spool) {
      const retention = options.spool?.retention
      consumer = new SpoolConsumer({
        reader: spool.reader(d.name),
        queue: q,
        capacity: delivery.maxBufferedEvents,
        orderPerUser: d.ordering === 'per-user',
        retention,
        pollMs: options.spool?.pollMs ?? 50,
        logger: log,
        onRetention: (n) => {
          q.stats.deadLettered.DELIVERY_RETENTION = (q.stats.deadLettered.DELIVERY_RETENTION ?? 0) + n
          log.warn({ count: n }, 'spool retention exceeded: events dead-lettered')
          events.emit('dead_letter', { type: 'dead_letter', destination: d.name, count: n, code: 'DELIVERY_RETENTION', message: 'spool retention exceeded' })
        },
      })
      consumers.set(d.name, consumer)
    }
    queues.push(q)
    queueNames.set(q, [d.name, plugin.name])
    const consent: ConsentRequirement | undefined = d.consent ?? plugin.consent
    queuePolicy.set(q, policy.destination(d.name, consent, d.policies, where))
    if (mapping) queueMapping.set(q, mapping)
  })
  if (queues.length === 0) logger.warn({}, 'no destinations configured: accepted events are counted but go nowhere')

  // Start plugins now, so a bad credential or path shows in the log at start-up.
  for (const q of queues) q.ready().catch(() => {})
  if (spool) {
    spool.onAppend((d) => consumers.get(d)?.poke())
    for (const c of consumers.values()) c.start()
  }

  const dedupOpts = options.dedup === false ? undefined : { windowMs: options.dedup?.windowMs ?? 86_400_000, maxEntries: options.dedup?.maxEntries ?? 100_000 }
  const dedup = dedupOpts ? new Dedup(dedupOpts.windowMs, dedupOpts.maxEntries) : undefined
  let closing = false
  let closed: Promise<void> | undefined

  const newTrace = (scope: 'source' | 'destination', destination?: string): PolicyTrace =>
    destination === undefined ? { scope, fired: [], actions: [], disabled: [] } : { scope, destination, fired: [], actions: [], disabled: [] }

  /**
   * Source policies, then each destination's gates and policies. `onDestination` gets
   * the event to queue or the reason it is not sent. Returns false when dropped.
   */
  function route(
    ev: FirstpartyEvent,
    tracing: boolean,
    onDestination: (q: DestinationQueue, verdict: { event: FirstpartyEvent; bytes?: number; original?: FirstpartyEvent; ledger?: LedgerDraft } | { reason: 'integrations' | 'disabled' | 'consent' | 'policy' | 'mapping' }, trace: PolicyTrace | undefined) => void,
    sourceTrace?: PolicyTrace,
    count = true,
  ): boolean {
    // Who the event is about, read before policies redact anything: the ledger's subject.
    const subject = ledgerOn ? subjectOf(ev as Record<string, unknown>) : undefined
    const src = policy.source.run(ev as Record<string, unknown>, sourceTrace, count)
    if (sourceTrace && events.listenerCount('policy') > 0) events.emit('policy', sourceTrace)
    if (src.drop) return false
    const consent = policy.needsConsent ? policy.readConsent(ev as Record<string, unknown>) : NO_CONSENT
    for (const q of queues) {
      const names = queueNames.get(q)!
      if (!integrationAllows(ev.integrations, names)) {
        onDestination(q, { reason: 'integrations' }, undefined)
        continue
      }
      if (src.disabled.size && names.some((n) => src.disabled.has(n))) {
        onDestination(q, { reason: 'disabled' }, undefined)
        continue
      }
      const trace = tracing ? newTrace('destination', q.name) : undefined
      const v = policy.forDestination(ev as Record<string, unknown>, consent, queuePolicy.get(q)!, trace, count)
      // The mapping is the last step: the destination's payload replaces the event.
      const mapping = v.ok ? queueMapping.get(q) : undefined
      const m = mapping && v.ok ? applyMapping(mapping, v.event, q.name, logger, trace) : undefined
      if (trace && events.listenerCount('policy') > 0) events.emit('policy', trace)
      const ledger = subject && v.ok && (!m || m.ok) ? draftLedgerEntry(ev, subject, m ? m.event : v.event, maskedValues(v.event, [sourceTrace, trace])) : undefined
      if (m) onDestination(q, m.ok ? { event: m.event as FirstpartyEvent, bytes: m.bytes, original: ev, ...(ledger ? { ledger } : {}) } : { reason: 'mapping' }, trace)
      else onDestination(q, v.ok ? { event: v.event as FirstpartyEvent, ...(ledger ? { ledger } : {}) } : { reason: v.reason }, trace)
    }
    return true
  }

  function accept(evs: FirstpartyEvent[], sizes: number[], meta: IntakeMeta): Promise<void> {
    // The suppression list must be loaded before the first event is judged.
    if (!privacy.loaded) return privacyReady().then(() => accept(evs, sizes, meta))
    if (spool) return acceptSpooled(evs, sizes, meta)
    const now = Date.now()
    const tracing = ledgerTraces || events.listenerCount('policy') > 0
    let n = 0
    for (let i = 0; i < evs.length; i++) {
      const ev = evs[i]!
      stats.accepted++
      if (dedup && dedup.seen(ev.messageId, now)) {
        stats.deduplicated++
        continue
      }
      if (privacy.isSuppressed(ev as Record<string, unknown>)) {
        stats.suppressed++
        continue
      }
      if (meta.gpc) ev.context.gpc = true
      if (enricher && enricher.enrich(ev) === 'bot') {
        stats.bots++
        continue
      }
      const kept = route(ev, tracing, (q, verdict) => {
        if ('reason' in verdict) {
          q.stats.filtered++
          q.stats.filteredBy[verdict.reason] = (q.stats.filteredBy[verdict.reason] ?? 0) + 1
        } else {
          const item: QueueItem = { event: verdict.event, bytes: verdict.bytes ?? sizes[i]!, acceptedAt: now, attempts: 0 }
          if (verdict.ledger) item.ledger = verdict.ledger
          q.enqueue(item)
        }
      }, tracing ? newTrace('source') : undefined)
      if (!kept) stats.dropped++
      else n++
    }
    events.emit('accepted', { count: evs.length, routed: n, source: meta.source })
    return Promise.resolve()
  }

  /**
   * With a durable spool: route each event as `accept` does, store one entry per
   * destination, and resolve only once they are stored — the HTTP 200 waits for it.
   * Nothing is counted or remembered for dedup unless the store succeeded, so the
   * client's retry of a refused request is not taken for a duplicate.
   */
  function acceptSpooled(evs: FirstpartyEvent[], sizes: number[], meta: IntakeMeta): Promise<void> {
    const s = spool!
    const wait = s.fullFor(evs.length * Math.max(1, queues.length))
    if (wait > 0) {
      return Promise.reject(new HttpError('spool_full', `the spool is full (spool.maxEvents events wait for delivery); nothing was stored; retry in ${wait} s`, { 'Retry-After': String(wait) }))
    }
    const now = Date.now()
    const tracing = ledgerTraces || events.listenerCount('policy') > 0
    const entries: SpoolEntry[] = []
    const filtered: Array<[DestinationQueue, 'integrations' | 'disabled' | 'consent' | 'policy' | 'mapping']> = []
    const remembered: string[] = []
    let routed = 0
    let deduplicated = 0
    let suppressed = 0
    let bots = 0
    for (let i = 0; i < evs.length; i++) {
      const ev = evs[i]!
      if (dedup) {
        if (dedup.seen(ev.messageId, now)) {
          deduplicated++
          continue
        }
        remembered.push(ev.messageId)
      }
      if (privacy.isSuppressed(ev as Record<string, unknown>)) {
        suppressed++
        continue
      }
      if (meta.gpc) ev.context.gpc = true
      if (enricher && enricher.enrich(ev) === 'bot') {
        bots++
        continue
      }
      const kept = route(ev, tracing, (q, verdict) => {
        if ('reason' in verdict) filtered.push([q, verdict.reason])
        else {
          const entry: SpoolEntry = { destination: q.name, event: verdict.event, bytes: verdict.bytes ?? sizes[i]!, acceptedAt: now, userKey: userKeyOf(verdict.original ?? verdict.event) }
          if (verdict.ledger) entry.ledger = verdict.ledger
          entries.push(entry)
        }
      }, tracing ? newTrace('source') : undefined)
      if (kept) routed++
    }
    const done = () => {
      stats.accepted += evs.length
      stats.deduplicated += deduplicated
      stats.suppressed += suppressed
      stats.bots += bots
      stats.dropped += evs.length - deduplicated - suppressed - bots - routed
      for (const [q, reason] of filtered) {
        q.stats.filtered++
        q.stats.filteredBy[reason] = (q.stats.filteredBy[reason] ?? 0) + 1
      }
      events.emit('accepted', { count: evs.length, routed, source: meta.source })
    }
    if (entries.length === 0) return Promise.resolve(done())
    return s.append(entries).then(done, (err: unknown) => {
      if (dedup) for (const id of remembered) dedup.forget(id)
      logger.error({ err: (err as Error)?.message ?? String(err) }, 'spool append failed; events refused')
      throw new HttpError('spool_unavailable', 'the spool could not store the events; nothing was accepted; retry', { 'Retry-After': '2' })
    })
  }

  /** Intake waits for the privacy store once; a store that cannot open refuses events (503) rather than ignore suppressions. */
  function privacyReady(): Promise<void> {
    // The reason (a file path, a database host) is in the server's log, not in the answer to a client.
    return privacy.ready.catch(() => {
      throw new HttpError('privacy_unavailable', 'the privacy store could not be opened (the server log says why); nothing was accepted; retry', { 'Retry-After': '5' })
    })
  }

  /** A ledger entry for an event that lost its draft (replayed from dead letters): read from the payload. */
  function fallbackDraft(payload: FirstpartyEvent): LedgerDraft {
    const p = payload as unknown as Record<string, unknown>
    const id = typeof p.messageId === 'string' ? p.messageId : ''
    return draftLedgerEntry({ messageId: id, type: typeof p.type === 'string' ? p.type : 'unknown', event: p.event, name: p.name }, subjectOf(p), payload, undefined)
  }

  /** Erase a subject's events wherever the router holds them: queues, the spool, dead letters. */
  async function purgeSubject(subject: StoredSubject): Promise<Record<string, number>> {
    const ids = new Set([subject.userId, subject.anonymousId].filter((x): x is string => Boolean(x)))
    const about = (event: unknown, draft?: LedgerDraft, userKey?: string) =>
      (userKey !== undefined && ids.has(userKey)) ||
      (draft !== undefined && ((draft.userId !== undefined && draft.userId === subject.userId) || (draft.anonymousId !== undefined && draft.anonymousId === subject.anonymousId) || (draft.emailHash !== undefined && draft.emailHash === subject.emailHash))) ||
      mentionsSubject(event, subject)
    let queued = 0
    for (const q of queues) queued += q.remove((it) => about(it.event, it.ledger, (it.ref as { userKey?: string } | undefined)?.userKey))
    for (const c of consumers.values()) queued += c.remove((e) => about(e.event, e.ledger, e.userKey))
    const spooled = spool ? await spool.purge(queues.map((q) => q.name), (e) => !consumers.get(e.destination)?.holds(e.ref) && about(e.event, e.ledger, e.userKey)) : 0
    const dead = await router.deadLettersAsync.list({ limit: Infinity })
    const doomed = dead.filter((d) => about(d.event)).map((d) => d.id)
    let deadLettersRemoved = 0
    for (let i = 0; i < doomed.length; i += 500) deadLettersRemoved += await router.deadLettersAsync.purge({ ids: doomed.slice(i, i + 500), limit: 500 })
    logger.info({ queued, spooled, deadLetters: deadLettersRemoved }, 'subject erased from the router')
    return { queued, spooled, deadLetters: deadLettersRemoved }
  }

  let resolveIp: ReturnType<typeof createIpResolver>
  try {
    resolveIp = createIpResolver(options.trustProxy ?? false)
  } catch (err) {
    const [path, ...rest] = (err as Error).message.split(': ')
    throw new ConfigError('CONFIG_INVALID', [{ path: path!, message: rest.join(': ') }], 'Invalid firstparty configuration:')
  }
  const collector = createHttpHandler({
    limits,
    resolveIp,
    trustForwardedProto: (options.trustProxy ?? false) !== false,
    sourceByKey: (k) => byKey.get(k),
    sourceByName: (n) => byName.get(n),
    originAllowed: (o) => allOrigins.some((m) => m(o)),
    accept,
    closing: () => closing,
    count: (what, n = 1) => void (stats[what] += n),
    rejected: (code) => void (stats.rejected[code] = (stats.rejected[code] ?? 0) + 1),
    logger,
  })

  function serverCall(type: EventType) {
    return async (event: ServerEvent): Promise<{ messageId: string }> => {
      if (closing) throw new HttpError('shutting_down', 'the router is closed; no new events are accepted')
      if (event === null || typeof event !== 'object') throw new HttpError('invalid_event', `${type}: the event must be an object`)
      // Callers keep their object; the router owns a plain-JSON copy.
      const copy = toJsonData(event, '') as Record<string, unknown>
      const size = scanJson(copy, limits.maxDepth, type)
      if (size > limits.maxEventBytes) throw new HttpError('event_too_large', `${type}: the event is about ${size} bytes; the limit is ${limits.maxEventBytes}`)
      const ev = normalizeEvent(copy, { type, receivedAt: new Date(), where: '' })
      await accept([ev], [size], { source: undefined, gpc: false })
      return { messageId: ev.messageId }
    }
  }

  const router: Router = {
    track: serverCall('track'),
    identify: serverCall('identify'),
    page: serverCall('page'),
    screen: serverCall('screen'),
    group: serverCall('group'),
    alias: serverCall('alias'),
    handler() {
      return (req, res) => {
        if (!collector(req, res)) sendError(res, new HttpError('not_found', `no firstparty endpoint at ${String(req.url).split('?')[0]!.slice(0, 200)}`))
      }
    },
    express() {
      return (req, res, next) => {
        if (!collector(req, res, undefined, true)) next()
      }
    },
    flush() {
      for (const q of queues) q.flush()
      for (const c of consumers.values()) c.poke()
    },
    close(opts = {}) {
      closing = true
      closed ??= (async () => {
        const timeoutMs = opts.timeoutMs ?? options.shutdownTimeoutMs ?? 10_000
        // Stop reading the spool first; what the queues hold drains or is released to it.
        await Promise.all([...consumers.values()].map((c) => c.stop()))
        await Promise.all(queues.map((q) => q.close(timeoutMs)))
        await Promise.all(
          queues.map((q) =>
            Promise.resolve()
              .then(() => q.plugin.close?.(q.baseContext()))
              .catch((err: unknown) => logger.error({ destination: q.name, err: (err as Error).message }, 'destination close failed')),
          ),
        )
        await spool?.close()
        await privacy.close()
        await enricher?.close()
      })()
      return closed
    },
    stats() {
      const destinations: Record<string, DestinationStats> = {}
      const perDestination: Record<string, Record<string, RuleStats>> = {}
      for (const q of queues) {
        destinations[q.name] = { ...q.stats, deadLettered: { ...q.stats.deadLettered }, filteredBy: { ...q.stats.filteredBy } }
        const rules = queuePolicy.get(q)?.policies?.rules ?? []
        if (rules.length) perDestination[q.name] = Object.fromEntries(rules.map((r) => [r.name, { ...r.stats }]))
      }
      const source = Object.fromEntries(policy.source.rules.map((r) => [r.name, { ...r.stats }]))
      return {
        ...stats,
        rejected: { ...stats.rejected },
        deadLettersEvicted: deadLetters.evicted,
        ledgerLost: privacy.ledgerLost,
        destinations,
        ...(spool ? { spool: spool.stats() } : {}),
        policies: { source, destinations: perDestination },
      }
    },
    evaluate(event, opts = {}) {
      const copy = toJsonData(event, '') as Record<string, unknown>
      scanJson(copy, limits.maxDepth, 'event')
      const type = opts.type ?? (typeof copy.type === 'string' ? (copy.type as EventType) : undefined)
      const input: Parameters<typeof normalizeEvent>[1] = { receivedAt: new Date(), where: '' }
      if (type) input.type = type
      const ev = normalizeEvent(copy, input)
      if (opts.gpc) ev.context.gpc = true
      const sourceTrace = newTrace('source')
      const result: Evaluation = { event: ev, source: sourceTrace, dropped: false, suppressed: privacy.isSuppressed(ev as Record<string, unknown>), bot: false, destinations: {} }
      if (result.suppressed) return result
      if (enricher && enricher.enrich(ev) === 'bot') {
        result.bot = result.dropped = true
        return result
      }
      result.dropped = !route(ev, true, (q, verdict, trace) => {
        const t = trace ?? newTrace('destination', q.name)
        result.destinations[q.name] = 'reason' in verdict
          ? { delivered: false, reason: verdict.reason, trace: t }
          : { delivered: true, event: verdict.event === ev ? structuredClone(ev) : verdict.event, trace: t }
      }, sourceTrace, false)
      return result
    },
    deadLetters: {
      list: (f) => deadLetters.list(f),
      count: (f) => deadLetters.count(f),
      replay(f = {}) {
        // Durable: the entries move back into the spool in one transaction per call.
        if (spool && deadLetters === spool.deadLetters) {
          if (!spool.replaySync) throw new Error(`the ${spool.type} spool's dead letters answer asynchronously: use router.deadLettersAsync.replay()`)
          return spool.replaySync(f, new Set(queues.map((q) => q.name)))
        }
        const known = new Map(queues.map((q) => [q.name, q]))
        const taken = deadLetters.take({ ...f, limit: f.limit ?? Infinity })
        const missing = taken.filter((d) => !known.has(d.destination))
        if (missing.length) deadLetters.add(missing.map(({ id: _id, ...rest }) => rest))
        let replayed = 0
        for (const d of taken) {
          const q = known.get(d.destination)
          if (!q) continue
          q.enqueue({ event: d.event, bytes: Buffer.byteLength(JSON.stringify(d.event)), acceptedAt: Date.now(), attempts: 0 })
          replayed++
        }
        return { replayed, skipped: missing.length }
      },
      purge: (f = {}) => deadLetters.take({ ...f, limit: f.limit ?? Infinity }).length,
    },
    deadLettersAsync: spool && deadLetters === spool.deadLetters
      ? {
          ...spool.deadLettersAsync,
          replay: (f, known) => spool.deadLettersAsync.replay(f, known ?? new Set(queues.map((q) => q.name))),
        }
      : {
          add: async (e) => deadLetters.add(e),
          list: async (f) => deadLetters.list(f),
          count: async (f) => deadLetters.count(f),
          purge: async (f) => router.deadLetters.purge(f),
          replay: async (f) => router.deadLetters.replay(f),
        },
    events,
    ready: () => (enricher ? Promise.all([privacy.ready, enricher.ready]).then(() => undefined) : privacy.ready),
    deleteUser: (ids, opts) => privacy.deleteUser(ids, opts),
    deletions: privacy.deletions,
    suppression: privacy.suppression,
    ledger: privacy.ledger,
  }
  return router
}
