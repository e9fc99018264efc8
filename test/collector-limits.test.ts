/**
 * Segment's limits: 32 KB per event, 500 KB per request (after decompression), 2,500
 * events per batch — each a JSON 413 with its own code — while the ~300 KB batches
 * analytics.js really sends are accepted, and a gzip bomb is cut off without taking
 * the process down.
 */
import { request as httpRequest } from 'node:http'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { acceptedCount, basic, HOSTS, sampleEvent, send, startCollector, WRITE_KEY, type Reply } from './helpers/http.js'

const auth = { Authorization: basic(WRITE_KEY) }
const track = (id: string, extra: Record<string, unknown> = {}) => ({ ...sampleEvent('track'), type: 'track', messageId: id, ...extra })

// A gzip bomb: 50 MB of zeros, about 50 KB on the wire. Built once.
const BOMB = gzipSync(Buffer.alloc(50 * 1024 * 1024))

for (const kind of HOSTS) {
  t.test(`${kind}: an event over 32 KB is 413 event_too_large`, async (t) => {
    const c = await startCollector(t, kind)
    const big = 'x'.repeat(33 * 1024)
    const single = await send(`${c.url}/v1/track`, { headers: auth, body: sampleEvent('track', { properties: { blob: big } }) })
    t.equal(single.status, 413)
    t.equal(single.json.code, 'event_too_large')
    t.match(single.json.message, /32768/)

    const inBatch = await send(`${c.url}/v1/batch`, { headers: auth, body: { batch: [track('ok'), track('big', { properties: { blob: big } })] } })
    t.equal(inBatch.status, 413)
    t.equal(inBatch.json.code, 'event_too_large')
    t.match(inBatch.json.message, /^batch\[1\]/, 'names the event')
    t.equal(acceptedCount(c.router), 0, 'the whole request is refused')

    const justUnder = await send(`${c.url}/v1/track`, { headers: auth, body: sampleEvent('track', { properties: { blob: 'x'.repeat(31 * 1024) } }) })
    t.equal(justUnder.status, 200, 'a 31 KB event is fine')
  })

  t.test(`${kind}: a request over 500 KB is 413 request_too_large; a 300 KB analytics.js batch is accepted`, async (t) => {
    const c = await startCollector(t, kind)
    // 300 events of ~1 KB: what analytics.js batching posts.
    const ajs = { writeKey: WRITE_KEY, sentAt: new Date().toISOString(), batch: Array.from({ length: 300 }, (_, i) => track(`ajs-${i}`, { properties: { pad: 'p'.repeat(900) } })) }
    const ajsText = JSON.stringify(ajs)
    t.ok(ajsText.length > 290_000 && ajsText.length < 320_000, `batch is ~300 KB (${ajsText.length})`)
    const ok = await send(`${c.url}/v1/b`, { headers: { 'Content-Type': 'text/plain' }, body: ajsText })
    t.equal(ok.status, 200)
    const events = await c.capture.waitFor(300)
    t.equal(events.length, 300)

    const big = { batch: Array.from({ length: 20 }, (_, i) => track(`big-${i}`, { properties: { pad: 'p'.repeat(26 * 1024) } })) }
    const bigText = JSON.stringify(big)
    t.ok(bigText.length > 512_000, `body is over 500 KB (${bigText.length})`)
    const declared = await send(`${c.url}/v1/batch`, { headers: auth, body: bigText })
    t.equal(declared.status, 413, 'declared Content-Length over the limit')
    t.equal(declared.json.code, 'request_too_large')

    const chunked = await postChunked(`${c.url}/v1/batch`, bigText)
    t.equal(chunked.status, 413, 'chunked body over the limit')
    t.equal(chunked.json.code, 'request_too_large')
    t.equal(acceptedCount(c.router), 300, 'nothing from the big requests accepted')
  })

  t.test(`${kind}: 2,500 events per batch are accepted, 2,501 are 413 batch_too_large`, async (t) => {
    const c = await startCollector(t, kind)
    const tiny = (i: number) => ({ type: 'track', event: 'e', anonymousId: 'a', messageId: `n${i}` })
    const over = await send(`${c.url}/v1/batch`, { headers: auth, body: { batch: Array.from({ length: 2501 }, (_, i) => tiny(i)) } })
    t.equal(over.status, 413)
    t.equal(over.json.code, 'batch_too_large')
    t.match(over.json.message, /2501/)
    t.match(over.json.message, /2500/)
    t.equal(acceptedCount(c.router), 0)
    const at = await send(`${c.url}/v1/batch`, { headers: auth, body: { batch: Array.from({ length: 2500 }, (_, i) => tiny(i)) } })
    t.equal(at.status, 200)
    t.equal(acceptedCount(c.router), 2500)
  })

  t.test(`${kind}: a gzip bomb is refused with 413 and the process keeps serving`, async (t) => {
    const c = await startCollector(t, kind)
    t.ok(BOMB.length < 512_000, `the compressed bomb is under the request limit (${BOMB.length} bytes)`)
    for (const type of ['application/json', 'application/x-www-form-urlencoded']) {
      const res = await send(`${c.url}/v1/batch`, { headers: { ...auth, 'Content-Type': type, 'Content-Encoding': 'gzip' }, body: BOMB })
      t.equal(res.status, 413, `${type}: status`)
      t.equal(res.json.code, 'request_too_large', `${type}: code`)
      t.match(res.json.message, /inflates/)
    }
    // Several at once: each is cut off at the limit, none holds the others up.
    const many = await Promise.all(Array.from({ length: 5 }, () => send(`${c.url}/v1/import`, { headers: { ...auth, 'Content-Encoding': 'gzip' }, body: BOMB })))
    t.same(many.map((r) => r.status), [413, 413, 413, 413, 413])
    const ok = await send(`${c.url}/v1/track`, { headers: { ...auth, 'Content-Encoding': 'gzip' }, body: gzipSync(JSON.stringify(sampleEvent('track', { messageId: 'after-bomb' }))) })
    t.equal(ok.status, 200)
    const [ev] = await c.capture.waitFor(1)
    t.equal(ev!.messageId, 'after-bomb')
    t.equal(acceptedCount(c.router), 1)
  })

  t.test(`${kind}: a compressed body itself over the limit is 413`, async (t) => {
    const c = await startCollector(t, kind)
    // Random bytes do not compress: the wire size alone is over the limit.
    const noise = Buffer.alloc(600 * 1024)
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24
    const res = await send(`${c.url}/v1/batch`, { headers: { ...auth, 'Content-Encoding': 'gzip' }, body: gzipSync(noise, { level: 0 }) })
    t.equal(res.status, 413)
    t.equal(res.json.code, 'request_too_large')
  })
}

