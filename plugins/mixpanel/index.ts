/**
 * mixpanel: events through the Import API (`POST /import?strict=1`), profiles through
 * the Engage API (`POST /engage#profile-set`), deletion through the GDPR API (v3).
 *
 *   /import   JSON array of { event, properties: { distinct_id, time (ms), $insert_id, … } }
 *             ≤ 2000 events and 2 MB uncompressed per request (Mixpanel's documented
 *             limits; newer docs allow 10 MB, 2 MB is safe for every project), 1 MB per
 *             event. Basic auth: service account (username:secret, `project_id` query),
 *             or the project's API secret, or the project token.
 *             200 ok · 400 { failed_records: [{ index, insert_id, field, message }] }: the
 *             others were imported (partial) · 401/403 · 413 (split and resend) · 429 · 5xx
 *   /engage   JSON array of { $token, $distinct_id, $set }, ≤ 2000 updates; `verbose=1`
 *             answers { status: 1 | 0, error } (200 even when the update is refused)
 *   GDPR API  POST https://mixpanel.com/api/app/data-deletions/v3.0/?token=<project token>
 *             Authorization: Bearer <GDPR OAuth token>, { distinct_ids, compliance_type }
 *
 * Mixpanel deduplicates events on `$insert_id` (the messageId), so a retried batch is
 * not counted twice.
 */
import { readFileSync } from 'node:fs'
import Type, { type Static } from 'typebox'
// Built-in plugins import the modules, not src/index.ts: the router imports them, and
// going through the index would make a cycle.
import { AuthenticationError, PermanentError, RetryableError, type DeliveryError } from '../../src/errors.js'
import { classifyStatus, parseRetryAfter } from '../../src/deliver/retry.js'
import { defineDestination, type DestinationContext, type SendResult } from '../../src/plugin.js'

export const MixpanelSettings = Type.Object(
  {
    projectToken: Type.String({ minLength: 1, description: 'Project token (Project Settings → Access Keys). Sent with profile updates and deletion requests; authenticates /import when no secret is set.' }),
    serviceAccountUsername: Type.Optional(Type.String({ minLength: 1, description: 'Service account username (Organization Settings → Service Accounts; Owner or Admin role). With serviceAccountSecret and projectId: the recommended /import authentication.' })),
    serviceAccountSecret: Type.Optional(Type.String({ minLength: 1, description: 'Service account secret. Use ${ENV_VAR} in YAML.' })),
    projectId: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'Numeric project id, sent as `project_id` with service account authentication.' })),
    apiSecret: Type.Optional(Type.String({ minLength: 1, description: "The project's API secret (legacy /import authentication), used when no service account is set." })),
    region: Type.Union([Type.Literal('us'), Type.Literal('eu'), Type.Literal('in')], {
      default: 'us',
      description: "Data residency: 'us' (api.mixpanel.com), 'eu' (api-eu.mixpanel.com), 'in' (api-in.mixpanel.com). Must match the project's.",
    }),
    endpoint: Type.Optional(Type.String({ pattern: '^https?://', description: 'Override the ingestion base URL (a proxy, say). Wins over `region`.' })),
    deletionEndpoint: Type.Optional(Type.String({ pattern: '^https?://', description: 'Override the GDPR API base URL (a proxy); /api/app/data-deletions/v3.0/ is appended. Wins over `region`.' })),
    gdprToken: Type.Optional(Type.String({ minLength: 1, description: 'GDPR OAuth token (Profile & Preferences → Data & Privacy; expires after a year). Needed only for deleteUser.' })),
  },
  { additionalProperties: false },
)

export type MixpanelSettingsType = Static<typeof MixpanelSettings>

/** Events (and profile updates) per request. */
export const MAX_EVENTS = 2000
/** Uncompressed bytes per request. */
export const MAX_REQUEST_BYTES = 2 * 1024 * 1024
/** Uncompressed bytes per event. */
export const MAX_EVENT_BYTES = 1024 * 1024
/** distinct_ids per deletion request. */
export const MAX_DELETION_IDS = 2000

/** The default mapping, read beside this module (the build copies .fp files to dist/). */
export const mapping = readFileSync(new URL('./mapping.fp', import.meta.url), 'utf8')

export function ingestionUrl(s: Pick<MixpanelSettingsType, 'region' | 'endpoint'>): string {
  if (s.endpoint) return s.endpoint.replace(/\/+$/, '')
  return s.region === 'eu' ? 'https://api-eu.mixpanel.com' : s.region === 'in' ? 'https://api-in.mixpanel.com' : 'https://api.mixpanel.com'
}

