/**
 * explain's verdicts for many shapes of config: no policies, the pii sweep, hash and
 * redact actions with and without conditions, allow-lists, mappings that hash, spread,
 * compute keys or call what the analysis cannot see into, consent, deny rules.
 */
import t from 'tap'
import { ConfigError, explainConfig, parseDenyRule, validateConfig, type RouterOptions } from '../src/index.js'
import { checkDenyRules } from '../src/explain/deny.js'
import { covers, overlaps, policyPattern } from '../src/explain/patterns.js'

const hook = (extra: Record<string, unknown> = {}) => ({ name: 'hook', type: 'webhook', settings: { url: 'http://127.0.0.1:9' }, ...extra })
const explain = (config: RouterOptions) => explainConfig(config)
const cell = (config: RouterOptions, cls: string, dest = 'hook') => {
  const d = explain(config).destinations.find((x) => x.name === dest)!
  return d.classes[cls as 'email']
}

t.test('without policies a whole-event destination gets every class raw', async (t) => {
  const r = explain({ destinations: [hook()] })
  for (const c of r.classes) t.equal(r.destinations[0]!.classes[c].verdict.split(', ')[0], 'raw', c)
  const froms = r.destinations[0]!.classes.email.flows.filter((f) => f.certain).map((f) => f.from)
  t.same(froms.sort(), ['context.traits.email', 'properties.email', 'traits.email'])
  t.ok(r.destinations[0]!.classes.email.flows.some((f) => !f.certain && f.from === 'properties.<other>.**'), 'and possibly from any free-form field')
})

t.test('patterns: covers and overlaps', async (t) => {
  t.ok(covers(policyPattern('**.email'), policyPattern('traits.email')))
  t.ok(covers(policyPattern('properties.**'), policyPattern('properties.a.b')))
  t.notOk(covers(policyPattern('properties.*'), policyPattern('properties.a.b')))
  t.ok(overlaps(policyPattern('properties.*'), policyPattern('properties.a.b')) === false)
  t.ok(overlaps(policyPattern('properties.**'), policyPattern('properties.products[*].sku')))
  t.notOk(covers(policyPattern('properties.products[0].sku'), policyPattern('properties.products[*].sku')))
})

t.test('a hash action on traits.email: hashed there, but free-form fields may still carry an email', async (t) => {
  const c = cell({ policies: [{ then: [{ hash: ['traits.email'] }] }], destinations: [hook()] }, 'email')
  t.equal(c.flows.find((f) => f.from === 'traits.email')!.treatment, 'hashed')
  t.notOk(c.flows.some((f) => f.from === 'traits.email' && f.treatment === 'raw'))
  t.equal(c.verdict, 'raw, hashed', 'properties.email and context.traits.email stay raw')
})

t.test('a conditional redact only possibly applies', async (t) => {
  const cfg = (when?: unknown) => ({ policies: [{ ...(when ? { when } : {}), then: [{ redact: ['**.email', 'userId', 'previousId', 'properties', 'traits', 'context'] }] }], destinations: [hook({ mapping: 'on any { e = event.traits.email }' })] })
  t.equal(cell(cfg(), 'email').verdict, 'never', 'unconditional: gone')
  const c = cell(cfg({ '==': [{ var: 'event' }, 'x'] }), 'email')
  t.equal(c.verdict, 'raw', 'conditional: still raw')
  t.ok(c.flows[0]!.reasons.some((r) => /removes it only when its condition holds/.test(r)))
})

t.test('an unconditional drop or disable: never; a conditional one: no change', async (t) => {
  t.equal(cell({ policies: [{ then: 'drop' }], destinations: [hook()] }, 'email').verdict, 'never')
  t.equal(cell({ policies: [{ then: [{ disable: ['hook'] }] }], destinations: [hook()] }, 'email').verdict, 'never')
  t.equal(cell({ policies: [{ when: { var: 'x' }, then: 'drop' }], destinations: [hook()] }, 'email').verdict.split(', ')[0], 'raw')
  t.equal(cell({ destinations: [hook({ policies: [{ then: 'drop' }] })] }, 'ip').verdict, 'never')
})

