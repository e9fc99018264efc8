/**
 * amplitude: events through the HTTP V2 API (`POST /2/httpapi`), identify as `$identify`
 * events, deletion through the User Privacy API (v1, `POST /api/2/deletions/users`).
 *
 *   /2/httpapi  { api_key, events: [{ event_type, user_id | device_id, insert_id, time (ms), … }] }
 *               ≤ 2000 events and < 1 MB per request (413 beyond: split)
 *               200 { code, events_ingested } ·
 *               400 { error, events_with_invalid_fields: { field: [indexes] },
 *                     events_with_missing_fields, events_with_invalid_id_lengths, silenced_events }:
 *                     nothing was ingested — drop the listed events and send the rest again ·
 *               429 { throttled_events, throttled_users, … } (no Retry-After: backoff) · 5xx
 *   deletion    Basic api_key:secret_key { user_ids, requester, ignore_invalid_id }
 *
 * Amplitude ignores an event whose insert_id (the messageId) it saw in the past 7 days,
 * so resending a batch is safe.
 */
import { readFileSync } from 'node:fs'
import Type, { type Static } from 'typebox'
// Built-in plugins import the modules, not src/index.ts: the router imports them, and
// going through the index would make a cycle.
import { AuthenticationError, PermanentError, RetryableError, type DeliveryError } from '../../src/errors.js'
import { classifyStatus, parseRetryAfter } from '../../src/deliver/retry.js'
import { defineDestination, type DestinationContext, type SendResult } from '../../src/plugin.js'

export const AmplitudeSettings = Type.Object(
  {
    apiKey: Type.String({ minLength: 1, description: "Project API key (Settings → Projects → your project → General). Sent in the body as api_key." }),
    region: Type.Union([Type.Literal('us'), Type.Literal('eu')], {
      default: 'us',
      description: "Data residency: 'us' (api2.amplitude.com, deletions on amplitude.com) or 'eu' (api.eu.amplitude.com, deletions on analytics.eu.amplitude.com).",
    }),
    endpoint: Type.Optional(Type.String({ pattern: '^https?://', description: 'Override the ingestion base URL (a proxy); /2/httpapi is appended. Wins over `region`.' })),
    deletionEndpoint: Type.Optional(Type.String({ pattern: '^https?://', description: 'Override the User Privacy API base URL (a proxy); /api/2/deletions/users is appended. Wins over `region`.' })),
    minIdLength: Type.Optional(Type.Integer({ minimum: 1, description: 'Shortest user_id / device_id Amplitude accepts (its default is 5); sent as options.min_id_length.' })),
    secretKey: Type.Optional(Type.String({ minLength: 1, description: 'Project secret key: needed only for deleteUser (User Privacy API, Basic apiKey:secretKey).' })),
    requester: Type.String({ default: 'firstparty', description: 'Shown as the requester of deletion jobs in Amplitude (an email address is customary).' }),
  },
  { additionalProperties: false },
)

export type AmplitudeSettingsType = Static<typeof AmplitudeSettings>

export const MAX_EVENTS = 2000
/** Amplitude: "keep request sizes under 1 MB". */
export const MAX_REQUEST_BYTES = 1_000_000
/** user_ids per deletion request. */
export const MAX_DELETION_IDS = 100

export const mapping = readFileSync(new URL('./mapping.fp', import.meta.url), 'utf8')

export function ingestionUrl(s: Pick<AmplitudeSettingsType, 'region' | 'endpoint'>): string {
  if (s.endpoint) return `${s.endpoint.replace(/\/+$/, '')}/2/httpapi`
  return s.region === 'eu' ? 'https://api.eu.amplitude.com/2/httpapi' : 'https://api2.amplitude.com/2/httpapi'
}

export function deletionUrl(s: Pick<AmplitudeSettingsType, 'region' | 'deletionEndpoint'>): string {
  if (s.deletionEndpoint) return `${s.deletionEndpoint.replace(/\/+$/, '')}/api/2/deletions/users`
  return s.region === 'eu' ? 'https://analytics.eu.amplitude.com/api/2/deletions/users' : 'https://amplitude.com/api/2/deletions/users'
}

