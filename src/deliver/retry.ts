/**
 * Retry policy: classification of failures and the backoff schedule. Replaceable per
 * destination; the defaults follow what Segment's and undici's clients do.
 */
import { DeliveryError, type DeliveryErrorCode, type RetryRule } from '../errors.js'

export interface RetryOptions {
  /** Total send attempts per event, the first included. @default 10 */
  maxAttempts: number
  /** Events older than this (since accepted) go to dead letters instead of another try. @default 86_400_000 (24 h) */
  maxAgeMs: number
  /** First backoff delay. @default 500 */
  minDelayMs: number
  /** Backoff ceiling. @default 60_000 */
  maxDelayMs: number
  /** Growth per attempt. @default 2 */
  factor: number
  /** Fraction of each delay that is randomized (0 = none, 1 = "full jitter"). @default 0.5 */
  jitter: number
  /** A destination's Retry-After is honoured up to this. @default 600_000 */
  maxRetryAfterMs: number
}

export const DEFAULT_RETRY: RetryOptions = {
  maxAttempts: 10,
  maxAgeMs: 86_400_000,
  minDelayMs: 500,
  maxDelayMs: 60_000,
  factor: 2,
  jitter: 0.5,
  maxRetryAfterMs: 600_000,
}

export interface Classified {
  rule: RetryRule
  code: DeliveryErrorCode
  message: string
  status?: number
  retryAfterMs?: number
}

/** 408, 429 and 5xx (but 501 and 505) are worth another try; 401/403 are auth; other 4xx permanent. */
export function classifyStatus(status: number): RetryRule | 'ok' {
  if (status < 400) return 'ok'
  if (status === 408 || status === 429) return 'retry'
  if (status === 401 || status === 403) return 'auth'
  if (status >= 500 && status !== 501 && status !== 505) return 'retry'
  return 'permanent'
}

/** Retry-After is delay-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: unknown, now = Date.now()): number | undefined {
  if (Array.isArray(value)) value = value[0]
  if (typeof value !== 'string' || value === '') return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  // Date.parse reads "1.5" or "-1" as dates in 2001; an HTTP-date always names a month.
  if (!/[a-z]{3}/i.test(value)) return undefined
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND',
  'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'ERR_HTTP2_STREAM_ERROR',
])

const codeOf: Record<RetryRule, DeliveryErrorCode> = {
  retry: 'DELIVERY_RETRYABLE',
  permanent: 'DELIVERY_PERMANENT',
  auth: 'DELIVERY_AUTH',
}

/**
 * Turn whatever a destination threw into a retry decision. Destinations should throw
 * the typed errors; got's HTTPError is understood too, so plugins can let it bubble.
 * An unknown error is retried: most are transient, and maxAttempts bounds the rest.
 */
export function classifyError(err: unknown): Classified {
  if (err instanceof DeliveryError) {
    const out: Classified = { rule: err.rule, code: err.code, message: err.message }
    if (err.status !== undefined) out.status = err.status
    const ra = (err as { retryAfterMs?: number }).retryAfterMs
    if (ra !== undefined) out.retryAfterMs = ra
    return out
  }
  const e = err as { name?: string; code?: string; message?: string; response?: { statusCode?: number; headers?: Record<string, unknown> } }
  if (e && e.response && typeof e.response.statusCode === 'number') {
    const status = e.response.statusCode
    const rule = classifyStatus(status)
    const out: Classified = {
      rule: rule === 'ok' ? 'permanent' : rule,
      code: codeOf[rule === 'ok' ? 'permanent' : rule],
      message: `HTTP ${status}`,
      status,
    }
    const ra = parseRetryAfter(e.response.headers?.['retry-after'])
    if (ra !== undefined) out.retryAfterMs = ra
    return out
  }
  const message = typeof e?.message === 'string' ? e.message : String(err)
  if (e?.code && NETWORK_CODES.has(e.code)) return { rule: 'retry', code: 'DELIVERY_RETRYABLE', message: `${e.code}: ${message}` }
  if (e?.name === 'TimeoutError') return { rule: 'retry', code: 'DELIVERY_TIMEOUT', message }
  return { rule: 'retry', code: 'DELIVERY_RETRYABLE', message }
}

/** Exponential backoff with partial jitter; attempt 1 is the first retry. */
export function backoffDelay(attempt: number, o: RetryOptions, random = Math.random): number {
  const base = Math.min(o.maxDelayMs, o.minDelayMs * Math.pow(o.factor, Math.max(0, attempt - 1)))
  return Math.round(base * (1 - o.jitter) + base * o.jitter * random())
}
