/**
 * Privacy commands, against the store of the config's `privacy` block (`--config`,
 * default `firstparty.config.yaml` or FIRSTPARTY_CONFIG):
 *
 *   firstparty suppress add|remove <ids> [--reason text]   edit the suppression list
 *   firstparty suppress list [--json]                      show it
 *   firstparty ledger <ids> [--destination d] [--since t] [--until t] [--limit n]
 *                                                          what was shared about a person, as JSON
 *   firstparty deletions [<ids>] [--request id] [--status s] [--json]
 *                                                          deletion receipts
 *
 * ids: --user-id, --anonymous-id, --email (an email is only ever stored and compared as
 * its SHA-256). A running router re-reads the suppression list every
 * `privacy.suppression.refreshMs`. Exit code 0 on success, 1 on errors, 2 on usage errors.
 */
import { loadConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import { createPrivacyStore } from '../privacy/store.js'
import { suppressionKeys, toStoredSubject } from '../privacy/subject.js'
import type { PrivacyStore, ReceiptStatus } from '../privacy/types.js'
import { parseTime } from './dlq.js'

export interface CliIO {
  out(text: string): void
  err(text: string): void
}

export const PRIVACY_USAGE = `usage:
  firstparty suppress add <ids> [--reason text]       put a subject on the suppression list
  firstparty suppress remove <ids>                    take them off
  firstparty suppress list [--json]                   show the list
  firstparty ledger <ids> [--destination d] [--since t] [--until t] [--limit n]
                                                      what was shared about a person (JSON)
  firstparty deletions [<ids>] [--request id] [--status s] [--limit n] [--json]
                                                      deletion receipts
ids: --user-id <id> --anonymous-id <id> --email <address> (any of them)
time: ISO date, epoch ms, or an age like 30m, 2h, 7d
options: --config <file> (default firstparty.config.yaml, or FIRSTPARTY_CONFIG)`

class UsageError extends Error {}

interface Parsed {
  ids: { userId?: string; anonymousId?: string; email?: string }
  config?: string
  json: boolean
  reason?: string
  destination?: string
  since?: number
  until?: number
  limit?: number
  request?: string
  status?: ReceiptStatus
}

const STATUSES: ReceiptStatus[] = ['requested', 'retrying', 'succeeded', 'failed', 'unsupported']

function parseArgs(args: readonly string[], allowed: ReadonlySet<string>): Parsed {
  const p: Parsed = { ids: {}, json: false }
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined]
    if (!allowed.has(flag)) throw new UsageError(`unknown option "${a}"`)
    const value = (): string => {
      const v = inline ?? args[++i]
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`)
      return v
    }
    switch (flag) {
      case '--user-id': p.ids.userId = value(); break
      case '--anonymous-id': p.ids.anonymousId = value(); break
      case '--email': p.ids.email = value(); break
      case '--config': p.config = value(); break
      case '--json': p.json = true; break
      case '--reason': p.reason = value(); break
      case '--destination': p.destination = value(); break
      case '--since': p.since = parseTime(value(), '--since'); break
      case '--until': p.until = parseTime(value(), '--until'); break
      case '--request': p.request = value(); break
      case '--status': {
        const v = value()
        if (!STATUSES.includes(v as ReceiptStatus)) throw new UsageError(`--status: "${v}" is not one of ${STATUSES.join(', ')}`)
        p.status = v as ReceiptStatus
        break
      }
      case '--limit': {
        const v = value()
        if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--limit: "${v}" is not a positive integer`)
        p.limit = Number(v)
        break
      }
    }
  }
  return p
}

const IDS = ['--user-id', '--anonymous-id', '--email']