interface VendorResponse {
  statusCode?: number
  headers?: Record<string, unknown>
  body?: unknown
}

function parseBody(body: unknown): Record<string, unknown> | undefined {
  let b = body
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b)
    } catch {
      return undefined
    }
  }
  return b && typeof b === 'object' ? (b as Record<string, unknown>) : undefined
}

/** Amplitude's answer (or none) → the router's retry rule; keeps Amplitude's `error`, never the events. */
export function classifyAmplitudeResponse(err: unknown, what = 'Amplitude'): DeliveryError {
  const res = (err as { response?: VendorResponse }).response
  if (!res || typeof res.statusCode !== 'number') return new RetryableError(`${what} unreachable: ${(err as Error)?.message ?? String(err)}`)
  const status = res.statusCode
  const b = parseBody(res.body)
  const detail = typeof b?.error === 'string' ? b.error.slice(0, 200) : ''
  const message = `${what} answered ${status}${detail ? `: ${detail}` : ''}`
  const rule = classifyStatus(status)
  if (rule === 'auth') return new AuthenticationError(`${message} (check apiKey${what.includes('deletion') ? ' and secretKey' : ''}, and region)`, { status })
  if (rule === 'retry') {
    // 429 from /2/httpapi carries no Retry-After: the router's backoff applies unless one is sent.
    const retryAfterMs = parseRetryAfter(res.headers?.['retry-after'])
    return new RetryableError(message, { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) })
  }
  return new PermanentError(message, { status })
}

/** The event indexes a 400 names, each with why: `{ field: [indexes] }` maps and `silenced_events`. */
export function invalidEvents(body: Record<string, unknown> | undefined): Map<number, string> {
  const out = new Map<number, string>()
  if (!body) return out
  const lists: Array<[string, string]> = [
    ['events_with_invalid_fields', 'invalid'],
    ['events_with_missing_fields', 'missing'],
    ['events_with_invalid_id_lengths', 'too short'],
  ]
  for (const [key, what] of lists) {
    const m = body[key]
    if (!m || typeof m !== 'object') continue
    for (const [field, idx] of Object.entries(m as Record<string, unknown>)) {
      if (!Array.isArray(idx)) continue
      for (const i of idx) if (typeof i === 'number') out.set(i, [out.get(i), `${field} ${what}`].filter(Boolean).join(', '))
    }
  }
  if (Array.isArray(body.silenced_events)) for (const i of body.silenced_events) if (typeof i === 'number') out.set(i, 'silenced (its device_id is blocked)')
  return out
}

type Ctx = DestinationContext<AmplitudeSettingsType>
type Rejected = NonNullable<SendResult['rejected']>
interface Item {
  index: number
  text: string
}

function envelope(s: AmplitudeSettingsType): { head: string; tail: string } {
  const options = s.minIdLength !== undefined ? `,"options":${JSON.stringify({ min_id_length: s.minIdLength })}` : ''
  return { head: `{"api_key":${JSON.stringify(s.apiKey)},"events":[`, tail: `]${options}}` }
}

function chunk(items: Item[], overhead: number): Item[][] {
  const out: Item[][] = []
  let cur: Item[] = []
  let bytes = overhead
  for (const it of items) {
    const b = Buffer.byteLength(it.text) + 1
    if (cur.length > 0 && (cur.length >= MAX_EVENTS || bytes + b > MAX_REQUEST_BYTES)) {
      out.push(cur)
      cur = []
      bytes = overhead
    }
    cur.push(it)
    bytes += b
  }
  if (cur.length) out.push(cur)
  return out
}

/**
 * Post one request. 400 naming events: those are refused and the rest sent again once
 * (Amplitude ingested none of them); 413: split in two.
 */