/** The GDPR API lives on the app host, not the ingestion host. */
export function gdprUrl(s: Pick<MixpanelSettingsType, 'region' | 'projectToken' | 'deletionEndpoint'>): string {
  const host = s.deletionEndpoint ? s.deletionEndpoint.replace(/\/+$/, '') : s.region === 'eu' ? 'https://eu.mixpanel.com' : s.region === 'in' ? 'https://in.mixpanel.com' : 'https://mixpanel.com'
  return `${host}/api/app/data-deletions/v3.0/?token=${encodeURIComponent(s.projectToken)}`
}

/** /import authentication: service account, else API secret, else the project token (Basic auth, empty password). */
export function importAuth(s: MixpanelSettingsType): { authorization: string; query: string } {
  const basic = (user: string, pass = '') => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
  if (s.serviceAccountUsername && s.serviceAccountSecret) {
    if (!s.projectId) throw new AuthenticationError('Mixpanel: service account authentication needs settings.projectId')
    return { authorization: basic(s.serviceAccountUsername, s.serviceAccountSecret), query: `?strict=1&project_id=${s.projectId}` }
  }
  if (s.apiSecret) return { authorization: basic(s.apiSecret), query: '?strict=1' }
  return { authorization: basic(s.projectToken), query: '?strict=1' }
}

interface VendorResponse {
  statusCode?: number
  headers?: Record<string, unknown>
  body?: unknown
}

function parseBody(body: unknown): unknown {
  if (typeof body !== 'string') return body
  try {
    return JSON.parse(body)
  } catch {
    return body
  }
}

/** Mixpanel's answer (or none) → the router's retry rule; keeps Mixpanel's error text, never our payload. */
export function classifyMixpanelResponse(err: unknown, what = 'Mixpanel'): DeliveryError {
  const res = (err as { response?: VendorResponse }).response
  if (!res || typeof res.statusCode !== 'number') return new RetryableError(`${what} unreachable: ${(err as Error)?.message ?? String(err)}`)
  const status = res.statusCode
  const b = parseBody(res.body) as { error?: unknown } | string | undefined
  const detail = typeof b === 'object' && b && typeof b.error === 'string' ? b.error : typeof b === 'string' ? b.trim() : ''
  const message = `${what} answered ${status}${detail ? `: ${detail.slice(0, 200)}` : ''}`
  const rule = classifyStatus(status)
  if (rule === 'auth') return new AuthenticationError(`${message} (check the project token, service account or API secret, and region)`, { status })
  if (rule === 'retry') {
    const retryAfterMs = parseRetryAfter(res.headers?.['retry-after'])
    return new RetryableError(message, { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) })
  }
  return new PermanentError(message, { status })
}

type Ctx = Omit<DestinationContext<MixpanelSettingsType>, 'attempt' | 'signal'> & { signal: AbortSignal }
type Rejected = NonNullable<SendResult['rejected']>
interface Item {
  index: number
  payload: Record<string, unknown>
  text: string
}

/** Cut items into requests of ≤ MAX_EVENTS and ≤ MAX_REQUEST_BYTES (a JSON array: items plus commas and brackets). */
function chunk(items: Item[]): Item[][] {
  const out: Item[][] = []
  let cur: Item[] = []
  let bytes = 2
  for (const it of items) {
    const b = Buffer.byteLength(it.text) + 1
    if (cur.length > 0 && (cur.length >= MAX_EVENTS || bytes + b > MAX_REQUEST_BYTES)) {
      out.push(cur)
      cur = []
      bytes = 2
    }
    cur.push(it)
    bytes += b
  }
  if (cur.length) out.push(cur)
  return out
}

/** POST /import; a 400 names the refused events, a 413 splits the request in two. */
async function importEvents(ctx: Ctx, items: Item[], rejected: Rejected): Promise<void> {
  const auth = importAuth(ctx.settings)
  try {
    await ctx.http.post(`${ingestionUrl(ctx.settings)}/import${auth.query}`, {
      body: `[${items.map((i) => i.text).join(',')}]`,
      headers: { 'content-type': 'application/json', authorization: auth.authorization },
      signal: ctx.signal,
    })
  } catch (err) {
    const res = (err as { response?: VendorResponse }).response
    if (res?.statusCode === 413 && items.length > 1) {
      const half = Math.ceil(items.length / 2)
      await importEvents(ctx, items.slice(0, half), rejected)
      await importEvents(ctx, items.slice(half), rejected)
      return
    }
    const failed = res?.statusCode === 400 ? (parseBody(res.body) as { failed_records?: unknown })?.failed_records : undefined
    if (Array.isArray(failed) && failed.length > 0) {
      // strict=1: the events not listed were imported.
      for (const f of failed as Array<{ index?: unknown; field?: unknown; message?: unknown; insert_id?: unknown }>) {
        const it = typeof f.index === 'number' ? items[f.index] : items.find((i) => i.payload.properties && (i.payload.properties as Record<string, unknown>)['$insert_id'] === f.insert_id)
        if (!it) continue
        const why = `${typeof f.field === 'string' ? `${f.field}: ` : ''}${typeof f.message === 'string' ? f.message.slice(0, 200) : 'invalid'}`
        rejected.push({ index: it.index, error: new PermanentError(`Mixpanel refused event ${it.index}: ${why}`, { status: 400 }) })
      }
      return
    }
    if (res?.statusCode === 413) {
      rejected.push({ index: items[0]!.index, error: new PermanentError(`Mixpanel answered 413: event ${items[0]!.index} is too large on its own`, { status: 413 }) })
      return
    }
    throw classifyMixpanelResponse(err, 'Mixpanel /import')
  }
}

