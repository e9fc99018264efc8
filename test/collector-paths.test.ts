/**
 * Every collector path Segment's and RudderStack's clients use, on a node:http server
 * and on an Express 5 app: each answers as the client expects and its events reach a
 * destination normalized.
 */
import t from 'tap'
import { acceptedCount, basic, HOSTS, sampleEvent, send, startCollector, WRITE_KEY } from './helpers/http.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const TYPES = ['identify', 'track', 'page', 'screen', 'group', 'alias'] as const

for (const kind of HOSTS) {
  t.test(`${kind}: POST /v1/<type> with Basic auth delivers one normalized event`, async (t) => {
    const c = await startCollector(t, kind)
    for (const type of TYPES) {
      const before = Date.now()
      const res = await send(`${c.url}/v1/${type}`, { headers: { Authorization: basic(WRITE_KEY) }, body: sampleEvent(type, { userId: `u-${type}` }) })
      t.equal(res.status, 200, `${type}: status`)
      t.same(res.json, { success: true }, `${type}: body`)
      const [ev] = (await c.capture.waitFor(TYPES.indexOf(type) + 1)).slice(-1)
      t.equal(ev!.type, type)
      t.equal(ev!.userId, `u-${type}`)
      t.match(ev!.messageId, UUID, `${type}: messageId generated`)
      t.match(ev!.receivedAt, ISO)
      t.ok(Date.parse(ev!.receivedAt) >= before - 1, `${type}: receivedAt is when the router got it`)
      t.equal(ev!.timestamp, ev!.receivedAt, `${type}: no client time → timestamp is receivedAt`)
      t.equal(ev!.context.ip, '127.0.0.1', `${type}: context.ip from the socket`)
      t.notOk('writeKey' in ev!, `${type}: no writeKey in the delivered event`)
    }
    t.equal(c.capture.events.length, 6)
    t.equal(new Set(c.capture.events.map((e) => e.messageId)).size, 6, 'six distinct messageIds')
  })

  t.test(`${kind}: analytics.js short paths /v1/{i,t,p,s,g,a} with text/plain and writeKey in the body`, async (t) => {
    const c = await startCollector(t, kind)
    const short = { i: 'identify', t: 'track', p: 'page', s: 'screen', g: 'group', a: 'alias' } as const
    for (const [letter, type] of Object.entries(short)) {
      const res = await send(`${c.url}/v1/${letter}`, {
        headers: { 'Content-Type': 'text/plain' },
        body: JSON.stringify({ ...sampleEvent(type), type, writeKey: WRITE_KEY, messageId: `ajs-${letter}` }),
      })
      t.equal(res.status, 200, `/v1/${letter}`)
      t.same(res.json, { success: true })
    }
    const events = await c.capture.waitFor(6)
    t.same(
      events.map((e) => [e.messageId, e.type]).sort(),
      Object.entries(short).map(([l, type]) => [`ajs-${l}`, type]).sort(),
      'each short path delivered its type, keeping the client messageId',
    )
    t.ok(events.every((e) => !('writeKey' in e)), 'writeKey stripped from every event')
  })

  t.test(`${kind}: a short path whose body type disagrees with the path is refused`, async (t) => {
    const c = await startCollector(t, kind)
    const res = await send(`${c.url}/v1/t`, { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ ...sampleEvent('identify'), type: 'identify', writeKey: WRITE_KEY }) })
    t.equal(res.status, 400)
    t.equal(res.json.code, 'invalid_event')
    t.match(res.json.message, /^type: /)
    t.equal(acceptedCount(c.router), 0)
  })

  for (const path of ['/v1/batch', '/v1/import']) {
    t.test(`${kind}: POST ${path} (analytics-node style: JSON, Basic auth) delivers every event`, async (t) => {
      const c = await startCollector(t, kind)
      const batch = TYPES.map((type, i) => ({ ...sampleEvent(type), type, messageId: `m-${i}` }))
      const res = await send(`${c.url}${path}`, { headers: { Authorization: basic(WRITE_KEY) }, body: { batch, sentAt: new Date().toISOString() } })
      t.equal(res.status, 200)
      t.same(res.json, { success: true })
      const events = await c.capture.waitFor(6)
      t.same(events.map((e) => e.messageId).sort(), ['m-0', 'm-1', 'm-2', 'm-3', 'm-4', 'm-5'])
      t.same(events.map((e) => e.type).sort(), [...TYPES].sort())
    })
  }

  t.test(`${kind}: analytics.js batch /v1/b (text/plain, {writeKey, batch, sentAt})`, async (t) => {
    const c = await startCollector(t, kind)
    const body = { writeKey: WRITE_KEY, sentAt: new Date().toISOString(), batch: [{ ...sampleEvent('track'), type: 'track', writeKey: WRITE_KEY }, { ...sampleEvent('page'), type: 'page' }] }
    const res = await send(`${c.url}/v1/b`, { headers: { 'Content-Type': 'text/plain;charset=UTF-8' }, body: JSON.stringify(body) })
    t.equal(res.status, 200)
    const events = await c.capture.waitFor(2)
    t.same(events.map((e) => e.type).sort(), ['page', 'track'])
    t.ok(events.every((e) => !('writeKey' in e)), 'writeKey in an event is not forwarded')
  })

  t.test(`${kind}: RudderStack beacon /beacon/v1/batch?writeKey=`, async (t) => {
    const c = await startCollector(t, kind)
    const res = await send(`${c.url}/beacon/v1/batch?writeKey=${WRITE_KEY}`, {
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
      body: JSON.stringify({ batch: [{ ...sampleEvent('track'), type: 'track', messageId: 'beacon-1' }] }),
    })
    t.equal(res.status, 200)
    t.same(res.json, { success: true })
    const [ev] = await c.capture.waitFor(1)
    t.equal(ev!.messageId, 'beacon-1')
    t.equal(ev!.event, 'Order Completed')
  })

  t.test(`${kind}: GET /pixel/v1/track answers a 1×1 GIF and turns the query into an event`, async (t) => {
    const c = await startCollector(t, kind)
    const q = new URLSearchParams({ writeKey: WRITE_KEY, event: 'Email Opened', anonymousId: 'px-1', 'properties.x': '1', 'properties.campaign.name': 'spring', 'context.locale': 'de-DE' })
    const res = await send(`${c.url}/pixel/v1/track?${q}`)
    t.equal(res.status, 200)
    t.equal(res.headers['content-type'], 'image/gif')
    t.equal(res.body.subarray(0, 6).toString('latin1'), 'GIF89a')
    t.equal(res.body.readUInt16LE(6), 1, 'width 1')
    t.equal(res.body.readUInt16LE(8), 1, 'height 1')
    const [ev] = await c.capture.waitFor(1)
    t.equal(ev!.type, 'track')
    t.equal(ev!.event, 'Email Opened')
    t.equal(ev!.anonymousId, 'px-1')
    t.same(ev!.properties, { x: '1', campaign: { name: 'spring' } }, 'dotted keys nest')
    t.equal(ev!.context.locale, 'de-DE')
    t.equal(ev!.context.ip, '127.0.0.1')
    t.notOk('writeKey' in ev!)
  })

  t.test(`${kind}: GET /pixel/v1/page`, async (t) => {
    const c = await startCollector(t, kind)
    const res = await send(`${c.url}/pixel/v1/page?writeKey=${WRITE_KEY}&anonymousId=px-2&name=Pricing&properties.path=%2Fpricing`)
    t.equal(res.status, 200)
    t.equal(res.headers['content-type'], 'image/gif')
    const [ev] = await c.capture.waitFor(1)
    t.equal(ev!.type, 'page')
    t.equal(ev!.name, 'Pricing')
    t.same(ev!.properties, { path: '/pricing' })
  })

  t.test(`${kind}: a pixel without the ids an event needs is a JSON 400, not a GIF`, async (t) => {
    const c = await startCollector(t, kind)
    const res = await send(`${c.url}/pixel/v1/track?writeKey=${WRITE_KEY}&event=Opened`)
    t.equal(res.status, 400)
    t.equal(res.json.code, 'invalid_event')
    t.match(res.json.message, /userId or anonymousId/)
  })

  t.test(`${kind}: GET /v1/projects/:writeKey/settings answers what analytics.js needs`, async (t) => {
    const c = await startCollector(t, kind)
    const res = await send(`${c.url}/v1/projects/${WRITE_KEY}/settings`)
    t.equal(res.status, 200)
    t.match(String(res.headers['content-type']), /^application\/json/)
    const io = res.json.integrations['Segment.io']
    t.equal(io.apiKey, WRITE_KEY)
    t.equal(io.apiHost, `${c.base.replace('http://', '')}/v1`, 'apiHost: this host, where the /v1 paths live')
    t.equal(io.protocol, 'http')
    t.type(res.json.plan, 'object')
    const unknown = await send(`${c.url}/v1/projects/nope/settings`)
    t.equal(unknown.status, 401)
    t.equal(unknown.json.code, 'unknown_write_key')
  })

  t.test(`${kind}: POST /v1/m (analytics.js metrics) is accepted and discarded`, async (t) => {
    const c = await startCollector(t, kind)
    const res = await send(`${c.url}/v1/m`, { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ series: [{ type: 'Counter', metric: 'analytics_js.invoke', value: 1 }] }) })
    t.equal(res.status, 200)
    t.same(res.json, { success: true })
    t.equal(c.router.stats().metrics, 1)
    t.equal(acceptedCount(c.router), 0, 'no event accepted')
  })

  t.test(`${kind}: timestamps are skew-corrected: timestamp = receivedAt − (sentAt − originalTimestamp)`, async (t) => {
    const c = await startCollector(t, kind)
    // The client's clock is years off; only the 10 s between event and send matter.
    const original = '2020-01-01T00:00:00.000Z'
    const sentAt = '2020-01-01T00:00:10.000Z'
    const res = await send(`${c.url}/v1/batch`, {
      headers: { Authorization: basic(WRITE_KEY) },
      body: {
        sentAt,
        batch: [
          { ...sampleEvent('track'), type: 'track', messageId: 'skew-envelope', originalTimestamp: original },
          { ...sampleEvent('track'), type: 'track', messageId: 'skew-own', timestamp: original, sentAt: '2020-01-01T00:00:04.000Z' },
          { ...sampleEvent('track'), type: 'track', messageId: 'skew-none' },
        ],
      },
    })
    t.equal(res.status, 200)
    const events = await c.capture.waitFor(3)
    const by = (id: string) => events.find((e) => e.messageId === id)!
    const env = by('skew-envelope')
    t.equal(Date.parse(env.timestamp), Date.parse(env.receivedAt) - 10_000, 'envelope sentAt: 10 s before receipt')
    t.equal(env.originalTimestamp, original, 'originalTimestamp kept')
    t.equal(env.sentAt, sentAt, 'envelope sentAt recorded on the event')
    const own = by('skew-own')
    t.equal(Date.parse(own.timestamp), Date.parse(own.receivedAt) - 4_000, "the event's own sentAt wins over the envelope's")
    t.equal(own.originalTimestamp, original, 'timestamp stands in for a missing originalTimestamp')
    const none = by('skew-none')
    t.equal(none.timestamp, none.receivedAt, 'no client event time: timestamp is receipt time, whatever sentAt says')
    t.equal(none.originalTimestamp, none.receivedAt, 'no client time: originalTimestamp is receipt time')
  })

  t.test(`${kind}: context.ip comes from the socket, is kept when the event has one, and X-Forwarded-For is ignored by default`, async (t) => {
    const c = await startCollector(t, kind)
    await send(`${c.url}/v1/track`, {
      headers: { Authorization: basic(WRITE_KEY), 'X-Forwarded-For': '198.51.100.7' },
      body: sampleEvent('track', { messageId: 'ip-socket' }),
    })
    await send(`${c.url}/v1/track`, {
      headers: { Authorization: basic(WRITE_KEY) },
      body: sampleEvent('track', { messageId: 'ip-own', context: { ip: '203.0.113.9', library: { name: 'analytics-node' } } }),
    })
    const events = await c.capture.waitFor(2)
    const by = (id: string) => events.find((e) => e.messageId === id)!
    t.equal(by('ip-socket').context.ip, '127.0.0.1', 'X-Forwarded-For not trusted without trustProxy')
    t.same(by('ip-own').context, { ip: '203.0.113.9', library: { name: 'analytics-node' } }, 'the event’s own ip is not overwritten')
  })

  t.test(`${kind}: with trustProxy, context.ip comes from X-Forwarded-For`, async (t) => {
    const all = await startCollector(t, kind, { router: { trustProxy: true } })
    await send(`${all.url}/v1/track`, { headers: { Authorization: basic(WRITE_KEY), 'X-Forwarded-For': '198.51.100.7, 10.0.0.2' }, body: sampleEvent('track') })
    const [a] = await all.capture.waitFor(1)
    t.equal(a!.context.ip, '198.51.100.7', 'trustProxy: true → left-most address')

    const listed = await startCollector(t, kind, { router: { trustProxy: ['loopback', '10.0.0.0/8'] } })
    await send(`${listed.url}/v1/track`, { headers: { Authorization: basic(WRITE_KEY), 'X-Forwarded-For': '6.6.6.6, 198.51.100.8, 10.0.0.2' }, body: sampleEvent('track') })
    const [b] = await listed.capture.waitFor(1)
    t.equal(b!.context.ip, '198.51.100.8', 'trusted list → right-most untrusted hop, a spoofed left-most entry ignored')
  })

  if (kind === 'http') {
    t.test(`${kind}: wrong method on a collector path is a JSON 405`, async (t) => {
      const c = await startCollector(t, kind)
      const res = await send(`${c.url}/v1/track`)
      t.equal(res.status, 405)
      t.equal(res.json.code, 'method_not_allowed')
    })
  } else {
    t.test(`${kind}: a method the collector does not serve falls through to the host app`, async (t) => {
      const c = await startCollector(t, kind)
      const res = await send(`${c.url}/v1/track`)
      t.equal(res.status, 404, "Express's own 404")
      t.same(res.json, { host: 'fallthrough' }, "the host app's next handler answered")
    })
  }
}

t.test('http: an unknown path is a JSON 404 from router.handler()', async (t) => {
  const c = await startCollector(t, 'http')
  const res = await send(`${c.url}/v1/nope`, { body: {} })
  t.equal(res.status, 404)
  t.equal(res.json.code, 'not_found')
})
