/**
 * Personal-data detection: the classifier for each class, detectPii's paths, the
 * router's `pii` sweep end to end over HTTP, and the pii/consent operations in rules.
 */
import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import { createRouter } from '../src/router.js'
import { captureDestination } from '../src/testing.js'
import { classify, detectPii, luhn } from '../src/policy/pii.js'
import { basic, listen, send } from './helpers/http.js'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')

t.test('classify: each class from values and keys', async (t) => {
  // E-mail
  t.equal(classify('contact', 'jo@example.com'), 'email')
  t.equal(classify('email', 'not an address'), 'email', 'an e-mail key holds an e-mail even when malformed')
  t.equal(classify('user_email', 'x'), 'email')
  t.equal(classify('note', 'write to jo at example dot com'), undefined)
  // Phone (E.164 by value; any by key)
  t.equal(classify('contact', '+15550100000'), 'phone')
  t.equal(classify('contact', '+44 20 7946 0000'), 'phone')
  t.equal(classify('phone', '555 0100'), 'phone')
  t.equal(classify('mobile', '0612345678'), 'phone')
  t.equal(classify('order_id', '15550100000'), undefined, 'digits without + are not a phone by value')
  // IP
  t.equal(classify('x', '203.0.113.7'), 'ip')
  t.equal(classify('x', '2001:db8::1'), 'ip')
  t.equal(classify('ip', 'unknown'), 'ip')
  t.equal(classify('version', '1.2.3'), undefined)
  // Cards: Luhn decides
  t.equal(classify('x', '4111111111111111'), 'card')
  t.equal(classify('x', '4111 1111 1111 1111'), 'card')
  t.equal(classify('x', 4111111111111111), 'card', 'a number value too')
  t.equal(classify('x', '5500-0000-0000-0004'), 'card')
  t.equal(classify('x', '4111111111111112'), undefined, '16 digits failing Luhn are not a card')
  t.equal(classify('order', '1234567812345678'), undefined)
  t.equal(luhn('79927398713'), false, 'Luhn holds but shorter than 13 digits')
  t.equal(luhn('4111111111111111'), true)
  t.equal(luhn('4111111111111112'), false)
  t.equal(classify('card_number', 'tok_abc'), 'card', 'by key')
  // National ids
  t.equal(classify('x', '123-45-6789'), 'national_id')
  t.equal(classify('x', '000-45-6789'), undefined, 'an impossible SSN')
  t.equal(classify('ssn', '123456789'), 'national_id')
  t.equal(classify('passport_number', 'X1234567'), 'national_id')
  // Address keys
  t.equal(classify('street', 'Main St 1'), 'address')
  t.equal(classify('postal_code', '10115'), 'address')
  t.equal(classify('city', 'Berlin'), 'address')
  // Names: by key; `name` only under traits
  t.equal(classify('first_name', 'Jo'), 'name')
  t.equal(classify('lastName', 'Doe'), 'name')
  t.equal(classify('name', 'Jo Doe', 'traits'), 'name')
  t.equal(classify('name', 'Blue Shirt', 'properties'), undefined)
  t.equal(classify('name', 'Blue Shirt'), undefined)
  // Not personal data
  t.equal(classify('plan', 'pro'), undefined)
  t.equal(classify('email', ''), undefined, 'empty values are nothing')
  t.equal(classify('email', null), undefined)
  t.equal(classify('email', true), undefined)
  t.equal(classify('email', { a: 1 }), undefined)
})

t.test('detectPii finds the paths, including nested addresses and arrays', async (t) => {
  const found = detectPii({
    type: 'identify',
    userId: 'jo@example.com',
    messageId: '4111111111111111',
    traits: {
      name: 'Jo Doe',
      email: 'jo@example.com',
      address: { street: 'Main St 1', city: 'Berlin', postalCode: '10115', geo: { lat: 1 } },
      plan: 'pro',
      phones: ['+15550100000', 'n/a'],
    },
    properties: { name: 'Blue Shirt', card: '4111111111111112', payer: '4111111111111111', ssnLike: '123-45-6789' },
    context: { ip: '203.0.113.7', userAgent: 'Mozilla/5.0' },
  })
  t.same(
    found.sort((a, b) => a.path.localeCompare(b.path)),
    [
      { path: 'context.ip', class: 'ip' },
      { path: 'properties.payer', class: 'card' },
      { path: 'properties.ssnLike', class: 'national_id' },
      { path: 'traits.address.city', class: 'address' },
      { path: 'traits.address.postalCode', class: 'address' },
      { path: 'traits.address.street', class: 'address' },
      { path: 'traits.email', class: 'email' },
      { path: 'traits.name', class: 'name' },
      { path: 'traits.phones[0]', class: 'phone' },
      { path: 'traits.phones[1]', class: 'phone' },
    ],
    'envelope ids are not scanned; properties.name and a failing card number are not found',
  )
})

