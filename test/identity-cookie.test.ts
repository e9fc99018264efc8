/**
 * The identity middleware in a real Express 5 app (and a bare node:http server): the
 * `ajs_anonymous_id` cookie is issued once and then reused and refreshed, in the format
 * analytics.js reads (analytics-next writes the plain id; analytics.js 1.0 wrote
 * JSON-stringified, URL-encoded), with its options (HttpOnly, Secure, Domain, SameSite);
 * unusable values are replaced; one Set-Cookie per response whatever else happens; and
 * backend events carry the same id as browser events.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import t from 'tap'
import { ConfigError } from '../src/errors.js'
import { getAnonymousId, identity } from '../src/express.js'
import { decodeIdCookie, type FirstpartyIdentity } from '../src/identity.js'
import { basic, captureRouter, listen, send, WRITE_KEY, type Teardown } from './helpers/http.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** The Set-Cookie lines for one cookie name. */
function setCookies(headers: Record<string, unknown>, name = 'ajs_anonymous_id'): string[] {
  const raw = headers['set-cookie']
  const list = Array.isArray(raw) ? (raw as string[]) : raw === undefined ? [] : [String(raw)]
  return list.filter((c) => c.startsWith(`${name}=`))
}

/** The cookie's value and attributes, as a browser would split them. */
function parseSetCookie(line: string): { value: string; attrs: Map<string, string | true> } {
  const [pair, ...rest] = line.split(/;\s*/)
  const attrs = new Map<string, string | true>()
  for (const a of rest) {
    const eq = a.indexOf('=')
    attrs.set((eq === -1 ? a : a.slice(0, eq)).toLowerCase(), eq === -1 ? true : a.slice(eq + 1))
  }
  return { value: pair!.slice(pair!.indexOf('=') + 1), attrs }
}

/**
 * How analytics-next reads its cookie: js-cookie decodes %XX sequences, then
 * `CookieStorage.get` tries JSON.parse and falls back to the raw string.
 */
function analyticsNextRead(value: string): unknown {
  const decoded = value.replace(/(%[\dA-F]{2})+/gi, decodeURIComponent)
  try {
    return JSON.parse(decoded) ?? null
  } catch {
    return decoded
  }
}

/** An app with the middleware in front of a page that shows what it saw. */
async function app(t: Teardown, options: Parameters<typeof identity>[0] = {}, before?: (a: express.Express) => void) {
  const a = express()
  before?.(a)
  a.use(identity(options))
  a.get('/', (req, res) => void res.json({ firstparty: req.firstparty, viaHelper: getAnonymousId(req) }))
  return listen(t, a)
}

t.test('a first visit gets a new UUID v4 cookie; the next visit reuses and refreshes it', async (t) => {
  const { base } = await app(t)
  const first = await send(`${base}/`)
  const lines = setCookies(first.headers)
  t.equal(lines.length, 1, 'one Set-Cookie for ajs_anonymous_id')
  const { value, attrs } = parseSetCookie(lines[0]!)
  t.match(value, UUID, 'written as the plain id, as analytics-next writes it')
  t.equal(analyticsNextRead(value), value, 'analytics-next reads back the same id')
  t.equal(attrs.get('max-age'), String(365 * 86_400), 'one year, like analytics.js')
  t.ok(attrs.has('expires'))
  t.ok(Math.abs(Date.parse(String(attrs.get('expires'))) - (Date.now() + 365 * 86_400_000)) < 5000)
  t.equal(attrs.get('path'), '/')
  t.equal(attrs.get('samesite'), 'Lax')
  t.notOk(attrs.has('httponly'), 'readable by analytics.js by default')
  t.notOk(attrs.has('secure'), 'plain HTTP: not Secure')
  t.notOk(attrs.has('domain'), 'host-only unless a domain is given')
  t.same(first.json.firstparty, { anonymousId: value, isNew: true })
  t.equal(first.json.viaHelper, value, 'getAnonymousId(req) gives the same id')

  const second = await send(`${base}/`, { headers: { Cookie: `other=1; ajs_anonymous_id=${value}; more=2` } })
  t.same(second.json.firstparty, { anonymousId: value, isNew: false }, 'the cookie is reused')
  const again = setCookies(second.headers)
  t.equal(again.length, 1, 'refreshed')
  t.equal(parseSetCookie(again[0]!).value, value, 'with the same value')
})

