/**
 * Configuration: one schema for the options object and for YAML/JSON files. Every
 * error names its JSON pointer in the config (`/destinations/1/settings/url`).
 */
import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path'
import { pathToFileURL } from 'node:url'
import Type, { type Static, type TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import Value from 'typebox/value'
import { parse as parseYaml } from 'yaml'
import { ConfigError } from './errors.js'
import { parseDenyRule } from './explain/deny.js'
import { EnrichSchema } from './enrich/schema.js'
import type { DeadLetterStore } from './deliver/dead-letters.js'
import type { Logger, LogLevel } from './logger.js'
import type { DestinationDefinition, SourceDefinition } from './plugin.js'
import type { OperationOptions, OperationFn } from './policy/jsonlogic/index.js'

const PositiveInt = (o: { default?: number; maximum?: number; description?: string } = {}) => Type.Integer({ minimum: 1, ...o })

export const RetrySchema = Type.Object({
  maxAttempts: Type.Optional(PositiveInt({ description: 'Send attempts per event, the first included (default 10).' })),
  maxAgeMs: Type.Optional(PositiveInt({ description: 'Dead-letter events older than this (default 24 h).' })),
  minDelayMs: Type.Optional(Type.Integer({ minimum: 0, description: 'First backoff delay (default 500).' })),
  maxDelayMs: Type.Optional(Type.Integer({ minimum: 0, description: 'Backoff ceiling (default 60 000).' })),
  factor: Type.Optional(Type.Number({ minimum: 1, description: 'Backoff growth per attempt (default 2).' })),
  jitter: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Randomized fraction of each delay (default 0.5).' })),
  maxRetryAfterMs: Type.Optional(Type.Integer({ minimum: 0, description: 'Cap on an honoured Retry-After (default 10 min).' })),
}, { additionalProperties: false })

export const DeliverySchema = Type.Object({
  concurrency: Type.Optional(PositiveInt({ description: 'Batches in flight at once (default 4).' })),
  rateLimit: Type.Optional(Type.Object({ count: PositiveInt(), intervalMs: PositiveInt() }, { additionalProperties: false })),
  batch: Type.Optional(Type.Object({
    maxEvents: Type.Optional(PositiveInt()),
    maxBytes: Type.Optional(PositiveInt()),
    maxWaitMs: Type.Optional(Type.Integer({ minimum: 0 })),
  }, { additionalProperties: false })),
  retry: Type.Optional(RetrySchema),
  maxBufferedEvents: Type.Optional(PositiveInt({ description: 'Events held before overflow goes to dead letters (default 10 000).' })),
  timeoutMs: Type.Optional(PositiveInt({ description: 'Abort a send after this long (default 10 000).' })),
}, { additionalProperties: false })

const Origin = Type.String({ minLength: 1, description: "'*', an origin (https://shop.example), or *.example.com" })

export const SourceConfigSchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$' }),
  writeKey: Type.Optional(Type.String({ minLength: 1 })),
  writeKeys: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  allowedOrigins: Type.Optional(Type.Array(Origin)),
  rateLimit: Type.Optional(Type.Object({
    eventsPerSecond: Type.Number({ exclusiveMinimum: 0 }),
    burst: Type.Optional(PositiveInt()),
  }, { additionalProperties: false })),
  /** A source plugin's type; omit for the Segment/RudderStack-compatible collector. */
  type: Type.Optional(Type.String({ minLength: 1 })),
  settings: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  /** Host (and path) analytics.js should send to, in the settings answer; default: this request's host. */
  apiHost: Type.Optional(Type.String()),
}, { additionalProperties: false })

/** Policy rules are checked by the policy compiler, which names the path of each problem. */
const PoliciesSchema = Type.Array(Type.Unknown(), { description: 'Ordered rules { name?, when?, then }.' })

export const ConsentRequirementSchema = Type.Object({
  categories: Type.Array(Type.String({ minLength: 1 })),
  mode: Type.Optional(Type.Union([Type.Literal('all'), Type.Literal('any')])),
}, { additionalProperties: false })

