/**
 * segment: forward events to any Segment-compatible HTTP Tracking API — Segment itself,
 * RudderStack, or another firstparty router — as `POST {endpoint}/v1/batch` with
 * `Authorization: Basic base64(writeKey:)` and `{ batch, sentAt }`, the way
 * `@segment/analytics-node` does.
 *
 * The events are already Segment-shaped, so there is no default mapping. Two things are
 * adjusted so the receiver computes the right `timestamp`: receivers correct clock skew
 * with `timestamp = receivedAt − (sentAt − originalTimestamp)`, and this router's clock
 * is the one that measured both `timestamp` and the send time. So each forwarded event
 * carries `originalTimestamp` = its (already corrected) `timestamp`, no `sentAt` of its
 * own, and the batch's `sentAt` is now: an event that waited an hour in our spool keeps
 * its time instead of taking the hour of its delivery.
 *
 * Limits (Segment's HTTP Tracking API): 32 KB per event, 500 KB per request. An event
 * over 32 KB is refused alone (permanent); the rest are cut into requests under 500 KB.
 * Answers are classified as analytics-node does: 5xx (but 501, 505, 511) and 408, 410,
 * 429, 460 are retried, honouring Retry-After; 401/403 are auth errors; other 4xx are
 * permanent.
 */
import { promisify } from 'node:util'
import { gzip as gzipCb } from 'node:zlib'
import Type, { type Static } from 'typebox'
import { defineDestination, type DestinationContext, type SendResult } from '../../src/plugin.js'
import { AuthenticationError, PermanentError, RetryableError, type DeliveryError } from '../../src/errors.js'
import { parseRetryAfter } from '../../src/deliver/retry.js'

const gzip = promisify(gzipCb)

export const SegmentSettings = Type.Object(
  {
    writeKey: Type.String({ minLength: 1, description: "Write key of the receiving source; sent as Basic auth username with an empty password. Use ${ENV_VAR} in YAML." }),
    endpoint: Type.String({
      pattern: '^https?://',
      default: 'https://api.segment.io',
      description:
        "Base URL of the receiving API; `/v1/batch` is appended. Segment: https://api.segment.io (EU workspaces: https://events.eu1.segmentapis.com); RudderStack: your data plane URL; firstparty: where its router is mounted.",
    }),
    gzip: Type.Boolean({ default: false, description: 'Compress request bodies (Content-Encoding: gzip). Segment, RudderStack and firstparty accept it; size limits apply to the uncompressed body.' }),
  },
  { additionalProperties: false },
)

export type SegmentSettingsType = Static<typeof SegmentSettings>

/** Segment's per-event limit (32 KB), measured on the JSON of the forwarded event. */
export const MAX_EVENT_BYTES = 32 * 1024
/** Segment's per-request limit (500 KB), measured on the whole uncompressed body. */
export const MAX_REQUEST_BYTES = 500 * 1024
/** Events per request; the router's batches are at most this (Segment allows 2,500 but 500 KB comes first). */
export const MAX_EVENTS = 500

/** The URL batches are posted to. */
export function batchUrl(s: Pick<SegmentSettingsType, 'endpoint'>): string {
  return `${s.endpoint.replace(/\/+$/, '')}/v1/batch`
}

/** The event as it is forwarded: its corrected timestamp becomes originalTimestamp (see the file comment). */
export function forwardable(event: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const { sentAt: _s, receivedAt: _r, ...rest } = event as Record<string, unknown>
  if (typeof rest.timestamp === 'string') rest.originalTimestamp = rest.timestamp
  return rest
}

/** analytics-node's retry rule: 5xx but 501/505/511, and 408, 410, 429, 460. */
export function segmentRule(status: number): 'ok' | 'retry' | 'auth' | 'permanent' {
  if (status < 400) return 'ok'
  if (status === 401 || status === 403) return 'auth'
  if (status >= 500) return status === 501 || status === 505 || status === 511 ? 'permanent' : 'retry'
  return status === 408 || status === 410 || status === 429 || status === 460 ? 'retry' : 'permanent'
}

/** The receiver's answer (or its absence) → the router's retry rule. Keeps the receiver's short message, never the body we sent. */
export function classifySegmentResponse(err: unknown): DeliveryError {
  const res = (err as { response?: { statusCode?: number; headers?: Record<string, unknown>; body?: unknown } }).response
  if (!res || typeof res.statusCode !== 'number') {
    return new RetryableError(`Segment endpoint unreachable: ${(err as Error)?.message ?? String(err)}`)
  }
  const status = res.statusCode
  const detail = receiverMessage(res.body)
  const message = `Segment endpoint answered ${status}${detail ? `: ${detail}` : ''}`
  const rule = segmentRule(status)
  if (rule === 'auth') return new AuthenticationError(`${message} (check writeKey)`, { status })
  if (rule === 'retry') {
    const retryAfterMs = parseRetryAfter(res.headers?.['retry-after'])
    return new RetryableError(message, { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) })
  }
  return new PermanentError(message, { status })
}

