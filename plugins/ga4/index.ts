/**
 * ga4: Google Analytics 4 through the Measurement Protocol.
 *
 * The default mapping (mapping.fp) turns each Segment event into one Measurement
 * Protocol body; `send` checks every body against GA4's limits (a body that breaks one
 * is refused alone, permanently, with the reason), merges the bodies of one client into
 * requests of at most 25 events and 130 kB, and posts them to `/mp/collect` — or, with
 * `validate: true`, to `/debug/mp/collect`, whose validation messages become permanent
 * errors. GA4 answers 2xx to anything it receives, so those checks are the only place
 * a bad event is caught.
 */
import { readFileSync } from 'node:fs'
import Type, { type Static } from 'typebox'
import { defineDestination, type DestinationContext, type SendResult } from '../../src/plugin.js'
import { PermanentError, type DeliveryError } from '../../src/errors.js'
import { toDeliveryError } from '../http-errors.js'
import { checkBody, MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST, type MpBody, type MpEvent } from './limits.js'

export const Ga4Settings = Type.Object(
  {
    measurementId: Type.String({ pattern: '^G-[A-Z0-9]+$', description: 'Measurement ID of the web data stream (Admin → Data streams → your stream), e.g. G-XXXXXXXXXX.' }),
    apiSecret: Type.String({ minLength: 1, description: 'Measurement Protocol API secret (Admin → Data streams → your stream → Measurement Protocol API secrets). Use ${ENV_VAR} in YAML.' }),
    region: Type.Union([Type.Literal('global'), Type.Literal('eu')], {
      default: 'global',
      description: "'global': https://www.google-analytics.com; 'eu': https://region1.google-analytics.com (data collected in the EU).",
    }),
    endpoint: Type.Optional(Type.String({ pattern: '^https?://', description: 'Base URL to post to instead of the region\'s (a server-side Tag Manager container, a proxy). Wins over `region`.' })),
    validate: Type.Boolean({
      default: false,
      description: 'Post to /debug/mp/collect: GA4 validates the events and records none of them; its validation messages become permanent errors. For staging.',
    }),
    ga360: Type.Boolean({ default: false, description: 'The property is Google Analytics 360: parameter values may be 500 characters instead of 100.' }),
  },
  { additionalProperties: false },
)

export type Ga4SettingsType = Static<typeof Ga4Settings>

/** The default mapping, read beside this module (the build copies .fp files to dist/). */
export const mapping = readFileSync(new URL('./mapping.fp', import.meta.url), 'utf8')

/** The base URL requests go to. */
export function ga4BaseUrl(s: Pick<Ga4SettingsType, 'region' | 'endpoint'>): string {
  if (s.endpoint) return s.endpoint.replace(/\/+$/, '')
  return s.region === 'eu' ? 'https://region1.google-analytics.com' : 'https://www.google-analytics.com'
}

/** `GA1.1.123.456` (a _ga cookie value) → `123.456`; anything else unchanged. */
export function clientIdFromCookie(value: string): string {
  const m = /^GA\d+\.\d+\.(\d+\.\d+)$/.exec(value)
  return m ? m[1]! : value
}

/** Top-level fields that must be equal for two bodies to share a request. */
function requestKey(body: MpBody): string {
  const { events: _e, timestamp_micros: _t, ...rest } = body
  return JSON.stringify(Object.keys(rest).sort().map((k) => [k, rest[k]]))
}

interface OutRequest {
  body: { timestamp_micros?: number; events: MpEvent[]; [k: string]: unknown }
  bytes: number
  /** For each event of body.events, the index of the `send` input it came from. */
  sources: number[]
}

/**
 * Cut the checked bodies into requests: same client (and user, consent, user
 * properties) together, at most 25 events and 130 kB each, in arrival order. An event
 * whose time differs from its request's keeps its own `timestamp_micros`.
 */
