/**
 * `firstparty dlq list | replay | purge`: the dead letters of a durable spool (SQLite
 * or Redis), found through the config's `spool` (`--config`, default
 * `firstparty.config.yaml` or FIRSTPARTY_CONFIG).
 *
 *   --destination <name>   only this destination's
 *   --code <CODE>          only this error code (DELIVERY_PERMANENT, DELIVERY_RETENTION, ...)
 *   --since <time>         dead-lettered at or after: ISO date, epoch ms, or an age (30m, 2h, 7d)
 *   --until <time>         dead-lettered before
 *   --limit <n>            at most n entries (list: default 100)
 *   --json                 list: one JSON dead letter per line
 *
 * Replay moves each entry back into its destination's spool in one atomic step, so a
 * replay that is run twice, or interrupted and run again, sends nothing twice; the
 * running router picks the entries up. Long work shows a progress bar on stderr (a
 * line per chunk when stderr is not a terminal) and ends with a summary.
 *
 * Exit code 0 on success, 1 on errors, 2 on usage errors.
 */
import { pathToFileURL } from 'node:url'
import type { SpoolConfig } from '../config.js'
import { loadConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import type { DeadLetter, DeadLetterFilter } from '../deliver/dead-letters.js'
import { createLogger } from '../logger.js'
import { connectRedis, RedisDeadLetterStore } from '../spool/redis.js'
import { openSqliteDatabase, SqliteDeadLetterStore } from '../spool/sqlite.js'
import type { AsyncDeadLetterStore } from '../spool/types.js'

export interface CliIO {
  out(text: string): void
  err(text: string): void
  /** Write without a newline (the progress bar); defaults to `err`. */
  progress?(text: string): void
  /** Whether stderr is a terminal: a redrawn bar, else one line per chunk. */
  tty?: boolean
}

export const DLQ_USAGE = `usage:
  firstparty dlq list   [filters] [--limit n] [--json]   show dead letters
  firstparty dlq replay [filters] [--limit n]            send them again (idempotent)
  firstparty dlq purge  [filters] [--limit n]            delete them
filters: --destination <name> --code <CODE> --since <time> --until <time>
         (time: ISO date, epoch ms, or an age like 30m, 2h, 7d)
options: --config <file> (default firstparty.config.yaml, or FIRSTPARTY_CONFIG)`

const CHUNK = 500

class UsageError extends Error {}

/** An ISO date, epoch milliseconds, or an age before `now` (`90s`, `30m`, `2h`, `7d`). */
export function parseTime(value: string, flag: string, now = Date.now()): number {
  const age = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(value)
  if (age) return now - Number(age[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 's' | 'm' | 'h' | 'd']
  if (/^\d{10,}$/.test(value)) return Number(value)
  const t = Date.parse(value)
  if (Number.isNaN(t)) throw new UsageError(`${flag}: "${value}" is not an ISO date, epoch ms or an age like 2h`)
  return t
}

interface Parsed {
  filter: DeadLetterFilter
  config: string | undefined
  json: boolean
}

function parseArgs(args: readonly string[]): Parsed {
  const filter: DeadLetterFilter = {}
  let config: string | undefined
  let json = false
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined]
    const value = (): string => {
      const v = inline ?? args[++i]
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`)
      return v
    }
    switch (flag) {
      case '--destination': filter.destination = value(); break
      case '--code': filter.code = value() as DeadLetterFilter['code']; break
      case '--since': filter.since = parseTime(value(), '--since'); break
      case '--until': filter.until = parseTime(value(), '--until'); break
      case '--limit': {
        const v = value()
        if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--limit: "${v}" is not a positive integer`)
        filter.limit = Number(v)
        break
      }
      case '--config': config = value(); break
      case '--json': json = true; break
      default: throw new UsageError(`unknown option "${a}"`)
    }
  }
  return { filter, config, json }
}

/** The dead-letter store of the config's spool, and how to let go of it. */
export async function openDeadLetters(spool: SpoolConfig | undefined): Promise<{ store: AsyncDeadLetterStore; close(): Promise<void> }> {
  if (!spool || spool.type === 'memory') {
    throw new ConfigError('CONFIG_SPOOL', [{ path: '/spool', message: "the config's spool is memory: its dead letters live only inside the running router (use router.deadLetters); dlq needs spool.type sqlite or redis" }])
  }
  if (spool.type === 'sqlite') {
    if (!spool.path) throw new ConfigError('CONFIG_INVALID', [{ path: '/spool/path', message: 'the sqlite spool needs path' }])
    const db = openSqliteDatabase(spool.path, spool.synchronous)
    return { store: new SqliteDeadLetterStore(db).asAsync(), close: async () => void db.close() }
  }
  if (!spool.url) throw new ConfigError('CONFIG_INVALID', [{ path: '/spool/url', message: 'the redis spool needs url' }])
  const logger = createLogger('error', { name: 'firstparty-dlq' })
  const redis = connectRedis(spool.url, logger)
  const prefix = spool.stream ?? 'firstparty'
  const store = new RedisDeadLetterStore(redis, prefix, (d) => `${prefix}:${d}`, logger, spool.deadLetters?.maxEntries ?? 1_000_000)
  return { store: store.asAsync(), close: async () => void (await redis.quit().catch(() => redis.disconnect())) }
}

