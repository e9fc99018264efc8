/**
 * Embedding in a real Express 5 app: mounted at /v1, at /collect, at the root, inside a
 * nested express.Router; with the host's express.json() (or express.text()) before it,
 * whose parsed body the router uses, and with express.urlencoded() before it, which
 * must give the documented body_consumed error instead of accepting garbage. Unknown
 * paths fall through to the host; two routers in one process stay apart.
 */
import { gzipSync } from 'node:zlib'
import express from 'express'
import t from 'tap'
import { firstparty } from '../src/express.js'
import { acceptedCount, basic, captureRouter, listen, sampleEvent, send, startCollector, WRITE_KEY } from './helpers/http.js'

const auth = { Authorization: basic(WRITE_KEY) }
const track = (id: string, extra: Record<string, unknown> = {}) => ({ ...sampleEvent('track'), type: 'track', messageId: id, ...extra })

t.test("app.use('/v1', router.express()): clients post to /v1/…, other /v1 paths reach the host", async (t) => {
  const { router, capture } = captureRouter(t)
  const app = express()
  app.use('/v1', router.express())
  app.get('/v1/health', (_req, res) => void res.json({ ok: 'host' }))
  app.use((_req, res) => void res.status(404).json({ host: 'fallthrough' }))
  const { base } = await listen(t, app)

  const batch = await send(`${base}/v1/batch`, { headers: auth, body: { batch: [track('mount-v1-batch')] } })
  t.equal(batch.status, 200)
  const short = await send(`${base}/v1/t`, { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ ...track('mount-v1-short'), writeKey: WRITE_KEY }) })
  t.equal(short.status, 200)
  const settings = await send(`${base}/v1/projects/${WRITE_KEY}/settings`)
  t.equal(settings.status, 200)
  t.equal(settings.json.integrations['Segment.io'].apiHost, `${base.slice('http://'.length)}/v1`)

  const health = await send(`${base}/v1/health`)
  t.same(health.json, { ok: 'host' }, 'a host route under the mount still answers')
  const unknown = await send(`${base}/v1/something-else`, { body: {} })
  t.equal(unknown.status, 404)
  t.same(unknown.json, { host: 'fallthrough' }, "the host's handler, not the router's 404")

  const events = await capture.waitFor(2)
  t.same(events.map((e) => e.messageId).sort(), ['mount-v1-batch', 'mount-v1-short'])
})

t.test("app.use('/collect', …): clients post to /collect/v1/batch", async (t) => {
  const c = await startCollector(t, 'express', { mount: '/collect' })
  t.equal(c.url, `${c.base}/collect`)
  const res = await send(`${c.base}/collect/v1/batch`, { headers: auth, body: { batch: [track('collect-1')] } })
  t.equal(res.status, 200)
  const beacon = await send(`${c.base}/collect/beacon/v1/batch?writeKey=${WRITE_KEY}`, { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ batch: [track('collect-beacon')] }) })
  t.equal(beacon.status, 200)
  const pixel = await send(`${c.base}/collect/pixel/v1/page?writeKey=${WRITE_KEY}&anonymousId=a&messageId=collect-pixel`)
  t.equal(pixel.headers['content-type'], 'image/gif')
  const settings = await send(`${c.base}/collect/v1/projects/${WRITE_KEY}/settings`)
  t.equal(settings.json.integrations['Segment.io'].apiHost, `${c.base.slice('http://'.length)}/collect/v1`, 'analytics.js is told to post under the mount')
  const outside = await send(`${c.base}/v1/batch`, { headers: auth, body: { batch: [track('outside')] } })
  t.same(outside.json, { host: 'fallthrough' }, 'paths outside the mount are not the router’s')
  const events = await c.capture.waitFor(3)
  t.same(events.map((e) => e.messageId).sort(), ['collect-1', 'collect-beacon', 'collect-pixel'])
  t.equal(acceptedCount(c.router), 3)
})