const WRITE_KEY = 'wk_pii'

function piiEvent(i: number): Record<string, unknown> {
  return {
    type: 'identify',
    userId: 'u-1',
    messageId: `pii-${i}`,
    traits: {
      email: ' Jo@Example.COM ',
      phone: '+1 (555) 010-0000',
      name: 'Jo Doe',
      plan: 'pro',
      address: { street: 'Main St 1' },
      cards: ['4111111111111111'],
    },
    properties: { name: 'Blue Shirt', note: 'hello' },
    context: { ip: '203.0.113.7', library: { name: 'analytics.js' } },
  }
}

async function piiRouter(t: Test, action: 'redact' | 'hash') {
  const raw = captureDestination('raw')
  const vendor = captureDestination('vendor')
  const router = createRouter({
    logLevel: 'silent',
    sources: [{ name: 'web', writeKey: WRITE_KEY }],
    pii: { action, allow: ['warehouse'] },
    destinations: [
      { name: 'warehouse', type: raw.plugin, delivery: { batch: { maxWaitMs: 0 } } },
      { name: 'vendor', type: vendor.plugin, delivery: { batch: { maxWaitMs: 0 } } },
    ],
  })
  t.teardown(() => router.close({ timeoutMs: 1000 }))
  const { base } = await listen(t, router.handler())
  const reply = await send(`${base}/v1/batch`, { headers: { Authorization: basic(WRITE_KEY) }, body: { batch: [piiEvent(1)] } })
  t.equal(reply.status, 200)
  await router.close({ timeoutMs: 5000 })
  t.equal(raw.events.length, 1)
  t.equal(vendor.events.length, 1)
  return { raw: raw.events[0] as unknown as Record<string, any>, vendor: vendor.events[0] as unknown as Record<string, any> }
}

t.test('pii: redact for destinations not allowed; raw for allowed ones', async (t) => {
  const { raw, vendor } = await piiRouter(t, 'redact')
  t.equal(raw.traits.email, ' Jo@Example.COM ')
  t.equal(raw.traits.phone, '+1 (555) 010-0000')
  t.equal(raw.context.ip, '203.0.113.7')
  t.same(raw.traits.address, { street: 'Main St 1' })

  t.same(vendor.traits, { plan: 'pro', address: {}, cards: [] }, 'every detected trait removed')
  t.same(vendor.properties, { name: 'Blue Shirt', note: 'hello' })
  t.notOk('ip' in vendor.context)
  t.same(vendor.context.library, { name: 'analytics.js' })
  t.equal(vendor.userId, 'u-1', 'identifiers stay')
})

t.test('pii: hash for destinations not allowed; raw for allowed ones', async (t) => {
  const { raw, vendor } = await piiRouter(t, 'hash')
  t.equal(raw.traits.email, ' Jo@Example.COM ')
  t.equal(vendor.traits.email, sha('jo@example.com'), 'the e-mail normalized before hashing')
  t.equal(vendor.traits.phone, sha('15550100000'), 'the phone as E.164 digits')
  t.equal(vendor.traits.name, sha('jo doe'))
  t.equal(vendor.traits.address.street, sha('main st 1'))
  t.same(vendor.traits.cards, [sha('4111111111111111')])
  t.equal(vendor.context.ip, sha('203.0.113.7'))
  t.equal(vendor.traits.plan, 'pro')
  t.equal(vendor.properties.name, 'Blue Shirt')
})

t.test('pii classes limit the sweep', async (t) => {
  const vendor = captureDestination('vendor')
  // The cast: config.ts's schema types `classes` as never[] (a Union over a mapped array); see the report.
  const router = createRouter({ logLevel: 'silent', pii: { action: 'redact', classes: ['email'] as never[] }, destinations: [{ name: 'vendor', type: vendor.plugin }] })
  t.teardown(() => router.close({ timeoutMs: 1000 }))
  const ev = router.evaluate(piiEvent(2))
  const d = ev.destinations.vendor as { delivered: true; event: Record<string, any>; trace: { actions: unknown[] } }
  t.notOk('email' in d.event.traits)
  t.equal(d.event.traits.phone, '+1 (555) 010-0000')
  t.same(d.trace.actions, [{ rule: 'pii', action: 'redact', paths: ['traits.email'] }])
})

