/**
 * Who an event is about, and whether a stored payload mentions a subject. Payloads may
 * be a vendor's shape after a mapping (GA4's `user_id`, Meta's hashed `em`), so
 * matching walks every value rather than reading known fields.
 */
import { hashValue } from '../policy/pii.js'
import type { SubjectIds, SuppressionKind } from './types.js'

/**
 * The hex SHA-256 of the email trimmed and lower-cased — exactly what the `hash` policy
 * action sends, so a suppression or a ledger lookup matches a hashed payload. A value
 * that already is a hex digest is kept (lower-cased).
 */
export function emailHash(email: string): string {
  return String(hashValue(email, 'email')).toLowerCase()
}

/** A subject as stored: ids as strings, the email only as its hash. */
export interface StoredSubject {
  userId?: string
  anonymousId?: string
  emailHash?: string
}

/** Check and convert a subject given through the API. Throws a TypeError naming the problem. */
export function toStoredSubject(ids: SubjectIds, what: string): StoredSubject {
  if (!ids || typeof ids !== 'object') throw new TypeError(`${what}: pass { userId, anonymousId, email } (at least one)`)
  const out: StoredSubject = {}
  for (const k of ['userId', 'anonymousId', 'email'] as const) {
    const v = (ids as Record<string, unknown>)[k]
    if (v === undefined || v === null) continue
    if (typeof v !== 'string' && typeof v !== 'number') throw new TypeError(`${what}: ${k} must be a string`)
    const s = String(v)
    if (s.trim() === '' || s.length > 512) throw new TypeError(`${what}: ${k} must be 1–512 characters`)
    if (k === 'email') out.emailHash = emailHash(s)
    else out[k] = s
  }
  if (!out.userId && !out.anonymousId && !out.emailHash) throw new TypeError(`${what}: pass at least one of userId, anonymousId, email`)
  return out
}

/** The suppression-list entries that name this subject: one per id it has. */
export function suppressionKeys(s: StoredSubject): Array<{ kind: SuppressionKind; value: string }> {
  const out: Array<{ kind: SuppressionKind; value: string }> = []
  if (s.userId) out.push({ kind: 'userId', value: s.userId })
  if (s.anonymousId) out.push({ kind: 'anonymousId', value: s.anonymousId })
  if (s.emailHash) out.push({ kind: 'emailHash', value: s.emailHash })
  return out
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined
}

function field(o: unknown, k: string): unknown {
  return o !== null && typeof o === 'object' && Object.hasOwn(o, k) ? (o as Record<string, unknown>)[k] : undefined
}

/** The email an event carries where the Segment spec puts one. */
export function eventEmail(ev: Record<string, unknown>): string | undefined {
  const ctx = field(ev, 'context')
  for (const v of [field(field(ev, 'traits'), 'email'), field(field(ctx, 'traits'), 'email'), field(field(ev, 'properties'), 'email')]) {
    if (typeof v === 'string' && v.includes('@')) return v
  }
  return undefined
}

/** userId, anonymousId and email hash of a (normalized, pre-mapping) event. */
export function subjectOf(ev: Record<string, unknown>): StoredSubject {
  const out: StoredSubject = {}
  const u = str(ev.userId)
  const a = str(ev.anonymousId)
  if (u) out.userId = u
  if (a) out.anonymousId = a
  const e = eventEmail(ev)
  if (e) out.emailHash = emailHash(e)
  return out
}

/**
 * Whether a payload mentions the subject anywhere: a string value equal to the userId
 * or anonymousId, an email whose normalized form hashes to the subject's, or the hash
 * itself. Bounded by the payload (which the router already bounded at intake).
 */
export function mentionsSubject(value: unknown, s: StoredSubject): boolean {
  const stack: unknown[] = [value]
  while (stack.length) {
    const v = stack.pop()
    if (typeof v === 'string') {
      if (v === s.userId || v === s.anonymousId) return true
      if (s.emailHash) {
        if (v === s.emailHash) return true
        if (v.length <= 320 && v.includes('@') && emailHash(v) === s.emailHash) return true
      }
    } else if (typeof v === 'number') {
      const t = String(v)
      if (t === s.userId || t === s.anonymousId) return true
    } else if (Array.isArray(v)) {
      for (const x of v) stack.push(x)
    } else if (v !== null && typeof v === 'object') {
      for (const k of Object.keys(v)) stack.push((v as Record<string, unknown>)[k])
    }
  }
  return false
}
