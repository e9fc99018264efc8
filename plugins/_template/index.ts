/**
 * Example Analytics — the destination template. Copy this folder to start a plugin:
 * docs/writing-a-destination.md walks through it. Everything a destination needs is
 * here: a settings schema with a description per field, consent categories, batching
 * limits, a default mapping in the DSL (mapping.fp), `send` through `ctx.http`, the
 * vendor's answers turned into retryable / permanent / auth errors, and `deleteUser`.
 *
 * The vendor (fictional, documented in README.md):
 *   POST {endpoint}/v1/events     Authorization: Bearer <apiKey>   { events: [...] }  ≤ 500 events
 *     200 { accepted: n } · 400 { error: { code, message } } · 401/403 · 429 + Retry-After · 5xx
 *   POST {endpoint}/v1/deletions  { user_id }                                        → 202
 */
import { readFileSync } from 'node:fs'
import Type, { type Static } from 'typebox'
// In your own package, import all of these from 'firstparty'.
import {
  AuthenticationError,
  classifyStatus,
  defineDestination,
  PermanentError,
  parseRetryAfter,
  RetryableError,
  type DeliveryError,
  type DestinationContext,
} from '../../src/index.js'

export const TemplateSettings = Type.Object(
  {
    apiKey: Type.String({ minLength: 1, description: 'API key from Settings → API keys; sent as a Bearer token. Use ${ENV_VAR} in YAML.' }),
    region: Type.Union([Type.Literal('us'), Type.Literal('eu')], { default: 'us', description: "Data centre: 'us' (api.example-analytics.com) or 'eu' (eu.api.example-analytics.com)." }),
    endpoint: Type.Optional(Type.String({ pattern: '^https?://', description: 'Override the API base URL (a proxy, say). Wins over `region`.' })),
  },
  { additionalProperties: false },
)

type Settings = Static<typeof TemplateSettings>

/** The vendor's most events per request. */
export const MAX_EVENTS = 500

/** The default mapping ships beside this file (the build copies .fp files to dist/). */
export const mapping = readFileSync(new URL('./mapping.fp', import.meta.url), 'utf8')

export function baseUrl(s: Settings): string {
  if (s.endpoint) return s.endpoint.replace(/\/+$/, '')
  return s.region === 'eu' ? 'https://eu.api.example-analytics.com' : 'https://api.example-analytics.com'
}

/**
 * The vendor's answer → the router's retry rule. The HTTP status decides (408/429/5xx
 * retry, 401/403 auth, other 4xx permanent); the vendor's error message is kept
 * because it says what to fix, but never the request body (it holds personal data).
 */
export function classifyResponse(err: unknown): DeliveryError {
  const res = (err as { response?: { statusCode?: number; headers?: Record<string, unknown>; body?: unknown } }).response
  if (!res || typeof res.statusCode !== 'number') {
    // No answer: a network error, or our signal aborted the request. Both retry.
    return new RetryableError(`Example Analytics unreachable: ${(err as Error)?.message ?? String(err)}`)
  }
  const status = res.statusCode
  const detail = vendorMessage(res.body)
  const message = `Example Analytics answered ${status}${detail ? `: ${detail}` : ''}`
  const rule = classifyStatus(status)
  if (rule === 'auth') return new AuthenticationError(`${message} (check apiKey)`, { status })
  if (rule === 'retry') {
    const retryAfterMs = parseRetryAfter(res.headers?.['retry-after'])
    return new RetryableError(message, { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) })
  }
  return new PermanentError(message, { status })
}

function vendorMessage(body: unknown): string | undefined {
  let b = body
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b)
    } catch {
      return undefined
    }
  }
  const e = (b as { error?: { code?: unknown; message?: unknown } } | undefined)?.error
  if (!e || typeof e.message !== 'string') return undefined
  return `${typeof e.code === 'string' ? `${e.code} ` : ''}${e.message.slice(0, 200)}`
}

async function post(ctx: Omit<DestinationContext<Settings>, 'attempt'>, path: string, json: unknown): Promise<void> {
  try {
    await ctx.http.post(`${baseUrl(ctx.settings)}${path}`, {
      json,
      headers: { authorization: `Bearer ${ctx.settings.apiKey}` },
      signal: ctx.signal,
    })
  } catch (err) {
    throw classifyResponse(err)
  }
}

export default defineDestination({
  name: 'example-analytics',
  version: '0.1.0',
  description: 'Example Analytics: the template a new destination starts from.',
  settings: TemplateSettings,
  consent: { categories: ['analytics'] },
  batch: { maxEvents: MAX_EVENTS, maxBytes: 500_000, maxWaitMs: 1000 },
  mapping,
  async send(events, ctx) {
    // `events` are what the mapping produced. Each send call holds ≤ batch.maxEvents,
    // so one request carries them all; a vendor with a smaller per-request limit cuts here.
    for (let i = 0; i < events.length; i += MAX_EVENTS) {
      await post(ctx, '/v1/events', { events: events.slice(i, i + MAX_EVENTS) })
    }
  },
  async deleteUser(ids, ctx) {
    if (!ids.userId) throw new PermanentError('Example Analytics deletes by userId only')
    await post(ctx, '/v1/deletions', { user_id: ids.userId })
  },
})
