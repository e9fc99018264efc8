import t, { type Test } from 'tap'
import Type from 'typebox'
import { createRouter, defineSource, HttpError, type ConfigError } from '../src/index.js'
import { captureDestination } from '../src/testing.js'
import { basic, listen, send } from './helpers/http.js'

// A webhook source as a community author would write one: a shop's order webhook
// turned into Segment "Order Completed" events, with its own shared-secret check.
const orders = defineSource({
  name: 'shop-orders',
  version: '1.0.0',
  settings: Type.Object({ secret: Type.String({ minLength: 8 }), currency: Type.String({ default: 'EUR' }) }),
  handle(req, ctx) {
    if (req.headers['x-shop-secret'] !== ctx.settings.secret) throw new HttpError('unknown_write_key', 'x-shop-secret does not match')
    const body = req.body as { id?: unknown; customer?: { id?: unknown }; total?: unknown; lines?: Array<{ sku: string; qty: number }> }
    if (typeof body?.id !== 'string') throw new HttpError('invalid_body', 'id: must be a string')
    return [
      {
        type: 'track',
        event: 'Order Completed',
        userId: String(body.customer?.id ?? ''),
        properties: { order_id: body.id, revenue: body.total, currency: ctx.settings.currency, products: (body.lines ?? []).map((l) => ({ sku: l.sku, quantity: l.qty })), path: req.path },
      },
    ]
  },
})

async function setup(t: Test, extra: { writeKey?: string } = {}) {
  const cap = captureDestination()
  const router = createRouter({
    logLevel: 'silent',
    plugins: [orders],
    sources: [{ name: 'orders', type: 'shop-orders', settings: { secret: 's3cret-value' }, ...extra }],
    destinations: [{ name: 'cap', type: cap.plugin, delivery: { batch: { maxWaitMs: 0 } } }],
  })
  t.teardown(() => router.close())
  const { base } = await listen(t, router.handler())
  return { router, cap, base }
}

t.test('a source plugin turns a webhook into normalized events', async (t) => {
  const { cap, base } = await setup(t)
  const res = await send(`${base}/sources/orders/webhooks`, {
    headers: { 'x-shop-secret': 's3cret-value' },
    body: { id: 'o-1', customer: { id: 42 }, total: 99.5, lines: [{ sku: 'A', qty: 2 }] },
  })
  t.equal(res.status, 200)
  t.same(res.json, { success: true })
  const [ev] = await cap.waitFor(1)
  t.equal(ev!.type, 'track')
  t.equal(ev!.userId, '42')
  t.match(ev, { event: 'Order Completed', properties: { order_id: 'o-1', revenue: 99.5, currency: 'EUR', products: [{ sku: 'A', quantity: 2 }], path: '/webhooks' } })
  t.match(ev!.messageId, /^[0-9a-f-]{36}$/, 'normalized: messageId')
  t.equal(ev!.context.ip, '127.0.0.1', 'normalized: context.ip')
})

t.test("the plugin's own errors are JSON answers with their codes", async (t) => {
  const { base, router } = await setup(t)
  const bad = await send(`${base}/sources/orders`, { headers: { 'x-shop-secret': 'nope' }, body: { id: 'x' } })
  t.equal(bad.status, 401)
  t.equal(bad.json.code, 'unknown_write_key')
  const invalid = await send(`${base}/sources/orders`, { headers: { 'x-shop-secret': 's3cret-value' }, body: { id: 5 } })
  t.equal(invalid.status, 400)
  t.same(invalid.json, { code: 'invalid_body', message: 'id: must be a string' })
  const noUser = await send(`${base}/sources/orders`, { headers: { 'x-shop-secret': 's3cret-value' }, body: { id: 'o-2' } })
  t.equal(noUser.status, 400, 'the events the plugin returns are validated like any other')
  t.equal(noUser.json.code, 'invalid_event')
  t.equal(router.stats().accepted, 0)
})

t.test('an unknown source name is a JSON 404', async (t) => {
  const { base } = await setup(t)
  const res = await send(`${base}/sources/nope`, { body: {} })
  t.equal(res.status, 404)
  t.equal(res.json.code, 'not_found')
})

t.test('a source with a write key requires it (Basic or ?writeKey=)', async (t) => {
  const { base, cap } = await setup(t, { writeKey: 'orders-key' })
  const body = { id: 'o-3', customer: { id: 'c' } }
  const headers = { 'x-shop-secret': 's3cret-value' }
  t.equal((await send(`${base}/sources/orders`, { headers, body })).json.code, 'missing_write_key')
  t.equal((await send(`${base}/sources/orders`, { headers: { ...headers, Authorization: basic('wrong') }, body })).json.code, 'unknown_write_key')
  t.equal((await send(`${base}/sources/orders`, { headers: { ...headers, Authorization: basic('orders-key') }, body })).status, 200)
  t.equal((await send(`${base}/sources/orders?writeKey=orders-key`, { headers, body })).status, 200)
  await cap.waitFor(2)
})

t.test('source settings are validated at start-up with the config path', async (t) => {
  const err = (() => {
    try {
      createRouter({ plugins: [orders], sources: [{ name: 'orders', type: 'shop-orders', settings: { secret: 'short' } }] })
    } catch (e) {
      return e as ConfigError
    }
  })()
  t.equal(err?.code, 'CONFIG_INVALID')
  t.equal(err?.path, '/sources/0/settings/secret')
  const unknown = (() => {
    try {
      createRouter({ sources: [{ name: 'x', type: 'no-such-source' }] })
    } catch (e) {
      return e as ConfigError
    }
  })()
  t.equal(unknown?.code, 'CONFIG_UNKNOWN_PLUGIN')
  t.equal(unknown?.path, '/sources/0/type')
})