function receiverMessage(body: unknown): string | undefined {
  let b = body
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b)
    } catch {
      const text = (b as string).trim()
      return text ? text.slice(0, 200) : undefined
    }
  }
  if (!b || typeof b !== 'object') return undefined
  // Segment: { error }, firstparty: { code, message }, RudderStack: plain text.
  const o = b as { code?: unknown; message?: unknown; error?: unknown }
  const text = typeof o.message === 'string' ? o.message : typeof o.error === 'string' ? o.error : undefined
  if (!text) return undefined
  return `${typeof o.code === 'string' ? `${o.code} ` : ''}${text.slice(0, 200)}`
}

interface Chunk {
  indexes: number[]
  json: string[]
}

/**
 * Cut events into request bodies under MAX_REQUEST_BYTES; events over MAX_EVENT_BYTES
 * are returned apart. `envelopeBytes` is the size of the body without its events.
 */
export function planChunks(serialized: ReadonlyArray<string>, envelopeBytes: number): { chunks: Chunk[]; oversize: Array<{ index: number; bytes: number }> } {
  const chunks: Chunk[] = []
  const oversize: Array<{ index: number; bytes: number }> = []
  let cur: Chunk | undefined
  let curBytes = 0
  serialized.forEach((text, index) => {
    const bytes = Buffer.byteLength(text)
    if (bytes > MAX_EVENT_BYTES) {
      oversize.push({ index, bytes })
      return
    }
    const add = bytes + (cur && cur.json.length > 0 ? 1 : 0) // the comma
    if (!cur || curBytes + add > MAX_REQUEST_BYTES || cur.json.length >= MAX_EVENTS) {
      cur = { indexes: [], json: [] }
      chunks.push(cur)
      curBytes = envelopeBytes
    }
    curBytes += cur.json.length > 0 ? bytes + 1 : bytes
    cur.indexes.push(index)
    cur.json.push(text)
  })
  return { chunks, oversize }
}

async function post(ctx: DestinationContext<SegmentSettingsType>, body: string): Promise<void> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    authorization: `Basic ${Buffer.from(`${ctx.settings.writeKey}:`).toString('base64')}`,
  }
  let payload: string | Buffer = body
  if (ctx.settings.gzip) {
    payload = await gzip(body)
    headers['content-encoding'] = 'gzip'
  }
  try {
    await ctx.http.post(batchUrl(ctx.settings), { body: payload, headers, signal: ctx.signal })
  } catch (err) {
    throw classifySegmentResponse(err)
  }
}

export default defineDestination({
  name: 'segment',
  version: '0.1.0',
  description: 'Forward events to any Segment-compatible endpoint: Segment, RudderStack, another firstparty.',
  settings: SegmentSettings,
  // No consent category of its own: the event's consent (context.consent, context.consentManagement)
  // travels with it and the receiver enforces it per downstream destination. Set `consent:` in the
  // config to gate the relay itself (e.g. when the endpoint is Segment, a processor).
  batch: { maxEvents: MAX_EVENTS, maxBytes: 480_000, maxWaitMs: 1000 },
  async send(events, ctx) {
    const sentAt = new Date().toISOString()
    const head = '{"batch":['
    const tail = `],"sentAt":${JSON.stringify(sentAt)}}`
    const serialized = events.map((e) => JSON.stringify(forwardable(e as Record<string, unknown>)))
    const { chunks, oversize } = planChunks(serialized, Buffer.byteLength(head) + Buffer.byteLength(tail))
    const rejected: NonNullable<SendResult['rejected']> = oversize.map(({ index, bytes }) => ({
      index,
      error: new PermanentError(`event ${index} is ${bytes} bytes as JSON; Segment-compatible endpoints accept at most ${MAX_EVENT_BYTES} (32 KB) per event`),
    }))
    let sent = 0
    for (const [i, chunk] of chunks.entries()) {
      try {
        await post(ctx, head + chunk.json.join(',') + tail)
        sent++
      } catch (err) {
        const error = err as DeliveryError
        // Nothing went through and nothing was refused on its own: fail the batch as one.
        if (sent === 0 && rejected.length === 0) throw error
        // The requests after a failed one would most likely fail the same way: don't send them now.
        for (const rest of chunks.slice(i)) for (const index of rest.indexes) rejected.push({ index, error })
        break
      }
    }
    return { rejected }
  },
})