export function planRequests(bodies: ReadonlyArray<{ index: number; body: MpBody }>): OutRequest[] {
  const open = new Map<string, OutRequest>()
  const order: OutRequest[] = []
  for (const { index, body } of bodies) {
    const key = requestKey(body)
    const events = body.events as MpEvent[]
    const ts = typeof body.timestamp_micros === 'number' ? body.timestamp_micros : undefined
    let req = open.get(key)
    const addBytes = JSON.stringify(events).length + 40
    if (req && (req.body.events.length + events.length > MAX_EVENTS_PER_REQUEST || req.bytes + addBytes > MAX_BODY_BYTES)) {
      open.delete(key)
      req = undefined
    }
    if (!req) {
      const head = { ...body, events: [] as MpEvent[] } as OutRequest['body']
      if (ts === undefined) delete head.timestamp_micros
      req = { body: head, bytes: JSON.stringify(head).length, sources: [] }
      open.set(key, req)
      order.push(req)
    }
    const target = req
    for (const e of events) {
      const own = ts !== undefined && ts !== target.body.timestamp_micros && e.timestamp_micros === undefined ? { ...e, timestamp_micros: ts } : e
      target.body.events.push(own)
      target.sources.push(index)
    }
    target.bytes += addBytes
  }
  return order
}

interface ValidationMessage {
  fieldPath?: string
  description?: string
  validationCode?: string
}

async function post(req: OutRequest, ctx: DestinationContext<Ga4SettingsType>): Promise<Map<number, DeliveryError>> {
  const s = ctx.settings
  const path = s.validate ? '/debug/mp/collect' : '/mp/collect'
  const url = `${ga4BaseUrl(s)}${path}?measurement_id=${encodeURIComponent(s.measurementId)}&api_secret=${encodeURIComponent(s.apiSecret)}`
  const failed = new Map<number, DeliveryError>()
  let text: string
  try {
    const res = await ctx.http.post(url, { json: req.body, signal: ctx.signal })
    text = res.body
  } catch (err) {
    const e = toDeliveryError(err)
    for (const i of req.sources) failed.set(i, e)
    return failed
  }
  if (!s.validate) return failed
  // The validation server answers 200 with { validationMessages: [...] }; empty means valid.
  let messages: ValidationMessage[] = []
  try {
    messages = (JSON.parse(text) as { validationMessages?: ValidationMessage[] }).validationMessages ?? []
  } catch {
    messages = []
  }
  for (const m of messages) {
    const error = new PermanentError(`GA4 validation: ${m.validationCode ?? 'INVALID'} at ${m.fieldPath ?? '(request)'}: ${m.description ?? ''}`.trim())
    // "Event at index: [3] has invalid name …" names one event; otherwise the whole request.
    const at = /index: \[(\d+)\]/.exec(m.description ?? '')
    const events = at ? [Number(at[1])] : req.body.events.map((_, i) => i)
    for (const e of events) {
      const source = req.sources[e]
      if (source !== undefined && !failed.has(source)) failed.set(source, error)
    }
  }
  return failed
}

/** Requests in flight at once within one `send`. */
const CONCURRENCY = 4

export default defineDestination({
  name: 'ga4',
  version: '0.1.0',
  description: 'Google Analytics 4 (Measurement Protocol): Segment e-commerce events as GA4 recommended events.',
  settings: Ga4Settings,
  consent: { categories: ['analytics'] },
  batch: { maxEvents: 100, maxBytes: 500_000, maxWaitMs: 1000 },
  mapping,
  async send(events, ctx): Promise<SendResult | void> {
    const rejected = new Map<number, DeliveryError>()
    const good: Array<{ index: number; body: MpBody }> = []
    events.forEach((e, index) => {
      const body = { ...(e as unknown as MpBody) }
      if (typeof body.client_id === 'string') body.client_id = clientIdFromCookie(body.client_id)
      const problem = checkBody(body, { ga360: ctx.settings.ga360 })
      if (problem) rejected.set(index, new PermanentError(`GA4: ${problem}`))
      else good.push({ index, body })
    })
    const requests = planRequests(good)
    let next = 0
    const worker = async () => {
      while (next < requests.length) {
        const req = requests[next++]!
        if (ctx.signal.aborted) throw ctx.signal.reason
        for (const [i, e] of await post(req, ctx)) rejected.set(i, e)
      }
    }
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, requests.length) }, worker))
    if (rejected.size === 0) return
    // Every event failed the same way: fail the batch as one (one retry timer, not n).
    const errors = [...rejected.values()]
    const first = errors[0]!
    if (rejected.size === events.length && errors.every((e) => e.rule === first.rule && e.message === first.message)) throw first
    return { rejected: [...rejected].map(([index, error]) => ({ index, error })) }
  },
})
