/**
 * close(): once it starts, intake answers 503 shutting_down (with Retry-After, so
 * clients keep the events and try again) and backend calls are refused; events
 * accepted before close are still delivered.
 */
import express from 'express'
import t from 'tap'
import { createRouter } from '../src/router.js'
import { captureDestination } from '../src/testing.js'
import { basic, DEFAULT_SOURCES, HOSTS, listen, sampleEvent, send, WRITE_KEY } from './helpers/http.js'

for (const kind of HOSTS) {
  t.test(`${kind}: after close() starts, intake answers 503 and accepted events still arrive`, async (t) => {
    const capture = captureDestination()
    // A long batch wait: only close() makes these events go out.
    const router = createRouter({
      sources: DEFAULT_SOURCES,
      logLevel: 'silent',
      destinations: [{ name: 'capture', type: capture.plugin, delivery: { batch: { maxWaitMs: 600_000 } } }],
    })
    t.teardown(() => router.close({ timeoutMs: 1000 }))
    let app: express.Express | undefined
    if (kind === 'express') {
      app = express()
      app.use('/v1', router.express())
    }
    const { base } = await listen(t, app ?? router.handler())

    const before = await send(`${base}/v1/batch`, { headers: { Authorization: basic(WRITE_KEY) }, body: { batch: [{ ...sampleEvent('track'), type: 'track', messageId: 'before-close' }] } })
    t.equal(before.status, 200)
    t.equal(capture.events.length, 0, 'still buffered')

    const closing = router.close({ timeoutMs: 5000 })
    const cases: Array<[string, string, Parameters<typeof send>[1]]> = [
      ['track', '/v1/track', { headers: { Authorization: basic(WRITE_KEY) }, body: sampleEvent('track') }],
      ['batch', '/v1/batch', { headers: { Authorization: basic(WRITE_KEY) }, body: { batch: [{ ...sampleEvent('track'), type: 'track' }] } }],
      ['short path', '/v1/t', { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ ...sampleEvent('track'), writeKey: WRITE_KEY }) }],
      ['pixel', `/pixel/v1/track?writeKey=${WRITE_KEY}&event=E&anonymousId=a`, {}],
      ['no key', '/v1/track', { body: sampleEvent('track') }],
    ]
    for (const [name, path, opts] of cases) {
      // Under an Express mount at /v1 the pixel lives at /v1/pixel/v1/track.
      const url = kind === 'express' && path.startsWith('/pixel') ? `${base}/v1${path}` : base + path
      const res = await send(url, opts)
      t.equal(res.status, 503, `${name}: status`)
      t.equal(res.json?.code, 'shutting_down', `${name}: code`)
      t.ok(Number(res.headers['retry-after']) > 0, `${name}: Retry-After`)
    }
    const api = await router.track({ userId: 'u', event: 'late' }).then(
      () => undefined,
      (err: { code?: string }) => err.code,
    )
    t.equal(api, 'shutting_down', 'backend calls are refused too')

    await closing
    t.same(capture.events.map((e) => e.messageId), ['before-close'], 'the event accepted before close was delivered by the drain')
    t.equal(router.stats().accepted, 1)
    t.equal(router.stats().rejected.shutting_down, cases.length, 'refusals are counted like any other')
    const after = await send(`${base}/v1/track`, { headers: { Authorization: basic(WRITE_KEY) }, body: sampleEvent('track') })
    t.equal(after.status, 503, 'still refused once closed')
  })
}

t.test('close() is idempotent and every call resolves', async (t) => {
  const capture = captureDestination()
  const router = createRouter({ sources: DEFAULT_SOURCES, logLevel: 'silent', destinations: [{ name: 'capture', type: capture.plugin }] })
  await router.track({ userId: 'u', event: 'E', messageId: 'm1' })
  const a = router.close({ timeoutMs: 2000 })
  const b = router.close({ timeoutMs: 2000 })
  await Promise.all([a, b])
  t.equal(capture.events.length, 1)
  t.equal(capture.events[0]!.messageId, 'm1')
})
