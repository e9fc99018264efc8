/**
 * Every policy decision is observable: per-rule counters in `stats().policies`,
 * `filteredBy` per destination, one 'policy' trace per event and scope, and
 * `router.evaluate()` as a dry run.
 */
import t, { type Test } from 'tap'
import { createRouter } from '../src/router.js'
import { captureDestination } from '../src/testing.js'
import type { PolicyTrace } from '../src/policy/engine.js'
import { basic, listen, send } from './helpers/http.js'

const WRITE_KEY = 'wk_obs'

function build(t: Test) {
  const a = captureDestination('cap-a')
  const b = captureDestination('cap-b')
  const router = createRouter({
    logLevel: 'silent',
    sources: [{ name: 'web', writeKey: WRITE_KEY }],
    operations: {
      explode: {
        fn: () => {
          throw new Error('boom')
        },
        pure: false,
        arity: [0, 1],
      },
    },
    policies: [
      { name: 'drop-tests', when: { '==': [{ var: 'event' }, 'Test'] }, then: 'drop' },
      { name: 'tag', then: { set: [{ path: 'properties.tagged', value: true }] } },
      { name: 'broken', when: { explode: [] }, then: 'drop' },
      { name: 'no-b-for-refunds', when: { '==': [{ var: 'event' }, 'Refund'] }, then: { disable: ['b'] } },
    ],
    destinations: [
      {
        name: 'a',
        type: a.plugin,
        delivery: { batch: { maxWaitMs: 0 } },
        policies: [
          { name: 'hash-email', when: { '!!': [{ var: 'traits.email' }] }, then: { hash: ['traits.email'] } },
          { name: 'drop-big', when: { '>': [{ var: 'properties.revenue' }, 1000] }, then: 'drop' },
        ],
      },
      { name: 'b', type: b.plugin, delivery: { batch: { maxWaitMs: 0 } } },
    ],
  })
  t.teardown(() => router.close({ timeoutMs: 1000 }))
  return { router, a, b }
}

const events = [
  { type: 'track', event: 'Viewed', userId: 'u', messageId: 'o-1', properties: { revenue: 5 } },
  { type: 'track', event: 'Test', userId: 'u', messageId: 'o-2' },
  { type: 'track', event: 'Bought', userId: 'u', messageId: 'o-3', properties: { revenue: 5000 }, traits: { email: 'jo@example.com' } },
  { type: 'track', event: 'Refund', userId: 'u', messageId: 'o-4', traits: { email: 'x@example.com' } },
  { type: 'track', event: 'Viewed', userId: 'u', messageId: 'o-5', integrations: { a: false } },
]

t.test('per-rule counters and filteredBy after a known sequence', async (t) => {
  const { router, a, b } = build(t)
  const traces: PolicyTrace[] = []
  router.events.on('policy', (tr: PolicyTrace) => traces.push(structuredClone(tr)))
  const { base } = await listen(t, router.handler())
  const reply = await send(`${base}/v1/batch`, { headers: { Authorization: basic(WRITE_KEY) }, body: { batch: events } })
  t.equal(reply.status, 200)
  await router.close({ timeoutMs: 5000 })

  const s = router.stats()
  t.same(s.policies.source, {
    'drop-tests': { evaluated: 5, fired: 1, dropped: 1, errors: 0 },
    tag: { evaluated: 4, fired: 4, dropped: 0, errors: 0 },
    broken: { evaluated: 4, fired: 0, dropped: 0, errors: 4 },
    'no-b-for-refunds': { evaluated: 4, fired: 1, dropped: 0, errors: 0 },
  })
  // a: o-1, o-3, o-4 reach its policies (o-5 is switched off by integrations).
  t.same(s.policies.destinations, {
    a: {
      'hash-email': { evaluated: 3, fired: 2, dropped: 0, errors: 0 },
      'drop-big': { evaluated: 3, fired: 1, dropped: 1, errors: 0 },
    },
  }, 'a destination without policies has no entry')
  t.equal(s.dropped, 1, 'source drops counted on the router')
  t.same(s.destinations.a!.filteredBy, { policy: 1, integrations: 1 })
  t.same(s.destinations.b!.filteredBy, { disabled: 1 })
  t.same(a.events.map((e) => e.messageId), ['o-1', 'o-4'])
  t.same(b.events.map((e) => e.messageId), ['o-1', 'o-3', 'o-5'])
  t.equal((a.events[1]!.properties as Record<string, unknown>).tagged, true)
  t.match((a.events[1] as unknown as { traits: { email: string } }).traits.email, /^[a-f0-9]{64}$/)

  // One source trace per event; one destination trace per destination the policy stage ran for.
  const source = traces.filter((tr) => tr.scope === 'source')
  t.equal(source.length, 5)
  t.same(source.map((tr) => tr.droppedBy), [undefined, 'drop-tests', undefined, undefined, undefined])
  t.same(source[3]!.disabled, ['b'])
  t.same(source[0]!.fired, ['tag'])
  const dest = traces.filter((tr) => tr.scope === 'destination')
  t.same(dest.map((tr) => tr.destination), ['a', 'b', 'a', 'b', 'a', 'b'], 'o-1 a,b; o-3 a,b; o-4 a; o-5 b')
  t.same(dest[2], { scope: 'destination', destination: 'a', fired: ['hash-email', 'drop-big'], actions: [{ rule: 'hash-email', action: 'hash', paths: ['traits.email'] }], droppedBy: 'drop-big', disabled: [] })
  t.notOk(JSON.stringify(traces).includes('example.com'), 'no value in any trace')
})

