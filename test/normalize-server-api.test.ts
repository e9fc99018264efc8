/**
 * The server-side API (router.track/identify/page/screen/group/alias): events from
 * backend code are normalized like HTTP ones, invalid ones are refused with an
 * HttpError naming the field, and the caller's object is never changed.
 */
import t from 'tap'
import { HttpError } from '../src/errors.js'
import { captureRouter } from './helpers/http.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

async function rejection(p: Promise<unknown>): Promise<{ name: string; code?: string; status?: number; message: string }> {
  try {
    await p
  } catch (err) {
    const e = err as Error & { code?: string; status?: number }
    return { name: e instanceof HttpError ? 'HttpError' : e.name, code: e.code, status: e.status, message: e.message }
  }
  throw new Error('expected a rejection')
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}

t.test('each method normalizes its type and returns the messageId', async (t) => {
  const { router, capture } = captureRouter(t)
  const calls = [
    ['track', () => router.track({ userId: 'u1', event: 'Order Completed', properties: { total: 5 } })],
    ['identify', () => router.identify({ userId: 'u1', traits: { email: 'a@example.com' } })],
    ['page', () => router.page({ anonymousId: 'a1', name: 'Home' })],
    ['screen', () => router.screen({ anonymousId: 'a1', name: 'Main' })],
    ['group', () => router.group({ userId: 'u1', groupId: 'g1' })],
    ['alias', () => router.alias({ userId: 'u1', previousId: 'a1' })],
  ] as const
  const ids: string[] = []
  for (const [, call] of calls) {
    const { messageId } = await call()
    t.match(messageId, UUID)
    ids.push(messageId)
  }
  const events = await capture.waitFor(6)
  for (const [i, [type]] of calls.entries()) {
    const ev = events.find((e) => e.messageId === ids[i])!
    t.equal(ev.type, type, `${type}: type from the method`)
    t.equal(ev.timestamp, ev.receivedAt, `${type}: timestamp`)
    t.equal(ev.originalTimestamp, ev.receivedAt)
    t.same(ev.context, {}, `${type}: no request, no ip`)
  }
  t.equal(router.stats().accepted, 6)
})

t.test('backend events keep their own fields; Dates and skew are handled like the wire', async (t) => {
  const { router, capture } = captureRouter(t)
  const { messageId } = await router.track({
    userId: 7,
    event: 'Refund',
    messageId: 'backend-refund-1',
    timestamp: new Date('2024-02-03T04:05:06.000Z'),
    context: { ip: '198.51.100.1', library: { name: 'shop-backend' } },
    integrations: { All: true },
  })
  t.equal(messageId, 'backend-refund-1')
  const skew = await router.track({ userId: 'u', event: 'Skewed', originalTimestamp: '2020-01-01T00:00:00Z', sentAt: '2020-01-01T00:00:03Z' })
  const events = await capture.waitFor(2)
  const ev = events.find((e) => e.messageId === 'backend-refund-1')!
  t.equal(ev.userId, '7')
  t.equal(ev.timestamp, '2024-02-03T04:05:06.000Z')
  t.same(ev.context, { ip: '198.51.100.1', library: { name: 'shop-backend' } })
  const s = events.find((e) => e.messageId === skew.messageId)!
  t.equal(Date.parse(s.timestamp), Date.parse(s.receivedAt) - 3000)
})

t.test("the caller's object is not mutated, and later changes to it do not reach the destination", async (t) => {
  const { router, capture } = captureRouter(t)
  const input = { userId: 'u', event: 'Viewed', properties: { items: [{ sku: 'a' }] }, context: { locale: 'en' } }
  const snapshot = structuredClone(input)
  await router.track(input)
  t.same(input, snapshot, 'no messageId, type, timestamps or context added to the caller’s object')
  input.properties.items[0]!.sku = 'changed'
  const [ev] = await capture.waitFor(1)
  t.equal((ev!.properties as { items: Array<{ sku: string }> }).items[0]!.sku, 'a')
  t.not(ev!.context, input.context)

  const frozen = deepFreeze({ anonymousId: 'x', name: 'Frozen', properties: { a: 1 } })
  const res = await router.page(frozen)
  t.match(res.messageId, UUID, 'a frozen event is fine: the router works on its copy')
})

t.test('invalid events are refused with an HttpError naming the field', async (t) => {
  const { router } = captureRouter(t)
  const cases: Array<[string, () => Promise<unknown>, RegExp, string]> = [
    ['track without event', () => router.track({ userId: 'u' }), /^event: is required$/, 'invalid_event'],
    ['event: 5', () => router.track({ userId: 'u', event: 5 }), /^event: /, 'invalid_event'],
    ['userId: {}', () => router.identify({ userId: {} as unknown as string }), /^userId: /, 'invalid_event'],
    ['no ids', () => router.page({ name: 'Home' }), /userId or anonymousId is required/, 'invalid_event'],
    ['group without groupId', () => router.group({ userId: 'u' }), /^groupId: is required$/, 'invalid_event'],
    ['alias without previousId', () => router.alias({ userId: 'u' }), /^previousId: is required$/, 'invalid_event'],
    ['type disagreeing with the method', () => router.track({ type: 'identify', userId: 'u', event: 'E' }), /^type: is "identify" but the endpoint is for track events/, 'invalid_event'],
    ['traits not an object', () => router.identify({ userId: 'u', traits: 'vip' }), /^traits: /, 'invalid_event'],
    ['bad timestamp', () => router.screen({ userId: 'u', timestamp: 'noon' }), /^timestamp: /, 'invalid_event'],
    ['null event', () => router.track(null as unknown as Record<string, unknown>), /must be an object/, 'invalid_event'],
    ['too large', () => router.track({ userId: 'u', event: 'E', properties: { p: 'x'.repeat(40_000) } }), /limit is 32768/, 'event_too_large'],
    ['__proto__ key', () => router.track(JSON.parse('{"userId":"u","event":"E","properties":{"__proto__":{"fpPolluted":1}}}')), /__proto__/, 'invalid_body'],
    ['too deep', () => { let p: Record<string, unknown> = {}; const root = p; for (let i = 0; i < 100; i++) p = (p.a = {}) as Record<string, unknown>; return router.track({ userId: 'u', event: 'E', properties: root }) }, /nests deeper/, 'too_deep'],
  ]
  for (const [name, call, message, code] of cases) {
    const err = await rejection(call())
    t.equal(err.name, 'HttpError', `${name}: an HttpError`)
    t.equal(err.code, code, `${name}: code`)
    t.match(err.message, message, `${name}: message`)
  }
  t.equal(({} as Record<string, unknown>).fpPolluted, undefined)
  t.equal(router.stats().accepted, 0, 'nothing accepted')
})

// Backend callers may pass anything; what JSON cannot carry is refused by name.
t.test('values that are not JSON are refused with a coded error', async (t) => {
  const { router } = captureRouter(t)
  const fn = await rejection(router.track({ userId: 'u', event: 'E', properties: { callback: () => 1 } }))
  t.equal(fn.name, 'HttpError', `function: got ${fn.name}: ${fn.message}`)
  t.equal(fn.code, 'invalid_event')
  t.match(fn.message, /^properties\.callback: /)
  const big = await rejection(router.track({ userId: 'u', event: 'E', properties: { n: 10n } }))
  t.equal(big.code, 'invalid_event', `BigInt: got ${big.name}: ${big.message}`)
  t.match(big.message, /^properties\.n: /)
})
