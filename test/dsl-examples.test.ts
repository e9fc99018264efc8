// The shipped example mappings (dsl/examples/*.fp) produce the vendors' payloads,
// and `firstparty map` / `firstparty check` work on them.
import t from 'tap'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkMapping, compileMapping } from '../dsl/index.js'
import { main } from '../src/cli.js'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')
const read = (f: string) => readFileSync(new URL(`../dsl/examples/${f}`, import.meta.url), 'utf8')
const eventFile = new URL('./fixtures/dsl/events/order-completed.json', import.meta.url).pathname
const order = JSON.parse(readFileSync(eventFile, 'utf8')) as Record<string, any>

t.test('the examples compile without errors or warnings', async (t) => {
  for (const f of ['ga4.fp', 'meta-capi.fp']) t.same(checkMapping(read(f)), { errors: [], warnings: [] }, f)
})

t.test('GA4: Order Completed → purchase with items', async (t) => {
  const ga4 = compileMapping(read('ga4.fp'))
  t.same(ga4(order), {
    client_id: '1234567890.1700000000',
    user_id: 'user-1',
    timestamp_micros: 1709294400000000,
    events: [{
      name: 'purchase',
      params: {
        transaction_id: 'o-1',
        value: 30,
        currency: 'USD',
        tax: 2,
        items: [
          { item_id: 'p1', item_name: 'Tee', price: 10, quantity: 2 },
          { item_id: 's2', price: 10, quantity: 1 },
        ],
      },
    }],
  })
})

t.test('GA4: other e-commerce events, page views, and what is dropped', async (t) => {
  const ga4 = compileMapping(read('ga4.fp'))
  const base = { anonymousId: 'a', timestamp: '2024-03-01T12:00:00.000Z' }
  t.same(ga4({ ...base, type: 'track', event: 'Product Added', properties: { product_id: 'p9', price: 4, quantity: 3, currency: 'eur' } }), {
    client_id: 'a',
    timestamp_micros: 1709294400000000,
    events: [{ name: 'add_to_cart', params: { currency: 'EUR', value: 12, items: [{ item_id: 'p9', price: 4, quantity: 3 }] } }],
  })
  const name = (ev: Record<string, unknown>) => (ga4(ev) as { events: Array<{ name: string }> }).events[0]!.name
  t.equal(name({ ...base, type: 'track', event: 'Product Viewed', properties: { sku: 'x' } }), 'view_item')
  t.equal(name({ ...base, type: 'track', event: 'Checkout Started', properties: {} }), 'begin_checkout')
  t.same(ga4({ ...base, type: 'page', context: { page: { url: 'https://s.example/', title: 'Home' } } })!.events, [
    { name: 'page_view', params: { page_location: 'https://s.example/', page_title: 'Home' } },
  ])
  t.equal(ga4({ ...base, type: 'track', event: 'Something Else' }), null, 'no rule: dropped')
  t.equal(ga4({ ...base, type: 'identify', traits: {} }), null)
})

t.test('Meta CAPI: Order Completed with hashed user_data', async (t) => {
  const capi = compileMapping(read('meta-capi.fp'))
  t.same(capi(order), {
    event_time: 1709294400,
    event_id: 'msg-1',
    action_source: 'website',
    event_source_url: 'https://shop.example/checkout',
    user_data: {
      em: [sha('jane@example.com')],
      ph: [sha('14155550123')],
      fn: sha('jane'),
      ct: sha('sanfrancisco'),
      zp: sha('94107'),
      country: sha('us'),
      external_id: [sha('user-1')],
      client_ip_address: '203.0.113.9',
      client_user_agent: 'Mozilla/5.0',
      fbp: 'fb.1.1700000000.1',
    },
    event_name: 'Purchase',
    custom_data: {
      value: 30,
      currency: 'USD',
      order_id: 'o-1',
      content_type: 'product',
      content_ids: ['p1', 's2'],
      contents: [{ id: 'p1', quantity: 2, item_price: 10 }, { id: 's2', quantity: 1, item_price: 10 }],
      num_items: 3,
    },
  })
})

