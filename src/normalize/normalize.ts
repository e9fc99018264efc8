/**
 * Normalization: every event, from HTTP or from backend code, leaves here with a
 * messageId, skew-corrected timestamps, a context object and a validated shape.
 */
import { randomUUID } from 'node:crypto'
import { HttpError } from '../errors.js'
import { parseIsoDate } from '../iso-date.js'
import { EVENT_TYPES, eventValidators, type EventType, type FirstpartyEvent } from './schema.js'

const TYPES = new Set<string>(EVENT_TYPES)

export interface NormalizeInput {
  /** The type given by the endpoint (`/v1/track`); the body's `type` must agree when present. */
  type?: EventType
  /** The batch envelope's `sentAt`, used when the event has none. */
  sentAt?: unknown
  /** When the router received the request. */
  receivedAt: Date
  /** `receivedAt` as ISO text, when the caller formatted it once for a whole batch. */
  receivedAtIso?: string
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

function parseTime(value: unknown, where: string, path: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined
  // Dates come as ISO strings from every client; backend callers may pass a Date.
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? parseIsoDate(value) : NaN
  if (Number.isNaN(ms)) {
    throw new HttpError('invalid_event', `${path.startsWith('/') ? fieldName(where, path) : path}: must be an ISO-8601 date-time string`)
  }
  return ms
}

const DAY = 86_400_000
let dayStart = NaN
let dayPrefix = ''
// Zero-padded 0–999, looked up rather than formatted: toIso runs three times an event.
const PAD3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'))
const PAD2 = PAD3.slice(0, 100).map((p) => p.slice(1))
const pad = (n: number, w: number) => (w === 2 ? PAD2[n]! : PAD3[n]!)

/**
 * `new Date(ms).toISOString()`, without the Date: four of them per event were most of
 * normalization's time. The `YYYY-MM-DDT` prefix is cached for the current day; other
 * days, and values outside years 0000–9999, go through Date.
 */
export function toIso(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms > 253_402_300_799_999) return new Date(ms).toISOString()
  let d = ms - dayStart
  if (!(d >= 0 && d < DAY)) {
    const start = ms - (ms % DAY)
    const prefix = new Date(start).toISOString().slice(0, 11)
    // Only the day of "now" is worth keeping; an old originalTimestamp must not evict it.
    if (Math.abs(ms - Date.now()) < DAY) {
      dayStart = start
      dayPrefix = prefix
    }
    d = ms - start
    return prefix + pad(Math.floor(d / 3_600_000), 2) + ':' + pad(Math.floor(d / 60_000) % 60, 2) + ':' + pad(Math.floor(d / 1000) % 60, 2) + '.' + pad(d % 1000, 3) + 'Z'
  }
  return dayPrefix + pad(Math.floor(d / 3_600_000), 2) + ':' + pad(Math.floor(d / 60_000) % 60, 2) + ':' + pad(Math.floor(d / 1000) % 60, 2) + '.' + pad(d % 1000, 3) + 'Z'
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
  const original = parseTime(ev.originalTimestamp, where, '/originalTimestamp') ?? parseTime(ev.timestamp, where, '/timestamp')
  const sentRaw = ev.sentAt ?? input.sentAt
  // An envelope's sentAt is named as such, not as a field of this event.
  const sent = parseTime(sentRaw, where, ev.sentAt !== undefined ? '/sentAt' : 'sentAt')
  // Segment's clock-skew correction: the client's clock may be off, but the time
  // between the event and the send is measured on that same clock.
  const timestamp = original !== undefined && sent !== undefined ? received - (sent - original) : original ?? received
  if (Math.abs(timestamp) > 8.64e15) {
    throw new HttpError('invalid_event', `${where || 'event'}: sentAt and originalTimestamp put the event outside the representable dates`)
  }
  const receivedIso = input.receivedAtIso ?? toIso(received)
  ev.receivedAt = receivedIso
  ev.originalTimestamp = original === undefined ? receivedIso : toIso(original)
  if (sent !== undefined) ev.sentAt = toIso(sent)
  ev.timestamp = timestamp === received ? receivedIso : toIso(timestamp)

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