export const DestinationConfigSchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_. -]+$' }),
  type: Type.String({ minLength: 1 }),
  enabled: Type.Optional(Type.Boolean()),
  settings: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  delivery: Type.Optional(DeliverySchema),
  /** Overrides the plugin's declared consent requirement. */
  consent: Type.Optional(ConsentRequirementSchema),
  /** Destination policies: run on this destination's copy of each event. */
  policies: Type.Optional(PoliciesSchema),
  /** Mapping DSL source (docs/dsl.md): what this destination's `send` receives. `false` turns a plugin's default mapping off. */
  mapping: Type.Optional(Type.Union([Type.String(), Type.Literal(false)])),
  /** A file holding the mapping (`.fp`), relative to the config file. */
  mappingFile: Type.Optional(Type.String({ minLength: 1 })),
  /** `per-user`: a user's events reach this destination in order, one at a time (needs a sqlite or redis spool). */
  ordering: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('per-user')])),
}, { additionalProperties: false })

/**
 * Where accepted events wait for delivery. One object for every backend (so a mistake
 * is reported at its own path, `/spool/path`, not as "matches no schema"); the spool
 * factory checks which fields the chosen `type` needs.
 */
export const SpoolSchema = Type.Object({
  type: Type.Union([Type.Literal('memory'), Type.Literal('sqlite'), Type.Literal('redis')]),
  /** sqlite: the database file (created with its folder). */
  path: Type.Optional(Type.String({ minLength: 1 })),
  /** sqlite: `normal` (default) survives a process crash; `full` also a power loss, at the cost of an fsync per commit. */
  synchronous: Type.Optional(Type.Union([Type.Literal('normal'), Type.Literal('full')])),
  /** redis: `redis://host:port/db`. */
  url: Type.Optional(Type.String({ minLength: 1 })),
  /** redis: key prefix of the streams; each destination has `<stream>:<destination>`. @default 'firstparty' */
  stream: Type.Optional(Type.String({ minLength: 1 })),
  /** redis: consumer group shared by the processes that deliver. @default 'firstparty' */
  group: Type.Optional(Type.String({ minLength: 1 })),
  /** redis: this process's consumer name, unique per process. @default '<hostname>-<pid>' */
  consumer: Type.Optional(Type.String({ minLength: 1 })),
  /** redis: entries another consumer has held this long are claimed (XAUTOCLAIM). @default 30 000 */
  claimIdleMs: Type.Optional(PositiveInt()),
  /** Events waiting in the spool (all destinations) before intake answers 503 spool_full. @default 1 000 000 */
  maxEvents: Type.Optional(PositiveInt()),
  /** Per destination backlog; what exceeds it is dead-lettered (DELIVERY_RETENTION), counted. */
  retention: Type.Optional(Type.Object({
    maxEvents: Type.Optional(PositiveInt()),
    maxAgeMs: Type.Optional(PositiveInt()),
  }, { additionalProperties: false })),
  /** How often the delivery loop looks for new events when it has none. @default 50 */
  pollMs: Type.Optional(PositiveInt()),
  /** Dead letters kept in the spool's backend; the oldest is evicted (counted) past this. @default 1 000 000 */
  deadLetters: Type.Optional(Type.Object({ maxEntries: Type.Optional(PositiveInt()) }, { additionalProperties: false })),
}, { additionalProperties: false })

/**
 * Privacy operations: the suppression list, deletion requests and the sharing ledger.
 * With no `privacy` block the router keeps the suppression list and deletion receipts in
 * memory and records no ledger; with one, everything persists in `store` (SQLite file
 * `firstparty-privacy.db` unless told otherwise) and the ledger is on.
 */