t.test('an allow-list keeps only what it names (and the sweep never touches userId)', async (t) => {
  const r = explain({ pii: { action: 'hash' }, destinations: [hook({ policies: [{ then: [{ allow: ['userId', 'traits.email', 'properties.revenue'] }] }] })] })
  const d = r.destinations[0]!
  t.equal(d.classes.email.verdict, 'possibly raw, hashed')
  t.match(d.classes.email.flows.find((f) => f.treatment === 'raw')!.reasons.join(' '), /never changes userId.*email address or a phone number as the user id/)
  t.equal(d.classes.ip.verdict, 'never')
  t.equal(d.classes.free_text.verdict, 'never')
  t.equal(d.classes.user_id.verdict, 'raw')
})

t.test('the pii sweep: telling fields hashed for sure, free-form and free text only possibly', async (t) => {
  const r = explain({ pii: { action: 'hash', allow: ['raw'] }, destinations: [hook(), { ...hook(), name: 'raw' }] })
  const swept = r.destinations[0]!.classes.email
  t.equal(swept.flows.find((f) => f.from === 'traits.email')!.treatment, 'hashed')
  t.ok(swept.flows.some((f) => f.treatment === 'raw' && !f.certain && /inside text/.test(f.reasons.join(' '))), 'free text: possibly raw, and why')
  t.equal(swept.verdict, 'possibly raw, hashed')
  t.equal(r.destinations[1]!.classes.email.verdict.split(', ')[0], 'raw', 'allowed destination: raw')
  const redacted = explain({ pii: { action: 'redact' }, destinations: [hook({ mapping: 'on any { a = event.traits.email\n b = event.context.ip\n c = event.traits.firstName }' })] }).destinations[0]!
  for (const c of ['email', 'ip', 'name'] as const) t.equal(redacted.classes[c].verdict, 'never', `redact sweep: ${c} never`)
})

t.test('mappings: sha256 of an email is hashed only; string functions keep it raw', async (t) => {
  t.equal(cell({ destinations: [hook({ mapping: 'on any { em = sha256(lower(trim(event.traits.email))) }' })] }, 'email').verdict, 'hashed')
  t.equal(cell({ destinations: [hook({ mapping: 'on any { em = lower(trim(event.traits.email)) }' })] }, 'email').verdict, 'raw')
  t.equal(cell({ destinations: [hook({ mapping: 'on any { em = "x" & substr(event.traits.email, 0, 3) }' })] }, 'email').verdict, 'raw')
  t.equal(cell({ destinations: [hook({ mapping: 'on any { n = length(event.traits.email) }' })] }, 'email').verdict, 'never', 'a length is not the email')
  t.equal(cell({ destinations: [hook({ mapping: 'on any { v = toNumber(event.properties.revenue) }' })] }, 'email').verdict, 'never')
  t.equal(cell({ destinations: [hook({ mapping: 'on any { p = toNumber(event.traits.phone) }' })] }, 'phone').verdict, 'raw', 'a phone number as a number is still the phone number')
  const via = cell({ destinations: [hook({ mapping: 'on any {\n  id = event.messageId\n  user_id = event.userId\n}' })] }, 'user_id')
  t.equal(via.flows[0]!.to, 'user_id')
  t.match(via.flows[0]!.reasons.join(' '), /line 3: user_id = event.userId/)
})