t.test('refresh: false sets the cookie only when it issues one', async (t) => {
  const { base } = await app(t, { refresh: false })
  const first = await send(`${base}/`)
  const id = first.json.firstparty.anonymousId
  t.equal(setCookies(first.headers).length, 1)
  const second = await send(`${base}/`, { headers: { Cookie: `ajs_anonymous_id=${id}` } })
  t.equal(second.json.firstparty.anonymousId, id)
  t.equal(setCookies(second.headers).length, 0)
})

t.test('reads what analytics.js writes: analytics-next plain ids, analytics.js 1.0 JSON, and ajs_user_id', async (t) => {
  const { base } = await app(t)
  // analytics.js 1.0 (analytics.js-core with component-cookie): encodeURIComponent(JSON.stringify(id)).
  const legacy = await send(`${base}/`, { headers: { Cookie: `ajs_anonymous_id=${encodeURIComponent(JSON.stringify('legacy-anon-1'))}; ajs_user_id=${encodeURIComponent(JSON.stringify('user-9'))}` } })
  t.same(legacy.json.firstparty, { anonymousId: 'legacy-anon-1', userId: 'user-9', isNew: false })
  const refreshed = parseSetCookie(setCookies(legacy.headers)[0]!)
  t.equal(refreshed.value, '%22legacy-anon-1%22', 'refreshed in the format it was found in, so the old script still reads it')
  t.equal(analyticsNextRead(refreshed.value), 'legacy-anon-1', 'and analytics-next reads it too')
  t.equal(setCookies(legacy.headers, 'ajs_user_id').length, 0, 'ajs_user_id is read, never written')

  // analytics-next writes strings as they are (js-cookie encodes what it must: @ → %40).
  const next = await send(`${base}/`, { headers: { Cookie: 'ajs_anonymous_id=8b0f6a5e-0c7d-4d55-9b1a-2f3e4d5c6b7a; ajs_user_id=jane%40example.com' } })
  t.same(next.json.firstparty, { anonymousId: '8b0f6a5e-0c7d-4d55-9b1a-2f3e4d5c6b7a', userId: 'jane@example.com', isNew: false })

  // What analytics-next's JSON-first read makes of odd values.
  t.same(decodeIdCookie('%22a%22'), { id: 'a', format: 'json' })
  t.same(decodeIdCookie('a'), { id: 'a', format: 'raw' })
  t.same(decodeIdCookie('12345'), { id: '12345', format: 'raw' }, 'a number is the id as text')
  t.equal(decodeIdCookie('null'), undefined, 'null is no id')
  t.equal(decodeIdCookie('true'), undefined)
  t.equal(decodeIdCookie('%7B%7D'), undefined, 'an object is no id')
})

t.test('format: json writes new cookies the analytics.js 1.0 way', async (t) => {
  const { base } = await app(t, { format: 'json' })
  const res = await send(`${base}/`)
  const { value } = parseSetCookie(setCookies(res.headers)[0]!)
  t.match(value, /^%22[0-9a-f-]{36}%22$/)
  t.equal(analyticsNextRead(value), res.json.firstparty.anonymousId)
})

t.test('unusable cookie values are replaced with a new id', async (t) => {
  const { base } = await app(t)
  const bad = [
    '', // empty
    'x'.repeat(201), // too long
    '%E0%A4%A', // broken escape
    '%22unterminated', // JSON that does not parse
    encodeURIComponent(JSON.stringify({ id: 'x' })), // JSON, not a string
    encodeURIComponent('<script>alert(1)</script>'),
    encodeURIComponent('has space'),
    encodeURIComponent("quote'd"),
    encodeURIComponent('semi;colon'),
    '%00nul',
  ]
  for (const value of bad) {
    const res = await send(`${base}/`, { headers: { Cookie: `ajs_anonymous_id=${value}` } })
    const id = res.json.firstparty.anonymousId
    t.match(id, UUID, `${JSON.stringify(value.slice(0, 30))} → a new id`)
    t.equal(res.json.firstparty.isNew, true)
    t.equal(parseSetCookie(setCookies(res.headers)[0]!).value, id, 'and the cookie is replaced')
  }
  // A broken duplicate does not hide a good one (browsers send host-only and domain cookies of one name).
  const dup = await send(`${base}/`, { headers: { Cookie: 'ajs_anonymous_id=bad%ZZ; ajs_anonymous_id=good-id-1' } })
  t.same(dup.json.firstparty, { anonymousId: 'good-id-1', isNew: false })
  // A bad ajs_user_id is left out; the anonymous id stands.
  const user = await send(`${base}/`, { headers: { Cookie: 'ajs_anonymous_id=anon-2; ajs_user_id=%3Cb%3E' } })
  t.same(user.json.firstparty, { anonymousId: 'anon-2', isNew: false })
})