t.test('keys that are not path syntax are swept exactly', async (t) => {
  const vendor = captureDestination('vendor')
  const router = createRouter({ logLevel: 'silent', pii: { action: 'redact' }, destinations: [{ name: 'vendor', type: vendor.plugin }] })
  t.teardown(() => router.close({ timeoutMs: 1000 }))
  // `*` and `a.b` are data here, not a wildcard and a nested path; `""` is a key too.
  const ev = router.evaluate({ type: 'track', event: 'x', userId: 'u', properties: { '*': 'jo@example.com', 'a.b': 'x@example.com', '': 'y@example.com', keep: 'me', a: { b: 'stays' } } })
  const d = ev.destinations.vendor as { delivered: true; event: Record<string, any> }
  t.equal(d.delivered, true)
  t.same(d.event.properties, { keep: 'me', a: { b: 'stays' } })

  const hashing = createRouter({ logLevel: 'silent', pii: { action: 'hash' }, destinations: [{ name: 'vendor', type: vendor.plugin }] })
  t.teardown(() => hashing.close({ timeoutMs: 1000 }))
  const hv = hashing.evaluate({ type: 'track', event: 'x', userId: 'u', properties: { '*': 'jo@example.com', keep: 'me' } })
  t.same((hv.destinations.vendor as { event: Record<string, any> }).event.properties, { '*': sha('jo@example.com'), keep: 'me' })
})

t.test('has_pii, pii_class, consent_granted and gpc in rules', async (t) => {
  const cap = captureDestination('cap')
  const router = createRouter({
    logLevel: 'silent',
    policies: [
      { name: 'email-in-props', when: { has_pii: [{ var: 'properties' }, 'email'] }, then: { set: [{ path: 'context.flags.emailInProps', value: true }] } },
      { name: 'any-pii-traits', when: { has_pii: [{ var: 'traits' }] }, then: { set: [{ path: 'context.flags.piiTraits', value: true }] } },
      { name: 'class', then: { set: [{ path: 'context.flags.contactClass', expr: { pii_class: [{ var: 'properties.contact' }] } }] } },
      { name: 'class-by-key', then: { set: [{ path: 'context.flags.keyClass', expr: { pii_class: [{ var: 'properties.note' }, 'email'] } }] } },
      { name: 'marketing', when: { consent_granted: [{ var: '' }, 'marketing'] }, then: { set: [{ path: 'context.flags.marketing', value: true }] } },
      { name: 'marketing-and-ads', when: { consent_granted: [{ var: '' }, 'marketing', 'advertising'] }, then: { set: [{ path: 'context.flags.both', value: true }] } },
      { name: 'gpc', when: { gpc: [{ var: '' }] }, then: { redact: ['properties.contact'] } },
    ],
    destinations: [{ name: 'cap', type: cap.plugin }],
  })
  t.teardown(() => router.close({ timeoutMs: 1000 }))

  const a = router.evaluate({
    type: 'track',
    event: 'A',
    userId: 'u',
    traits: { plan: 'pro' },
    properties: { contact: '+15550100000', note: 'x', other: 'jo@example.com' },
    context: { consent: { categoryPreferences: { marketing: true, advertising: true } } },
  })
  t.same(a.source.fired, ['email-in-props', 'class', 'class-by-key', 'marketing', 'marketing-and-ads'])
  t.same((a.event.context as Record<string, any>).flags, { emailInProps: true, contactClass: 'phone', keyClass: 'email', marketing: true, both: true })
  t.equal((a.event.properties as Record<string, any>).contact, '+15550100000')

  const b = router.evaluate(
    {
      type: 'track',
      event: 'B',
      userId: 'u',
      traits: { first_name: 'Jo' },
      properties: { contact: 'plain', note: 'x' },
      context: { consent: { categoryPreferences: { marketing: true, advertising: true } } },
    },
    { gpc: true },
  )
  t.same(b.source.fired, ['any-pii-traits', 'class', 'class-by-key', 'marketing', 'gpc'], 'GPC withdraws advertising; the gpc rule fires')
  t.same((b.event.context as Record<string, any>).flags, { piiTraits: true, contactClass: null, keyClass: 'email', marketing: true })
  t.notOk('contact' in (b.event.properties as object))
})
