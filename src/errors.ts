/**
 * The one table of coded errors. Every error the router shows a user — in an HTTP
 * response, a thrown config error, a dead letter — has a stable `code` from here.
 * `docs/errors.md` lists them; a test checks the two stay in step.
 */

export interface ErrorSpec {
  readonly status: number
  readonly summary: string
}

export const HTTP_ERRORS = {
  invalid_json: { status: 400, summary: 'The body is not valid JSON (or not valid UTF-8).' },
  invalid_body: { status: 400, summary: 'The body is JSON but not an event or a batch of events.' },
  invalid_event: { status: 400, summary: 'An event failed validation; the message names the field.' },
  invalid_encoding: { status: 400, summary: 'Content-Encoding is not gzip/deflate/identity, or the compressed body is corrupt.' },
  too_deep: { status: 400, summary: 'The JSON nests deeper than the router accepts.' },
  missing_write_key: { status: 401, summary: 'No write key: send Basic auth, `writeKey` in the body, or `?writeKey=`.' },
  unknown_write_key: { status: 401, summary: 'The write key does not belong to any configured source.' },
  origin_not_allowed: { status: 403, summary: "The request's Origin is not in the source's allowedOrigins." },
  not_found: { status: 404, summary: 'No such endpoint.' },
  method_not_allowed: { status: 405, summary: 'The endpoint exists but not for this HTTP method.' },
  request_too_large: { status: 413, summary: 'The request body (or its decompressed size) exceeds the limit.' },
  event_too_large: { status: 413, summary: 'One event exceeds the per-event size limit.' },
  batch_too_large: { status: 413, summary: 'The batch holds more events than the limit.' },
  unsupported_media_type: { status: 415, summary: 'The Content-Type is not JSON or text/plain.' },
  rate_limited: { status: 429, summary: 'The router is over its intake limit; retry after Retry-After seconds.' },
  body_consumed: { status: 500, summary: 'Host-app middleware (e.g. express.urlencoded()) consumed the body; mount firstparty before it.' },
  internal_error: { status: 500, summary: 'An unexpected error in the router; the event was not accepted.' },
  shutting_down: { status: 503, summary: 'The router is closing and accepts no new events; retry.' },
  spool_full: { status: 503, summary: 'The durable spool holds spool.maxEvents events; nothing was stored; retry after Retry-After seconds.' },
  spool_unavailable: { status: 503, summary: 'The durable spool could not store the events (disk, database or Redis error); nothing was accepted; retry.' },
  privacy_unavailable: { status: 503, summary: 'The privacy store (suppression list) could not be opened, so events cannot be checked against it; nothing was accepted; retry.' },
} as const satisfies Record<string, ErrorSpec>

export type HttpErrorCode = keyof typeof HTTP_ERRORS

/** An error answered over HTTP as `{ code, message }` with the table's status. */
export class HttpError extends Error {
  readonly code: HttpErrorCode
  readonly status: number
  readonly headers: Record<string, string>
  constructor(code: HttpErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.name = 'HttpError'
    this.code = code
    this.status = HTTP_ERRORS[code].status
    this.headers = headers
  }
}

export const CONFIG_ERRORS = {
  CONFIG_INVALID: 'A value in the configuration does not match its schema.',
  CONFIG_UNKNOWN_PLUGIN: 'A destination or source names a plugin type that is not registered.',
  CONFIG_DUPLICATE_NAME: 'Two sources or destinations share a name.',
  CONFIG_DUPLICATE_WRITE_KEY: 'Two sources share a write key.',
  CONFIG_ENV_MISSING: 'A `${VAR}` in the configuration names an unset environment variable.',
  CONFIG_FILE: 'The configuration file cannot be read or parsed.',
  PLUGIN_INVALID: 'A plugin definition is malformed (name, version, settings schema or send).',
  CONFIG_SPOOL: 'The spool cannot be opened (SQLite file, Redis URL) or its backend package is not installed.',
  CONFIG_PRIVACY_STORE: 'The privacy store cannot be opened (SQLite file, PostgreSQL server) or its backend package is not installed.',
  CONFIG_DENY_RULE: 'A privacy.deny rule (or `firstparty explain --deny`) is not `<class>:<raw|hashed|masked|any> -> <destination>`.',
  CONFIG_GEO_DATABASE: 'The MaxMind geo database (enrich.geo.database) cannot be read or is not a City/Country .mmdb file, or the optional `maxmind` package is not installed.',
} as const