t.test('httpOnly, domain, path, sameSite and maxAgeDays options', async (t) => {
  const { base } = await app(t, { httpOnly: true, domain: 'example.com', path: '/shop', sameSite: 'Strict', maxAgeDays: 30 })
  const res = await send(`${base}/`)
  const { attrs } = parseSetCookie(setCookies(res.headers)[0]!)
  t.equal(attrs.get('httponly'), true)
  t.equal(attrs.get('domain'), 'example.com')
  t.equal(attrs.get('path'), '/shop')
  t.equal(attrs.get('samesite'), 'Strict')
  t.equal(attrs.get('max-age'), String(30 * 86_400))
})

t.test('Secure: auto follows the request (Express trust proxy, TLS socket), true forces it, None implies it', async (t) => {
  // Behind a TLS-terminating proxy, Express's req.secure reads X-Forwarded-Proto when trusted.
  const { base } = await app(t, {}, (a) => a.set('trust proxy', 'loopback'))
  const proxied = await send(`${base}/`, { headers: { 'X-Forwarded-Proto': 'https' } })
  t.equal(parseSetCookie(setCookies(proxied.headers)[0]!).attrs.get('secure'), true, 'https through a trusted proxy')
  const plain = await send(`${base}/`)
  t.notOk(parseSetCookie(setCookies(plain.headers)[0]!).attrs.has('secure'))

  const untrusted = await app(t)
  const spoofed = await send(`${untrusted.base}/`, { headers: { 'X-Forwarded-Proto': 'https' } })
  t.notOk(parseSetCookie(setCookies(spoofed.headers)[0]!).attrs.has('secure'), 'an untrusted X-Forwarded-Proto is ignored')

  const forced = await app(t, { secure: true })
  t.equal(parseSetCookie(setCookies((await send(`${forced.base}/`)).headers)[0]!).attrs.get('secure'), true)

  const none = await app(t, { sameSite: 'None' })
  const attrs = parseSetCookie(setCookies((await send(`${none.base}/`)).headers)[0]!).attrs
  t.equal(attrs.get('samesite'), 'None')
  t.equal(attrs.get('secure'), true, 'SameSite=None cookies must be Secure')
})

t.test('without Express: a plain node:http server, next optional; a TLS socket makes it Secure', async (t) => {
  const mw = identity()
  const { base } = await listen(t, (req: IncomingMessage, res: ServerResponse) => {
    mw(req, res)
    res.setHeader('Content-Type', 'application/json')
    res.end(JSON.stringify({ id: getAnonymousId(req) }))
  })
  const res = await send(`${base}/`)
  t.equal(parseSetCookie(setCookies(res.headers)[0]!).value, res.json.id)

  // What 'auto' reads without Express is the socket's `encrypted` flag, which a TLS socket sets.
  const headers: Record<string, unknown> = {}
  const req = { headers: {}, socket: { encrypted: true } } as unknown as IncomingMessage
  const out = { headersSent: false, getHeader: (n: string) => headers[n.toLowerCase()], setHeader: (n: string, v: unknown) => void (headers[n.toLowerCase()] = v) } as unknown as ServerResponse
  identity()(req, out)
  t.equal(parseSetCookie(setCookies(headers)[0]!).attrs.get('secure'), true)
})

t.test('one Set-Cookie per response: the middleware mounted twice, or the host already set the cookie', async (t) => {
  const a = express()
  a.use(identity())
  a.use(identity())
  a.get('/', (req, res) => void res.json(req.firstparty))
  const { base } = await listen(t, a)
  const res = await send(`${base}/`)
  t.equal(setCookies(res.headers).length, 1)
  t.equal(parseSetCookie(setCookies(res.headers)[0]!).value, res.json.anonymousId)

  const b = express()
  b.use((_req, res, next) => {
    res.setHeader('Set-Cookie', ['session=abc; Path=/', 'ajs_anonymous_id=host-set; Path=/'])
    next()
  })
  b.use(identity())
  b.get('/', (req, res) => void res.json(req.firstparty))
  const host = await listen(t, b)
  const r2 = await send(`${host.base}/`)
  t.same(setCookies(r2.headers).map((c) => parseSetCookie(c).value), ['host-set'], "the host's own cookie is left alone")
  t.equal(setCookies(r2.headers, 'session').length, 1, 'other cookies are kept')
})