t.test('limits are configurable per router', async (t) => {
  const c = await startCollector(t, 'http', { router: { limits: { maxEventBytes: 1024, maxBatchEvents: 3, maxRequestBytes: 4096 } } })
  const ev = await send(`${c.url}/v1/track`, { headers: auth, body: sampleEvent('track', { properties: { blob: 'x'.repeat(1100) } }) })
  t.equal(ev.json.code, 'event_too_large')
  const batch = await send(`${c.url}/v1/batch`, { headers: auth, body: { batch: [track('a'), track('b'), track('c'), track('d')] } })
  t.equal(batch.json.code, 'batch_too_large')
  const req = await send(`${c.url}/v1/batch`, { headers: auth, body: { batch: [track('a', { properties: { p: 'x'.repeat(900) } }), track('b', { properties: { p: 'x'.repeat(900) } }), track('c', { properties: { p: 'x'.repeat(900) } })], pad: 'y'.repeat(2000) } })
  t.equal(req.json.code, 'request_too_large')
  const fine = await send(`${c.url}/v1/batch`, { headers: auth, body: { batch: [track('a'), track('b'), track('c')] } })
  t.equal(fine.status, 200)
})

function postChunked(url: string, text: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent: false, headers: { ...auth, 'Content-Type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        let json: unknown
        try {
          json = JSON.parse(body.toString())
        } catch {
          json = undefined
        }
        resolve({ status: res.statusCode!, headers: res.headers, body, text: body.toString(), json })
      })
    })
    // The server may answer and stop reading before we finish writing.
    req.on('error', reject)
    for (let i = 0; i < text.length; i += 64 * 1024) req.write(text.slice(i, i + 64 * 1024))
    req.end()
  })
}