t.test('app.use(router.express()) at the root leaves the host’s routes alone', async (t) => {
  const { router, capture } = captureRouter(t)
  const app = express()
  app.use(router.express())
  app.post('/api/orders', express.json(), (req, res) => void res.json({ got: req.body }))
  app.get('/', (_req, res) => void res.send('shop'))
  const { base } = await listen(t, app)
  t.same((await send(`${base}/api/orders`, { body: { id: 7 } })).json, { got: { id: 7 } })
  t.equal((await send(`${base}/`)).text, 'shop')
  t.equal((await send(`${base}/v1/identify`, { headers: auth, body: sampleEvent('identify', { messageId: 'root-1' }) })).status, 200)
  const [ev] = await capture.waitFor(1)
  t.equal(ev!.messageId, 'root-1')
})

t.test('mounted inside a nested express.Router', async (t) => {
  const { router, capture } = captureRouter(t)
  const app = express()
  const api = express.Router()
  api.use('/collect', router.express())
  app.use('/api', api)
  const { base } = await listen(t, app)
  const res = await send(`${base}/api/collect/v1/track`, { headers: auth, body: sampleEvent('track', { messageId: 'nested-1' }) })
  t.equal(res.status, 200)
  const settings = await send(`${base}/api/collect/v1/projects/${WRITE_KEY}/settings`)
  t.equal(settings.json.integrations['Segment.io'].apiHost, `${base.slice('http://'.length)}/api/collect/v1`)
  const [ev] = await capture.waitFor(1)
  t.equal(ev!.messageId, 'nested-1')
})

t.test('with express.json() before the router', async (t) => {
  const c = await startCollector(t, 'express', { mount: '/v1', before: (app) => app.use(express.json()) })
  const json = await send(`${c.base}/v1/batch`, { headers: auth, body: { batch: [track('pre-json'), track('pre-json-2', { writeKey: WRITE_KEY })] } })
  t.equal(json.status, 200, 'application/json parsed by the host is used')
  const text = await send(`${c.base}/v1/t`, { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ ...track('pre-text'), writeKey: WRITE_KEY }) })
  t.equal(text.status, 200, 'text/plain, which express.json() skips, is read by the router')
  const rudder = await send(`${c.base}/v1/batch`, {
    headers: { ...auth, 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Encoding': 'gzip' },
    body: gzipSync(JSON.stringify({ batch: [track('pre-rudder')] })),
  })
  t.equal(rudder.status, 200, 'RudderStack gzip-as-urlencoded passes express.json() untouched')
  const gz = await send(`${c.base}/v1/import`, { headers: { ...auth, 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, body: gzipSync(JSON.stringify({ batch: [track('pre-gzip-json')] })) })
  t.equal(gz.status, 200, 'gzip JSON inflated by the host parser')

  const events = await c.capture.waitFor(5)
  t.same(events.map((e) => e.messageId).sort(), ['pre-gzip-json', 'pre-json', 'pre-json-2', 'pre-rudder', 'pre-text'])
  t.ok(events.every((e) => !('writeKey' in e)), 'writeKey stripped from host-parsed bodies too')
  t.ok(events.every((e) => e.context.ip === '127.0.0.1'))

  // The router's checks still apply to a body the host parsed.
  const proto = await send(`${c.base}/v1/track`, { headers: { ...auth, 'Content-Type': 'application/json' }, body: '{"type":"track","event":"E","anonymousId":"a","properties":{"__proto__":{"fpPolluted":1}}}' })
  t.equal(proto.status, 400)
  t.equal(proto.json.code, 'invalid_body')
  const envProto = await send(`${c.base}/v1/batch`, { headers: { ...auth, 'Content-Type': 'application/json' }, body: `{"__proto__":{"fpPolluted":1},"batch":[${JSON.stringify(track('x'))}]}` })
  t.equal(envProto.status, 400)
  t.equal(envProto.json.code, 'invalid_body')
  t.equal(({} as Record<string, unknown>).fpPolluted, undefined)
  const bad = await send(`${c.base}/v1/batch`, { headers: auth, body: { batch: [track('ok'), { type: 'track', event: 5, anonymousId: 'a' }] } })
  t.equal(bad.status, 400)
  t.match(bad.json.message, /^batch\[1\]\.event/)
  const nokey = await send(`${c.base}/v1/track`, { body: sampleEvent('track') })
  t.equal(nokey.status, 401)
  t.equal(nokey.json.code, 'missing_write_key')
  const big = await send(`${c.base}/v1/track`, { headers: auth, body: sampleEvent('track', { properties: { p: 'x'.repeat(40_000) } }) })
  t.equal(big.status, 413, 'host limit 100 kb lets it through; ours refuses a 40 KB event')
  t.equal(big.json.code, 'event_too_large')
  t.equal(acceptedCount(c.router), 5)
})