t.test('mappings: spreads, computed keys and lambdas are possibly raw with the reason', async (t) => {
  const spread = cell({ destinations: [hook({ mapping: 'on any { props = { ...event.properties } }' })] }, 'name')
  t.equal(spread.verdict, 'possibly raw')
  t.match(spread.flows[0]!.reasons.join(' '), /free-form/)
  const dyn = cell({ destinations: [hook({ mapping: 'let k = event.properties.which\non any { v = event.traits[k] }' })] }, 'email')
  t.equal(dyn.verdict, 'possibly raw', 'reads traits.email, maybe')
  t.ok(dyn.flows.every((f) => !f.certain))
  t.ok(dyn.flows.some((f) => /computed at run time/.test(f.reasons.join(' '))))
  const items = cell({ destinations: [hook({ mapping: 'on any { names = map(event.properties.products, p => p.name)\n mails = map(event.properties.products, p => p.owner_email) }' })] }, 'email')
  t.equal(items.verdict, 'possibly raw', 'an unknown product key is free-form')
  t.equal(cell({ destinations: [hook({ mapping: 'on any { names = map(event.properties.products, p => p.sku) }' })] }, 'email').verdict, 'never', 'a spec key is not')
  t.equal(cell({ destinations: [hook({ mapping: 'on any { x = event.properties.order_id ?? event.traits.email }' })] }, 'email').verdict, 'raw', 'both sides of ??')
})

t.test('custom operations and JSON-Logic inside a mapping or a set: possibly raw, named', async (t) => {
  const set = cell({ policies: [{ then: [{ set: [{ path: 'properties.lookup', expr: { crm_email: [{ var: 'userId' }] } }] }] }], destinations: [hook({ mapping: 'on any { v = event.properties.lookup }' })] }, 'email')
  t.equal(set.verdict, 'possibly raw')
  t.ok(set.flows.some((f) => /operation "crm_email" is not analysed/.test(f.reasons.join(' '))))
  const copy = cell({ policies: [{ then: [{ set: [{ path: 'properties.order_id', expr: { var: 'traits.email' } }] }] }], destinations: [hook({ mapping: 'on any { v = event.properties.order_id }' })] }, 'email')
  t.equal(copy.verdict, 'possibly raw', 'a set that copies the email into a spec field is followed')
  t.equal(cell({ destinations: [hook({ mapping: 'on any { v = jsonlogic({"sha256": [{"var": "traits.email"}]}) }' })] }, 'email').verdict, 'hashed')
  t.equal(cell({ destinations: [hook({ mapping: 'on any { v = jsonlogic({"cat": ["a", {"var": "traits.email"}]}) }' })] }, 'email').verdict, 'raw')
})

t.test('built-in plugins: meta-capi hashes user_data itself; its default mapping sends the IP raw', async (t) => {
  const meta = { name: 'meta', type: 'meta-capi', settings: { pixelId: '1', accessToken: 't' } }
  const r = explain({ destinations: [{ ...meta, mapping: 'on any { event_name = "x"\n user_data = { em: event.traits.email, client_ip_address: event.context.ip } }' }] })
  const d = r.destinations[0]!
  t.equal(d.classes.email.verdict, 'hashed')
  t.match(d.classes.email.flows[0]!.reasons.join(' '), /meta-capi plugin normalizes and SHA-256-hashes user_data.em/)
  t.equal(d.classes.ip.verdict, 'raw')
  const byDefault = explain({ destinations: [meta] }).destinations[0]!
  t.equal(byDefault.classes.ip.flows.find((f) => f.from === 'context.ip')!.treatment, 'raw')
  t.equal(byDefault.classes.name.flows.find((f) => f.from === 'traits.firstName')!.treatment, 'hashed')
  t.equal(byDefault.consent.categories.join(), 'advertising')
  t.ok(byDefault.consent.blockedByGpc)
})

t.test('consent: destination or plugin categories, missing: allow, field gates, consent-conditioned drops', async (t) => {
  const ga4 = { name: 'ga', type: 'ga4', settings: { measurementId: 'G-X', apiSecret: 's' } }
  let d = explain({ destinations: [ga4] }).destinations[0]!
  t.same([d.consent.categories, d.consent.from, d.consent.withoutConsentInfo, d.consent.blockedByGpc], [['analytics'], 'plugin', false, false])
  t.match(d.consent.text, /analytics \(ga4 default\); not events without consent information/)
  d = explain({ consent: { missing: 'allow' }, destinations: [{ ...ga4, consent: { categories: ['stats', 'advertising'], mode: 'any' } }] }).destinations[0]!
  t.same([d.consent.from, d.consent.withoutConsentInfo, d.consent.blockedByGpc, d.consent.mode], ['destination', true, true, 'any'])
  const gated = cell({ consent: { fields: { 'context.ip': 'analytics' } }, destinations: [hook()] }, 'ip')
  t.same(gated.flows.find((f) => f.from === 'context.ip')!.requires, ['analytics'])
  d = explain({ destinations: [hook({ policies: [{ when: { '!': { consent_granted: [{ var: '' }, 'marketing'] } }, then: 'drop' }] })] }).destinations[0]!
  t.same(d.consent.policyRequires, ['marketing'])
  t.match(d.consent.text, /a policy also requires marketing/)
})