/** A progress bar on stderr: redrawn on a terminal, a line per step elsewhere (logs, CI). */
function progressBar(io: CliIO, verb: string, total: number) {
  const start = Date.now()
  const write = io.progress ?? io.err
  return {
    update(done: number) {
      const width = 30
      const frac = total > 0 ? Math.min(1, done / total) : 1
      const filled = Math.round(frac * width)
      const rate = done / Math.max(0.001, (Date.now() - start) / 1000)
      const line = `${verb} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} (${Math.round(frac * 100)}%, ${Math.round(rate)}/s)`
      if (io.tty) write(`\r${line}`)
      else io.err(line)
    },
    end() {
      if (io.tty) write('\n')
    },
  }
}

function describe(f: DeadLetterFilter): string {
  const parts: string[] = []
  if (f.destination) parts.push(`destination ${f.destination}`)
  if (f.code) parts.push(`code ${f.code}`)
  if (f.since !== undefined) parts.push(`since ${new Date(f.since).toISOString()}`)
  if (f.until !== undefined) parts.push(`until ${new Date(f.until).toISOString()}`)
  return parts.length ? ` (${parts.join(', ')})` : ''
}

function row(d: DeadLetter): string {
  const msg = d.error.message.length > 80 ? `${d.error.message.slice(0, 77)}...` : d.error.message
  return [new Date(d.deadAt).toISOString(), d.id, d.destination, d.error.code + (d.error.status ? ` ${d.error.status}` : ''), d.event.messageId, `attempts=${d.attempts}`, msg].join('  ')
}

const processIO: CliIO = {
  out: (t) => void process.stdout.write(`${t}\n`),
  err: (t) => void process.stderr.write(`${t}\n`),
  progress: (t) => void process.stderr.write(t),
  tty: process.stderr.isTTY === true,
}

/** `firstparty dlq <list|replay|purge> ...`; resolves to the exit code. */
export async function dlq(argv: readonly string[], io: CliIO = processIO): Promise<number> {
  const [action, ...rest] = argv
  if (action === undefined || action === 'help' || action === '--help' || action === '-h') {
    io.out(DLQ_USAGE)
    return action === undefined ? 2 : 0
  }
  if (action !== 'list' && action !== 'replay' && action !== 'purge') {
    io.err(`unknown dlq action "${action}"\n${DLQ_USAGE}`)
    return 2
  }
  let parsed: Parsed
  try {
    parsed = parseArgs(rest)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    io.err(`${err.message}\n${DLQ_USAGE}`)
    return 2
  }
  const { filter } = parsed
  let opened: Awaited<ReturnType<typeof openDeadLetters>>
  let known: Set<string>
  try {
    const config = await loadConfig(parsed.config)
    known = new Set((config.destinations ?? []).filter((d) => d.enabled !== false).map((d) => d.name))
    opened = await openDeadLetters(config.spool)
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(err.message)
      return 1
    }
    throw err
  }
  const { store } = opened
  try {
    const { limit, ...countFilter } = filter
    const matching = await store.count(countFilter)
    const total = limit !== undefined ? Math.min(limit, matching) : matching
    if (action === 'list') {
      const entries = await store.list({ ...filter, limit: limit ?? 100 })
      for (const d of entries) io.out(parsed.json ? JSON.stringify(d) : row(d))
      io.err(`${entries.length} of ${matching} dead letters${describe(filter)}`)
      return 0
    }
    const bar = total > CHUNK ? progressBar(io, action === 'replay' ? 'replaying' : 'purging', total) : undefined
    let done = 0
    let skipped = 0
    while (done < total) {
      const step = { ...filter, limit: Math.min(CHUNK, total - done) }
      if (action === 'replay') {
        const r = await store.replay(step, known)
        skipped = r.skipped
        if (r.replayed === 0) break
        done += r.replayed
      } else {
        const n = await store.purge(step)
        if (n === 0) break
        done += n
      }
      bar?.update(done)
    }
    bar?.end()
    if (action === 'replay') {
      io.err(`replayed ${done} of ${matching} dead letters${describe(filter)}` + (skipped ? `; ${skipped} left in place: their destination is not in the config` : ''))
    } else io.err(`purged ${done} of ${matching} dead letters${describe(filter)}`)
    return 0
  } finally {
    await opened.close()
  }
}

// Runnable on its own until the `firstparty` launcher routes `dlq` here.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await dlq(process.argv.slice(2))
}
