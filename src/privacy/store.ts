/**
 * Opens the privacy store a config's `privacy.store` names. The store is constructed
 * here (config mistakes throw now, as ConfigErrors naming the path) and opened by the
 * caller's `open()` (a missing package, an unwritable file or an unreachable server
 * reject there, also as ConfigErrors).
 */
import type { PrivacyConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import type { Logger } from '../logger.js'
import { MemoryPrivacyStore } from './store-memory.js'
import { PostgresPrivacyStore, TABLE_PREFIX } from './store-postgres.js'
import { SqlitePrivacyStore } from './store-sqlite.js'
import type { PrivacyStore } from './types.js'

export { MemoryPrivacyStore, type MemoryPrivacyStoreOptions } from './store-memory.js'
export { SqlitePrivacyStore, type SqlitePrivacyStoreOptions } from './store-sqlite.js'
export { PostgresPrivacyStore, type PostgresPrivacyStoreOptions } from './store-postgres.js'
export { DEFAULT_QUERY_LIMIT } from './store-common.js'

/** Where the SQLite store lives when `privacy.store` gives no path. */
export const DEFAULT_PRIVACY_DB = './firstparty-privacy.db'

export interface CreatePrivacyStoreOptions {
  /** Reports a lost idle PostgreSQL connection. */
  logger?: Logger
  /** JSON pointer of the store block, for error messages. @default '/privacy/store' */
  where?: string
  /** memory: ledger entries kept. @default 100_000 */
  maxLedgerEntries?: number
}

type StoreConfig = NonNullable<PrivacyConfig['store']>

/** Which keys each type takes, so a key meant for another one is named rather than ignored. */
const KEYS: Record<StoreConfig['type'], ReadonlyArray<keyof StoreConfig>> = {
  memory: ['type'],
  sqlite: ['type', 'path'],
  postgres: ['type', 'connectionString', 'tablePrefix'],
}
const FOR: Partial<Record<keyof StoreConfig, string>> = { path: 'sqlite', connectionString: 'postgres', tablePrefix: 'postgres' }

/**
 * The store for `privacy.store`; `undefined` (a `privacy` block without `store`) is the
 * SQLite file `./firstparty-privacy.db`.
 * @example createPrivacyStore({ type: 'postgres', connectionString: process.env.DATABASE_URL! })
 */
export function createPrivacyStore(config: PrivacyConfig['store'] | undefined, options: CreatePrivacyStoreOptions = {}): PrivacyStore {
  const where = options.where ?? '/privacy/store'
  const c: StoreConfig = config ?? { type: 'sqlite' }
  const allowed = Object.hasOwn(KEYS, c.type) ? KEYS[c.type] : undefined
  if (!allowed) {
    throw new ConfigError('CONFIG_INVALID', [{ path: `${where}/type`, message: `must be memory, sqlite or postgres, got ${JSON.stringify(c.type)}` }])
  }
  const issues: Array<{ path: string; message: string }> = []
  for (const key of Object.keys(c) as Array<keyof StoreConfig>) {
    if (c[key] === undefined || allowed.includes(key)) continue
    issues.push({ path: `${where}/${key}`, message: FOR[key] ? `${key} is for type ${FOR[key]}; type ${c.type} does not take it` : `unknown key for type ${c.type}` })
  }
  if (c.type === 'postgres') {
    if (typeof c.connectionString !== 'string' || c.connectionString === '') {
      issues.unshift({ path: `${where}/connectionString`, message: 'the postgres privacy store needs connectionString (postgres://user@host:port/db)' })
    }
    if (c.tablePrefix !== undefined && (typeof c.tablePrefix !== 'string' || !TABLE_PREFIX.test(c.tablePrefix))) {
      issues.push({ path: `${where}/tablePrefix`, message: `${JSON.stringify(c.tablePrefix)} is not a table prefix: lower-case letters, digits and _, starting with a letter or _, at most 31` })
    }
  }
  if (c.type === 'sqlite' && c.path !== undefined && (typeof c.path !== 'string' || c.path === '')) {
    issues.push({ path: `${where}/path`, message: 'must be a file path' })
  }
  if (issues.length) throw new ConfigError('CONFIG_INVALID', issues)

  switch (c.type) {
    case 'memory':
      return new MemoryPrivacyStore(options.maxLedgerEntries !== undefined ? { maxLedgerEntries: options.maxLedgerEntries } : {})
    case 'sqlite':
      return new SqlitePrivacyStore({ path: c.path ?? DEFAULT_PRIVACY_DB, where })
    case 'postgres':
      return new PostgresPrivacyStore({
        connectionString: c.connectionString!,
        ...(c.tablePrefix !== undefined ? { tablePrefix: c.tablePrefix } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
        where,
      })
  }
}
