/**
 * webhook: deliver events to any HTTP endpoint, one event or one batch per request.
 * The endpoint's answer decides the retry: 408/429/5xx retried (Retry-After honoured),
 * 401/403 auth errors, other 4xx permanent.
 */
import Type from 'typebox'
import { defineDestination } from '../../src/plugin.js'
import type { DeliveryError } from '../../src/errors.js'
import { toDeliveryError } from '../http-errors.js'

export const WebhookSettings = Type.Object({
  url: Type.String({ pattern: '^https?://', description: 'Endpoint URL (http or https).' }),
  method: Type.Union([Type.Literal('POST'), Type.Literal('PUT'), Type.Literal('PATCH')], { default: 'POST', description: 'HTTP method.' }),
  headers: Type.Record(Type.String(), Type.String(), { default: {}, description: 'Extra request headers, e.g. an Authorization token from ${ENV}.' }),
  mode: Type.Union([Type.Literal('batch'), Type.Literal('event')], {
    default: 'batch',
    description: "'batch': one request per batch, body { batch: [...], sentAt }. 'event': one request per event, body = the event.",
  }),
}, { additionalProperties: false })

export default defineDestination({
  name: 'webhook',
  version: '0.1.0',
  description: 'POST events to any HTTP endpoint, batched or one by one.',
  settings: WebhookSettings,
  batch: { maxEvents: 100, maxBytes: 500_000, maxWaitMs: 1000 },
  async send(events, ctx) {
    const { url, method, headers, mode } = ctx.settings
    const request = (json: unknown) =>
      ctx.http(url, { method, headers, json, signal: ctx.signal }).catch((err: unknown) => {
        throw toDeliveryError(err)
      })
    if (mode === 'batch') {
      await request({ batch: events, sentAt: new Date().toISOString() })
      return
    }
    const results = await Promise.allSettled(events.map((e) => request(e)))
    const rejected: Array<{ index: number; error: DeliveryError }> = []
    results.forEach((r, index) => {
      if (r.status === 'rejected') rejected.push({ index, error: r.reason as DeliveryError })
    })
    // All failed the same way: let the batch fail as one (one retry timer, not n).
    if (rejected.length === events.length && events.length > 0) throw rejected[0]!.error
    return { rejected }
  },
})