export const PrivacySchema = Type.Object({
  store: Type.Optional(Type.Object({
    type: Type.Union([Type.Literal('memory'), Type.Literal('sqlite'), Type.Literal('postgres')]),
    /** sqlite: the database file (created with its folder). @default './firstparty-privacy.db' */
    path: Type.Optional(Type.String({ minLength: 1 })),
    /** postgres: `postgres://user@host:port/db`. */
    connectionString: Type.Optional(Type.String({ minLength: 1 })),
    /** postgres: table name prefix. @default 'firstparty_' */
    tablePrefix: Type.Optional(Type.String({ pattern: '^[a-z_][a-z0-9_]{0,30}$' })),
  }, { additionalProperties: false })),
  /** The sharing ledger: `false` turns it off. */
  ledger: Type.Optional(Type.Union([
    Type.Literal(false),
    Type.Object({
      /** Entries older than this are deleted (checked hourly and at start-up). @default 395 */
      retentionDays: Type.Optional(PositiveInt()),
    }, { additionalProperties: false }),
  ])),
  suppression: Type.Optional(Type.Object({
    /** Re-read the list from the store this often, for lists shared by several processes. @default 30 000 */
    refreshMs: Type.Optional(PositiveInt()),
  }, { additionalProperties: false })),
  deletion: Type.Optional(Type.Object({
    /** Tries per destination, the first included. @default 5 */
    maxAttempts: Type.Optional(PositiveInt()),
    /** First backoff delay between tries; it doubles, with jitter, up to 60 s, as delivery retries do (a Retry-After is honoured up to 10 min). @default 1000 */
    minDelayMs: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Also suppress the subject, so new events do not re-create the data. @default true */
    suppress: Type.Optional(Type.Boolean()),
  }, { additionalProperties: false })),
  /** Forbidden data flows, e.g. `email:raw -> *`: `firstparty explain` exits non-zero when one is possible. */
  deny: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
}, { additionalProperties: false })

export const ConfigSchema = Type.Object({
  sources: Type.Optional(Type.Array(SourceConfigSchema)),
  destinations: Type.Optional(Type.Array(DestinationConfigSchema)),
  limits: Type.Optional(Type.Object({
    maxRequestBytes: Type.Optional(PositiveInt()),
    maxEventBytes: Type.Optional(PositiveInt()),
    maxBatchEvents: Type.Optional(PositiveInt()),
    maxDepth: Type.Optional(Type.Integer({ minimum: 2, maximum: 1000 })),
  }, { additionalProperties: false })),
  trustProxy: Type.Optional(Type.Union([Type.Boolean(), Type.Integer({ minimum: 0 }), Type.Array(Type.String())])),
  dedup: Type.Optional(Type.Union([
    Type.Literal(false),
    Type.Object({ windowMs: Type.Optional(PositiveInt()), maxEntries: Type.Optional(PositiveInt()) }, { additionalProperties: false }),
  ])),
  deadLetters: Type.Optional(Type.Object({ maxEntries: Type.Optional(PositiveInt()) }, { additionalProperties: false })),
  /** Where accepted events wait for delivery: memory (default), sqlite or redis. */
  spool: Type.Optional(SpoolSchema),
  delivery: Type.Optional(DeliverySchema),
  shutdownTimeoutMs: Type.Optional(PositiveInt()),
  /** Source policies: run on every event before it is queued. */
  policies: Type.Optional(PoliciesSchema),
  consent: Type.Optional(Type.Object({
    missing: Type.Optional(Type.Union([Type.Literal('allow'), Type.Literal('deny')])),
    gpcCategories: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    fields: Type.Optional(Type.Record(Type.String(), Type.String({ minLength: 1 }))),
  }, { additionalProperties: false })),
  pii: Type.Optional(Type.Object({
    action: Type.Union([Type.Literal('redact'), Type.Literal('hash')]),
    /** Destinations that may receive detected personal data as it is. */
    allow: Type.Optional(Type.Array(Type.String())),
    classes: Type.Optional(Type.Array(Type.Union([
      Type.Literal('email'), Type.Literal('phone'), Type.Literal('ip'), Type.Literal('card'),
      Type.Literal('national_id'), Type.Literal('address'), Type.Literal('name'),
    ]))),
  }, { additionalProperties: false })),
  privacy: Type.Optional(PrivacySchema),
  /** Enrichment of every accepted event, before source policies (see docs/identity.md). Absent: none. */
  enrich: Type.Optional(EnrichSchema),
  logLevel: Type.Optional(Type.Union([Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error'), Type.Literal('silent')])),
}, { additionalProperties: false })

/** The data part of the configuration, as in a YAML/JSON file. */
export type FirstpartyConfig = Static<typeof ConfigSchema>
export type SourceConfig = Static<typeof SourceConfigSchema>
export type DeliveryConfig = Static<typeof DeliverySchema>
export type SpoolConfig = Static<typeof SpoolSchema>
export type PrivacyConfig = Static<typeof PrivacySchema>

type DestinationConfigData = Static<typeof DestinationConfigSchema>

/** A destination entry: `type` names a plugin, or is the plugin itself. */
export interface DestinationConfig extends Omit<DestinationConfigData, 'type'> {
  type: string | DestinationDefinition
}

/** Everything `createRouter` takes: the config data plus what only code can give. */
export interface RouterOptions extends Omit<FirstpartyConfig, 'destinations' | 'deadLetters'> {
  destinations?: DestinationConfig[]
  /** Destination and source plugins to make available by name, besides the built-in ones. */
  plugins?: Array<DestinationDefinition | SourceDefinition>
  /** Where failed events go: `{ maxEntries }` for the bounded memory store, or a store of your own. */
  deadLetters?: { maxEntries?: number } | DeadLetterStore
  /** A pino-compatible logger. @default JSON lines to stderr at `logLevel` */
  logger?: Logger
  logLevel?: LogLevel
  /** Extra JSON-Logic operations for policies, e.g. `{ is_vip: { fn: (id) => vips.has(id), pure: false, arity: [1, 1] } }`. */
  operations?: Record<string, OperationOptions & { fn: OperationFn }>
}

const configCheck = Compile(ConfigSchema)

/** Turn typebox errors into `{ path, message }`, naming the missing property for `required`. */
export function schemaIssues(schema: TSchema, value: unknown, prefix: string): Array<{ path: string; message: string }> {
  const errors = Value.Errors(schema, value)
  const seen = new Set<string>()
  const out: Array<{ path: string; message: string }> = []
  for (const e of errors) {
    let path = prefix + e.instancePath
    let message = e.message
    if (e.keyword === 'required') {
      const missing = (e.params as { requiredProperties?: string[] }).requiredProperties ?? []
      for (const m of missing) {
        const p = `${path}/${m}`
        if (!seen.has(p)) out.push({ path: p, message: 'is required' }), seen.add(p)
      }
      continue
    }
    if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperties?: string[] }).additionalProperties ?? []
      for (const m of extra) {
        const p = `${path}/${m}`
        if (!seen.has(p)) out.push({ path: p, message: 'is not a known option' }), seen.add(p)
      }
      continue
    }
    if (e.keyword === 'boolean' && message === 'schema is false') continue
    if (!seen.has(path)) {
      seen.add(path)
      out.push({ path, message })
    }
  }
  return out
}

