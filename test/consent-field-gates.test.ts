/**
 * Field-level consent: `consent.fields` removes a field from what a destination gets
 * unless the event grants that field's category. End to end over HTTP.
 */
import t, { type Test } from 'tap'
import { createRouter, type Router } from '../src/router.js'
import type { RouterOptions } from '../src/config.js'
import { captureDestination, type CaptureDestination } from '../src/testing.js'
import { basic, listen, send } from './helpers/http.js'

const WRITE_KEY = 'wk_fields'
const FIELDS = { 'traits.email': 'marketing', 'properties.products[*].price': 'analytics', 'context.device.advertisingId': 'advertising' }

async function setup(t: Test, consent: RouterOptions['consent'] = {}): Promise<{ router: Router; base: string; capture: CaptureDestination }> {
  const capture = captureDestination('cap')
  const router = createRouter({
    logLevel: 'silent',
    sources: [{ name: 'web', writeKey: WRITE_KEY }],
    consent: { fields: FIELDS, ...consent },
    destinations: [{ name: 'cap', type: capture.plugin, delivery: { batch: { maxWaitMs: 0 } } }],
  })
  t.teardown(() => router.close({ timeoutMs: 1000 }))
  const { base } = await listen(t, router.handler())
  return { router, base, capture }
}

function event(name: string, context: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'track',
    event: name,
    userId: 'u-1',
    messageId: `m-${name}`,
    traits: { email: 'jo@example.com', plan: 'pro' },
    properties: { products: [{ sku: 'A', price: 10 }, { sku: 'B', price: 20 }] },
    context: { ...context, device: { advertisingId: 'ad-123', type: 'ios' } },
  }
}

async function deliver(t: Test, s: { router: Router; base: string; capture: CaptureDestination }, batches: Array<{ events: Record<string, unknown>[]; gpc?: boolean }>) {
  for (const b of batches) {
    const headers: Record<string, string> = { Authorization: basic(WRITE_KEY) }
    if (b.gpc) headers['Sec-GPC'] = '1'
    const r = await send(`${s.base}/v1/batch`, { headers, body: { batch: b.events } })
    t.equal(r.status, 200)
  }
  await s.router.close({ timeoutMs: 5000 })
  return Object.fromEntries(s.capture.events.map((e) => [e.event, e as unknown as Record<string, any>]))
}

t.test('fields are removed unless their category is granted (missing: deny)', async (t) => {
  const s = await setup(t)
  const got = await deliver(t, s, [
    {
      events: [
        event('all granted', { consent: { categoryPreferences: { marketing: true, analytics: true, advertising: true } } }),
        event('marketing denied', { consent: { categoryPreferences: { marketing: false, analytics: true, advertising: true } } }),
        event('rudder marketing only', { consentManagement: { allowedConsentIds: ['marketing'] } }),
        event('no consent'),
      ],
    },
    { events: [event('gpc with all granted', { consent: { categoryPreferences: { marketing: true, analytics: true, advertising: true } } })], gpc: true },
  ])
  t.same(Object.keys(got).sort(), ['all granted', 'gpc with all granted', 'marketing denied', 'no consent', 'rudder marketing only'], 'the destination needs no category: every event arrives')

  t.equal(got['all granted']!.traits.email, 'jo@example.com')
  t.same(got['all granted']!.properties.products, [{ sku: 'A', price: 10 }, { sku: 'B', price: 20 }])
  t.equal(got['all granted']!.context.device.advertisingId, 'ad-123')

  t.notOk('email' in got['marketing denied']!.traits, 'email removed without marketing')
  t.equal(got['marketing denied']!.traits.plan, 'pro', 'other traits stay')
  t.same(got['marketing denied']!.properties.products, [{ sku: 'A', price: 10 }, { sku: 'B', price: 20 }])

  t.equal(got['rudder marketing only']!.traits.email, 'jo@example.com')
  t.same(got['rudder marketing only']!.properties.products, [{ sku: 'A' }, { sku: 'B' }], 'every price removed without analytics')
  t.notOk('advertisingId' in got['rudder marketing only']!.context.device)

  t.notOk('email' in got['no consent']!.traits)
  t.same(got['no consent']!.properties.products, [{ sku: 'A' }, { sku: 'B' }])
  t.same(got['no consent']!.context.device, { type: 'ios' })

  t.equal(got['gpc with all granted']!.traits.email, 'jo@example.com')
  t.notOk('advertisingId' in got['gpc with all granted']!.context.device, 'GPC denies advertising whatever the CMP said')
})

t.test('missing: allow keeps fields of events without consent, but not what GPC denies', async (t) => {
  const s = await setup(t, { missing: 'allow' })
  const got = await deliver(t, s, [
    { events: [event('no consent'), event('marketing denied', { consent: { categoryPreferences: { marketing: false } } })] },
    { events: [event('gpc only')], gpc: true },
  ])
  t.equal(got['no consent']!.traits.email, 'jo@example.com')
  t.equal(got['no consent']!.context.device.advertisingId, 'ad-123')
  t.notOk('email' in got['marketing denied']!.traits)
  t.equal(got['gpc only']!.traits.email, 'jo@example.com', 'GPC says nothing about marketing')
  t.notOk('advertisingId' in got['gpc only']!.context.device, 'GPC removes the advertising field')
})

t.test('the trace names the consent gate and the removed paths', async (t) => {
  const capture = captureDestination('cap')
  const router = createRouter({ logLevel: 'silent', consent: { fields: FIELDS }, destinations: [{ name: 'cap', type: capture.plugin }] })
  t.teardown(() => router.close({ timeoutMs: 1000 }))
  const ev = router.evaluate(event('x', { consent: { categoryPreferences: { marketing: false, analytics: true, advertising: true } } }))
  const d = ev.destinations.cap!
  t.equal(d.delivered, true)
  t.same(d.trace.actions, [{ rule: 'consent:marketing', action: 'redact', paths: ['traits.email'] }])
  t.notOk('email' in ((d as { event: Record<string, any> }).event.traits as object))
  t.equal((ev.event as unknown as Record<string, any>).traits.email, 'jo@example.com', 'the shared event is not changed')
})
