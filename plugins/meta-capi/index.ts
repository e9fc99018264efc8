/**
 * meta-capi: Meta (Facebook) Conversions API.
 *
 * The default mapping (mapping.fp) turns each Segment event into one server event with
 * hashed `user_data`; `send` makes sure every customer-information value is normalized
 * and hashed, checks what Meta would refuse for the whole request (so one bad event does
 * not sink its batch), and posts up to 1,000 events per request to
 * `POST {endpoint}/{apiVersion}/{pixelId}/events?access_token=…`. Meta's error answers
 * (`{ error: { code, type, error_subcode, message } }`) are classified by their code.
 */
import { readFileSync } from 'node:fs'
import Type, { type Static } from 'typebox'
import { defineDestination, type DestinationContext, type SendResult } from '../../src/plugin.js'
import { AuthenticationError, PermanentError, RetryableError, type DeliveryError } from '../../src/errors.js'
import { parseRetryAfter } from '../../src/deliver/retry.js'
import { toDeliveryError } from '../http-errors.js'
import { hashUserData } from './user-data.js'

export const ACTION_SOURCES = ['website', 'app', 'email', 'phone_call', 'chat', 'physical_store', 'system_generated', 'business_messaging', 'other'] as const

export const MetaCapiSettings = Type.Object(
  {
    pixelId: Type.String({ pattern: '^[0-9]+$', description: 'The pixel (dataset) ID from Events Manager → Data sources.' }),
    accessToken: Type.String({ minLength: 1, description: 'A Conversions API access token (Events Manager → your pixel → Settings → Generate access token). Use ${ENV_VAR} in YAML.' }),
    apiVersion: Type.String({ pattern: '^v[0-9]+\\.[0-9]+$', default: 'v21.0', description: 'Graph API version in the URL, e.g. v21.0.' }),
    actionSource: Type.Union([
      Type.Literal('website'), Type.Literal('app'), Type.Literal('email'), Type.Literal('phone_call'), Type.Literal('chat'),
      Type.Literal('physical_store'), Type.Literal('system_generated'), Type.Literal('business_messaging'), Type.Literal('other'),
    ], {
      default: 'website',
      description: 'action_source for events the mapping leaves without one (the default mapping sets "app" for app events).',
    }),
    testEventCode: Type.Optional(Type.String({ minLength: 1, description: 'Sends test_event_code: events show in Events Manager → Test events and are not used for ads. For staging.' })),
    endpoint: Type.String({ pattern: '^https?://', default: 'https://graph.facebook.com', description: 'Graph API base URL (change only for a proxy).' }),
  },
  { additionalProperties: false },
)

export type MetaCapiSettingsType = Static<typeof MetaCapiSettings>

/** The default mapping, read beside this module (the build copies .fp files to dist/). */
export const mapping = readFileSync(new URL('./mapping.fp', import.meta.url), 'utf8')

/** Meta's most events per request. */
export const MAX_EVENTS_PER_REQUEST = 1000

/** One item of `data`, as `send` receives it from the mapping. */
export interface ServerEvent {
  event_name?: unknown
  event_time?: unknown
  event_id?: unknown
  action_source?: unknown
  event_source_url?: unknown
  user_data?: unknown
  custom_data?: unknown
  [key: string]: unknown
}

/**
 * Prepare one server event: defaults, hashing, and the checks Meta would otherwise make
 * by refusing the whole request. Returns the event, or the reason it cannot be sent.
 */
export function prepareEvent(e: ServerEvent, s: Pick<MetaCapiSettingsType, 'actionSource'>): { event: Record<string, unknown> } | { problem: string } {
  if (typeof e.event_name !== 'string' || e.event_name === '') return { problem: 'event_name is missing' }
  if (typeof e.event_time !== 'number' || !Number.isInteger(e.event_time) || e.event_time <= 0) {
    return { problem: `event "${e.event_name}": event_time must be a Unix time in seconds` }
  }
  if (e.event_time > 100_000_000_000) return { problem: `event "${e.event_name}": event_time ${e.event_time} looks like milliseconds; Meta wants seconds` }
  const action = e.action_source ?? s.actionSource
  if (typeof action !== 'string' || !(ACTION_SOURCES as readonly string[]).includes(action)) {
    return { problem: `event "${e.event_name}": action_source "${String(action)}" is not one of ${ACTION_SOURCES.join(', ')}` }
  }
  if (!e.user_data || typeof e.user_data !== 'object' || Array.isArray(e.user_data)) return { problem: `event "${e.event_name}": user_data is missing` }
  const userData = hashUserData(e.user_data as Record<string, unknown>)
  if (Object.keys(userData).length === 0) return { problem: `event "${e.event_name}": user_data has no customer information parameter` }
  if (action === 'website') {
    if (typeof userData.client_user_agent !== 'string') return { problem: `event "${e.event_name}": a website event needs user_data.client_user_agent (context.userAgent)` }
    if (typeof e.event_source_url !== 'string' || e.event_source_url === '') return { problem: `event "${e.event_name}": a website event needs event_source_url (context.page.url)` }
  }
  const event: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(e)) if (v !== null && v !== undefined) event[k] = v
  event.action_source = action
  event.user_data = userData
  return { event }
}

interface GraphError {
  message?: string
  type?: string
  code?: number
  error_subcode?: number
  error_user_title?: string
  error_user_msg?: string
  is_transient?: boolean
  fbtrace_id?: string
}