t.test('no listener, no traces: counters still count', async (t) => {
  const { router } = build(t)
  await router.track({ userId: 'u', event: 'Test' })
  t.equal(router.stats().policies.source['drop-tests']!.dropped, 1)
  t.equal(router.events.listenerCount('policy'), 0)
})

t.test('evaluate(): the dry-run result shape', async (t) => {
  const { router, a, b } = build(t)
  const before = router.stats()
  const r = router.evaluate({ type: 'track', event: 'Refund', userId: 'u', traits: { email: 'jo@example.com' }, properties: { revenue: 10 } })
  t.equal(r.dropped, false)
  t.equal(r.event.event, 'Refund')
  t.equal(typeof r.event.messageId, 'string', 'normalized')
  t.equal((r.event.properties as Record<string, unknown>).tagged, true, 'after source policies')
  t.same(r.source, { scope: 'source', fired: ['tag', 'no-b-for-refunds'], actions: [{ rule: 'tag', action: 'set', paths: ['properties.tagged'] }], disabled: ['b'] })
  t.same(Object.keys(r.destinations).sort(), ['a', 'b'])
  const da = r.destinations.a!
  t.equal(da.delivered, true)
  if (da.delivered) {
    t.match((da.event as unknown as { traits: { email: string } }).traits.email, /^[a-f0-9]{64}$/)
    t.same(da.trace.fired, ['hash-email'])
  }
  t.equal((r.event as unknown as { traits: { email: string } }).traits.email, 'jo@example.com', "the destination's copy changed, not the shared event")
  t.match(r.destinations.b, { delivered: false, reason: 'disabled', trace: { scope: 'destination', destination: 'b', fired: [] } })

  const dropped = router.evaluate({ type: 'track', event: 'Test', userId: 'u' })
  t.equal(dropped.dropped, true)
  t.equal(dropped.source.droppedBy, 'drop-tests')
  t.same(dropped.destinations, {})

  const big = router.evaluate({ type: 'track', event: 'Bought', userId: 'u', properties: { revenue: 5000 } })
  t.match(big.destinations.a, { delivered: false, reason: 'policy', trace: { droppedBy: 'drop-big' } })
  t.match(big.destinations.b, { delivered: true })

  const off = router.evaluate({ type: 'track', event: 'Viewed', userId: 'u', integrations: { All: false } })
  t.match(off.destinations, { a: { delivered: false, reason: 'integrations' }, b: { delivered: false, reason: 'integrations' } })

  await router.close({ timeoutMs: 1000 })
  t.same(a.events, [], 'evaluate delivers nothing')
  t.same(b.events, [])
  t.equal(router.stats().accepted, before.accepted, 'evaluate accepts nothing')
  t.same(router.stats().destinations.a!.filteredBy, {}, 'evaluate filters nothing in the stats')
})

t.test('evaluate() is a dry run: rule counters and destination stats do not move', async (t) => {
  const cap = captureDestination('cap-dry')
  const router = createRouter({
    logLevel: 'silent',
    policies: [{ name: 'drop-test', when: { '==': [{ var: 'event' }, 'Test'] }, then: 'drop' }],
    destinations: [{ name: 'd', type: cap.plugin, policies: [{ name: 'redact-ip', then: [{ redact: ['context.ip'] }] }] }],
  })
  t.teardown(() => router.close())
  const before = router.stats()
  const r1 = router.evaluate({ type: 'track', event: 'Test', userId: 'u' })
  const r2 = router.evaluate({ type: 'track', event: 'Real', userId: 'u', context: { ip: '1.2.3.4' } })
  t.equal(r1.dropped, true)
  t.equal(r2.destinations.d?.delivered, true)
  t.same(router.stats().policies, before.policies)
  t.equal(router.stats().destinations.d!.enqueued, 0)
  t.equal(cap.events.length, 0)
})
