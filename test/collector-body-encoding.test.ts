/**
 * Bodies as clients encode them: application/json, text/plain (analytics.js), gzip
 * (RudderStack's node SDK labels it application/x-www-form-urlencoded and sends no
 * writeKey in the body), deflate, chunked. Media types the router cannot read are 415.
 */
import { request as httpRequest } from 'node:http'
import { deflateSync, gzipSync } from 'node:zlib'
import t from 'tap'
import { acceptedCount, basic, HOSTS, sampleEvent, send, startCollector, WRITE_KEY, type Reply } from './helpers/http.js'

const batchOf = (...ids: string[]) => ({ batch: ids.map((id) => ({ ...sampleEvent('track'), type: 'track', messageId: id })), sentAt: new Date().toISOString() })

for (const kind of HOSTS) {
  t.test(`${kind}: gzip bodies are inflated, whatever the Content-Type says`, async (t) => {
    const c = await startCollector(t, kind)
    const rudder = await send(`${c.url}/v1/batch`, {
      headers: {
        Authorization: basic(WRITE_KEY),
        'Content-Type': 'application/x-www-form-urlencoded',
        'Content-Encoding': 'gzip',
        AnonymousId: 'anon-1',
      },
      body: gzipSync(JSON.stringify(batchOf('rudder-1', 'rudder-2'))),
    })
    t.equal(rudder.status, 200, 'RudderStack node SDK style: gzip labelled form-urlencoded, Basic only')
    t.same(rudder.json, { success: true })

    const json = await send(`${c.url}/v1/import`, {
      headers: { Authorization: basic(WRITE_KEY), 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
      body: gzipSync(JSON.stringify(batchOf('gzip-json'))),
    })
    t.equal(json.status, 200, 'gzip application/json on /v1/import')

    const deflate = await send(`${c.url}/v1/track`, {
      headers: { Authorization: basic(WRITE_KEY), 'Content-Type': 'application/json', 'Content-Encoding': 'deflate' },
      body: deflateSync(JSON.stringify(sampleEvent('track', { messageId: 'deflate' }))),
    })
    t.equal(deflate.status, 200, 'deflate')

    const events = await c.capture.waitFor(4)
    t.same(events.map((e) => e.messageId).sort(), ['deflate', 'gzip-json', 'rudder-1', 'rudder-2'])
  })

  t.test(`${kind}: text/plain, application/json with charset, +json, no Content-Type, a BOM`, async (t) => {
    const c = await startCollector(t, kind)
    const auth = { Authorization: basic(WRITE_KEY) }
    const cases: Array<[string, Record<string, string>, string | Buffer]> = [
      ['text-plain', { 'Content-Type': 'text/plain' }, JSON.stringify(sampleEvent('track', { messageId: 'text-plain' }))],
      ['text-plain-charset', { 'Content-Type': 'text/plain;charset=UTF-8' }, JSON.stringify(sampleEvent('track', { messageId: 'text-plain-charset' }))],
      ['json-charset', { 'Content-Type': 'application/json; charset=utf-8' }, JSON.stringify(sampleEvent('track', { messageId: 'json-charset' }))],
      ['vendor-json', { 'Content-Type': 'application/vnd.segment+json' }, JSON.stringify(sampleEvent('track', { messageId: 'vendor-json' }))],
      ['no-content-type', {}, JSON.stringify(sampleEvent('track', { messageId: 'no-content-type' }))],
      ['bom', { 'Content-Type': 'application/json' }, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(sampleEvent('track', { messageId: 'bom' })))])],
      ['unicode', { 'Content-Type': 'text/plain' }, JSON.stringify(sampleEvent('track', { messageId: 'unicode', properties: { name: 'Zoë ☕ 👍' } }))],
    ]
    for (const [name, headers, body] of cases) {
      const res = await send(`${c.url}/v1/track`, { headers: { ...auth, ...headers }, body })
      t.equal(res.status, 200, `${name}: status`)
    }
    const events = await c.capture.waitFor(cases.length)
    t.same(events.map((e) => e.messageId).sort(), cases.map(([n]) => n).sort())
    t.equal((events.find((e) => e.messageId === 'unicode')!.properties as { name?: string }).name, 'Zoë ☕ 👍', 'multi-byte characters survive')
  })

  t.test(`${kind}: a chunked body (no Content-Length) is read`, async (t) => {
    const c = await startCollector(t, kind)
    const url = new URL(`${c.url}/v1/batch`)
    const reply = await new Promise<Reply>((resolve, reject) => {
      const req = httpRequest(url, { method: 'POST', agent: false, headers: { Authorization: basic(WRITE_KEY), 'Content-Type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (d: Buffer) => chunks.push(d))
        res.on('end', () => {
          const body = Buffer.concat(chunks)
          resolve({ status: res.statusCode!, headers: res.headers, body, text: body.toString(), json: JSON.parse(body.toString()) })
        })
      })
      req.on('error', reject)
      const text = JSON.stringify(batchOf('chunk-1', 'chunk-2'))
      req.write(text.slice(0, 17))
      req.write(text.slice(17, 60))
      req.end(text.slice(60))
    })
    t.equal(reply.status, 200)
    const events = await c.capture.waitFor(2)
    t.same(events.map((e) => e.messageId).sort(), ['chunk-1', 'chunk-2'])
  })

  t.test(`${kind}: media types that are not JSON are 415`, async (t) => {
    const c = await startCollector(t, kind)
    for (const type of ['application/xml', 'text/xml', 'multipart/form-data; boundary=x', 'application/octet-stream', 'image/png']) {
      const res = await send(`${c.url}/v1/track`, {
        headers: { Authorization: basic(WRITE_KEY), 'Content-Type': type },
        body: JSON.stringify(sampleEvent('track')),
      })
      t.equal(res.status, 415, `${type}: status`)
      t.equal(res.json?.code, 'unsupported_media_type', `${type}: code`)
      t.match(res.json?.message, /application\/json/, `${type}: says what to send`)
    }
    t.equal(acceptedCount(c.router), 0)
  })

  t.test(`${kind}: unsupported or corrupt Content-Encoding is 400 invalid_encoding`, async (t) => {
    const c = await startCollector(t, kind)
    const body = JSON.stringify(sampleEvent('track'))
    const br = await send(`${c.url}/v1/track`, { headers: { Authorization: basic(WRITE_KEY), 'Content-Type': 'application/json', 'Content-Encoding': 'br' }, body })
    t.equal(br.status, 400)
    t.equal(br.json.code, 'invalid_encoding')
    t.match(br.json.message, /"br"/)
    const corrupt = await send(`${c.url}/v1/track`, { headers: { Authorization: basic(WRITE_KEY), 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, body })
    t.equal(corrupt.status, 400, 'plain JSON labelled gzip')
    t.equal(corrupt.json.code, 'invalid_encoding')
    const truncated = gzipSync(body).subarray(0, 20)
    const cut = await send(`${c.url}/v1/track`, { headers: { Authorization: basic(WRITE_KEY), 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, body: truncated })
    t.equal(cut.status, 400, 'truncated gzip')
    t.equal(cut.json.code, 'invalid_encoding')
    t.equal(acceptedCount(c.router), 0)
    const ok = await send(`${c.url}/v1/track`, { headers: { Authorization: basic(WRITE_KEY) }, body: sampleEvent('track') })
    t.equal(ok.status, 200, 'still serving')
  })
}