/** Graph API codes that mean "wait and try again" (throttling, downtime). */
const RETRY_CODES = new Set([1, 2, 4, 17, 32, 341, 368, 613])
/** Codes that mean the token or its permissions are wrong. */
const AUTH_CODES = new Set([10, 102, 190])

/** The Graph API error rule for a code; undefined when the code does not decide. */
export function ruleForGraphError(e: GraphError): 'retry' | 'auth' | 'permanent' | undefined {
  const code = e.code
  if (typeof code === 'number') {
    if (RETRY_CODES.has(code) || (code >= 80000 && code <= 80014)) return 'retry'
    if (AUTH_CODES.has(code) || (code >= 200 && code <= 299)) return 'auth'
    if (code === 100) return 'permanent'
  }
  if (e.is_transient === true) return 'retry'
  // An OAuthException without a deciding code: the token was refused.
  if (e.type === 'OAuthException' && code === undefined) return 'auth'
  if (typeof code === 'number') return 'permanent'
  return undefined
}

/** How long Meta says to wait: Retry-After, else the business use case header's minutes. */
function retryAfterOf(headers: Record<string, unknown> | undefined): number | undefined {
  const ra = parseRetryAfter(headers?.['retry-after'])
  if (ra !== undefined) return ra
  const buc = headers?.['x-business-use-case-usage']
  if (typeof buc !== 'string') return undefined
  try {
    const usage = JSON.parse(buc) as Record<string, Array<{ estimated_time_to_regain_access?: number }>>
    const minutes = Math.max(0, ...Object.values(usage).flat().map((u) => Number(u.estimated_time_to_regain_access) || 0))
    return minutes > 0 ? minutes * 60_000 : undefined
  } catch {
    return undefined
  }
}

/**
 * A failed request → the router's error: Meta's `error.code` decides when the body has
 * one, else the HTTP status. The message keeps Meta's code, subcode, message and
 * fbtrace_id, never the access token or the events.
 */
export function classifyMetaError(err: unknown): DeliveryError {
  const res = (err as { response?: { statusCode?: number; headers?: Record<string, unknown>; body?: unknown } }).response
  let graph: GraphError | undefined
  if (res && typeof res.body === 'string') {
    try {
      const parsed = JSON.parse(res.body) as { error?: unknown }
      if (parsed.error && typeof parsed.error === 'object') graph = parsed.error as GraphError
    } catch {
      graph = undefined
    }
  }
  const rule = graph ? ruleForGraphError(graph) : undefined
  if (!res || !graph || !rule) return toDeliveryError(err)
  const status = res.statusCode
  const detail = [
    `code ${graph.code ?? '?'}${graph.error_subcode ? `/${graph.error_subcode}` : ''}`,
    graph.type,
    graph.error_user_msg ?? graph.message,
    graph.fbtrace_id ? `fbtrace_id ${graph.fbtrace_id}` : undefined,
  ].filter(Boolean).join(', ')
  const message = `Meta answered ${status ?? '?'} (${detail})`
  const opts = status !== undefined ? { status } : {}
  if (rule === 'auth') return new AuthenticationError(`${message}: check accessToken and its permissions on pixel`, opts)
  if (rule === 'retry') {
    const retryAfterMs = retryAfterOf(res.headers)
    return new RetryableError(message, { ...opts, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) })
  }
  return new PermanentError(message, opts)
}

async function post(data: Array<Record<string, unknown>>, ctx: DestinationContext<MetaCapiSettingsType>): Promise<void> {
  const s = ctx.settings
  const url = `${s.endpoint.replace(/\/+$/, '')}/${s.apiVersion}/${encodeURIComponent(s.pixelId)}/events?access_token=${encodeURIComponent(s.accessToken)}`
  const json: Record<string, unknown> = { data }
  if (s.testEventCode) json.test_event_code = s.testEventCode
  let res
  try {
    res = await ctx.http.post(url, { json, signal: ctx.signal })
  } catch (err) {
    throw classifyMetaError(err)
  }
  try {
    const received = (JSON.parse(res.body) as { events_received?: unknown }).events_received
    if (typeof received === 'number' && received !== data.length) ctx.logger.warn({ sent: data.length, received }, 'Meta received fewer events than were sent')
  } catch {
    // A 2xx without a JSON body: nothing to check.
  }
}

export default defineDestination({
  name: 'meta-capi',
  version: '0.1.0',
  description: 'Meta Conversions API: server events with hashed customer information, deduplicated with the pixel by event_id.',
  settings: MetaCapiSettings,
  consent: { categories: ['advertising'] },
  batch: { maxEvents: MAX_EVENTS_PER_REQUEST, maxBytes: 2_000_000, maxWaitMs: 1000 },
  mapping,
  async send(events, ctx): Promise<SendResult | void> {
    const rejected: Array<{ index: number; error: DeliveryError }> = []
    const data: Array<Record<string, unknown>> = []
    events.forEach((e, index) => {
      const r = prepareEvent(e as unknown as ServerEvent, ctx.settings)
      if ('problem' in r) rejected.push({ index, error: new PermanentError(`Meta CAPI: ${r.problem}`) })
      else data.push(r.event)
    })
    // Meta accepts or refuses a request as a whole: a failed request fails its events.
    for (let i = 0; i < data.length; i += MAX_EVENTS_PER_REQUEST) {
      await post(data.slice(i, i + MAX_EVENTS_PER_REQUEST), ctx)
    }
    if (rejected.length === 0) return
    if (rejected.length === events.length && rejected.length === 1) throw rejected[0]!.error
    return { rejected }
  },
})