t.test('Meta CAPI: identify traits, an app event, missing user data', async (t) => {
  const capi = compileMapping(read('meta-capi.fp'))
  const out = capi({ type: 'track', event: 'Signed Up', messageId: 'm2', timestamp: '2024-03-01T12:00:00Z', context: { app: { name: 'A' }, traits: { email: sha('already@hashed') } } })!
  t.equal(out.action_source, 'app')
  t.equal(out.event_name, 'CompleteRegistration')
  t.same(out.user_data, { em: [sha('already@hashed')], ph: [], external_id: [] }, 'a SHA-256 is not hashed again; absent values leave no null')
  t.same(capi({ type: 'track', event: 'Checkout Started', messageId: 'm3', properties: { revenue: '12.50', products: [{ quantity: 2 }] } })!.custom_data, { value: 12.5, currency: 'USD', num_items: 2 })
  t.equal(capi({ type: 'identify', traits: {} }), null, 'identify is not a conversion: dropped')
})

function io() {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) } }
}

t.test('firstparty map prints the payload', async (t) => {
  const c = io()
  t.equal(await main(['map', new URL('../dsl/examples/meta-capi.fp', import.meta.url).pathname, eventFile], c.io), 0)
  t.equal(JSON.parse(c.out.join('\n')).event_name, 'Purchase')
  t.same(c.err, [])
})

t.test('firstparty map prints errors with line:column and a caret, exit 1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fp-cli-'))
  const bad = join(dir, 'bad.fp')
  writeFileSync(bad, 'on track {\n  a = lowr(event.properties.x)\n  b = = 1\n}\n')
  const c = io()
  t.equal(await main(['map', bad, eventFile], c.io), 1)
  const text = c.err.join('\n')
  t.match(text, `${bad}:2:7 error DSL_T101 unknown function "lowr" (did you mean "lower"?)`)
  t.match(text, /2 \|   a = lowr\(event\.properties\.x\)\n\s+\|       \^\^\^\^/)
  t.match(text, `${bad}:3:7 error DSL_S202`)
  t.same(c.out, [])
})

t.test('firstparty map: a dropped event prints null; usage errors exit 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fp-cli-'))
  const ev = join(dir, 'page.json')
  writeFileSync(ev, JSON.stringify([{ type: 'identify' }, { type: 'page' }]))
  const c = io()
  t.equal(await main(['map', new URL('../dsl/examples/meta-capi.fp', import.meta.url).pathname, ev], c.io), 0)
  const outs = JSON.parse(c.out.join('\n')) as unknown[]
  t.equal(outs[0], null)
  t.equal((outs[1] as { event_name: string }).event_name, 'PageView')
  t.match(c.err.join('\n'), /#0 dropped by the mapping/)
  t.equal(await main(['map', 'only-one-arg'], io().io), 2)
  t.equal(await main(['frobnicate'], io().io), 2)
})

t.test('firstparty check compiles every mapping and policy in a config', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fp-check-'))
  writeFileSync(join(dir, 'ga4.fp'), read('ga4.fp'))
  const good = join(dir, 'good.yaml')
  writeFileSync(good, [
    'policies:', '  - when: { "==": [{ "var": "type" }, "alias"] }', '    then: drop',
    'destinations:',
    '  - name: ga4', '    type: webhook', '    settings: { url: "http://127.0.0.1:9/" }', '    mappingFile: ga4.fp',
    '  - name: inline', '    type: webhook', '    settings: { url: "http://127.0.0.1:9/" }', '    mapping: |', '      on any { t = event.type }',
  ].join('\n'))
  let c = io()
  t.equal(await main(['check', good], c.io), 0, c.err.join('\n'))
  t.match(c.out.join(''), /ok \(2 mappings, 1 policy\)/)

  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, [
    'destinations:',
    '  - name: one', '    type: webhook', '    settings: { url: "http://127.0.0.1:9/" }', '    mapping: "on any { v = nope(1) }"',
    '  - name: two', '    type: webhook', '    settings: { url: "http://127.0.0.1:9/" }', '    mapping: "on any { v = }"',
    '    policies:', '      - when: { "frob": [] }', '        then: drop',
  ].join('\n'))
  c = io()
  t.equal(await main(['check', bad], c.io), 1)
  const text = c.err.join('\n')
  t.match(text, '/destinations/0/mapping: 1:14 DSL_T101 unknown function "nope"')
  t.match(text, '/destinations/1/mapping: 1:14 DSL_S202')
  t.match(text, '/destinations/1/policies/0/when')
  t.match(text, '3 problems')
})