export type ConfigErrorCode = keyof typeof CONFIG_ERRORS

/**
 * A configuration problem found at start-up. `path` is a JSON pointer into the config
 * (`/destinations/0/settings/url`) so the message says exactly what to change.
 */
export class ConfigError extends Error {
  readonly code: ConfigErrorCode
  readonly path: string
  readonly issues: ReadonlyArray<{ path: string; message: string }>
  constructor(code: ConfigErrorCode, issues: Array<{ path: string; message: string }>, prefix?: string) {
    const lines = issues.map((i) => `${i.path || '/'}: ${i.message}`)
    super(`${prefix ?? CONFIG_ERRORS[code]}\n  ${lines.join('\n  ')}`)
    this.name = 'ConfigError'
    this.code = code
    this.path = issues[0]?.path ?? ''
    this.issues = issues
  }
}

/** How the delivery engine must treat a failed send. */
export type RetryRule = 'retry' | 'permanent' | 'auth'

export const DELIVERY_ERRORS = {
  DELIVERY_RETRYABLE: 'The destination failed in a way that may succeed later (network, 408, 429, 5xx).',
  DELIVERY_PERMANENT: 'The destination rejected the events; sending them again will not help.',
  DELIVERY_AUTH: "The destination rejected the router's credentials (401/403).",
  DELIVERY_TIMEOUT: 'The destination did not answer within timeoutMs.',
  DELIVERY_MAX_ATTEMPTS: 'The events failed maxAttempts times.',
  DELIVERY_MAX_AGE: 'The events were older than maxAgeMs before they could be delivered.',
  DELIVERY_QUEUE_FULL: "The destination's buffer was full (maxBufferedEvents); the event went straight to dead letters.",
  DELIVERY_SHUTDOWN: 'The router closed before the events could be delivered.',
  DELIVERY_RETENTION: "The events waited in the durable spool longer than spool.retention allows (maxEvents or maxAgeMs of the destination's backlog).",
} as const

export type DeliveryErrorCode = keyof typeof DELIVERY_ERRORS

/** Codes on a deletion receipt's `error` (besides the delivery codes a plugin's failure classifies as). */
export const DELETION_ERRORS = {
  DELETION_UNSUPPORTED: 'The destination plugin has no deletion API; delete the subject in the vendor\'s own tools.',
  DELETION_MAX_ATTEMPTS: 'The destination failed privacy.deletion.maxAttempts times in a way worth retrying.',
  DELETION_INTERRUPTED: 'The router closed before the destination confirmed the deletion.',
  DELETION_LOCAL_FAILED: "Erasing the router's own copies (queues, spool, dead letters, ledger) failed.",
} as const

export type DeletionErrorCode = keyof typeof DELETION_ERRORS

/** Base of the errors a destination throws from `send`; each carries its retry rule. */
export class DeliveryError extends Error {
  readonly rule: RetryRule
  readonly code: DeliveryErrorCode
  readonly status: number | undefined
  constructor(message: string, rule: RetryRule, code: DeliveryErrorCode, status?: number) {
    super(message)
    this.name = 'DeliveryError'
    this.rule = rule
    this.code = code
    this.status = status
  }
}

/** Try again later; `retryAfterMs` (from a Retry-After header, say) overrides the backoff. */
export class RetryableError extends DeliveryError {
  readonly retryAfterMs: number | undefined
  constructor(message: string, options: { retryAfterMs?: number; status?: number } = {}) {
    super(message, 'retry', 'DELIVERY_RETRYABLE', options.status)
    this.name = 'RetryableError'
    this.retryAfterMs = options.retryAfterMs
  }
}

/** Never retry: the payload is wrong for this destination. The events go to dead letters. */
export class PermanentError extends DeliveryError {
  constructor(message: string, options: { status?: number } = {}) {
    super(message, 'permanent', 'DELIVERY_PERMANENT', options.status)
    this.name = 'PermanentError'
  }
}

/** The destination refused our credentials. Not retried; the settings need fixing. */
export class AuthenticationError extends DeliveryError {
  constructor(message: string, options: { status?: number } = {}) {
    super(message, 'auth', 'DELIVERY_AUTH', options.status)
    this.name = 'AuthenticationError'
  }
}