t.test('disabled destinations receive nothing', async (t) => {
  const d = explain({ destinations: [hook({ enabled: false })] }).destinations[0]!
  t.equal(d.enabled, false)
  t.equal(d.classes.email.verdict, 'never')
})

t.test('deny rules: parsing, errors with code and position, matching', async (t) => {
  t.same(parseDenyRule('email:raw -> *', '--deny'), { text: 'email:raw -> *', classes: ['email'], treatments: ['raw'], destinations: '*', origin: '--deny' })
  t.same(parseDenyRule(' email, phone : raw,masked -> ga4, meta-* ', 'x').destinations, ['ga4', 'meta-*'])
  t.same(parseDenyRule('*:any->hook', 'x').classes, '*')
  t.same(parseDenyRule('ids:hashed -> a', 'x').classes, ['user_id'])
  const bad: Array<[string, RegExp]> = [
    ['emial:raw -> *', /character 1: unknown class "emial"/],
    ['email:plain -> *', /character 7: unknown treatment "plain"/],
    ['email:raw', /character 10: expected "->"/],
    ['email raw -> *', /expected ":"/],
    ['email: -> *', /character 7: expected a treatment/],
    ['email:raw -> ', /expected a destination name/],
    ['email:raw -> a -> b', /only one "->"/],
    ['email:raw -> a/b', /is not a destination name/],
  ]
  const thrown = (fn: () => unknown): ConfigError | undefined => {
    try {
      fn()
    } catch (err) {
      return err as ConfigError
    }
    return undefined
  }
  for (const [text, msg] of bad) {
    const err = thrown(() => parseDenyRule(text, '/privacy/deny/3'))
    t.ok(err instanceof ConfigError, text)
    t.same([err?.code, err?.path], ['CONFIG_DENY_RULE', '/privacy/deny/3'], text)
    t.match(err?.message, msg, text)
  }
  const fromConfig = thrown(() => validateConfig({ privacy: { deny: ['email:raw -> *', 'nope'] } }))
  t.same([fromConfig?.code, fromConfig?.path], ['CONFIG_DENY_RULE', '/privacy/deny/1'])
  const r = explainConfig({ privacy: { deny: ['email:raw -> tight'] }, destinations: [hook(), { ...hook(), name: 'tight', mapping: 'on any { e = sha256(event.traits.email) }' }] }, { deny: ['email:hashed -> tight', 'ip:any -> hook', 'name:raw -> nowhere'] })
  t.same(r.deny.violations.map((v) => `${v.rule}|${v.destination}|${v.class}|${v.treatment}`).sort(), ['email:hashed -> tight|tight|email|hashed', 'ip:any -> hook|hook|ip|raw'])
  t.ok(r.notes.some((n) => /"name:raw -> nowhere" \(--deny #3\) names no configured destination/.test(n)))
  t.same(checkDenyRules(r, [parseDenyRule('*:raw -> ti*', 'x')]), [], 'a wildcard destination')
})

t.test('errors the router would refuse are refused', async (t) => {
  t.throws(() => explain({ destinations: [{ name: 'x', type: 'nope' }] }), { code: 'CONFIG_UNKNOWN_PLUGIN', path: '/destinations/0/type' })
  t.throws(() => explain({ destinations: [hook({ mapping: 'on any { x = }' })] }), { code: 'CONFIG_INVALID', path: '/destinations/0/mapping' })
})