/** Validate the data part of a config; throws a ConfigError naming every bad path. */
export function validateConfig(config: unknown): asserts config is FirstpartyConfig {
  const data = stripCode(config)
  if (configCheck.Check(data)) {
    // Deny rules have a syntax of their own; `firstparty explain` enforces them.
    ;(data as FirstpartyConfig).privacy?.deny?.forEach((rule, i) => parseDenyRule(rule, `/privacy/deny/${i}`))
    return
  }
  const issues = schemaIssues(ConfigSchema, data, '')
  throw new ConfigError('CONFIG_INVALID', issues.length ? issues : [{ path: '', message: 'is invalid' }], 'Invalid firstparty configuration:')
}

// The options object may hold code (plugins, a logger, a dead-letter store, plugin
// objects as `type`); the schema checks only the data around it.
function stripCode(config: unknown): unknown {
  if (!config || typeof config !== 'object') return config
  const { plugins: _p, logger: _l, operations: _o, deadLetters, destinations, ...rest } = config as Record<string, unknown>
  const out: Record<string, unknown> = { ...rest }
  if (deadLetters !== undefined && !(deadLetters && typeof (deadLetters as DeadLetterStore).add === 'function')) out.deadLetters = deadLetters
  if (Array.isArray(destinations)) {
    out.destinations = destinations.map((d) =>
      d && typeof d === 'object' && typeof (d as { type?: unknown }).type === 'object' && (d as { type?: unknown }).type !== null
        ? { ...(d as object), type: ((d as { type: { name?: string } }).type.name ?? 'plugin') }
        : d,
    )
  } else if (destinations !== undefined) out.destinations = destinations
  return out
}

/**
 * Replace `${VAR}` (and `${VAR:-default}`) in every string of a parsed config with the
 * environment's value; `$${...}` is a literal `${...}`. Works on values, not on the
 * file's text, so an environment value can never change the config's structure.
 */
