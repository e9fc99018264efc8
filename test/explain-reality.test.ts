/**
 * explain's verdicts against reality: a corpus of events carrying every class of
 * personal data — standard and odd places, several spellings — goes through a real
 * router to local destinations (the built-in plugins against local vendor servers,
 * and capture destinations). Whatever explain calls "never", or hashed/masked only,
 * must not appear raw in any payload delivered.
 */
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { createRouter, explainConfig, type DataClass, type ExplainReport, type RouterOptions } from '../src/index.js'
import { captureDestination, startTestServer, type TestServer } from '../src/testing.js'

const quiet = { debug() {}, info() {}, warn() {}, error() {} }
const consent = { categoryPreferences: { analytics: true, advertising: true, marketing: true } }

/** Raw values per class, as the corpus writes them. */
const RAW: Record<DataClass, string[]> = {
  email: ['Jane.Doe@Example.com', 'ctx.person@example.org', 'odd.key@example.net', 'text.embedded@example.io', 'userid.email@example.com', 'url.person@example.com', 'UPPER.CASE@EXAMPLE.COM', 'prop.mail@example.com'],
  phone: ['+1 (415) 555-0134', '415.555.0199', '0044 20 7946 0958', '+44 7700 900461'],
  ip: ['203.0.113.77', '2001:db8:85a3::8a2e:370:7334', '198.51.100.23', '2001:db8:beef::42'],
  name: ['Wilhelmina', 'Featherstonehaugh', 'Bartholomew Quigley', 'Ottoline'],
  address: ['742 Evergreen Terrace', 'Springfieldtown', 'SW1A 9ZZ', 'Quux Lane 77'],
  user_id: ['user-7f3a9c', 'anon-5e1d2b', 'device-9b8a7c', '1234567.1700000000', 'user-previous-55'],
  free_text: ['please call me at text.embedded@example.io tomorrow', 'wilhelmina featherstonehaugh shoes', 'gift for Ottoline, ring 0044 20 7946 0958', 'Deliver to Quux Lane 77 before noon'],
}

/** What to search a payload for: each raw value, lower-cased, URL-encoded, and for phones their digits. */
function needles(c: DataClass): string[] {
  const out = new Set<string>()
  for (const v of RAW[c]) {
    out.add(v.toLowerCase())
    out.add(encodeURIComponent(v).toLowerCase())
    if (c === 'phone') {
      const digits = v.replace(/\D/g, '').replace(/^00/, '')
      out.add(digits)
      out.add(`+${digits}`)
    }
  }
  return [...out]
}

