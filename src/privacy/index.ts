/**
 * Privacy operations inside the router: the suppression list (checked at intake, from
 * memory), deletion requests fanned out to every destination that can delete plus what
 * the router keeps itself, and the sharing ledger written as destinations accept
 * events. Persistence is a PrivacyStore (memory, SQLite or PostgreSQL).
 */
import { randomUUID } from 'node:crypto'
import type { PrivacyConfig } from '../config.js'
import { backoffDelay, classifyError, DEFAULT_RETRY } from '../deliver/retry.js'
import type { Logger } from '../logger.js'
import type { DestinationContext, DestinationDefinition } from '../plugin.js'
import { createPrivacyStore } from './store.js'
import { emailHash, eventEmail, suppressionKeys, toStoredSubject, type StoredSubject } from './subject.js'
import type { LedgerDraft } from './ledger.js'
import type {
  DeletionReceipt,
  LedgerEntry,
  LedgerQuery,
  PrivacyStore,
  ReceiptQuery,
  SubjectIds,
  Suppression,
  SuppressionKind,
} from './types.js'

/** A destination as the deletion fan-out sees it. */
export interface DeletionTarget {
  name: string
  plugin: DestinationDefinition
  context(): Omit<DestinationContext, 'signal' | 'attempt'>
  timeoutMs: number
}

export interface PrivacyDeps {
  logger: Logger
  destinations(): DeletionTarget[]
  /** Remove what the router holds about the subject (queues, spool, dead letters); returns counts by place. */
  purgeLocal(subject: StoredSubject): Promise<Record<string, number>>
}

export interface DeleteUserOptions {
  /** Also put the subject on the suppression list. @default privacy.deletion.suppress (true) */
  suppress?: boolean
  /** Recorded with the suppression. */
  reason?: string
}

export interface DeletionResult {
  requestId: string
  /** One per destination, plus `firstparty` for the router's own stores; final states. */
  receipts: DeletionReceipt[]
}

export interface LedgerApi {
  /** What went where about one person (entries matching any of the ids), newest first. */
  forUser(ids: SubjectIds, options?: Omit<LedgerQuery, 'userId' | 'anonymousId' | 'emailHash'>): Promise<LedgerEntry[]>
  /** Write buffered entries now (they are written within 200 ms anyway). */
  flush(): Promise<void>
}

export interface SuppressionApi {
  /** Suppress a subject: their events are dropped at intake (counted) and what waits for delivery is erased. */
  add(ids: SubjectIds, options?: { reason?: string }): Promise<{ added: number; erased: Record<string, number> }>
  remove(ids: SubjectIds): Promise<{ removed: number }>
  list(): Promise<Suppression[]>
  /** Whether any of the ids is suppressed (from the in-memory copy). */
  has(ids: SubjectIds): boolean
}

export interface Privacy {
  /** Resolves once the store is open and the suppression list loaded. */
  readonly ready: Promise<void>
  readonly loaded: boolean
  readonly ledgerEnabled: boolean
  /** Delivered events whose ledger entry could not be written (the store failed); logged too. */
  readonly ledgerLost: number
  readonly store: PrivacyStore
  /** Intake check: the event's userId, anonymousId or email is suppressed. */
  isSuppressed(ev: Record<string, unknown>): boolean
  /** The delivery hook: record these events as delivered to `destination`. */
  record(destination: string, drafts: LedgerDraft[]): void
  suppression: SuppressionApi
  deleteUser(ids: SubjectIds, options?: DeleteUserOptions): Promise<DeletionResult>
  deletions: { list(query?: Omit<ReceiptQuery, 'emailHash'> & { email?: string }): Promise<DeletionReceipt[]> }
  ledger: LedgerApi
  close(): Promise<void>
}

const HOUR = 3_600_000

function idString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve()
    const t = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true })
  })

/**
 * `config` undefined (no `privacy` block): a memory store, no ledger. Otherwise the
 * configured store (SQLite by default) and the ledger unless `ledger: false`.
 */