async function upload(ctx: Ctx, items: Item[], rejected: Rejected, resent = false): Promise<void> {
  const { head, tail } = envelope(ctx.settings)
  try {
    await ctx.http.post(ingestionUrl(ctx.settings), {
      body: head + items.map((i) => i.text).join(',') + tail,
      headers: { 'content-type': 'application/json', accept: '*/*' },
      signal: ctx.signal,
    })
  } catch (err) {
    const res = (err as { response?: VendorResponse }).response
    if (res?.statusCode === 413) {
      if (items.length === 1) {
        rejected.push({ index: items[0]!.index, error: new PermanentError(`Amplitude answered 413: event ${items[0]!.index} is too large on its own`, { status: 413 }) })
        return
      }
      const half = Math.ceil(items.length / 2)
      await upload(ctx, items.slice(0, half), rejected, resent)
      await upload(ctx, items.slice(half), rejected, resent)
      return
    }
    const bad = res?.statusCode === 400 ? invalidEvents(parseBody(res.body)) : new Map<number, string>()
    if (bad.size > 0 && !resent) {
      const error = (b: string, i: Item) => new PermanentError(`Amplitude refused event ${i.index}: ${b}`, { status: 400 })
      const rest: Item[] = []
      items.forEach((it, i) => {
        const why = bad.get(i)
        if (why !== undefined) rejected.push({ index: it.index, error: error(why, it) })
        else rest.push(it)
      })
      if (rest.length > 0) await upload(ctx, rest, rejected, true)
      return
    }
    throw classifyAmplitudeResponse(err, 'Amplitude /2/httpapi')
  }
}

export default defineDestination({
  name: 'amplitude',
  version: '0.1.0',
  description: 'Amplitude: HTTP V2 API with insert_id, identify as $identify, User Privacy API deletion.',
  settings: AmplitudeSettings,
  consent: { categories: ['analytics'] },
  batch: { maxEvents: MAX_EVENTS, maxBytes: 900_000, maxWaitMs: 1000 },
  mapping,
  async send(events, ctx) {
    const rejected: Rejected = []
    const items: Item[] = []
    const { head, tail } = envelope(ctx.settings)
    const overhead = Buffer.byteLength(head) + Buffer.byteLength(tail)
    events.forEach((e, index) => {
      const ev = e as unknown as Record<string, unknown>
      if (typeof ev.event_type !== 'string' || (ev.user_id == null && ev.device_id == null)) {
        rejected.push({ index, error: new PermanentError(`event ${index} is not an Amplitude event: it needs event_type and a user_id or device_id`) })
        return
      }
      const text = JSON.stringify(ev)
      if (Buffer.byteLength(text) + overhead > MAX_REQUEST_BYTES) {
        rejected.push({ index, error: new PermanentError(`event ${index} is ${Buffer.byteLength(text)} bytes as JSON; an Amplitude request must stay under 1 MB`) })
        return
      }
      items.push({ index, text })
    })
    const chunks = chunk(items, overhead)
    let delivered = 0
    for (const [i, c] of chunks.entries()) {
      try {
        await upload(ctx, c, rejected)
        delivered++
      } catch (err) {
        const error = err as DeliveryError
        if (delivered === 0 && rejected.length === 0) throw error
        for (const rest of chunks.slice(i)) for (const it of rest) if (!rejected.some((r) => r.index === it.index)) rejected.push({ index: it.index, error })
        break
      }
    }
    rejected.sort((a, b) => a.index - b.index)
    // Every event failed the same way: fail the batch as one (one retry timer, not n).
    if (rejected.length === events.length && events.length > 0 && rejected.every((r) => r.error === rejected[0]!.error)) throw rejected[0]!.error
    return { rejected }
  },
  async deleteUser(ids, ctx) {
    const s = ctx.settings
    if (!s.secretKey) throw new PermanentError('Amplitude deletion needs settings.secretKey (User Privacy API)')
    if (!ids.userId) throw new PermanentError('Amplitude deletes by user_id (or Amplitude ID): give a userId')
    try {
      await ctx.http.post(deletionUrl(s), {
        json: { user_ids: [ids.userId], requester: s.requester, ignore_invalid_id: 'true' },
        headers: { authorization: `Basic ${Buffer.from(`${s.apiKey}:${s.secretKey}`).toString('base64')}` },
        signal: ctx.signal,
      })
    } catch (err) {
      throw classifyAmplitudeResponse(err, 'Amplitude deletion API')
    }
  },
})
