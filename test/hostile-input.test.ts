/**
 * Hostile bodies: malformed JSON, 10,000-deep nesting, prototype-poisoning keys,
 * invalid UTF-8, wrong types, missing ids, one bad event in a batch. Each is a 4xx
 * with a JSON `{ code, message }` from the error table; nothing is accepted; the
 * server keeps serving; no object prototype is touched.
 */
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { acceptedCount, basic, errorShape, HOSTS, sampleEvent, send, startCollector, WRITE_KEY } from './helpers/http.js'

const SENTINEL = 'fpPolluted'
const auth = { Authorization: basic(WRITE_KEY), 'Content-Type': 'application/json' }
const trackJson = (extra: string) => `{"type":"track","event":"E","anonymousId":"a",${extra}}`
const deep = (n: number, open: string, close: string, leaf = '1') => open.repeat(n) + leaf + close.repeat(n)

interface Case {
  name: string
  path?: string
  method?: string
  headers?: Record<string, string>
  body?: string | Buffer
  status: number
  code: string
  message?: RegExp
}

const CASES: Case[] = [
  // Malformed JSON and non-objects.
  { name: 'truncated JSON', body: '{"type":"track","event":', status: 400, code: 'invalid_json', message: /not valid JSON/ },
  { name: 'trailing garbage', body: trackJson('"x":1}garbage'), status: 400, code: 'invalid_json' },
  { name: 'single quotes', body: "{'type':'track'}", status: 400, code: 'invalid_json' },
  { name: 'empty body', body: '', status: 400, code: 'invalid_json', message: /empty/ },
  { name: 'top-level array', path: '/v1/batch', body: '[{"type":"track"}]', status: 400, code: 'invalid_body' },
  { name: 'top-level null', body: 'null', status: 400, code: 'invalid_body' },
  { name: 'top-level number', body: '5', status: 400, code: 'invalid_body' },
  { name: 'top-level string', body: '"track"', status: 400, code: 'invalid_body' },
  // Nesting.
  { name: '10,000-deep objects in properties', body: trackJson(`"properties":${deep(10_000, '{"a":', '}')}`), status: 400, code: 'too_deep' },
  { name: '10,000-deep arrays in context', body: trackJson(`"context":{"x":${deep(10_000, '[', ']')}}`), status: 400, code: 'too_deep' },
  { name: '10,000-deep batch item', path: '/v1/batch', body: `{"batch":[${trackJson(`"properties":${deep(10_000, '{"a":', '}')}`)}]}`, status: 400, code: 'too_deep', message: /batch\[0\]/ },
  { name: '200,000-deep arrays', body: trackJson(`"properties":{"x":${deep(200_000, '[', ']')}}`), status: 400, code: 'too_deep' },
  { name: '200,000-deep top-level array', path: '/v1/batch', body: deep(200_000, '[', ']'), status: 400, code: 'invalid_body' },
  // 2,000 levels keep the URL under Node's 16 KB header limit (beyond it Node itself answers 431).
  { name: '2,000-deep pixel query', path: `/pixel/v1/track?writeKey=${WRITE_KEY}&anonymousId=a&event=E&${'p.'.repeat(2_000)}x=1`, method: 'GET', status: 400, code: 'too_deep' },
  // Prototype poisoning.
  { name: '__proto__ at top level', body: trackJson(`"__proto__":{"${SENTINEL}":1}`), status: 400, code: 'invalid_body', message: /__proto__/ },
  { name: '__proto__ nested in properties', body: trackJson(`"properties":{"a":{"__proto__":{"${SENTINEL}":1}}}`), status: 400, code: 'invalid_body', message: /__proto__/ },
  { name: '__proto__ in context', body: trackJson(`"context":{"__proto__":{"${SENTINEL}":1}}`), status: 400, code: 'invalid_body' },
  { name: '__proto__ in a batch event', path: '/v1/batch', body: `{"batch":[${trackJson('"messageId":"ok"')},${trackJson(`"properties":{"__proto__":{"${SENTINEL}":1}}`)}]}`, status: 400, code: 'invalid_body', message: /^batch\[1\]/ },
  { name: '__proto__ in the batch envelope', path: '/v1/batch', body: `{"__proto__":{"${SENTINEL}":1},"batch":[${trackJson('"messageId":"x"')}]}`, status: 400, code: 'invalid_body' },
  { name: 'constructor.prototype at top level', body: trackJson(`"constructor":{"prototype":{"${SENTINEL}":1}}`), status: 400, code: 'invalid_body', message: /constructor\.prototype/ },
  { name: 'constructor.prototype in traits', path: '/v1/identify', body: `{"userId":"u","traits":{"constructor":{"prototype":{"${SENTINEL}":1}}}}`, status: 400, code: 'invalid_body' },
  { name: '__proto__ in a gzip body', headers: { 'Content-Encoding': 'gzip' }, body: gzipSync(trackJson(`"properties":{"__proto__":{"${SENTINEL}":1}}`)), status: 400, code: 'invalid_body' },
  { name: '__proto__ in a pixel query', path: `/pixel/v1/track?writeKey=${WRITE_KEY}&anonymousId=a&event=E&__proto__.${SENTINEL}=1`, method: 'GET', status: 400, code: 'invalid_body' },
  { name: 'constructor.prototype in a pixel query', path: `/pixel/v1/page?writeKey=${WRITE_KEY}&anonymousId=a&properties.constructor.prototype.${SENTINEL}=1`, method: 'GET', status: 400, code: 'invalid_body' },
  // Invalid UTF-8.
  { name: 'invalid UTF-8 byte in a string', body: Buffer.concat([Buffer.from('{"type":"track","event":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","anonymousId":"a"}')]), status: 400, code: 'invalid_json', message: /UTF-8/ },
  { name: 'overlong UTF-8 encoding', body: Buffer.concat([Buffer.from('{"type":"track","event":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('","anonymousId":"a"}')]), status: 400, code: 'invalid_json', message: /UTF-8/ },
  { name: 'UTF-8-encoded surrogate', body: Buffer.concat([Buffer.from('{"type":"track","event":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('","anonymousId":"a"}')]), status: 400, code: 'invalid_json', message: /UTF-8/ },
  { name: 'truncated multi-byte sequence', body: Buffer.concat([Buffer.from('{"type":"track","event":"'), Buffer.from([0xe2, 0x82]), Buffer.from('","anonymousId":"a"}')]), status: 400, code: 'invalid_json' },
  // Wrong types.
  { name: 'event: 5', body: '{"type":"track","event":5,"anonymousId":"a"}', status: 400, code: 'invalid_event', message: /^event: / },
  { name: 'event missing on track', body: '{"type":"track","anonymousId":"a"}', status: 400, code: 'invalid_event', message: /^event: is required/ },
  { name: 'batch: "x"', path: '/v1/batch', body: '{"batch":"x"}', status: 400, code: 'invalid_body', message: /^batch: / },
  { name: 'batch missing', path: '/v1/batch', body: '{"sentAt":"2024-01-01T00:00:00Z"}', status: 400, code: 'invalid_body', message: /^batch: / },
  { name: 'batch empty', path: '/v1/batch', body: '{"batch":[]}', status: 400, code: 'invalid_body', message: /empty/ },
  { name: 'userId: {}', body: '{"type":"track","event":"E","userId":{}}', status: 400, code: 'invalid_event', message: /^userId: / },
  { name: 'anonymousId: []', body: '{"type":"track","event":"E","anonymousId":[]}', status: 400, code: 'invalid_event', message: /^anonymousId: / },
  { name: 'properties: "x"', body: trackJson('"properties":"x"'), status: 400, code: 'invalid_event', message: /^properties: / },
  { name: 'context: 5', body: trackJson('"context":5'), status: 400, code: 'invalid_event', message: /^context: / },
  { name: 'timestamp: not a date', body: trackJson('"timestamp":"yesterday"'), status: 400, code: 'invalid_event', message: /^timestamp: / },
  { name: 'timestamp: a number', body: trackJson('"timestamp":1700000000'), status: 400, code: 'invalid_event', message: /^timestamp: / },
  { name: 'sentAt: garbage', path: '/v1/batch', body: `{"sentAt":"soon","batch":[${trackJson('"messageId":"m"')}]}`, status: 400, code: 'invalid_event', message: /^sentAt: must be an ISO-8601/ },
  { name: 'an event sentAt: garbage', path: '/v1/batch', body: `{"batch":[${trackJson('"sentAt":"soon"')}]}`, status: 400, code: 'invalid_event', message: /^batch\[0\]\.sentAt: must be an ISO-8601/ },
  { name: 'constructor.prototype in the batch envelope', path: '/v1/batch', body: `{"context":{"constructor":{"prototype":{"${SENTINEL}":1}}},"batch":[${trackJson('"messageId":"x"')}]}`, status: 400, code: 'invalid_body' },
  { name: '10,000-deep batch envelope field', path: '/v1/batch', body: `{"context":${deep(10_000, '{"a":', '}')},"batch":[${trackJson('"messageId":"x"')}]}`, status: 400, code: 'too_deep' },
  { name: 'messageId: 5', body: trackJson('"messageId":5'), status: 400, code: 'invalid_event', message: /^messageId: / },
  { name: 'userId too long', body: `{"type":"track","event":"E","userId":"${'u'.repeat(2000)}"}`, status: 400, code: 'invalid_event', message: /^userId: / },
  { name: 'groupId missing on group', path: '/v1/group', body: '{"userId":"u"}', status: 400, code: 'invalid_event', message: /^groupId: is required/ },
  { name: 'previousId: true on alias', path: '/v1/alias', body: '{"userId":"u","previousId":true}', status: 400, code: 'invalid_event', message: /^previousId: / },
  { name: 'unknown type in a batch', path: '/v1/batch', body: '{"batch":[{"type":"purchase","userId":"u"}]}', status: 400, code: 'invalid_event', message: /^batch\[0\]\.type: must be one of/ },
  { name: 'missing type in a batch', path: '/v1/batch', body: '{"batch":[{"userId":"u","event":"E"}]}', status: 400, code: 'invalid_event', message: /^batch\[0\]\.type: .*missing/ },
  { name: 'null in a batch', path: '/v1/batch', body: '{"batch":[null]}', status: 400, code: 'invalid_event', message: /^batch\[0\]: must be a JSON object/ },
  { name: 'a string in a batch', path: '/v1/batch', body: '{"batch":["track"]}', status: 400, code: 'invalid_event', message: /^batch\[0\]/ },
  // Missing ids.
  { name: 'no userId or anonymousId', body: '{"type":"track","event":"E"}', status: 400, code: 'invalid_event', message: /userId or anonymousId is required/ },
  { name: 'empty userId and null anonymousId', body: '{"type":"track","event":"E","userId":"","anonymousId":null}', status: 400, code: 'invalid_event', message: /userId or anonymousId is required/ },
  // One bad event refuses the whole batch, naming it.
  {
    name: 'batch with one bad event',
    path: '/v1/batch',
    body: `{"batch":[${trackJson('"messageId":"b0"')},${trackJson('"messageId":"b1"')},{"type":"track","event":5,"anonymousId":"a"},${trackJson('"messageId":"b3"')}]}`,
    status: 400,
    code: 'invalid_event',
    message: /^batch\[2\]\.event: /,
  },
  {
    name: 'batch with a nested bad field',
    path: '/v1/import',
    body: `{"batch":[${trackJson('"messageId":"b0"')},{"type":"identify","userId":"u","traits":[1]}]}`,
    status: 400,
    code: 'invalid_event',
    message: /^batch\[1\]\.traits: /,
  },
]

for (const kind of HOSTS) {
  t.test(`${kind}: hostile bodies are refused with a coded JSON 4xx and the server keeps serving`, async (t) => {
    const c = await startCollector(t, kind)
    for (const k of CASES) {
      const res = await send(c.url + (k.path ?? '/v1/track'), {
        method: k.method ?? (k.body === undefined ? 'GET' : 'POST'),
        headers: k.method === 'GET' ? {} : { ...auth, ...k.headers },
        body: k.body,
      })
      const shape = errorShape(res)
      t.same(
        { status: shape.status, code: shape.code, isJson: shape.isJson, hasMessage: shape.hasMessage, inTable: shape.inTable, statusMatches: shape.statusMatches },
        { status: k.status, code: k.code, isJson: true, hasMessage: true, inTable: true, statusMatches: true },
        k.name,
      )
      if (k.message) t.match(res.json?.message, k.message, `${k.name}: message`)
      t.equal(({} as Record<string, unknown>)[SENTINEL], undefined, `${k.name}: Object.prototype untouched`)
      t.equal(Object.prototype.hasOwnProperty.call(Object.prototype, SENTINEL), false)
    }
    t.equal(acceptedCount(c.router), 0, 'no hostile request had any event accepted')
    t.same(c.router.stats().rejected.internal_error, undefined, 'no case fell through to a 500')

    const good = await send(`${c.url}/v1/batch`, { headers: auth, body: JSON.stringify({ batch: [{ ...sampleEvent('track'), type: 'track', messageId: 'after-hostile' }] }) })
    t.equal(good.status, 200, 'a good request is served afterwards')
    const [ev] = await c.capture.waitFor(1)
    t.equal(ev!.messageId, 'after-hostile')
    t.equal(c.capture.events.length, 1)
  })

  t.test(`${kind}: ordinary keys that merely look dangerous are kept`, async (t) => {
    const c = await startCollector(t, kind)
    const body = trackJson('"messageId":"lookalike","properties":{"constructor":"Honda","prototype":"v2","toString":"x","hasOwnProperty":1,"proto":{"a":1}}')
    const res = await send(`${c.url}/v1/track`, { headers: auth, body })
    t.equal(res.status, 200)
    const [ev] = await c.capture.waitFor(1)
    t.same(ev!.properties, { constructor: 'Honda', prototype: 'v2', toString: 'x', hasOwnProperty: 1, proto: { a: 1 } })
    t.equal(({} as Record<string, unknown>)[SENTINEL], undefined)
  })

  t.test(`${kind}: a client that hangs up mid-body does not break the server`, async (t) => {
    const c = await startCollector(t, kind)
    const { request } = await import('node:http')
    await new Promise<void>((resolve) => {
      const req = request(`${c.url}/v1/batch`, { method: 'POST', agent: false, headers: { ...auth, 'Content-Length': '100000' } })
      req.on('error', () => resolve())
      req.write('{"batch":[', () => setImmediate(() => (req.destroy(), resolve())))
    })
    const good = await send(`${c.url}/v1/track`, { headers: auth, body: sampleEvent('track', { messageId: 'after-hangup' }) })
    t.equal(good.status, 200)
    const [ev] = await c.capture.waitFor(1)
    t.equal(ev!.messageId, 'after-hangup')
  })
}
