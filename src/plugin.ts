/**
 * The plugin contracts. A destination is a typed object returned unchanged by
 * `defineDestination`; its metadata and settings schema are checked right there, at
 * registration, and its settings at router start-up.
 */
import type { Static, TSchema } from 'typebox'
import type { Got } from 'got'
import { ConfigError } from './errors.js'
import type { FirstpartyEvent } from './normalize/schema.js'
import type { Logger } from './logger.js'
import type { DeliveryError } from './errors.js'

export interface ConsentRequirement {
  /** Consent categories this destination needs (e.g. `['marketing']`). */
  categories: string[]
  /** `all`: every category must be granted; `any`: one is enough. @default 'all' */
  mode?: 'all' | 'any'
}

export interface BatchOptions {
  /** Most events in one `send` call. @default 100 */
  maxEvents?: number
  /** Most bytes (JSON size of the events) in one `send` call. @default 512_000 */
  maxBytes?: number
  /** Longest an event waits for a batch to fill. @default 1000 */
  maxWaitMs?: number
}

/** What a destination gets besides its events: all I/O goes through here. */
export interface DestinationContext<S = unknown> {
  /** This destination's validated settings. */
  settings: S
  /** A got instance: no retries of its own (the router retries), the destination's timeout. Pass `signal`. */
  http: Got
  logger: Logger
  /** Aborted when the send times out or the router closes: stop and throw. */
  signal: AbortSignal
  /** 1 for the first try of this batch. */
  attempt: number
  /** The destination's configured name (there may be several of one plugin). */
  destination: string
  /** Per-destination scratch space that lives from `setup` to `close` (open files, clients). */
  state: Record<string, unknown>
}

/** Per-event outcome when a vendor accepts part of a batch. Indexes refer to the `events` array. */
export interface SendResult {
  rejected?: Array<{ index: number; error: DeliveryError }>
}

export interface DestinationDefinition<S extends TSchema = TSchema> {
  /** Plugin type name, used as `type:` in config: lower-case, `a-z0-9-`. */
  name: string
  version: string
  description?: string
  /** TypeBox schema of the settings; defaults in the schema are applied. */
  settings: S
  consent?: ConsentRequirement
  batch?: BatchOptions
  /** DSL source of the default mapping (see the DSL issue). */
  mapping?: string
  /** Called once at start-up with validated settings. */
  setup?(ctx: Omit<DestinationContext<Static<S>>, 'signal' | 'attempt'>): void | Promise<void>
  /** Deliver a batch. Throw a RetryableError, PermanentError or AuthenticationError (or let got's HTTPError through). */
  send(events: ReadonlyArray<FirstpartyEvent>, ctx: DestinationContext<Static<S>>): Promise<void | SendResult>
  /** Delete a subject's data at the vendor, where the vendor has a deletion API. */
  deleteUser?(ids: { userId?: string; anonymousId?: string; email?: string }, ctx: DestinationContext<Static<S>>): Promise<void>
  /** Release resources (file handles, sockets) when the router closes. */
  close?(ctx: Omit<DestinationContext<Static<S>>, 'signal' | 'attempt'>): void | Promise<void>
}

const NAME = /^[a-z0-9][a-z0-9-]{0,63}$/

/** Define a destination plugin. Returns the definition unchanged, after checking it. */
export function defineDestination<S extends TSchema>(def: DestinationDefinition<S>): DestinationDefinition<S> {
  checkPluginShape(def, 'destination')
  if (typeof def.send !== 'function') throw pluginError(def, '/send', 'must be a function')
  if (def.consent) {
    if (!Array.isArray(def.consent.categories) || def.consent.categories.some((c) => typeof c !== 'string')) {
      throw pluginError(def, '/consent/categories', 'must be an array of strings')
    }
    if (def.consent.mode !== undefined && def.consent.mode !== 'all' && def.consent.mode !== 'any') {
      throw pluginError(def, '/consent/mode', "must be 'all' or 'any'")
    }
  }
  return def
}

/** A raw request as a source plugin sees it. */
export interface SourceRequest {
  method: string
  /** Path below the source's mount point, e.g. `/` or `/orders`. */
  path: string
  query: URLSearchParams
  headers: Readonly<Record<string, string | string[] | undefined>>
  /** The parsed body: JSON when it parses, otherwise the text. */
  body: unknown
  ip: string | undefined
}

export interface SourceContext<S = unknown> {
  settings: S
  logger: Logger
  /** The source's configured name. */
  source: string
}

export interface SourceDefinition<S extends TSchema = TSchema> {
  name: string
  version: string
  description?: string
  settings: S
  /**
   * Turn a request received at `/sources/<source name>` into events (Segment-spec,
   * normalized by the router afterwards). Throw an HttpError to answer with an error.
   */
  handle(req: SourceRequest, ctx: SourceContext<Static<S>>): unknown[] | Promise<unknown[]>
}

/** Define a source plugin (a webhook receiver, say). Returns the definition unchanged, after checking it. */
export function defineSource<S extends TSchema>(def: SourceDefinition<S>): SourceDefinition<S> {
  checkPluginShape(def, 'source')
  if (typeof def.handle !== 'function') throw pluginError(def, '/handle', 'must be a function')
  return def
}

function pluginError(def: { name?: unknown }, path: string, message: string): ConfigError {
  const name = typeof def?.name === 'string' ? def.name : '(unnamed)'
  return new ConfigError('PLUGIN_INVALID', [{ path, message }], `Plugin "${name}" is invalid:`)
}

function checkPluginShape(def: { name?: unknown; version?: unknown; settings?: unknown }, kind: string): void {
  if (!def || typeof def !== 'object') throw new ConfigError('PLUGIN_INVALID', [{ path: '', message: `a ${kind} definition must be an object` }])
  if (typeof def.name !== 'string' || !NAME.test(def.name)) throw pluginError(def, '/name', 'must be lower-case letters, digits and dashes')
  if (typeof def.version !== 'string' || def.version === '') throw pluginError(def, '/version', 'must be a non-empty string')
  const s = def.settings as { type?: unknown } | undefined
  if (!s || typeof s !== 'object' || s.type !== 'object') throw pluginError(def, '/settings', 'must be a TypeBox object schema (Type.Object)')
}
