/**
 * CORS as browser clients need it: preflights reflect the headers analytics.js and
 * RudderStack's SDK ask for and are cached long; the actual answer exposes Retry-After;
 * each source's allowedOrigins (exact or `https://*.example.com`) is enforced with a
 * JSON 403.
 */
import t from 'tap'
import { acceptedCount, basic, HOSTS, sampleEvent, send, startCollector, WRITE_KEY } from './helpers/http.js'

const SOURCES = [
  { name: 'web', writeKey: WRITE_KEY, allowedOrigins: ['https://shop.example', 'https://*.example.com'] },
  { name: 'partner', writeKey: 'wk_partner', allowedOrigins: ['https://partner.example'] },
]

function preflight(url: string, origin: string, requestHeaders?: string) {
  const headers: Record<string, string> = { Origin: origin, 'Access-Control-Request-Method': 'POST' }
  if (requestHeaders !== undefined) headers['Access-Control-Request-Headers'] = requestHeaders
  return send(url, { method: 'OPTIONS', headers })
}

for (const kind of HOSTS) {
  t.test(`${kind}: preflight reflects the headers analytics.js and RudderStack send`, async (t) => {
    const c = await startCollector(t, kind, { router: { sources: SOURCES } })
    const ajs = await preflight(`${c.url}/v1/t`, 'https://shop.example', 'content-type,authorization,x-retry-count')
    t.equal(ajs.status, 204)
    t.equal(ajs.body.length, 0)
    t.equal(ajs.headers['access-control-allow-origin'], 'https://shop.example')
    t.equal(ajs.headers['access-control-allow-headers'], 'content-type,authorization,x-retry-count')
    t.match(String(ajs.headers['access-control-allow-methods']), /\bPOST\b/)
    t.ok(Number(ajs.headers['access-control-max-age']) >= 7200, `Max-Age is long (${ajs.headers['access-control-max-age']})`)
    t.match(String(ajs.headers.vary), /Origin/)

    const rudder = await preflight(`${c.url}/v1/batch`, 'https://shop.example', 'anonymousid,sentat,rsa-retry-attempt,content-type,authorization')
    t.equal(rudder.status, 204)
    t.equal(rudder.headers['access-control-allow-headers'], 'anonymousid,sentat,rsa-retry-attempt,content-type,authorization')

    const noList = await preflight(`${c.url}/v1/p`, 'https://shop.example')
    t.equal(noList.status, 204)
    t.match(String(noList.headers['access-control-allow-headers']), /Content-Type/i, 'no requested headers → a sensible default list')

    const mangled = await preflight(`${c.url}/v1/p`, 'https://shop.example', 'content-type, x-bad header')
    t.equal(mangled.status, 204)
    t.notMatch(String(mangled.headers['access-control-allow-headers']), /x-bad/, 'a malformed list is not echoed')
  })

  t.test(`${kind}: allowed origins, exact and wildcard`, async (t) => {
    const c = await startCollector(t, kind, { router: { sources: SOURCES } })
    const allowed = ['https://shop.example', 'https://www.example.com', 'https://a.b.example.com', 'HTTPS://WWW.EXAMPLE.COM']
    const refused = ['https://example.com', 'https://evil-example.com', 'http://www.example.com', 'https://www.example.com.evil.test', 'https://shop.example.evil.test']
    for (const origin of allowed) {
      const p = await preflight(`${c.url}/v1/t`, origin, 'content-type')
      t.equal(p.status, 204, `preflight ${origin}`)
      t.equal(p.headers['access-control-allow-origin'], origin)
      const res = await send(`${c.url}/v1/t`, { headers: { Origin: origin, 'Content-Type': 'text/plain' }, body: JSON.stringify({ ...sampleEvent('track'), writeKey: WRITE_KEY }) })
      t.equal(res.status, 200, `POST from ${origin}`)
      t.equal(res.headers['access-control-allow-origin'], origin)
      t.equal(res.headers['access-control-allow-credentials'], 'true')
      t.match(String(res.headers['access-control-expose-headers']), /Retry-After/i, 'Retry-After exposed to analytics.js')
    }
    for (const origin of refused) {
      const p = await preflight(`${c.url}/v1/t`, origin, 'content-type')
      t.equal(p.status, 403, `preflight ${origin}`)
      t.equal(p.json?.code, 'origin_not_allowed')
      t.equal(p.headers['access-control-allow-origin'], undefined)
      const res = await send(`${c.url}/v1/t`, { headers: { Origin: origin, 'Content-Type': 'text/plain' }, body: JSON.stringify({ ...sampleEvent('track'), writeKey: WRITE_KEY }) })
      t.equal(res.status, 403, `POST from ${origin}`)
      t.equal(res.json?.code, 'origin_not_allowed')
      t.type(res.json?.message, 'string')
    }
    t.equal(acceptedCount(c.router), allowed.length, 'only the allowed origins’ events accepted')
  })

  t.test(`${kind}: an origin allowed for another source is refused for this source's key`, async (t) => {
    const c = await startCollector(t, kind, { router: { sources: SOURCES } })
    // A preflight carries no key, so it passes for any origin some source allows…
    const p = await preflight(`${c.url}/v1/batch`, 'https://partner.example', 'content-type,authorization')
    t.equal(p.status, 204)
    // …but the request itself is checked against its own source.
    const res = await send(`${c.url}/v1/batch`, {
      headers: { Origin: 'https://partner.example', Authorization: basic(WRITE_KEY) },
      body: { batch: [{ ...sampleEvent('track'), type: 'track' }] },
    })
    t.equal(res.status, 403)
    t.equal(res.json.code, 'origin_not_allowed')
    t.match(res.json.message, /"web"/, 'names the source')
    t.equal(res.headers['access-control-allow-origin'], 'https://partner.example', 'the browser can read the JSON error')
    const own = await send(`${c.url}/v1/batch`, {
      headers: { Origin: 'https://partner.example', Authorization: basic('wk_partner') },
      body: { batch: [{ ...sampleEvent('track'), type: 'track', messageId: 'partner-ok' }] },
    })
    t.equal(own.status, 200)
    const [ev] = await c.capture.waitFor(1)
    t.equal(ev!.messageId, 'partner-ok')
    t.equal(acceptedCount(c.router), 1)
  })

  t.test(`${kind}: a source without allowedOrigins accepts any origin; server clients send none`, async (t) => {
    const c = await startCollector(t, kind)
    const p = await preflight(`${c.url}/v1/i`, 'https://anything.test', 'content-type,authorization,x-retry-count')
    t.equal(p.status, 204)
    t.equal(p.headers['access-control-allow-origin'], 'https://anything.test')
    const res = await send(`${c.url}/v1/i`, { headers: { Origin: 'https://anything.test', 'Content-Type': 'text/plain' }, body: JSON.stringify({ ...sampleEvent('identify'), writeKey: WRITE_KEY }) })
    t.equal(res.status, 200)
    t.equal(res.headers['access-control-allow-origin'], 'https://anything.test')
    const server = await send(`${c.url}/v1/identify`, { headers: { Authorization: basic(WRITE_KEY) }, body: sampleEvent('identify') })
    t.equal(server.status, 200)
    t.equal(server.headers['access-control-allow-origin'], undefined, 'no CORS headers without an Origin')
  })

  t.test(`${kind}: OPTIONS without an Origin is a plain 204 with Allow`, async (t) => {
    const c = await startCollector(t, kind)
    const res = await send(`${c.url}/v1/track`, { method: 'OPTIONS' })
    t.equal(res.status, 204)
    t.match(String(res.headers.allow), /POST/)
  })
}