export function interpolateEnv<T>(value: T, env: NodeJS.ProcessEnv = process.env, path = ''): T {
  if (typeof value === 'string') {
    return value.replace(/\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (m, name: string, def: string | undefined) => {
      if (m.startsWith('$$')) return m.slice(1)
      const v = env[name]
      if (v !== undefined && v !== '') return v
      if (def !== undefined) return def
      throw new ConfigError('CONFIG_ENV_MISSING', [{ path: path || '/', message: `the environment variable ${name} is not set` }])
    }) as T
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, `${path}/${i}`)) as T
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      if (k === '__proto__' || k === 'constructor' || k === 'prototype') {
        throw new ConfigError('CONFIG_INVALID', [{ path: `${path}/${k}`, message: 'this key is not allowed' }])
      }
      out[k] = interpolateEnv(v, env, `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`)
    }
    return out as T
  }
  return value
}

const BUILTIN = new Set(['webhook', 'file', 'console', 'ga4', 'meta-capi', 'mixpanel', 'amplitude', 'segment', 'postgres'])

/**
 * Read a YAML or JSON config file (default: `FIRSTPARTY_CONFIG`, else
 * `firstparty.config.yaml` in the working directory), interpolate `${ENV}` values,
 * validate it, and import the plugin modules it names by path or package.
 */
export async function loadConfig(
  file: string = process.env.FIRSTPARTY_CONFIG || 'firstparty.config.yaml',
  env: NodeJS.ProcessEnv = process.env,
): Promise<RouterOptions> {
  const path = isAbsolute(file) ? file : resolvePath(process.cwd(), file)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError('CONFIG_FILE', [{ path: '', message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }])
  }
  let parsed: unknown
  try {
    parsed = parseYaml(text, { prettyErrors: true, maxAliasCount: 100 })
  } catch (err) {
    throw new ConfigError('CONFIG_FILE', [{ path: '', message: `${path} is not valid YAML/JSON: ${(err as Error).message}` }])
  }
  if (parsed === null || parsed === undefined) parsed = {}
  const config = interpolateEnv(parsed, env)
  validateConfig(config)
  // Mapping files are relative to the config file, not to the working directory.
  for (const d of config.destinations ?? []) {
    if (d.mappingFile !== undefined && !isAbsolute(d.mappingFile)) d.mappingFile = resolvePath(dirname(path), d.mappingFile)
  }
  // So is the geo database.
  const geo = config.enrich?.geo
  if (geo && !isAbsolute(geo.database)) geo.database = resolvePath(dirname(path), geo.database)
  const plugins: Array<DestinationDefinition | SourceDefinition> = []
  const refs = [
    ...(config.destinations ?? []).map((d, i) => ({ type: d.type, where: `/destinations/${i}/type` })),
    ...(config.sources ?? []).flatMap((s, i) => (s.type ? [{ type: s.type, where: `/sources/${i}/type` }] : [])),
  ]
  for (const ref of refs) {
    if (BUILTIN.has(ref.type) || !/^[./]|^@?[a-z0-9]/.test(ref.type)) continue
    // A path or a scoped package must import; a bare name may also be a plugin the
    // code registers with `plugins:`, so "not installed" leaves it to createRouter.
    const bare = !/[/.]/.test(ref.type)
    const spec = ref.type.startsWith('.') ? pathToFileURL(resolvePath(dirname(path), ref.type)).href : ref.type
    let mod: Record<string, unknown>
    try {
      mod = (await import(spec)) as Record<string, unknown>
    } catch (err) {
      const code = (err as { code?: string }).code
      const notInstalled = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || /cannot find (module|package)/i.test(String((err as Error).message))
      if (bare && notInstalled) continue
      throw new ConfigError('CONFIG_UNKNOWN_PLUGIN', [{ path: ref.where, message: `cannot import plugin "${ref.type}": ${(err as Error).message}` }])
    }
    const def = (mod.default ?? mod.destination ?? mod.source) as DestinationDefinition | SourceDefinition | undefined
    if (!def || typeof def !== 'object' || typeof def.name !== 'string') {
      throw new ConfigError('CONFIG_UNKNOWN_PLUGIN', [{ path: ref.where, message: `"${ref.type}" has no default export made with defineDestination or defineSource` }])
    }
    plugins.push(def)
    // The entry now refers to the plugin by its own name.
    for (const d of config.destinations ?? []) if (d.type === ref.type) d.type = def.name
    for (const s of config.sources ?? []) if (s.type === ref.type) s.type = def.name
  }
  return { ...config, plugins } as RouterOptions
}