t.test("with express.json({ limit: '1mb' }) before the router: 300 KB batches in, 500 KB+ out", async (t) => {
  const c = await startCollector(t, 'express', { mount: '/v1', before: (app) => app.use(express.json({ limit: '1mb' })) })
  const ajs = { sentAt: new Date().toISOString(), batch: Array.from({ length: 300 }, (_, i) => track(`big-${i}`, { properties: { pad: 'p'.repeat(900) } })) }
  t.ok(JSON.stringify(ajs).length > 290_000)
  const ok = await send(`${c.base}/v1/batch`, { headers: auth, body: ajs })
  t.equal(ok.status, 200)
  t.equal((await c.capture.waitFor(300)).length, 300)

  const over = { batch: Array.from({ length: 20 }, (_, i) => track(`over-${i}`, { properties: { pad: 'p'.repeat(26 * 1024) } })) }
  const tooBig = await send(`${c.base}/v1/batch`, { headers: auth, body: over })
  t.equal(tooBig.status, 413)
  t.equal(tooBig.json.code, 'request_too_large')
  const gz = await send(`${c.base}/v1/batch`, { headers: { ...auth, 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, body: gzipSync(JSON.stringify(over)) })
  t.equal(gz.status, 413, 'the limit applies to the inflated size, even when the host inflated it')
  t.equal(gz.json.code, 'request_too_large')
  t.equal(acceptedCount(c.router), 300)
})

t.test('with express.text() before the router: the string body is parsed as JSON', async (t) => {
  const c = await startCollector(t, 'express', { before: (app) => app.use(express.text()) })
  const res = await send(`${c.base}/v1/b`, { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ writeKey: WRITE_KEY, batch: [track('pre-text-1')] }) })
  t.equal(res.status, 200)
  const bad = await send(`${c.base}/v1/b`, { headers: { 'Content-Type': 'text/plain' }, body: '{"writeKey":' })
  t.equal(bad.status, 400)
  t.equal(bad.json.code, 'invalid_json')
  const [ev] = await c.capture.waitFor(1)
  t.equal(ev!.messageId, 'pre-text-1')
})