function corpus(): Array<{ call: 'track' | 'identify' | 'page'; event: Record<string, unknown> }> {
  const context = (extra: Record<string, unknown> = {}) => ({
    consent,
    ip: '203.0.113.77',
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0',
    page: { url: 'https://shop.example/checkout?email=url.person%40example.com&ref=mail', referrer: 'https://mail.example/?to=url.person@example.com', title: 'Checkout' },
    cookies: { _ga: 'GA1.1.1234567.1700000000', _ga_ABC: 'GS1.1.1700000001.1.1', newsletter: 'odd.key@example.net' },
    device: { id: 'device-9b8a7c' },
    traits: { email: 'ctx.person@example.org', phone: '+44 7700 900461' },
    ...extra,
  })
  const person = {
    email: 'Jane.Doe@Example.com', phone: '+1 (415) 555-0134', firstName: 'Wilhelmina', lastName: 'Featherstonehaugh', name: 'Wilhelmina Featherstonehaugh',
    address: { street: '742 Evergreen Terrace', city: 'Springfieldtown', postalCode: 'SW1A 9ZZ', country: 'GB' },
    contact: 'odd.key@example.net', notes: 'Deliver to Quux Lane 77 before noon', mobile: '415.555.0199',
  }
  return [
    { call: 'identify', event: { userId: 'user-7f3a9c', anonymousId: 'anon-5e1d2b', traits: person, context: context() } },
    {
      call: 'track',
      event: {
        userId: 'user-7f3a9c', anonymousId: 'anon-5e1d2b', event: 'Order Completed',
        properties: {
          order_id: 'o-1001', revenue: 42.5, currency: 'EUR', email: 'prop.mail@example.com', recipient: 'Bartholomew Quigley',
          comment: 'please call me at text.embedded@example.io tomorrow', origin_ip: '2001:db8:beef::42', mobile: '415.555.0199',
          products: [{ product_id: 'p1', sku: 'SKU-1', name: 'Shoe', price: 42.5, quantity: 1, gift_note: 'gift for Ottoline, ring 0044 20 7946 0958' }],
        },
        context: context(),
      },
    },
    {
      call: 'track',
      event: {
        userId: 'userid.email@example.com', anonymousId: 'anon-5e1d2b', event: 'Wishlist Shared',
        properties: { shared_with: 'Bartholomew Quigley', contact: 'odd.key@example.net', note: 'gift for Ottoline, ring 0044 20 7946 0958', from_ip: '198.51.100.23' },
        context: context({ ip: '2001:db8:85a3::8a2e:370:7334', traits: { email: 'UPPER.CASE@EXAMPLE.COM' } }),
      },
    },
    { call: 'track', event: { userId: 'user-7f3a9c', event: 'Products Searched', properties: { query: 'wilhelmina featherstonehaugh shoes' }, context: context() } },
    { call: 'page', event: { anonymousId: 'anon-5e1d2b', name: 'Checkout', properties: { path: '/checkout', search: '?email=url.person%40example.com' }, context: context() } },
    { call: 'track', event: { userId: 'user-7f3a9c', previousId: 'user-previous-55', event: 'Signed Up', properties: { method: 'email' }, context: context({ traits: { email: 'ctx.person@example.org', firstName: 'Ottoline' } }) } },
  ]
}

interface Sink {
  name: string
  payloads(): string[]
}

/** Vendor-style destinations against local servers, and capture destinations; returns the router options and the sinks. */
async function setup(t: Test, shape: (servers: Record<string, TestServer>) => RouterOptions, captures: string[]): Promise<{ options: RouterOptions; sinks: Sink[] }> {
  const servers: Record<string, TestServer> = {}
  for (const n of ['hook', 'ga4', 'meta', 'mixpanel', 'amplitude', 'meta2']) {
    const s = await startTestServer()
    s.fallback = n.startsWith('meta') ? { status: 200, body: { events_received: 1 } } : n === 'amplitude' ? { status: 200, body: { code: 200 } } : n === 'mixpanel' ? { status: 200, body: { code: 200, num_records_imported: 1, status: 'OK' } } : { status: 200, body: { ok: true } }
    servers[n] = s
    t.teardown(() => s.close())
  }
  const capturePlugins = captures.map((n) => ({ name: n, cap: captureDestination(`cap-${n}`) }))
  const options = shape(servers)
  options.plugins = [...(options.plugins ?? []), ...capturePlugins.map((c) => c.cap.plugin)]
  options.logger = quiet
  const sinks: Sink[] = []
  for (const d of options.destinations ?? []) {
    const type = typeof d.type === 'string' ? d.type : d.type.name
    const cap = capturePlugins.find((c) => `cap-${c.name}` === type)
    if (cap) sinks.push({ name: d.name, payloads: () => cap.cap.events.map((e) => JSON.stringify(e)) })
    else {
      const server = Object.values(servers).find((s) => JSON.stringify(d.settings ?? {}).includes(s.url))!
      sinks.push({ name: d.name, payloads: () => server.requests.map((r) => r.text) })
    }
  }
  return { options, sinks }
}

const fast = { batch: { maxWaitMs: 5 }, retry: { maxAttempts: 1 } }

function vendors(s: Record<string, TestServer>): NonNullable<RouterOptions['destinations']> {
  return [
    { name: 'hook', type: 'webhook', settings: { url: s.hook!.url }, delivery: fast },
    { name: 'ga4', type: 'ga4', settings: { measurementId: 'G-TEST1', apiSecret: 'secret', endpoint: s.ga4!.url }, delivery: fast },
    { name: 'meta', type: 'meta-capi', settings: { pixelId: '123', accessToken: 'token', endpoint: s.meta!.url }, delivery: fast },
    { name: 'mixpanel', type: 'mixpanel', settings: { projectToken: 'tok', endpoint: s.mixpanel!.url }, delivery: fast },
    { name: 'amplitude', type: 'amplitude', settings: { apiKey: 'key', endpoint: s.amplitude!.url }, delivery: fast },
  ]
}

