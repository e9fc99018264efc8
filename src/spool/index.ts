/**
 * Opens the spool a config names. `memory` (the default) returns undefined: the router
 * then queues events in memory exactly as it does without a spool.
 */
import { hostname } from 'node:os'
import type { SpoolConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import type { Logger } from '../logger.js'
import { RedisSpool } from './redis.js'
import { SqliteSpool } from './sqlite.js'
import type { Spool } from './types.js'

export { SpoolConsumer } from './consumer.js'
export { SqliteSpool, SqliteDeadLetterStore, openSqliteDatabase } from './sqlite.js'
export { RedisSpool, RedisDeadLetterStore } from './redis.js'
export type { AsyncDeadLetterStore, Spool, SpooledEvent, SpoolEntry, SpoolReader, SpoolStats } from './types.js'
export { userKeyOf } from './types.js'

export const DEFAULT_SPOOL_MAX_EVENTS = 1_000_000

export function createSpool(config: SpoolConfig | undefined, logger: Logger, where = '/spool'): Spool | undefined {
  if (!config || config.type === 'memory') return undefined
  const onEvict = (n: number) => logger.error({ count: n }, 'dead-letter store full: oldest entries evicted')
  if (config.type === 'sqlite') {
    if (!config.path) throw new ConfigError('CONFIG_INVALID', [{ path: `${where}/path`, message: 'the sqlite spool needs path (the database file)' }])
    return new SqliteSpool({
      path: config.path,
      synchronous: config.synchronous ?? 'normal',
      maxEvents: config.maxEvents ?? DEFAULT_SPOOL_MAX_EVENTS,
      deadLetterMaxEntries: config.deadLetters?.maxEntries ?? 1_000_000,
      onEvict,
    })
  }
  if (!config.url) throw new ConfigError('CONFIG_INVALID', [{ path: `${where}/url`, message: 'the redis spool needs url (redis://host:port)' }])
  return new RedisSpool({
    url: config.url,
    stream: config.stream ?? 'firstparty',
    group: config.group ?? 'firstparty',
    consumer: config.consumer ?? `${hostname()}-${process.pid}`,
    claimIdleMs: config.claimIdleMs ?? 30_000,
    maxEvents: config.maxEvents ?? DEFAULT_SPOOL_MAX_EVENTS,
    deadLetterMaxEntries: config.deadLetters?.maxEntries ?? 1_000_000,
    onEvict,
    logger,
  })
}