/** POST /engage (profile set); with verbose=1 a refused update answers 200 { status: 0, error }. */
async function engage(ctx: Ctx, items: Item[], rejected: Rejected): Promise<void> {
  let body: unknown
  try {
    const res = await ctx.http.post(`${ingestionUrl(ctx.settings)}/engage?verbose=1`, {
      body: `[${items.map((i) => i.text).join(',')}]`,
      headers: { 'content-type': 'application/json' },
      signal: ctx.signal,
    })
    body = parseBody(res.body)
  } catch (err) {
    throw classifyMixpanelResponse(err, 'Mixpanel /engage')
  }
  const b = body as { status?: unknown; error?: unknown } | number | undefined
  const ok = b === 1 || (typeof b === 'object' && b !== null && (b.status === 1 || b.status === undefined))
  if (!ok) {
    const error = new PermanentError(`Mixpanel /engage refused the profile updates: ${typeof b === 'object' && b && typeof b.error === 'string' ? b.error.slice(0, 200) : JSON.stringify(b)}`)
    for (const it of items) rejected.push({ index: it.index, error })
  }
}

export default defineDestination({
  name: 'mixpanel',
  version: '0.1.0',
  description: 'Mixpanel: events through /import with $insert_id, identify to profiles, GDPR deletion.',
  settings: MixpanelSettings,
  consent: { categories: ['analytics'] },
  batch: { maxEvents: MAX_EVENTS, maxBytes: MAX_REQUEST_BYTES, maxWaitMs: 1000 },
  mapping,
  async send(events, ctx) {
    const rejected: Rejected = []
    const imports: Item[] = []
    const profiles: Item[] = []
    events.forEach((e, index) => {
      const p = e as unknown as Record<string, unknown>
      let payload: Record<string, unknown>
      if (p.$set !== undefined || p.$set_once !== undefined || p.$unset !== undefined) payload = { $token: ctx.settings.projectToken, ...p }
      else if (typeof p.event === 'string') payload = p
      else {
        rejected.push({ index, error: new PermanentError(`event ${index} is neither a Mixpanel event (event, properties) nor a profile update ($set)`) })
        return
      }
      const text = JSON.stringify(payload)
      if (Buffer.byteLength(text) > MAX_EVENT_BYTES) {
        rejected.push({ index, error: new PermanentError(`event ${index} is ${Buffer.byteLength(text)} bytes as JSON; Mixpanel accepts at most 1 MB per event`) })
        return
      }
      ;(payload === p ? imports : profiles).push({ index, payload, text })
    })
    let delivered = 0
    const all = [...chunk(imports).map((c) => ['import', c] as const), ...chunk(profiles).map((c) => ['engage', c] as const)]
    for (const [i, [kind, items]] of all.entries()) {
      try {
        await (kind === 'import' ? importEvents : engage)(ctx, items, rejected)
        delivered++
      } catch (err) {
        const error = err as DeliveryError
        // Nothing went through and nothing was refused alone: fail the batch as one.
        if (delivered === 0 && rejected.length === 0) throw error
        for (const [, rest] of all.slice(i)) for (const it of rest) rejected.push({ index: it.index, error })
        break
      }
    }
    rejected.sort((a, b) => a.index - b.index)
    if (rejected.length === events.length && events.length > 0 && rejected.every((r) => r.error === rejected[0]!.error)) throw rejected[0]!.error
    return { rejected }
  },
  async deleteUser(ids, ctx) {
    const s = ctx.settings
    if (!s.gdprToken) throw new PermanentError('Mixpanel deletion needs settings.gdprToken (a GDPR OAuth token)')
    const distinctIds = [ids.userId, ids.anonymousId].filter((v): v is string => typeof v === 'string' && v !== '')
    if (distinctIds.length === 0) throw new PermanentError('Mixpanel deletes by distinct_id: give a userId or an anonymousId')
    try {
      await ctx.http.post(gdprUrl(s), {
        json: { distinct_ids: distinctIds, compliance_type: 'GDPR' },
        headers: { authorization: `Bearer ${s.gdprToken}` },
        signal: ctx.signal,
      })
    } catch (err) {
      throw classifyMixpanelResponse(err, 'Mixpanel GDPR API')
    }
  },
})