/** Every (destination, class) whose verdict rules raw out, but whose raw values were delivered. */
function contradictions(report: ExplainReport, delivered: Record<string, string[]>): string[] {
  const out: string[] = []
  for (const d of report.destinations) {
    const text = (delivered[d.name] ?? []).join('\n').toLowerCase()
    for (const c of report.classes) {
      const cell = d.classes[c]
      if (cell.treatments.includes('raw')) continue
      for (const n of needles(c)) if (text.includes(n)) out.push(`${d.name} · ${c} is "${cell.verdict}" but "${n}" was delivered`)
    }
  }
  return out
}

async function runCorpus(t: Test, options: RouterOptions, sinks: Sink[]): Promise<{ report: ExplainReport; delivered: Record<string, string[]> }> {
  const report = explainConfig(options)
  const router = createRouter(options)
  for (const { call, event } of corpus()) await router[call](structuredClone(event))
  router.flush()
  // Every destination has a 5 ms batch window and one attempt: wait until delivery settles.
  const deadline = Date.now() + 5000
  for (;;) {
    const st = router.stats().destinations
    const pending = Object.values(st).reduce((n, d) => n + d.enqueued - d.delivered - Object.values(d.deadLettered).reduce((a, b) => a + b, 0), 0)
    if (pending <= 0 || Date.now() > deadline) break
    await new Promise((r) => setTimeout(r, 20))
  }
  await router.close({ timeoutMs: 2000 })
  const delivered = Object.fromEntries(sinks.map((s) => [s.name, s.payloads()]))
  for (const s of sinks) t.ok(delivered[s.name]!.length > 0, `${s.name} received something`)
  return { report, delivered }
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex')

t.test('no policies: the shipped plugins and their default mappings, a webhook, tight and loose custom mappings', async (t) => {
  const { options, sinks } = await setup(t, (s) => ({
    destinations: [
      ...vendors(s),
      { name: 'tight', type: 'cap-tight', mapping: 'on any {\n  id = event.messageId\n  em = hashEmail(event.traits.email ?? event.context.traits.email)\n  value = toNumber(event.properties.revenue)\n}' },
      { name: 'loose', type: 'cap-loose', mapping: 'on track {\n  name = event.event\n  props = { ...event.properties }\n}\ndefault { drop }' },
    ],
  }), ['tight', 'loose'])
  const { report, delivered } = await runCorpus(t, options, sinks)
  t.same(contradictions(report, delivered), [])
  const tight = report.destinations.find((d) => d.name === 'tight')!
  t.equal(tight.classes.email.verdict, 'hashed', 'tight sends only a hashed email')
  for (const c of ['phone', 'ip', 'name', 'address', 'user_id', 'free_text'] as const) t.equal(tight.classes[c].verdict, 'never', `tight: ${c} never`)
  t.ok(delivered.tight!.join('\n').includes(sha('jane.doe@example.com')), 'the hashed email did arrive, so the check looks at real payloads')
  t.ok(delivered.hook!.join('\n').toLowerCase().includes('jane.doe@example.com'), 'the webhook got the raw email (explain says raw)')
  t.equal(report.destinations.find((d) => d.name === 'hook')!.classes.email.verdict.startsWith('raw'), true)
  const loose = report.destinations.find((d) => d.name === 'loose')!
  t.equal(loose.classes.email.verdict, 'raw', 'a spread of properties carries properties.email')
  t.equal(loose.classes.name.verdict, 'possibly raw', 'and possibly a name in any free-form property')
  t.ok(delivered.loose!.join('\n').toLowerCase().includes('prop.mail@example.com'), 'and indeed it carries the email')
})

t.test('the pii sweep, source hash and mask, a destination allow-list and consent field gates', async (t) => {
  const { options, sinks } = await setup(t, (s) => ({
    pii: { action: 'hash', allow: ['hook'] },
    consent: { fields: { 'properties.comment': 'marketing' } },
    policies: [
      { name: 'hash-email', then: [{ hash: ['traits.email', 'context.traits.email'] }] },
      { name: 'coarse-ip', then: [{ mask: ['context.ip'] }] },
      { name: 'maybe-redact', when: { '==': [{ var: 'event' }, 'Order Completed'] }, then: [{ redact: ['properties.recipient'] }] },
    ],
    destinations: [
      ...vendors(s),
      { name: 'allowlisted', type: 'cap-allow', policies: [{ then: [{ allow: ['userId', 'traits.email', 'properties.revenue', 'properties.products[*].sku'] }] }] },
      {
        name: 'meta-strict', type: 'meta-capi', settings: { pixelId: '456', accessToken: 'token', endpoint: s.meta2!.url, actionSource: 'system_generated' }, delivery: fast,
        policies: [{ then: [{ allow: ['userId', 'traits.email', 'traits.phone', 'traits.firstName', 'context.traits.email'] }] }],
      },
      { name: 'ids-hashed', type: 'cap-ids', policies: [{ then: [{ hash: ['userId', 'anonymousId', 'previousId'] }, { allow: ['userId', 'anonymousId', 'context.ip'] }] }] },
    ],
  }), ['allow', 'ids'])
  const { report, delivered } = await runCorpus(t, options, sinks)
  t.same(contradictions(report, delivered), [])
  const allow = report.destinations.find((d) => d.name === 'allowlisted')!
  t.equal(allow.classes.email.verdict, 'possibly raw, hashed', 'hashed traits.email, but userId may be an email')
  t.equal(allow.classes.ip.verdict, 'never')
  t.equal(allow.classes.free_text.verdict, 'never')
  const meta = report.destinations.find((d) => d.name === 'meta-strict')!
  t.same(meta.classes.email.treatments, ['hashed'], 'meta-capi: the mapping and the plugin hash every email')
  t.same(meta.classes.user_id.treatments, ['hashed'], 'userId only as external_id, hashed')
  for (const c of ['ip', 'address', 'free_text'] as const) t.equal(meta.classes[c].verdict, 'never', `meta-strict: ${c} never`)
  t.ok(delivered['meta-strict']!.join('\n').includes(sha('ctx.person@example.org')), 'meta-strict got the hashed email (of context.traits: its track events carry no traits)')
  const ids = report.destinations.find((d) => d.name === 'ids-hashed')!
  t.equal(ids.classes.email.verdict, 'possibly hashed', 'an email only as a hashed userId')
  t.equal(ids.classes.ip.verdict, 'hashed', 'context.ip masked by a source policy is still an IP: the sweep hashes it')
})

t.test('redact sweep and a consent-conditioned drop', async (t) => {
  const { options, sinks } = await setup(t, (s) => ({
    pii: { action: 'redact' },
    consent: { missing: 'allow' },
    policies: [{ name: 'only-with-marketing', when: { '!': { consent_granted: [{ var: '' }, 'marketing'] } }, then: 'drop' }],
    destinations: vendors(s),
  }), [])
  const { report, delivered } = await runCorpus(t, options, sinks)
  t.same(contradictions(report, delivered), [])
  t.same(report.destinations[0]!.consent.policyRequires, ['marketing'])
})

t.test('the checker itself finds a raw value where a verdict says never', async (t) => {
  const fake = explainConfig({ destinations: [{ name: 'x', type: 'webhook', settings: { url: 'http://127.0.0.1:9' }, mapping: 'on any { id = event.messageId }' }] })
  t.equal(fake.destinations[0]!.classes.email.verdict, 'never')
  t.same(contradictions(fake, { x: ['{"id":"m1"}'] }), [])
  t.match(contradictions(fake, { x: ['{"id":"m1","leak":"JANE.DOE@example.com"}'] }), [/x · email is "never" but "jane.doe@example.com" was delivered/])
})