export function createPrivacy(config: PrivacyConfig | undefined, deps: PrivacyDeps): Privacy {
  const { logger } = deps
  const store = createPrivacyStore(config ? config.store ?? { type: 'sqlite' } : { type: 'memory' })
  const ledgerEnabled = config !== undefined && config.ledger !== false
  const retentionDays = config?.ledger ? config.ledger.retentionDays ?? 395 : 395
  const maxAttempts = config?.deletion?.maxAttempts ?? 5
  const backoff = { ...DEFAULT_RETRY, minDelayMs: config?.deletion?.minDelayMs ?? 1000 }
  const suppressByDefault = config?.deletion?.suppress ?? true
  const refreshMs = config?.suppression?.refreshMs ?? 30_000
  const closing = new AbortController()

  // The suppression list, in memory for the intake path.
  const emptyLists = (): Record<SuppressionKind, Set<string>> => ({ userId: new Set(), anonymousId: new Set(), emailHash: new Set() })
  let lists = emptyLists()
  let loaded = false
  // Bumped by every local change: a refresh that read the store before the change must not undo it.
  let generation = 0
  const load = async () => {
    const gen = generation
    const list = await store.suppressionList()
    if (gen !== generation && loaded) return
    const next = emptyLists()
    for (const s of list) next[s.kind].add(s.value)
    lists = next
    loaded = true
  }
  const timers: NodeJS.Timeout[] = []
  const ready = store.open().then(load).then(() => {
    // Closed while the store was opening: start no timers.
    if (closing.signal.aborted) return
    if (store.type !== 'memory') {
      const t = setInterval(() => void load().catch((err: unknown) => logger.error({ err: (err as Error).message }, 'suppression list refresh failed')), refreshMs)
      t.unref()
      timers.push(t)
    }
    if (ledgerEnabled) {
      const prune = () =>
        store.ledgerPrune(new Date(Date.now() - retentionDays * 86_400_000).toISOString())
          .then((n) => n && logger.info({ entries: n, retentionDays }, 'ledger retention: entries deleted'))
          .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'ledger retention failed'))
      void prune()
      const t = setInterval(() => void prune(), HOUR)
      t.unref()
      timers.push(t)
    }
  })
  // Callers that never await `ready` must not see an unhandled rejection; the error is logged and rethrown to those who do.
  ready.catch((err: unknown) => logger.error({ err: (err as Error).message }, 'privacy store could not be opened'))

  function isSuppressed(ev: Record<string, unknown>): boolean {
    const { userId, anonymousId, emailHash: emails } = lists
    if (userId.size) {
      const u = idString(ev.userId)
      if (u !== undefined && userId.has(u)) return true
    }
    if (anonymousId.size) {
      const a = idString(ev.anonymousId)
      if (a !== undefined && anonymousId.has(a)) return true
    }
    if (emails.size) {
      const e = eventEmail(ev)
      if (e !== undefined && emails.has(emailHash(e))) return true
    }
    return false
  }

  // Ledger writes: buffered, one store call per 200 ms or 500 entries.
  let ledgerLost = 0
  let pending: LedgerEntry[] = []
  let flushTimer: NodeJS.Timeout | undefined
  let writing: Promise<void> = Promise.resolve()
  const flushLedger = (): Promise<void> => {
    if (flushTimer) clearTimeout(flushTimer)
    flushTimer = undefined
    if (pending.length === 0) return writing
    const batch = pending
    pending = []
    // Deliveries from a spool left by the last run may come before the store is open.
    writing = writing.then(() =>
      ready.then(() => store.ledgerAdd(batch)).catch((err: unknown) => {
        // The events were delivered; only their record is lost. Say so loudly.
        logger.error({ entries: batch.length, err: (err as Error).message }, 'ledger write failed: these deliveries are not recorded')
        ledgerLost += batch.length
      }),
    )
    return writing
  }
  function record(destination: string, drafts: LedgerDraft[]): void {
    if (!ledgerEnabled || drafts.length === 0) return
    const deliveredAt = new Date().toISOString()
    for (const d of drafts) pending.push({ ...d, destination, deliveredAt })
    if (pending.length >= 500) void flushLedger()
    else flushTimer ??= setTimeout(() => void flushLedger(), 200)
  }

  async function suppress(subject: StoredSubject, reason: string | undefined): Promise<number> {
    const now = new Date().toISOString()
    const entries: Suppression[] = suppressionKeys(subject).map((k) => ({ ...k, createdAt: now, ...(reason ? { reason: reason.slice(0, 500) } : {}) }))
    // In memory first: from this moment the subject's events are dropped, even if the store write fails.
    generation++
    for (const k of entries) lists[k.kind].add(k.value)
    const added = await store.suppressionAdd(entries)
    generation++
    return added
  }

  /** One destination's deletion, with retries; the receipt is stored at each step. */
  async function deleteAt(t: DeletionTarget, ids: SubjectIds, receipt: DeletionReceipt): Promise<void> {
    const put = (patch: Partial<DeletionReceipt>) => {
      Object.assign(receipt, patch, { updatedAt: new Date().toISOString() })
      return store.receiptsPut([receipt]).catch((err: unknown) => logger.error({ destination: t.name, err: (err as Error).message }, 'deletion receipt could not be stored'))
    }
    const plain: { userId?: string; anonymousId?: string; email?: string } = {}
    if (ids.userId !== undefined && ids.userId !== null) plain.userId = String(ids.userId)
    if (ids.anonymousId !== undefined && ids.anonymousId !== null) plain.anonymousId = String(ids.anonymousId)
    if (ids.email) plain.email = ids.email
    for (let attempt = 1; ; attempt++) {
      const ac = new AbortController()
      const onClose = () => ac.abort(new Error('router closed'))
      closing.signal.addEventListener('abort', onClose, { once: true })
      const timer = setTimeout(() => ac.abort(new Error(`no answer within ${t.timeoutMs} ms`)), t.timeoutMs)
      try {
        await t.plugin.deleteUser!(plain, { ...t.context(), signal: ac.signal, attempt })
        clearTimeout(timer)
        closing.signal.removeEventListener('abort', onClose)
        delete receipt.error
        await put({ status: 'succeeded', attempts: attempt })
        logger.info({ destination: t.name, requestId: receipt.requestId, attempts: attempt }, 'deletion succeeded')
        return
      } catch (err) {
        clearTimeout(timer)
        closing.signal.removeEventListener('abort', onClose)
        const c = classifyError(err)
        const error = { code: c.code, message: c.message.slice(0, 500) }
        if (closing.signal.aborted) {
          await put({ status: 'failed', attempts: attempt, error: { code: 'DELETION_INTERRUPTED', message: 'the router closed before the destination confirmed; request the deletion again' } })
          return
        }
        if (c.rule !== 'retry' || attempt >= maxAttempts) {
          await put({ status: 'failed', attempts: attempt, error: attempt >= maxAttempts && c.rule === 'retry' ? { code: 'DELETION_MAX_ATTEMPTS', message: `${maxAttempts} attempts failed; last: ${error.message}` } : error })
          logger.warn({ destination: t.name, requestId: receipt.requestId, code: error.code, reason: error.message }, 'deletion failed')
          return
        }
        await put({ status: 'retrying', attempts: attempt, error })
        // The delivery backoff (doubling, jittered, Retry-After honoured up to its cap).
        const delay = c.retryAfterMs !== undefined ? Math.min(c.retryAfterMs, backoff.maxRetryAfterMs) : backoffDelay(attempt, backoff)
        await sleep(delay, closing.signal)
        if (closing.signal.aborted) {
          await put({ status: 'failed', error: { code: 'DELETION_INTERRUPTED', message: 'the router closed before the destination confirmed; request the deletion again' } })
          return
        }
      }
    }
  }

  const inFlight = new Set<Promise<unknown>>()

  async function deleteUser(ids: SubjectIds, options: DeleteUserOptions = {}): Promise<DeletionResult> {
    if (closing.signal.aborted) throw new Error('deleteUser: the router is closed')
    const subject = toStoredSubject(ids, 'deleteUser')
    await ready
    const requestId = randomUUID()
    const now = new Date().toISOString()
    const base = { requestId, subject: { ...subject }, attempts: 0, requestedAt: now, updatedAt: now }
    const receipts: DeletionReceipt[] = []

    // First stop new data, then erase what the router holds, then ask each destination.
    if (options.suppress ?? suppressByDefault) await suppress(subject, options.reason ?? `deletion request ${requestId}`)
    const local: DeletionReceipt = { ...base, target: 'firstparty', status: 'requested' }
    receipts.push(local)
    const targets = deps.destinations()
    const remote = targets.map((t): DeletionReceipt =>
      t.plugin.deleteUser
        ? { ...base, target: t.name, status: 'requested' }
        : { ...base, target: t.name, status: 'unsupported', error: { code: 'DELETION_UNSUPPORTED', message: `plugin "${t.plugin.name}" has no deletion API: delete this subject in the vendor's own tools` } },
    )
    receipts.push(...remote)
    await store.receiptsPut(receipts)
    logger.info({ requestId, destinations: targets.length }, 'deletion requested')

    const work = (async () => {
      try {
        const removed = await deps.purgeLocal(subject)
        if (ledgerEnabled) {
          await flushLedger()
          removed.ledger = await store.ledgerDelete(subject)
        }
        Object.assign(local, { status: 'succeeded', attempts: 1, removed, updatedAt: new Date().toISOString() })
      } catch (err) {
        Object.assign(local, { status: 'failed', attempts: 1, error: { code: 'DELETION_LOCAL_FAILED', message: (err as Error).message.slice(0, 500) }, updatedAt: new Date().toISOString() })
      }
      await store.receiptsPut([local]).catch((err: unknown) => logger.error({ err: (err as Error).message }, 'deletion receipt could not be stored'))
      await Promise.all(targets.map((t, i) => (t.plugin.deleteUser ? deleteAt(t, ids, remote[i]!) : undefined)))
    })()
    inFlight.add(work)
    try {
      await work
    } finally {
      inFlight.delete(work)
    }
    return { requestId, receipts: receipts.map((r) => structuredClone(r)) }
  }

  return {
    ready,
    get loaded() {
      return loaded
    },
    ledgerEnabled,
    get ledgerLost() {
      return ledgerLost
    },
    store,
    isSuppressed,
    record,
    suppression: {
      async add(ids, options = {}) {
        const subject = toStoredSubject(ids, 'suppression.add')
        await ready
        const added = await suppress(subject, options.reason)
        const erased = await deps.purgeLocal(subject)
        return { added, erased }
      },
      async remove(ids) {
        const subject = toStoredSubject(ids, 'suppression.remove')
        await ready
        const keys = suppressionKeys(subject)
        generation++
        const removed = await store.suppressionRemove(keys)
        generation++
        for (const k of keys) lists[k.kind].delete(k.value)
        return { removed }
      },
      async list() {
        await ready
        return store.suppressionList()
      },
      has(ids) {
        const s = toStoredSubject(ids, 'suppression.has')
        return suppressionKeys(s).some((k) => lists[k.kind].has(k.value))
      },
    },
    deleteUser,
    deletions: {
      async list(query = {}) {
        await ready
        const { email, ...rest } = query
        return store.receiptsList(email ? { ...rest, emailHash: emailHash(email) } : rest)
      },
    },
    ledger: {
      async forUser(ids, options = {}) {
        const s = toStoredSubject(ids, 'ledger.forUser')
        await ready
        await flushLedger()
        return store.ledgerQuery({ ...options, ...s })
      },
      flush: () => flushLedger(),
    },
    async close() {
      closing.abort()
      for (const t of timers) clearInterval(t)
      await Promise.allSettled([...inFlight])
      await ready.catch(() => {})
      await flushLedger()
      if (ledgerLost) logger.error({ entries: ledgerLost }, 'ledger entries lost to write errors since start')
      await store.close()
    },
  }
}

