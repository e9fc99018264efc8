/**
 * Auth the way clients send it: Basic with the write key as user name and an empty
 * password, `writeKey` in the body, `?writeKey=` on beacon and pixel. A missing or
 * unknown key is a JSON 401 and nothing is accepted; the key never travels on inside
 * a delivered event.
 */
import t from 'tap'
import { acceptedCount, basic, HOSTS, sampleEvent, send, startCollector, WRITE_KEY } from './helpers/http.js'

const SOURCES = [
  { name: 'web', writeKey: WRITE_KEY },
  { name: 'backend', writeKeys: ['wk_backend_old', 'wk_backend_new'] },
]

for (const kind of HOSTS) {
  t.test(`${kind}: every accepted way of sending the write key`, async (t) => {
    const c = await startCollector(t, kind, { router: { sources: SOURCES } })
    const cases: Array<[string, string, Parameters<typeof send>[1]]> = [
      ['basic', '/v1/track', { headers: { Authorization: basic(WRITE_KEY) }, body: sampleEvent('track', { messageId: 'basic' }) }],
      ['basic-lowercase-scheme', '/v1/track', { headers: { Authorization: 'basic ' + Buffer.from(`${WRITE_KEY}:`).toString('base64') }, body: sampleEvent('track', { messageId: 'basic-lowercase-scheme' }) }],
      ['basic-no-colon', '/v1/track', { headers: { Authorization: 'Basic ' + Buffer.from(WRITE_KEY).toString('base64') }, body: sampleEvent('track', { messageId: 'basic-no-colon' }) }],
      ['body-json', '/v1/track', { body: sampleEvent('track', { messageId: 'body-json', writeKey: WRITE_KEY }) }],
      ['body-batch', '/v1/batch', { body: { writeKey: WRITE_KEY, batch: [{ ...sampleEvent('track'), type: 'track', messageId: 'body-batch' }] } }],
      ['basic-and-body', '/v1/t', { headers: { Authorization: basic(WRITE_KEY), 'Content-Type': 'text/plain' }, body: JSON.stringify({ ...sampleEvent('track'), messageId: 'basic-and-body', writeKey: WRITE_KEY }) }],
      ['beacon-query', `/beacon/v1/batch?writeKey=${WRITE_KEY}`, { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ batch: [{ ...sampleEvent('track'), type: 'track', messageId: 'beacon-query' }] }) }],
      ['pixel-query', `/pixel/v1/track?writeKey=${WRITE_KEY}&event=Opened&anonymousId=a&messageId=pixel-query`, {}],
      ['second-key-of-source', '/v1/track', { headers: { Authorization: basic('wk_backend_new') }, body: sampleEvent('track', { messageId: 'second-key-of-source' }) }],
    ]
    for (const [name, path, opts] of cases) {
      const res = await send(c.url + path, opts)
      t.equal(res.status, 200, `${name}: status`)
    }
    const events = await c.capture.waitFor(cases.length)
    t.same(events.map((e) => e.messageId).sort(), cases.map(([name]) => name).sort(), 'every event delivered')
    t.same(events.filter((e) => 'writeKey' in e).map((e) => e.messageId), [], 'no delivered event carries writeKey')
    t.notOk(JSON.stringify(events).includes(WRITE_KEY), 'the write key appears nowhere in what destinations receive')
  })

  t.test(`${kind}: a missing write key is 401 missing_write_key`, async (t) => {
    const c = await startCollector(t, kind)
    const cases: Array<[string, string, Parameters<typeof send>[1]]> = [
      ['no key at all', '/v1/track', { body: sampleEvent('track') }],
      ['empty body key', '/v1/track', { body: sampleEvent('track', { writeKey: '' }) }],
      ['empty Basic user', '/v1/track', { headers: { Authorization: basic('') }, body: sampleEvent('track') }],
      ['batch without key', '/v1/batch', { body: { batch: [{ ...sampleEvent('track'), type: 'track' }] } }],
      ['beacon without query', '/beacon/v1/batch', { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ batch: [{ ...sampleEvent('track'), type: 'track' }] }) }],
      ['pixel without query', '/pixel/v1/track?event=Opened&anonymousId=a', {}],
    ]
    for (const [name, path, opts] of cases) {
      const res = await send(c.url + path, opts)
      t.equal(res.status, 401, `${name}: status`)
      t.equal(res.json?.code, 'missing_write_key', `${name}: code`)
      t.match(res.json?.message, /write key/, `${name}: message says what to send`)
      t.match(String(res.headers['content-type']), /^application\/json/, `${name}: JSON`)
    }
    t.equal(acceptedCount(c.router), 0, 'nothing accepted')
  })

  t.test(`${kind}: an unknown write key is 401 unknown_write_key`, async (t) => {
    const c = await startCollector(t, kind)
    const cases: Array<[string, string, Parameters<typeof send>[1]]> = [
      ['unknown Basic', '/v1/track', { headers: { Authorization: basic('wk_nope') }, body: sampleEvent('track') }],
      ['key as password only', '/v1/track', { headers: { Authorization: basic('someone', WRITE_KEY) }, body: sampleEvent('track') }],
      ['Bearer scheme', '/v1/track', { headers: { Authorization: `Bearer ${WRITE_KEY}` }, body: sampleEvent('track') }],
      ['unknown body key', '/v1/b', { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ writeKey: 'wk_nope', batch: [{ ...sampleEvent('track'), type: 'track' }] }) }],
      ['unknown beacon query', '/beacon/v1/batch?writeKey=wk_nope', { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ batch: [{ ...sampleEvent('track'), type: 'track' }] }) }],
      ['unknown pixel query', '/pixel/v1/page?writeKey=wk_nope&anonymousId=a', {}],
      ['unknown settings key', '/v1/projects/wk_nope/settings', {}],
    ]
    for (const [name, path, opts] of cases) {
      const res = await send(c.url + path, opts)
      t.equal(res.status, 401, `${name}: status`)
      t.equal(res.json?.code, 'unknown_write_key', `${name}: code`)
      t.notOk(res.text.includes(WRITE_KEY), `${name}: the answer does not leak a configured key`)
    }
    t.equal(acceptedCount(c.router), 0, 'nothing accepted')
  })

  t.test(`${kind}: a batch event's own writeKey is stripped, not used to authenticate`, async (t) => {
    const c = await startCollector(t, kind)
    const res = await send(`${c.url}/v1/batch`, {
      body: { batch: [{ ...sampleEvent('track'), type: 'track', writeKey: WRITE_KEY }] },
    })
    t.equal(res.status, 401, 'the key must be on the request (Basic, envelope, query), not inside an event')
    t.equal(res.json.code, 'missing_write_key')
  })
}