t.test('with express.urlencoded() before the router, a RudderStack body is body_consumed, not garbage', async (t) => {
  const c = await startCollector(t, 'express', { before: (app) => app.use(express.urlencoded({ extended: false })) })
  const rudder = await send(`${c.base}/v1/batch`, {
    headers: { ...auth, 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Encoding': 'gzip' },
    body: gzipSync(JSON.stringify({ batch: [track('consumed')] })),
  })
  t.equal(rudder.status, 500)
  t.equal(rudder.json.code, 'body_consumed')
  t.match(rudder.json.message, /express\.urlencoded/)
  t.match(rudder.json.message, /before/)
  const plain = await send(`${c.base}/v1/track`, { headers: { ...auth, 'Content-Type': 'application/x-www-form-urlencoded' }, body: JSON.stringify(track('consumed-2')) })
  t.equal(plain.json.code, 'body_consumed')
  t.equal(acceptedCount(c.router), 0, 'nothing accepted from a consumed body')
  const json = await send(`${c.base}/v1/track`, { headers: auth, body: track('json-still-ok') })
  t.equal(json.status, 200, 'JSON bodies are unaffected')
})

t.test('router mounted before express.urlencoded() reads the RudderStack body itself', async (t) => {
  const { router, capture } = captureRouter(t)
  const app = express()
  app.use(router.express())
  app.use(express.urlencoded({ extended: false }))
  app.post('/form', (req, res) => void res.json(req.body))
  const { base } = await listen(t, app)
  const rudder = await send(`${base}/v1/batch`, {
    headers: { ...auth, 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Encoding': 'gzip' },
    body: gzipSync(JSON.stringify({ batch: [track('before-urlencoded')] })),
  })
  t.equal(rudder.status, 200)
  t.same((await send(`${base}/form`, { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1' })).json, { a: '1' }, 'the host form still parses')
  const [ev] = await capture.waitFor(1)
  t.equal(ev!.messageId, 'before-urlencoded')
})

t.test('two routers in one process do not see each other’s events', async (t) => {
  const a = captureRouter(t, { sources: [{ name: 'a', writeKey: 'wk_a' }] }, 'capture-a')
  const b = captureRouter(t, { sources: [{ name: 'b', writeKey: 'wk_b' }] }, 'capture-b')
  const app = express()
  app.use('/a', a.router.express())
  app.use('/b', b.router.express())
  const { base } = await listen(t, app)
  const plain = await listen(t, b.router.handler())

  t.equal((await send(`${base}/a/v1/track`, { headers: { Authorization: basic('wk_a') }, body: sampleEvent('track', { messageId: 'to-a' }) })).status, 200)
  t.equal((await send(`${base}/b/v1/track`, { headers: { Authorization: basic('wk_b') }, body: sampleEvent('track', { messageId: 'to-b' }) })).status, 200)
  t.equal((await send(`${plain.base}/v1/track`, { headers: { Authorization: basic('wk_b') }, body: sampleEvent('track', { messageId: 'to-b-http' }) })).status, 200)
  const cross = await send(`${base}/a/v1/track`, { headers: { Authorization: basic('wk_b') }, body: sampleEvent('track') })
  t.equal(cross.status, 401, "router a does not know b's key")
  t.equal(cross.json.code, 'unknown_write_key')
  await a.router.track({ userId: 'backend', event: 'only-a', messageId: 'backend-a' })

  await a.capture.waitFor(2)
  await b.capture.waitFor(2)
  t.same(a.capture.events.map((e) => e.messageId).sort(), ['backend-a', 'to-a'])
  t.same(b.capture.events.map((e) => e.messageId).sort(), ['to-b', 'to-b-http'])
  t.equal(a.router.stats().accepted, 2)
  t.equal(b.router.stats().accepted, 2)
  t.equal(a.router.stats().rejected.unknown_write_key, 1)
  t.equal(b.router.stats().rejected.unknown_write_key, undefined)
})

t.test('firstparty() from firstparty/express creates or wraps a router', async (t) => {
  const { router, capture } = captureRouter(t)
  const wrapped = firstparty(router)
  t.equal(wrapped.router, router, 'an existing router is used as is')
  const created = firstparty({ sources: [{ name: 'own', writeKey: 'wk_own' }], logLevel: 'silent' })
  t.teardown(() => created.router.close({ timeoutMs: 1000 }))
  t.type(created.router.track, 'function')
  t.not(created.router, router)

  const app = express()
  app.use('/v1', wrapped)
  app.use('/other', created)
  app.use((_req, res) => void res.status(404).json({ host: 'fallthrough' }))
  const { base } = await listen(t, app)
  t.equal((await send(`${base}/v1/page`, { headers: auth, body: sampleEvent('page', { messageId: 'fp-mw' }) })).status, 200)
  t.equal((await send(`${base}/other/v1/page`, { headers: { Authorization: basic('wk_own') }, body: sampleEvent('page') })).status, 200)
  t.equal(created.router.stats().accepted, 1)
  t.same((await send(`${base}/v1/nothing-here`)).json, { host: 'fallthrough' })
  const [ev] = await capture.waitFor(1)
  t.equal(ev!.messageId, 'fp-mw')
})

// Mounted at the root, the collector leaves a host's own GET /track alone (it only takes POST there).
t.test('a root mount leaves host routes that share a bare collector name alone', async (t) => {
  const { router } = captureRouter(t)
  const app = express()
  app.use(router.express())
  app.get('/track', (_req, res) => void res.send('order tracking'))
  app.get('/page', (_req, res) => void res.send('a page'))
  const { base } = await listen(t, app)
  t.equal((await send(`${base}/track`)).text, 'order tracking')
  t.equal((await send(`${base}/page`)).text, 'a page')
})