t.test('headers already sent: no Set-Cookie, no error, the id is still there', async (t) => {
  const a = express()
  a.get('/', (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' })
    res.write('streaming…')
    let err: unknown
    identity()(req, res, (e?: unknown) => void (err = e))
    res.end(JSON.stringify({ err: err === undefined ? null : String(err), id: (req as { firstparty?: FirstpartyIdentity }).firstparty?.anonymousId }))
  })
  const { base } = await listen(t, a)
  const res = await send(`${base}/`)
  t.equal(setCookies(res.headers).length, 0)
  const body = JSON.parse(res.text.slice('streaming…'.length))
  t.equal(body.err, null)
  t.match(body.id, UUID)
})

t.test('options are checked when the middleware is made', async (t) => {
  const bad: Array<[Parameters<typeof identity>[0], string]> = [
    [{ maxAgeDays: 0 }, '/identity/maxAgeDays'],
    [{ maxAgeDays: 401 }, '/identity/maxAgeDays'],
    [{ domain: 'exa mple.com' }, '/identity/domain'],
    [{ domain: 'example.com; HttpOnly' }, '/identity/domain'],
    [{ path: 'shop' }, '/identity/path'],
    [{ path: '/a;b' }, '/identity/path'],
    [{ sameSite: 'lax' as never }, '/identity/sameSite'],
    [{ sameSite: 'None', secure: false }, '/identity/secure'],
    [{ format: 'base64' as never }, '/identity/format'],
  ]
  for (const [opts, path] of bad) {
    const err = t.throws(() => identity(opts)) as ConfigError
    t.ok(err instanceof ConfigError, JSON.stringify(opts))
    t.equal(err.path, path)
  }
  // A generateId that returns garbage is an error handed to next(), not a bad cookie.
  const a = express()
  a.use(identity({ generateId: () => 'no spaces allowed' }))
  a.get('/', (_req, res) => void res.send('unreachable'))
  a.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => void res.status(500).json({ error: err.message }))
  const { base } = await listen(t, a)
  const res = await send(`${base}/`)
  t.equal(res.status, 500)
  t.match(res.json.error, /generateId returned "no spaces allowed"/)
  t.equal(setCookies(res.headers).length, 0)
})

t.test("backend events carry the same anonymousId as the browser's", async (t) => {
  const { router, capture } = captureRouter(t)
  const a = express()
  a.use(router.express())
  a.use(identity())
  a.get('/', (req, res) => void res.send(`<script>/* analytics.js reads ajs_anonymous_id=${req.firstparty!.anonymousId} */</script>`))
  a.post('/checkout', async (req, res) => {
    const { messageId } = await router.track({ event: 'Order Completed', anonymousId: req.firstparty!.anonymousId, messageId: 'server-1' })
    res.json({ messageId })
  })
  const { base } = await listen(t, a)

  // 1. The page: the server issues the cookie.
  const page = await send(`${base}/`)
  const id = parseSetCookie(setCookies(page.headers)[0]!).value
  // 2. analytics.js reads the cookie and sends a page event with it.
  const anonymousId = analyticsNextRead(id)
  const browser = await send(`${base}/v1/page`, { headers: { Authorization: basic(WRITE_KEY), Cookie: `ajs_anonymous_id=${id}` }, body: { anonymousId, messageId: 'browser-1', name: 'Home' } })
  t.equal(browser.status, 200)
  // 3. The backend tracks the order for the same visitor.
  const checkout = await send(`${base}/checkout`, { method: 'POST', headers: { Cookie: `ajs_anonymous_id=${id}` } })
  t.equal(checkout.json.messageId, 'server-1')

  const events = await capture.waitFor(2)
  const byId = Object.fromEntries(events.map((e) => [e.messageId, e]))
  t.equal(byId['browser-1']!.anonymousId, anonymousId)
  t.equal(byId['server-1']!.anonymousId, anonymousId, 'the backend event has the browser’s id')
  t.match(anonymousId, UUID)
})

t.test('getAnonymousId without the middleware reads the cookie and sets nothing', async (t) => {
  const server = createServer((req, res) => void res.end(JSON.stringify({ id: getAnonymousId(req) ?? null })))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const known = await send(`${base}/`, { headers: { Cookie: 'ajs_anonymous_id=%22abc-1%22' } })
  t.same(known.json, { id: 'abc-1' })
  t.equal(setCookies(known.headers).length, 0)
  t.same((await send(`${base}/`)).json, { id: null })
})
