/**
 * Normalization: every event, from HTTP or from backend code, leaves here with a
 * messageId, skew-corrected timestamps, a context object and a validated shape.
 */
import { randomUUID } from 'node:crypto'
import { HttpError } from '../errors.js'
import { EVENT_TYPES, eventValidators, type EventType, type FirstpartyEvent } from './schema.js'

const TYPES = new Set<string>(EVENT_TYPES)

export interface NormalizeInput {
  /** The type given by the endpoint (`/v1/track`); the body's `type` must agree when present. */
  type?: EventType
  /** The batch envelope's `sentAt`, used when the event has none. */
  sentAt?: unknown
  /** When the router received the request. */
  receivedAt: Date
  /** The client address found for the request (after trusted-proxy resolution). */
  ip?: string
  /** Where the event sits in the request, for error messages: `batch[3]`. */
  where: string
}

function fieldName(where: string, instancePath: string): string {
  if (!instancePath) return where || 'event'
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
  return (where ? where + '.' : '') + parts.join('.')
}

function parseTime(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined
  // Dates come as ISO strings from every client; backend callers may pass a Date.
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN
  if (Number.isNaN(ms)) {
    throw new HttpError('invalid_event', `${field}: must be an ISO-8601 date-time string`)
  }
  return ms
}

function asId(value: unknown): string | null | undefined {
  if (typeof value === 'number') return String(value)
  return value as string | null | undefined
}

/**
 * Validate and complete one event in place and return it. `raw` must already have
 * passed the JSON safety scan (no prototype keys, bounded depth).
 */
export function normalizeEvent(raw: unknown, input: NormalizeInput): FirstpartyEvent {
  const where = input.where
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new HttpError('invalid_event', `${where || 'event'}: must be a JSON object`)
  }
  const ev = raw as Record<string, unknown>
  if (input.type) {
    if (ev.type !== undefined && ev.type !== input.type) {
      throw new HttpError('invalid_event', `${fieldName(where, '/type')}: is "${String(ev.type)}" but the endpoint is for ${input.type} events`)
    }
    ev.type = input.type
  } else if (typeof ev.type !== 'string' || !TYPES.has(ev.type)) {
    throw new HttpError(
      'invalid_event',
      `${fieldName(where, '/type')}: must be one of ${EVENT_TYPES.join(', ')}` + (ev.type === undefined ? ' (missing)' : ''),
    )
  }
  const type = ev.type as EventType

  // Clients that have no id yet send null; that is "missing", not a bad id.
  if (ev.messageId === null || ev.messageId === '') delete ev.messageId
  // Backend callers pass Date objects; the wire carries strings.
  for (const k of ['timestamp', 'originalTimestamp', 'sentAt'] as const) {
    const v = ev[k]
    if (v instanceof Date) ev[k] = Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString()
  }

  const validator = eventValidators[type]
  if (!validator.Check(ev)) {
    const first = validator.Errors(ev)[0]
    const path = first?.keyword === 'required' ? `/${(first.params as { requiredProperties?: string[] }).requiredProperties?.[0] ?? ''}` : first?.instancePath ?? ''
    const message = first?.keyword === 'required' ? 'is required' : first?.message ?? 'is invalid'
    throw new HttpError('invalid_event', `${fieldName(where, path)}: ${message}`)
  }

  ev.userId = asId(ev.userId)
  ev.anonymousId = asId(ev.anonymousId)
  if (ev.userId === '') ev.userId = null
  if (ev.anonymousId === '') ev.anonymousId = null
  if (!ev.userId && !ev.anonymousId) {
    throw new HttpError('invalid_event', `${where || 'event'}: userId or anonymousId is required`)
  }
  if (type === 'group') ev.groupId = asId(ev.groupId)
  if (type === 'alias') ev.previousId = asId(ev.previousId)
  if (!ev.messageId) ev.messageId = randomUUID()

  const received = input.receivedAt.getTime()
  const original = parseTime(ev.originalTimestamp, fieldName(where, '/originalTimestamp')) ??
    parseTime(ev.timestamp, fieldName(where, '/timestamp'))
  const sentRaw = ev.sentAt ?? input.sentAt
  // An envelope's sentAt is named as such, not as a field of this event.
  const sent = parseTime(sentRaw, ev.sentAt !== undefined ? fieldName(where, '/sentAt') : 'sentAt')
  // Segment's clock-skew correction: the client's clock may be off, but the time
  // between the event and the send is measured on that same clock.
  const timestamp = original !== undefined && sent !== undefined ? received - (sent - original) : original ?? received
  ev.receivedAt = input.receivedAt.toISOString()
  ev.originalTimestamp = new Date(original ?? received).toISOString()
  if (sent !== undefined) ev.sentAt = new Date(sent).toISOString()
  ev.timestamp = new Date(timestamp).toISOString()

  let context = ev.context as Record<string, unknown> | undefined
  if (!context) ev.context = context = {}
  if (input.ip && (context.ip === undefined || context.ip === null || context.ip === '')) context.ip = input.ip
  return ev as FirstpartyEvent
}

/**
 * Copy an event passed by backend code into plain JSON data: Dates become ISO strings,
 * `undefined` properties are left out, and what JSON cannot carry (functions, symbols,
 * BigInt, cycles) is refused with the field's name — the caller keeps its object.
 */
export function toJsonData(value: unknown, where: string, depth = 0, seen = new Set<object>()): unknown {
  const name = where || 'event'
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      if (!Number.isFinite(value)) throw new HttpError('invalid_event', `${name}: ${value} is not a JSON number`)
      return value
    case 'undefined':
      return undefined
    case 'object': {
      if (value === null) return null
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'invalid' : value.toISOString()
      if (depth > 64) throw new HttpError('too_deep', `${name}: nests deeper than 64 levels`)
      if (seen.has(value)) throw new HttpError('invalid_event', `${name}: refers back to itself (a cycle)`)
      seen.add(value)
      let out: unknown
      if (Array.isArray(value)) {
        out = value.map((v, i) => toJsonData(v, `${name}[${i}]`, depth + 1, seen) ?? null)
      } else {
        const o: Record<string, unknown> = {}
        for (const k of Object.keys(value)) {
          if (k === '__proto__') throw new HttpError('invalid_body', `${name}: the key "__proto__" is not allowed`)
          const v = toJsonData((value as Record<string, unknown>)[k], where ? `${where}.${k}` : k, depth + 1, seen)
          if (v !== undefined) o[k] = v
        }
        out = o
      }
      seen.delete(value)
      return out
    }
    default:
      throw new HttpError('invalid_event', `${name}: a ${typeof value} cannot be sent as JSON`)
  }
}