function subjectFrom(p: Parsed, required: boolean) {
  const has = p.ids.userId !== undefined || p.ids.anonymousId !== undefined || p.ids.email !== undefined
  if (!has) {
    if (required) throw new UsageError('name the subject with --user-id, --anonymous-id or --email')
    return undefined
  }
  try {
    return toStoredSubject(p.ids, 'ids')
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

async function openStore(configFile: string | undefined): Promise<PrivacyStore> {
  const config = await loadConfig(configFile)
  if (!config.privacy || config.privacy.store?.type === 'memory') {
    throw new ConfigError('CONFIG_INVALID', [{
      path: '/privacy/store',
      message: config.privacy ? 'the privacy store is memory: it lives only inside the running router (use router.suppression / router.ledger)' : 'the config has no privacy block, so the router keeps privacy data in memory only; add `privacy: { store: { type: sqlite, path: ... } }`',
    }])
  }
  const store = createPrivacyStore(config.privacy.store ?? { type: 'sqlite' })
  await store.open()
  return store
}

/** `firstparty suppress|ledger|deletions ...`; resolves to the exit code. */
export async function privacyCommand(command: 'suppress' | 'ledger' | 'deletions', args: readonly string[], io: CliIO): Promise<number> {
  try {
    if (args[0] === '--help' || args[0] === '-h') {
      io.out(PRIVACY_USAGE)
      return 0
    }
    if (command === 'suppress') return await suppress(args, io)
    if (command === 'ledger') return await ledger(args, io)
    return await deletions(args, io)
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message}\n${PRIVACY_USAGE}`)
      return 2
    }
    throw err
  }
}

async function withStore<T>(config: string | undefined, fn: (s: PrivacyStore) => Promise<T>): Promise<T> {
  const store = await openStore(config)
  try {
    return await fn(store)
  } finally {
    await store.close()
  }
}

async function suppress(args: readonly string[], io: CliIO): Promise<number> {
  const [verb, ...rest] = args
  if (verb === 'list') {
    const p = parseArgs(rest, new Set(['--config', '--json']))
    const list = await withStore(p.config, (s) => s.suppressionList())
    if (p.json) for (const s of list) io.out(JSON.stringify(s))
    else if (list.length === 0) io.out('the suppression list is empty')
    else for (const s of list) io.out(`${s.createdAt}  ${s.kind.padEnd(11)}  ${s.value}${s.reason ? `  (${s.reason})` : ''}`)
    return 0
  }
  if (verb !== 'add' && verb !== 'remove') throw new UsageError(`suppress: say add, remove or list${verb ? ` (not "${verb}")` : ''}`)
  const p = parseArgs(rest, new Set([...IDS, '--config', ...(verb === 'add' ? ['--reason'] : [])]))
  const subject = subjectFrom(p, true)!
  const keys = suppressionKeys(subject)
  const now = new Date().toISOString()
  const n = await withStore(p.config, (s) =>
    verb === 'add'
      ? s.suppressionAdd(keys.map((k) => ({ ...k, createdAt: now, ...(p.reason ? { reason: p.reason } : {}) })))
      : s.suppressionRemove(keys),
  )
  io.out(verb === 'add' ? `suppressed: ${n} new of ${keys.length}` : `removed: ${n} of ${keys.length}`)
  return 0
}

async function ledger(args: readonly string[], io: CliIO): Promise<number> {
  const p = parseArgs(args, new Set([...IDS, '--config', '--destination', '--since', '--until', '--limit', '--json']))
  const subject = subjectFrom(p, true)!
  const entries = await withStore(p.config, (s) =>
    s.ledgerQuery({
      ...subject,
      ...(p.destination ? { destination: p.destination } : {}),
      ...(p.since !== undefined ? { since: new Date(p.since).toISOString() } : {}),
      ...(p.until !== undefined ? { until: new Date(p.until).toISOString() } : {}),
      ...(p.limit !== undefined ? { limit: p.limit } : {}),
    }),
  )
  const destinations = [...new Set(entries.map((e) => e.destination))].sort()
  io.out(JSON.stringify({ subject, exportedAt: new Date().toISOString(), destinations, entries }, null, 2))
  return 0
}

async function deletions(args: readonly string[], io: CliIO): Promise<number> {
  const p = parseArgs(args, new Set([...IDS, '--config', '--request', '--status', '--limit', '--json']))
  const subject = subjectFrom(p, false)
  const receipts = await withStore(p.config, (s) =>
    s.receiptsList({
      ...(subject ?? {}),
      ...(p.request ? { requestId: p.request } : {}),
      ...(p.status ? { status: p.status } : {}),
      ...(p.limit !== undefined ? { limit: p.limit } : {}),
    }),
  )
  if (p.json) for (const r of receipts) io.out(JSON.stringify(r))
  else if (receipts.length === 0) io.out('no deletion receipts match')
  else {
    for (const r of receipts) {
      io.out(`${r.requestedAt}  ${r.requestId}  ${r.target.padEnd(16)}  ${r.status.padEnd(11)}  attempts ${r.attempts}${r.error ? `  ${r.error.code}: ${r.error.message}` : ''}`)
    }
  }
  return 0
}
